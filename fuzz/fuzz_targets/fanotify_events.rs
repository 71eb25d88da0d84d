//! A read of a fanotify group in FID mode as the file sensor parses it: any bytes. Parsing
//! must never panic, must stop at the first event that does not hold together (keeping those
//! before it), and every event read must encode back to bytes that parse to the same event.
#![no_main]

use cordon_agent::sensors::file::records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (events, err) = records::parse(data);
    for e in &events {
        assert!(
            e.infos
                .iter()
                .all(|i| i.handle.bytes.len() <= records::MAX_HANDLE)
        );
        // Names as long as an info record can hold would not fit one once re-terminated.
        if e.infos.iter().all(|i| i.name.len() < 4096) {
            let (back, none) = records::parse(&records::encode(e));
            assert_eq!(none, None);
            assert_eq!(back, vec![e.clone()]);
        }
    }
    if err.is_none() && events.is_empty() {
        assert!(data.is_empty());
    }
});
