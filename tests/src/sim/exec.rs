//! What a simulated agent does with a verified command: answers ping and inventory, and
//! reports isolate, release and kill as done without touching anything on this machine; a
//! collection returns [`SIM_ROWS`] made-up rows (kept for the session to send in a chunk
//! before the result, as an agent's outbox does). Other actions fail with a clear error.

use cordon_agent::commands::{Executor, Job};
use cordon_proto::time::now_ms;
use cordon_proto::{
    CollectionResult, HostFacts, Inventory, IsolationResult, KillResult, KilledProcess, Pong,
    ResultChunk, action, command_result,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows a simulated collection returns.
pub const SIM_ROWS: u64 = 20;

/// The hash a simulated agent reports for its (imaginary) isolation ruleset.
pub const SIM_RULESET_HASH: &str = "simulated";

/// One simulated agent's responder: the containment it claims.
pub struct SimExecutor {
    pub hostname: String,
    pub isolated: AtomicBool,
    /// A collection's rows by command id, until the session sends them.
    pub chunks: Mutex<HashMap<String, ResultChunk>>,
}

impl SimExecutor {
    pub fn new(hostname: String) -> Self {
        Self {
            hostname,
            isolated: AtomicBool::new(false),
            chunks: Mutex::new(HashMap::new()),
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

    /// A collection's made-up rows, kept as one chunk for `job`'s command.
    fn collection(&self, job: &Job, collector: &str) -> command_result::Output {
        let data: String = (0..SIM_ROWS)
            .map(|i| {
                format!(
                    "{{\"host\":\"{}\",\"pid\":{i},\"exe\":\"/usr/bin/sim\"}}\n",
                    self.hostname
                )
            })
            .collect();
        let result = CollectionResult {
            collector: collector.to_string(),
            rows: SIM_ROWS,
            bytes: data.len() as u64,
            chunks: 1,
            ..Default::default()
        };
        let chunk = ResultChunk {
            command_id: job.command_id.clone(),
            data: data.into_bytes(),
            ..Default::default()
        };
        let mut kept = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        kept.insert(job.command_id.clone(), chunk);
        command_result::Output::Collection(result)
    }

    /// The rows kept for `command_id` (sent again with a resent result).
    pub fn chunk(&self, command_id: &str) -> Option<ResultChunk> {
        let kept = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(command_id).cloned()
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
    async fn execute(
        &self,
        job: &Job,
        action: &action::Kind,
    ) -> Result<command_result::Output, String> {
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
            action::Kind::Collect(c) => Ok(self.collection(job, &c.collector)),
            _ => Err("a simulated agent does not carry out this action".into()),
        }
    }
}
