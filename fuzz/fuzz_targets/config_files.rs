//! The configuration files, as their owners may write them: any bytes, as the controller's
//! `controller.toml`, the agent's `agent.toml` and a person's credential file. Each ends in
//! settings or a refusal naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("a temp file");
    file.write_all(data).expect("write");
    let path = file.path();
    let name = path.display().to_string();
    if let Err(e) = cordon_controller::config::ControllerConfig::load_file(path) {
        assert!(e.to_string().contains(&name), "{e}");
    }
    if let Err(e) = cordon_agent::config::AgentConfig::load(Some(path)) {
        assert!(e.to_string().contains(&name), "{e}");
    }
    if let Err(e) = cordon_proto::admin::AdminConfig::load(path) {
        assert!(e.to_string().contains(&name), "{e}");
    }
});
