//! The text of /proc/TID/syscall as tamper protection reads it to tell an open for write
//! from a read: any bytes. Reading must never panic, and text that is not a system call
//! line (no number first) is never taken for a write.
#![no_main]

use cordon_agent::prevent::tamper::{Access, access_of};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = access_of(text, |addr| Some(addr.rotate_left(7)));
    let numbered = text
        .split_ascii_whitespace()
        .next()
        .is_some_and(|n| n.parse::<i64>().is_ok());
    if !numbered {
        assert_eq!(got, Access::Unknown);
    }
});
