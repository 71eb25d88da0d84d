//! Everything an agent sends on its stream, as the controller reads it once the transport has
//! decompressed and bounded it: any bytes as an `AgentMessage` are decoded, and what they hold
//! goes where the controller sends it — each telemetry event through the summary stored with
//! it, every Sigma rule and indicator list (Cordon's rules, an indicator of each kind) and the
//! JSON people read; a command result and a chunk to their JSON. Never a panic, whatever a
//! hostile agent writes.
#![no_main]

use cordon_controller::core::describe;
use cordon_controller::detect::Detector;
use cordon_controller::policy::grouping::Grouping;
use cordon_proto::json::ToJson;
use cordon_proto::{AgentMessage, EventRecord, agent_message::Msg};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::OnceLock;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| {
        let d = Detector::new(Grouping {
            alert_window_ms: 1,
            incident_window_ms: 1,
        });
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/linux");
        for entry in std::fs::read_dir(rules).into_iter().flatten().flatten() {
            if let Ok(yaml) = std::fs::read_to_string(entry.path()) {
                let _ = d.compile(&entry.path().display().to_string(), &yaml);
            }
        }
        d.add_iocs("sha256", "bad", &["ab".repeat(32)]);
        d.add_iocs("ip", "bad", &["10.0.0.2".into()]);
        d.add_iocs("domain", "bad", &["evil.example".into()]);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = AgentMessage::decode(data) else {
        return;
    };
    match msg.msg {
        Some(Msg::Telemetry(batch)) => {
            for e in batch.events {
                let (_, summary) = describe(&e);
                let _ = detector().judge(&e);
                let record = EventRecord {
                    summary,
                    event: Some(e),
                    ..Default::default()
                };
                let _ = record.to_json();
            }
        }
        Some(Msg::Result(r)) => {
            let _ = serde_json::to_string(&r);
        }
        Some(Msg::Chunk(c)) => {
            let _ = serde_json::to_string(&c);
        }
        Some(Msg::Heartbeat(hb)) => {
            let _ = serde_json::to_string(&hb);
        }
        Some(Msg::Hello(h)) => {
            let _ = serde_json::to_string(&h);
        }
        None => {}
    }
});
