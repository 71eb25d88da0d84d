//! Everything an agent sends on its stream, as the controller reads it once the transport has
//! decompressed and bounded it: any bytes as an `AgentMessage` are decoded, and what they hold
//! goes where the controller sends it — each telemetry event through the summary stored with
//! it, every Sigma rule and indicator list (Cordon's rules, an indicator of each kind) and the
//! JSON people read; a command result and a chunk to their JSON. Never a panic, whatever a
//! hostile agent writes. (The handling is `cordon_fuzz::handle_agent_message`, shared with
//! `agent_stream`.)
#![no_main]

use cordon_proto::AgentMessage;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = AgentMessage::decode(data) {
        cordon_fuzz::handle_agent_message(msg);
    }
});
