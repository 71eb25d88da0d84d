//! A login accounting file (utmp, wtmp, btmp) as a hostile or damaged host may hold it: any
//! bytes. Reading must yield one record per whole 384 bytes and at most one error, for the
//! cut tail, at its offset (never panic); every record must encode back to bytes that parse
//! to the same record.
#![no_main]

use cordon_agent::collect::logins::utmp::{self, RECORD, Records, UtmpError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut records = 0;
    let mut errors = 0;
    for item in Records::new(data) {
        match item {
            Ok(record) => {
                assert_eq!(errors, 0, "a record after an error");
                records += 1;
                assert_eq!(utmp::parse(&utmp::encode(&record)), record);
            }
            Err(UtmpError::Truncated { offset, len }) => {
                errors += 1;
                assert_eq!(offset as usize, records * RECORD);
                assert_eq!(len, data.len() % RECORD);
            }
            Err(e) => panic!("reading a slice failed: {e}"),
        }
    }
    assert_eq!(records, data.len() / RECORD);
    assert_eq!(errors, usize::from(!data.len().is_multiple_of(RECORD)));
});
