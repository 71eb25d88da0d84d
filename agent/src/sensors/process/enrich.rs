//! Stage two: turns raw records into `ProcessEvent`s. Keeps the shared table of the processes
//! alive (seeded from /proc, then kept by exec, fork and exit records; see `table`), which
//! gives the parent's exe and argv here and names the process behind other sensors' events,
//! and adds the user name, the executable's SHA-256 (cached by file identity) and the cgroup
//! path. Whatever could not be learnt is named in `missing`, and the event is still sent. Its
//! loop ([`run`]) passes events through the stdio peer check (`peers`) on their way out.

use super::clock::{boot_to_wall_ms, ns_to_ticks};
use super::table::{Known, ProcessTable, same_start};
use super::{ProcessSensorConfig, Raw, RawExec};
use crate::sensors::hash::HashCache;
use cordon_proto::secrets::redact_argv;
use cordon_proto::{ProcessEvent, event, process_event::Kind};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an exited process stays in the table, for children reported after it.
const LINGER: Duration = Duration::from_secs(10);

/// Stage two's loop: enriches each record as it comes, holding back the shells whose stdio
/// peer is still looked for (`peers`), and what follows them, until their check is done.
pub fn run(
    enricher: &mut Enricher,
    rx: &std::sync::mpsc::Receiver<Vec<Raw>>,
    emit: &crate::telemetry::Emitter,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut watch = super::peers::Watch::new(crate::sys::procfs::Proc::default());
    // The edge policies' verdicts on the events offered, in the order the watch releases
    // them: taken at once for an event the watch will not hold (so a kill never waits behind
    // a shell whose peer is still looked for), at release for one it holds.
    let mut verdicts = std::collections::VecDeque::new();
    let send = |verdicts: &mut VecDeque<_>, body| match verdicts.pop_front().flatten() {
        Some(edge) => emit.emit_judged(body, edge),
        None => emit.emit(body),
    };
    loop {
        let burst = match watch.next_due() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        match burst {
            Ok(burst) => {
                for raw in burst {
                    match enricher.handle(raw) {
                        Some(Out::Event(body)) => {
                            verdicts
                                .push_back((!watch.would_hold(&body)).then(|| emit.judge(&body)));
                            for body in watch.offer(body, Instant::now()) {
                                send(&mut verdicts, body);
                            }
                        }
                        Some(Out::Lost { count, why }) => emit.lost(count, why),
                        None => {}
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        for body in watch.due(Instant::now()) {
            send(&mut verdicts, body);
        }
    }
    for body in watch.drain() {
        send(&mut verdicts, body);
    }
}

/// What stage two hands to the emitter.
#[derive(Debug)]
pub enum Out {
    Event(Box<event::Body>),
    Lost { count: u64, why: String },
}

pub struct Enricher {
    source: &'static str,
    table: Arc<ProcessTable>,
    /// Exited processes (when, pid, start time), oldest first.
    exited: VecDeque<(Instant, u32, Option<u64>)>,
    users: crate::sys::users::UserNames,
    hashes: HashCache,
    cgroups: CgroupIndex,
}

impl Enricher {
    /// Keeps `table` (which other sensors read) from the records it handles.
    pub fn new(cfg: &ProcessSensorConfig, source: &'static str, table: Arc<ProcessTable>) -> Self {
        Self {
            source,
            table,
            exited: VecDeque::new(),
            users: Default::default(),
            hashes: HashCache::new(cfg.hash_max_bytes, 4096),
            cgroups: CgroupIndex::new("/sys/fs/cgroup"),
        }
    }

    /// Fills the table with the processes alive now.
    pub fn seed(&mut self) {
        self.table.seed();
    }

    pub fn handle(&mut self, raw: Raw) -> Option<Out> {
        self.expire();
        match raw {
            Raw::Exec(e) => Some(Out::Event(Box::new(event::Body::Process(self.exec(*e))))),
            Raw::Fork {
                pid,
                ppid,
                start_ns,
            } => {
                if let Some(parent) = self.table.get(ppid) {
                    self.table.insert(pid, Known { start_ns, ..parent });
                }
                None
            }
            Raw::Exit {
                pid,
                start_ns,
                status,
                time_ns,
            } => Some(Out::Event(Box::new(event::Body::Process(
                self.exit(pid, start_ns, status, time_ns),
            )))),
            Raw::Lost { count, why } => Some(Out::Lost { count, why }),
            Raw::Mark { boot_ns } => {
                self.table.mark(boot_ns);
                None
            }
        }
    }

    fn exec(&mut self, e: RawExec) -> ProcessEvent {
        let mut missing = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                missing.push(what.to_string());
            }
        };
        need(e.start_ns.is_some(), "start_time");
        need(e.exe.is_some(), "exe");
        need(e.argv.is_some(), "argv");
        need(e.cwd.is_some(), "cwd");
        need(e.ids.is_some(), "ids");
        let parent = self.parent(e.ppid, e.parent_start_ns);
        need(parent.is_some(), "parent");
        let cgroup = e
            .cgroup
            .clone()
            .or_else(|| e.cgroup_id.and_then(|id| self.cgroups.path(id)));
        need(cgroup.is_some(), "cgroup");

        let exe = e.exe.clone().unwrap_or_default();
        let (exe_sha256, hash_skipped) = if exe.is_empty() {
            (String::new(), "exe unknown".to_string())
        } else {
            match self.hashes.get(Path::new(&exe)) {
                Ok((_, h)) => (h, String::new()),
                Err(why) => (String::new(), why),
            }
        };
        let (uid, euid, gid) = e.ids.unwrap_or_default();
        let user = if e.ids.is_some() {
            self.user(uid)
        } else {
            String::new()
        };
        // A secret on a command line (an enrolment token) never reaches the spool.
        let argv = redact_argv(e.argv.unwrap_or_default());
        self.table.insert(
            e.pid,
            Known {
                start_ns: e.start_ns,
                exe: exe.clone(),
                argv: argv.clone(),
            },
        );
        let parent = parent.unwrap_or_default();
        let [stdin, stdout, stderr] = e.stdio.map(|s| s.map(Some)).unwrap_or_default();
        // Only an internet socket of the parent's tells anything (a shell spawned on a pty by
        // a process whose stdio is the attacker's connection).
        let parent_socket = e
            .parent_stdio
            .and_then(|p| p.into_iter().find(super::stdio::is_inet_peer));
        ProcessEvent {
            kind: Kind::Exec as i32,
            pid: e.pid,
            ppid: e.ppid,
            start_ticks: e.start_ns.map(ns_to_ticks).unwrap_or_default(),
            start_time_ms: e.start_ns.map(boot_to_wall_ms).unwrap_or_default(),
            exe,
            argv,
            argv_truncated: e.argv_truncated,
            cwd: e.cwd.unwrap_or_default(),
            uid,
            euid,
            gid,
            user,
            exe_sha256,
            hash_skipped,
            parent_exe: parent.exe,
            parent_argv: parent.argv,
            tty: e.tty.unwrap_or_default(),
            session: e.session.unwrap_or_default(),
            cgroup: cgroup.unwrap_or_default(),
            partial: !missing.is_empty(),
            missing,
            source: self.source.into(),
            comm: e.comm.unwrap_or_default(),
            stdin,
            stdout,
            stderr,
            parent_socket,
            ..Default::default()
        }
    }

    fn exit(
        &mut self,
        pid: u32,
        start_ns: Option<u64>,
        status: Option<i32>,
        time_ns: u64,
    ) -> ProcessEvent {
        let known = self
            .table
            .get(pid)
            .filter(|k| same_start(k.start_ns, start_ns));
        let start_ns = start_ns.or(known.as_ref().and_then(|k| k.start_ns));
        self.exited.push_back((Instant::now(), pid, start_ns));
        let mut missing = Vec::new();
        if status.is_none() {
            missing.push("exit_status".to_string());
        }
        if start_ns.is_none() {
            missing.push("start_time".to_string());
        }
        let status = status.unwrap_or_default();
        let (exit_code, exit_signal) = if status & 0x7f != 0 {
            (0, (status & 0x7f) as u32)
        } else {
            ((status >> 8) & 0xff, 0)
        };
        let known = known.unwrap_or_default();
        ProcessEvent {
            kind: Kind::Exit as i32,
            pid,
            start_ticks: start_ns.map(ns_to_ticks).unwrap_or_default(),
            start_time_ms: start_ns.map(boot_to_wall_ms).unwrap_or_default(),
            exe: known.exe,
            argv: known.argv,
            exit_code,
            exit_signal,
            lifetime_ms: start_ns
                .map(|s| time_ns.saturating_sub(s) / 1_000_000)
                .unwrap_or_default(),
            partial: !missing.is_empty(),
            missing,
            source: self.source.into(),
            ..Default::default()
        }
    }

    /// The parent from the table, or from /proc while it is still there.
    fn parent(&mut self, ppid: u32, start_ns: Option<u64>) -> Option<Known> {
        self.table.lookup(ppid, start_ns)
    }

    /// Forgets processes that exited a while ago, unless the pid has been reused since (see
    /// [`ProcessTable::forget`]).
    fn expire(&mut self) {
        while let Some((at, pid, start)) = self.exited.front().copied() {
            if at.elapsed() < LINGER {
                break;
            }
            self.exited.pop_front();
            self.table.forget(pid, start);
        }
    }

    fn user(&mut self, uid: u32) -> String {
        self.users.name(uid)
    }
}

/// cgroup v2 ids (the directory's inode number) to paths, learnt by walking the hierarchy
/// again when an unknown id turns up (at most every two seconds).
struct CgroupIndex {
    root: PathBuf,
    by_id: HashMap<u64, String>,
    scanned: Option<Instant>,
}

impl CgroupIndex {
    fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            by_id: HashMap::new(),
            scanned: None,
        }
    }

    fn path(&mut self, id: u64) -> Option<String> {
        if let Some(p) = self.by_id.get(&id) {
            return Some(p.clone());
        }
        if self
            .scanned
            .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
        {
            return None;
        }
        self.scanned = Some(Instant::now());
        self.by_id.clear();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            if self.by_id.len() >= 100_000 {
                break;
            }
            use std::os::unix::fs::MetadataExt;
            if let Ok(meta) = std::fs::metadata(&dir) {
                let rel = dir.strip_prefix(&self.root).unwrap_or(&dir);
                self.by_id
                    .insert(meta.ino(), format!("/{}", rel.to_string_lossy()));
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        self.by_id.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::ticks_to_ns;
    use super::*;
    use crate::sys::procfs::Proc;

    fn enricher() -> Enricher {
        let cfg = ProcessSensorConfig::default();
        let table = Arc::new(ProcessTable::new(Proc::default(), cfg.argv_max_bytes));
        let mut e = Enricher::new(&cfg, "test", table);
        e.seed();
        e
    }

    fn process(out: Option<Out>) -> ProcessEvent {
        match out {
            Some(Out::Event(body)) => match *body {
                event::Body::Process(p) => p,
                other => panic!("expected a process event, got {other:?}"),
            },
            other => panic!("expected a process event, got {other:?}"),
        }
    }

    #[test]
    fn an_exec_gets_its_parent_user_and_hash_and_its_exit_the_lifetime() {
        let mut en = enricher();
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let start = ticks_to_ns(Proc::default().stat(me).unwrap().start_ticks);
        // A child of this test process, already gone: only what the kernel gave is known.
        let ev = process(en.handle(Raw::Exec(Box::new(RawExec {
            pid: 4_000_000,
            ppid: me,
            start_ns: Some(start + 5_000_000_000),
            exe: Some(exe.to_string_lossy().into()),
            argv: Some(vec!["x".into(), "--flag".into()]),
            ids: Some((0, 0, 0)),
            ..Default::default()
        }))));
        assert_eq!(ev.kind(), Kind::Exec);
        assert_eq!(ev.parent_exe, exe.to_string_lossy());
        assert_eq!(ev.parent_argv.len(), std::env::args().count());
        assert_eq!(ev.user, "root");
        assert_eq!(ev.exe_sha256.len(), 64);
        assert!(ev.partial);
        assert!(ev.missing.contains(&"cwd".to_string()));
        assert!(!ev.missing.contains(&"parent".to_string()));

        let ev = process(en.handle(Raw::Exit {
            pid: 4_000_000,
            start_ns: Some(start + 5_000_000_000),
            status: Some(9),
            time_ns: start + 5_250_000_000,
        }));
        assert_eq!(ev.kind(), Kind::Exit);
        assert_eq!(ev.exit_signal, 9);
        assert_eq!(ev.lifetime_ms, 250);
        assert_eq!(ev.argv, vec!["x", "--flag"]);
        let ev = process(en.handle(Raw::Exit {
            pid: 4_000_001,
            start_ns: None,
            status: Some(3 << 8),
            time_ns: 0,
        }));
        assert_eq!((ev.exit_code, ev.exit_signal), (3, 0));
        assert!(ev.missing.contains(&"start_time".to_string()));
    }

    #[test]
    fn an_enrolment_token_on_a_command_line_is_never_reported() {
        let mut en = enricher();
        let token = cordon_proto::secrets::new_token();
        let exec = |pid, ppid, argv: Vec<String>| {
            Raw::Exec(Box::new(RawExec {
                pid,
                ppid,
                start_ns: Some(u64::from(pid) * 1_000),
                argv: Some(argv),
                ..Default::default()
            }))
        };
        let enrol = vec!["cordon-agent".into(), "--token".into(), token.clone()];
        let ev = process(en.handle(exec(4_200_000, 1, enrol)));
        assert_eq!(ev.argv, ["cordon-agent", "--token", "cdt_[REDACTED]"]);
        // Its child reports the parent's command line, redacted as well.
        let ev = process(en.handle(exec(4_200_001, 4_200_000, vec!["id".into()])));
        assert_eq!(ev.parent_argv[2], "cdt_[REDACTED]");
        let all = format!(
            "{:?}",
            en.handle(Raw::Exit {
                pid: 4_200_000,
                start_ns: Some(4_200_000_000),
                status: Some(0),
                time_ns: 4_300_000_000,
            })
        );
        assert!(!all.contains(&token[4..]), "{all}");
    }

    #[test]
    fn a_forked_child_inherits_its_parents_image_for_its_own_children() {
        let mut en = enricher();
        en.handle(Raw::Exec(Box::new(RawExec {
            pid: 4_100_000,
            ppid: 1,
            start_ns: Some(1_000_000_000),
            exe: Some("/bin/bash".into()),
            argv: Some(vec!["bash".into()]),
            ..Default::default()
        })));
        assert!(
            en.handle(Raw::Fork {
                pid: 4_100_001,
                ppid: 4_100_000,
                start_ns: Some(2_000_000_000),
            })
            .is_none()
        );
        let ev = process(en.handle(Raw::Exec(Box::new(RawExec {
            pid: 4_100_002,
            ppid: 4_100_001,
            start_ns: Some(3_000_000_000),
            parent_start_ns: Some(2_000_000_000),
            exe: Some("/usr/bin/id".into()),
            ..Default::default()
        }))));
        assert_eq!(ev.parent_exe, "/bin/bash");
        // A parent known under another start time is another process.
        let ev = process(en.handle(Raw::Exec(Box::new(RawExec {
            pid: 4_100_003,
            ppid: 4_100_001,
            start_ns: Some(4_000_000_000),
            parent_start_ns: Some(9_000_000_000),
            ..Default::default()
        }))));
        assert!(ev.parent_exe.is_empty());
        assert!(ev.missing.contains(&"parent".to_string()));
    }

    #[test]
    fn exited_processes_are_forgotten_unless_their_pid_was_reused() {
        let mut en = enricher();
        let exec = |pid, start_ns| {
            Raw::Exec(Box::new(RawExec {
                pid,
                ppid: 1,
                start_ns: Some(start_ns),
                exe: Some("/bin/true".into()),
                ..Default::default()
            }))
        };
        let exit = |pid, start_ns| Raw::Exit {
            pid,
            start_ns: Some(start_ns),
            status: Some(0),
            time_ns: start_ns + 1,
        };
        en.handle(exec(4_200_000, 1_000_000_000));
        en.handle(exit(4_200_000, 1_000_000_000));
        en.handle(exec(4_200_001, 2_000_000_000));
        en.handle(exit(4_200_001, 2_000_000_000));
        // The second pid is reused by a new process before the first exit expires.
        en.handle(exec(4_200_001, 3_000_000_000));
        for e in en.exited.iter_mut() {
            e.0 -= LINGER;
        }
        en.expire();
        assert_eq!(en.table.get(4_200_000), None);
        assert_eq!(
            en.table.get(4_200_001).and_then(|k| k.start_ns),
            Some(3_000_000_000)
        );
    }

    #[test]
    fn cgroup_ids_resolve_to_paths() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("system.slice/x.service")).unwrap();
        let ino = std::fs::metadata(dir.path().join("system.slice/x.service"))
            .unwrap()
            .ino();
        let mut idx = CgroupIndex::new(dir.path());
        assert_eq!(idx.path(ino).as_deref(), Some("/system.slice/x.service"));
        assert_eq!(idx.path(1), None);
    }
}
