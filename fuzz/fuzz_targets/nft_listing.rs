//! nft's JSON listing of a table, as the agent reads it to know what is in the kernel
//! (isolation drift, blocked addresses): any bytes as nft's output are parsed, hashed the way
//! drift is checked and counted the way the heartbeat reports blocks; a bad listing is an
//! error, never a panic.
#![no_main]

use cordon_agent::respond::block::count_elements;
use cordon_agent::respond::nft::{parse_listing, table_hash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(listed) = parse_listing(text) else {
        return;
    };
    let hash = table_hash(&listed);
    assert_eq!(hash.len(), 64);
    assert_eq!(
        hash,
        table_hash(&listed),
        "the same listing hashes the same"
    );
    let _ = count_elements(&listed);
});
