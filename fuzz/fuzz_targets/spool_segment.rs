//! The agent's spool as a crash, a full disk or a hostile local writer may leave it: any
//! bytes as a segment file, with any `acked` and `reserved` numbers beside it. Opening must
//! keep the good records and cut the rest (never panic), reading must hand out events in
//! increasing sequence, and an append after it must be readable back.
#![no_main]

use cordon_agent::spool::{Spool, SpoolConfig};
use cordon_proto::event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (numbers, segment) = data.split_at(data.len().min(16));
    let (acked, reserved) = numbers.split_at(numbers.len() / 2);
    std::fs::write(dir.path().join("acked"), acked).expect("write acked");
    std::fs::write(dir.path().join("reserved"), reserved).expect("write reserved");
    std::fs::write(dir.path().join("00000000000000000001.seg"), segment).expect("write segment");
    let cfg = SpoolConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 1 << 16,
    };
    let Ok((mut spool, _report)) = Spool::open(cfg) else {
        return;
    };
    let mut last = 0;
    for _ in 0..64 {
        let Ok(batch) = spool.read_from(last + 1, 256) else {
            return;
        };
        let Some(end) = batch.last().map(|e| e.seq) else {
            break;
        };
        assert!(
            batch.windows(2).all(|w| w[0].seq < w[1].seq),
            "out of order"
        );
        assert!(batch[0].seq > last, "read again");
        last = end;
    }
    let appended = cordon_proto::Event {
        time_ms: 1,
        body: Some(event::Body::Process(Default::default())),
        ..Default::default()
    };
    if let Ok(seq) = spool.append(vec![appended]) {
        let back = spool.read_from(seq, 1).expect("read back the append");
        assert_eq!(back.first().map(|e| e.seq), Some(seq));
    }
});
