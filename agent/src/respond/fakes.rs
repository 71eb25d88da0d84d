//! Recording stand-ins for the containment seams, so logic above them (the containment
//! manager here, playbooks later) is tested without root or a kernel ruleset.

use super::block::Blocker;
use super::containment::Reachability;
use super::isolate::{Isolator, Plan};
use super::kill::{ProcInfo, ProcessTable, Sig, Signaller};
use super::net::Net;
use super::nft::NftError;
use super::protect::FileId;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Keeps the "kernel" isolation in memory and records every call.
#[derive(Default)]
pub struct RecordingIsolator {
    pub applied: Mutex<Option<Plan>>,
    pub calls: Mutex<Vec<String>>,
}

impl Isolator for RecordingIsolator {
    fn apply(&self, plan: &Plan) -> Result<(), NftError> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("apply {plan:?}"));
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(plan.clone());
        Ok(())
    }
    fn set_controller(&self, addrs: &[IpAddr]) -> Result<(), NftError> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("controller {addrs:?}"));
        if let Some(p) = self
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            p.controller = addrs.to_vec();
        }
        Ok(())
    }
    fn remove(&self) -> Result<(), NftError> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push("remove".into());
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }
    fn observe(&self) -> Result<Option<String>, NftError> {
        Ok(self
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|p| format!("{p:?}")))
    }
}

/// Keeps blocks in memory.
#[derive(Default)]
pub struct RecordingBlocker {
    pub blocked: Mutex<BTreeMap<String, Option<Duration>>>,
}

impl Blocker for RecordingBlocker {
    fn block(&self, net: &Net, ttl: Option<Duration>) -> Result<(), NftError> {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(net.to_string(), ttl);
        Ok(())
    }
    fn unblock(&self, net: &Net) -> Result<(), NftError> {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&net.to_string());
        Ok(())
    }
    fn count(&self) -> Result<u32, NftError> {
        Ok(self.blocked.lock().unwrap_or_else(|p| p.into_inner()).len() as u32)
    }
}

/// Answers reachability checks as told.
/// Answers as set, and records the addresses of the last check.
pub struct FixedReachability(pub AtomicBool, pub Mutex<Vec<SocketAddr>>);

impl FixedReachability {
    pub fn new(reachable: bool) -> Self {
        Self(AtomicBool::new(reachable), Mutex::default())
    }
}

impl Reachability for FixedReachability {
    fn reachable(&self, addrs: &[SocketAddr], _: Duration) -> bool {
        *self.1.lock().unwrap_or_else(|p| p.into_inner()) = addrs.to_vec();
        self.0.load(Ordering::SeqCst)
    }
}

/// A process table in memory whose signaller records and "kills" by removing.
#[derive(Default)]
pub struct FakeProcesses {
    pub procs: Mutex<BTreeMap<u32, ProcInfo>>,
    pub sent: Mutex<Vec<(u32, Sig)>>,
}

impl FakeProcesses {
    /// (pid, ppid, start_time, comm, kernel_thread)
    pub fn with(procs: &[(u32, u32, u64, &str, bool)]) -> Self {
        let f = Self::default();
        for &(pid, ppid, start_time, comm, kernel_thread) in procs {
            let p = ProcInfo {
                pid,
                tgid: pid,
                ppid,
                start_time,
                comm: comm.into(),
                exe: format!("/bin/{comm}"),
                exe_id: None,
                kernel_thread,
                dead: false,
            };
            f.procs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid, p);
        }
        f
    }

    /// Gives `pid` the executable with identity `id`.
    pub fn set_exe(&self, pid: u32, id: FileId) {
        if let Some(p) = self
            .procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&pid)
        {
            p.exe_id = Some(id);
        }
    }

    /// Adds thread `tid` (started at `start_time`) to process `tgid`.
    pub fn add_thread(&self, tid: u32, tgid: u32, start_time: u64) {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(leader) = procs.get(&tgid).cloned() {
            let thread = ProcInfo {
                pid: tid,
                start_time,
                ..leader
            };
            procs.insert(tid, thread);
        }
    }
}

impl ProcessTable for FakeProcesses {
    fn get(&self, pid: u32) -> Option<ProcInfo> {
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pid)
            .cloned()
    }
    fn all(&self) -> Vec<ProcInfo> {
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

impl Signaller for FakeProcesses {
    fn signal(&self, t: &ProcInfo, sig: Sig) -> Result<(), String> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((t.pid, sig));
        if sig == Sig::Kill {
            self.procs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&t.pid);
        }
        Ok(())
    }
}
