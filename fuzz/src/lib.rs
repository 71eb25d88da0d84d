//! What the fuzz targets share: the controller's handling of one decoded `AgentMessage`, for
//! `agent_message` (a message's bytes) and `agent_stream` (the gRPC frames around them).

use cordon_controller::core::describe;
use cordon_controller::detect::Detector;
use cordon_controller::policy::grouping::Grouping;
use cordon_proto::json::ToJson;
use cordon_proto::{AgentMessage, EventRecord, TelemetryBatch, agent_message::Msg};
use std::sync::OnceLock;

/// The detector with Cordon's rules and an indicator list of each kind, made once.
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

/// Each event through the summary stored with it, the detector and the JSON people read.
fn telemetry(batch: TelemetryBatch) {
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

/// Sends what `msg` holds where the controller sends it.
pub fn handle_agent_message(msg: AgentMessage) {
    match msg.msg {
        Some(Msg::Telemetry(batch)) => telemetry(batch),
        Some(Msg::Result(r)) => drop(serde_json::to_string(&r)),
        Some(Msg::Chunk(c)) => drop(serde_json::to_string(&c)),
        Some(Msg::Heartbeat(hb)) => drop(serde_json::to_string(&hb)),
        Some(Msg::Hello(h)) => drop(serde_json::to_string(&h)),
        None => {}
    }
}
