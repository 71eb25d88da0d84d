//! What the network sensor decodes: a kernel record (checked before it is believed) and the
//! DNS message it may carry, which is whatever bytes crossed UDP port 53 (an attacker's
//! resolver answers what it likes). Any bytes: decoding never panics; a decoded record encodes
//! back to one that decodes the same; the tracker turns it into at most two outputs.
#![no_main]

use cordon_agent::sensors::network::{dns, record, track::Tracker};
use cordon_agent::sensors::process::ProcessTable;
use cordon_agent::sys::procfs::Proc;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let _ = dns::parse(data);
    if let Ok(mut r) = record::parse(data) {
        assert_eq!(record::parse(&record::encode(&r)), Ok(r.clone()));
        // No /proc lookups: the process is not what is fuzzed.
        r.pid = 0;
        let table = Arc::new(ProcessTable::new(Proc::default(), 4096));
        let mut t = Tracker::new(table, Duration::ZERO);
        let outs = t.handle(r, Instant::now());
        assert!(outs.len() <= 2, "{outs:?}");
        assert!(t.tick(Instant::now() + Duration::from_secs(1)).len() <= 1);
    }
});
