//! What a simulated agent does with a verified command: answers ping and inventory, and
//! reports isolate, release and kill as done without touching anything on this machine.
//! Other actions fail with a clear error.

use cordon_agent::commands::Executor;
use cordon_proto::time::now_ms;
use cordon_proto::{
    HostFacts, Inventory, IsolationResult, KillResult, KilledProcess, Pong, action, command_result,
};
use std::sync::atomic::{AtomicBool, Ordering};

/// The hash a simulated agent reports for its (imaginary) isolation ruleset.
pub const SIM_RULESET_HASH: &str = "simulated";

/// One simulated agent's responder: the containment it claims.
pub struct SimExecutor {
    pub hostname: String,
    pub isolated: AtomicBool,
}

impl SimExecutor {
    pub fn new(hostname: String) -> Self {
        Self {
            hostname,
            isolated: AtomicBool::new(false),
        }
    }

    fn isolation(&self, isolated: bool, allowed: Vec<String>) -> command_result::Output {
        self.isolated.store(isolated, Ordering::Relaxed);
        command_result::Output::Isolation(IsolationResult {
            isolated,
            controller_addresses: Vec::new(),
            allowed,
            ruleset_hash: if isolated {
                SIM_RULESET_HASH.into()
            } else {
                String::new()
            },
            apply_micros: 0,
        })
    }

    pub fn host(&self) -> HostFacts {
        HostFacts {
            hostname: self.hostname.clone(),
            os_name: "linux".into(),
            agent_version: "cordon-sim".into(),
            ..Default::default()
        }
    }
}

impl Executor for SimExecutor {
    async fn execute(&self, action: &action::Kind) -> Result<command_result::Output, String> {
        use command_result::Output;
        match action {
            action::Kind::Ping(_) => Ok(Output::Pong(Pong {
                agent_time_ms: now_ms(),
            })),
            action::Kind::CollectInventory(_) => Ok(Output::Inventory(Inventory {
                host: Some(self.host()),
                cpu_count: 2,
                memory_total_bytes: 8 << 30,
                ..Default::default()
            })),
            action::Kind::Isolate(i) => Ok(self.isolation(true, i.allow.clone())),
            action::Kind::Release(_) => Ok(self.isolation(false, Vec::new())),
            action::Kind::Kill(k) => Ok(Output::Kill(KillResult {
                killed: vec![KilledProcess {
                    pid: k.pid,
                    start_time: k.start_time,
                    exe: "/simulated".into(),
                    comm: "simulated".into(),
                }],
            })),
            _ => Err("a simulated agent does not carry out this action".into()),
        }
    }
}
