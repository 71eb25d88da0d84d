//! Edge policies as the agent takes them: any bytes as a stored policy file (decoded, then
//! its signature checked, which fails: nothing here holds the key), and any bytes as the
//! policy inside (what a signed one may carry: rules compiled, conditions and steps run over
//! an exec and a connection). A bad policy is refused with a reason, never a panic.
#![no_main]

use cordon_agent::edge::policy::{Compiled, verify};
use cordon_proto::{
    EdgePolicy, NetworkEvent, ProcessEvent, SignedEdgePolicy, event, process_event,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedEdgePolicy::decode(data) {
        assert!(verify(&signed, &[0x42; 32], "me").is_err());
    }
    let Ok(policy) = EdgePolicy::decode(data) else {
        return;
    };
    let Ok(compiled) = Compiled::new(policy) else {
        return;
    };
    let exec = event::Body::Process(ProcessEvent {
        kind: process_event::Kind::Exec as i32,
        pid: 4242,
        exe: "/usr/bin/bash".into(),
        argv: vec!["bash".into(), "-i".into()],
        ..Default::default()
    });
    let connect = event::Body::Network(NetworkEvent {
        destination_ip: "10.0.0.2".into(),
        destination_port: 4444,
        ..Default::default()
    });
    for body in [exec, connect] {
        let _ = compiled.matches(&body);
        let _ = compiled.steps(&body).count();
    }
});
