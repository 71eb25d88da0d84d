//! A Sigma rule file as `cordonctl rules import` sends it: any bytes, parsed, compiled and
//! evaluated on an exec whose command line is the same text. Every input must end in a rule
//! or a clear refusal, in bounded time and memory.
#![no_main]

use cordon_proto::{Event, ProcessEvent, event, process_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = cordon_detect::parse_rule(text, "fuzz.yml") else {
        return;
    };
    let mut set = cordon_detect::RuleSet::default();
    if set.insert(rule).is_ok() {
        let exec = Event {
            body: Some(event::Body::Process(ProcessEvent {
                kind: process_event::Kind::Exec as i32,
                exe: "/bin/sh".into(),
                argv: text.split_whitespace().map(str::to_string).collect(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let _ = set.evaluate(&exec);
    }
});
