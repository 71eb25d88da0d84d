//! A playbook file as `cordonctl playbooks apply` sends it: any bytes, parsed and checked.
//! Every input must end in a playbook or a refusal naming the file, in bounded time and memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = cordon_controller::playbook::spec::parse(text, "fuzz.yml") {
            assert!(e.to_string().contains("fuzz.yml"), "{e}");
        }
    }
});
