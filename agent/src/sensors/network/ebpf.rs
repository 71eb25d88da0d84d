//! The network sensor's kernel side: loads agent/bpf/network.bpf.o (built from network.bpf.c
//! by scripts/build-bpf.sh, committed, and embedded here), attaches the TCP state tracepoint
//! (BTF-enabled, no tracefs needed) and the UDP and DNS programs on the root of the cgroup v2
//! hierarchy, and reads records from the ring buffer. What could not attach is said in the
//! mode; records the ring buffer could not hold are counted per kind and reported.

use super::record::{self, RawNet, RecordKind};
use crate::sensors::bpf_ring::{self, Drops, Ring, program};
use aya::programs::cgroup_skb::CgroupSkbAttachType;
use aya::programs::{BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSock, CgroupSockAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/network.bpf.o"));

const SOCK_ADDR: [&str; 4] = [
    "cordon_connect4",
    "cordon_connect6",
    "cordon_sendmsg4",
    "cordon_sendmsg6",
];

/// What the sensor hands on: a record, or records lost and why.
#[derive(Debug)]
pub enum Delivery {
    Record(RawNet),
    Lost {
        count: u64,
        why: String,
    },
    /// Time passed (every wait on the ring buffer ends with one).
    Tick,
}

pub struct NetworkEbpf {
    // Owns the programs and their links: dropping it detaches them.
    _bpf: aya::Ebpf,
    ring: Ring,
    drops: Drops,
    /// What is seen: TCP always; UDP and DNS when the cgroup programs attached.
    pub mode: String,
}

/// Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo.
fn cgroup2_root() -> Result<PathBuf, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    info.lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2"))
                .then(|| left.split(' ').nth(4).map(PathBuf::from))?
        })
        .ok_or_else(|| "no cgroup v2 hierarchy is mounted".to_string())
}

impl NetworkEbpf {
    pub fn open() -> Result<Self, String> {
        let (mut bpf, btf) = bpf_ring::load(OBJECT)?;
        let prog: &mut BtfTracePoint = program(&mut bpf, "cordon_tcp_state")?;
        prog.load("inet_sock_set_state", &btf)
            .map_err(|e| format!("loading cordon_tcp_state: {e}"))?;
        prog.attach()
            .map_err(|e| format!("attaching to inet_sock_set_state: {e}"))?;
        let mode = match attach_cgroup_programs(&mut bpf) {
            Ok(root) => format!("ebpf (tcp, udp and dns; cgroup root {})", root.display()),
            Err(why) => {
                tracing::warn!(%why, "network sensor: UDP and DNS unavailable");
                format!("ebpf (tcp only: udp and dns unavailable: {why})")
            }
        };
        let ring = Ring::take(&mut bpf, "events")?;
        let drops = Drops::take(&mut bpf, "drops")?;
        Ok(Self {
            _bpf: bpf,
            ring,
            drops,
            mode,
        })
    }

    /// Reads records until `stop` is set.
    pub fn run(mut self, out: &mut dyn FnMut(Delivery), stop: &AtomicBool) {
        let mut reported = [0u64; 7];
        let mut checked = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.ring.wait(Duration::from_millis(50)) {
                tracing::error!(error = %e, "network eBPF ring buffer poll failed");
                out(Delivery::Lost {
                    count: 0,
                    why: format!("network sensor stopped: polling its ring buffer failed: {e}"),
                });
                return;
            }
            self.ring.drain(|bytes| {
                out(match record::parse(bytes) {
                    Ok(r) => Delivery::Record(r),
                    Err(e) => Delivery::Lost {
                        count: 1,
                        why: e.to_string(),
                    },
                })
            });
            if checked.elapsed() >= Duration::from_secs(1) {
                checked = Instant::now();
                self.report_drops(&mut reported, out);
            }
            out(Delivery::Tick);
        }
    }

    fn report_drops(&self, reported: &mut [u64; 7], out: &mut dyn FnMut(Delivery)) {
        for (kind, _, name) in RecordKind::ALL {
            let now = self.drops.count(kind);
            let n = now.saturating_sub(reported[kind as usize]);
            reported[kind as usize] = now;
            if n > 0 {
                out(Delivery::Lost {
                    count: n,
                    why: format!("the network ring buffer was full: {n} {name} records dropped"),
                });
            }
        }
    }
}

/// Attaches the UDP (destinations, bytes, release) and DNS programs to the root cgroup, so
/// they see every process's sockets. Returns the root.
fn attach_cgroup_programs(bpf: &mut aya::Ebpf) -> Result<PathBuf, String> {
    let root = cgroup2_root()?;
    let cgroup = std::fs::File::open(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let failed =
        |what: &str, name: &str, e: aya::programs::ProgramError| format!("{what} {name}: {e}");
    for name in SOCK_ADDR {
        let prog: &mut CgroupSockAddr = program(bpf, name)?;
        prog.load().map_err(|e| failed("loading", name, e))?;
        prog.attach(&cgroup, CgroupAttachMode::Single)
            .map_err(|e| failed("attaching", name, e))?;
    }
    let name = "cordon_sock_release";
    let prog: &mut CgroupSock = program(bpf, name)?;
    prog.load().map_err(|e| failed("loading", name, e))?;
    prog.attach(&cgroup, CgroupAttachMode::Single)
        .map_err(|e| failed("attaching", name, e))?;
    for (name, way) in [
        ("cordon_dns_egress", CgroupSkbAttachType::Egress),
        ("cordon_dns_ingress", CgroupSkbAttachType::Ingress),
    ] {
        let prog: &mut CgroupSkb = program(bpf, name)?;
        prog.load().map_err(|e| failed("loading", name, e))?;
        prog.attach(&cgroup, way, CgroupAttachMode::Single)
            .map_err(|e| failed("attaching", name, e))?;
    }
    Ok(root)
}
