//! A whole Cordon deployment from the real binaries: a controller and agents, either on
//! loopback or in two network namespaces joined by a veth pair (the agent entering its
//! namespace with `--netns`), driven through `cordonctl` as an administrator would.

mod agent;

pub use agent::{AgentHandle, SpoolSnapshot};

use crate::binaries::{Proc, bin, run, run_ok};
use crate::netns::{Netns, link, set_link};
use cordon_proto::EventRecord;
use cordonctl::json::event_record_from_json;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Controller address inside its namespace, agent address inside its namespace.
pub const CTL_ADDR: &str = "10.231.0.1";
/// A DNS name the server certificate of namespace deployments holds too, for a test to
/// resolve as it likes (see [`crate::netns::NsHosts`]).
pub const CTL_NAME: &str = "ctl.cordon.test";
pub const AGENT_ADDR: &str = "10.231.0.2";
/// The agent's and the peer's addresses on their own link.
pub const HOST_V4: &str = "10.232.0.1";
pub const PEER_V4: &str = "10.232.0.2";
pub const HOST_V6: &str = "fd32::1";
pub const PEER_V6: &str = "fd32::2";

pub struct Deployment {
    pub dir: TempDir,
    pub data_dir: PathBuf,
    pub url: String,
    controller: Option<Proc>,
    /// `CORDON_LOG` for the controller and agents started from now on (None: their default).
    pub log_filter: Option<String>,
    /// The agent's end of the veth pair to the controller (namespace deployments).
    agent_link: Option<String>,
    // Declared last: dropped after the processes above are killed.
    pub ctl_ns: Option<Netns>,
    pub agent_ns: Option<Netns>,
    /// A third namespace joined to the agent's, for traffic tests.
    pub peer_ns: Option<Netns>,
}

/// Whether a freshly started controller answers `ctl` within `timeout` (tried every 50 ms).
pub fn answers_within(timeout: Duration, ctl: impl Fn() -> Output) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ctl().status.success() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Runs `ctl` with `args` and `--json`, and parses every line of its output as one JSON
/// object.
pub fn json_lines(args: &[&str], ctl: impl FnOnce(&[&str]) -> String) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    ctl(&all)
        .lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("cordonctl {all:?}: {e}: {l}"));
            assert!(v.is_object(), "cordonctl {all:?}: not an object: {l}");
            v
        })
        .collect()
}

/// Merges the top-level keys of the TOML `extra` into the TOML file at `path`.
fn merge_toml(path: &Path, extra: &str) {
    if extra.is_empty() {
        return;
    }
    let merged = merged_toml(&std::fs::read_to_string(path).unwrap(), extra);
    std::fs::write(path, merged).unwrap();
}

/// `text` with the top-level keys of the TOML `extra` put in (a table in `extra` replaces the
/// whole table of that name).
pub fn merged_toml(text: &str, extra: &str) -> String {
    let mut table: toml::Table = text.parse().unwrap();
    table.extend(extra.parse::<toml::Table>().expect("extra settings"));
    toml::to_string(&table).unwrap()
}

impl Deployment {
    /// Controller and agent on this machine's loopback.
    pub fn loopback(controller_toml_extra: &str) -> Self {
        let port = free_loopback_port();
        Self::new(
            None,
            None,
            &format!("127.0.0.1:{port}"),
            &["127.0.0.1"],
            controller_toml_extra,
        )
    }

    /// Controller in one namespace, agents in another, joined by a veth pair. The server
    /// certificate also names PEER_V6, where a test may start the controller again (a replica
    /// on the far side of the agent), and CTL_NAME.
    pub fn namespaces(controller_toml_extra: &str) -> Self {
        let ctl_ns = Netns::new("ctl");
        let agent_ns = Netns::new("agt");
        let (_, agent_dev) = link(
            &ctl_ns,
            &format!("{CTL_ADDR}/24"),
            &agent_ns,
            &format!("{AGENT_ADDR}/24"),
        );
        let mut d = Self::new(
            Some(ctl_ns),
            Some(agent_ns),
            &format!("{CTL_ADDR}:7443"),
            &[CTL_ADDR, PEER_V6, CTL_NAME],
            controller_toml_extra,
        );
        d.agent_link = Some(agent_dev);
        d
    }

    /// Takes the agent's end of the veth to the controller down or up (inside the agent's
    /// namespace; [`Self::namespaces`] deployments only).
    pub fn set_agent_link(&self, up: bool) {
        let ns = self.agent_ns.as_ref().expect("a namespace deployment");
        let dev = self.agent_link.as_ref().expect("a namespace deployment");
        set_link(ns, dev, up);
    }

    /// As [`Self::namespaces`], plus a `peer` namespace joined to the agent's by a second
    /// veth pair, with IPv4 and IPv6 on both ends (HOST_* on the agent's, PEER_* on the peer's).
    pub fn namespaces_with_peer(controller_toml_extra: &str) -> Self {
        let mut d = Self::namespaces(controller_toml_extra);
        let peer = Netns::new("peer");
        let agent_ns = d.agent_ns.as_ref().expect("agent namespace");
        let (host_dev, peer_dev) = link(
            agent_ns,
            &format!("{HOST_V4}/24"),
            &peer,
            &format!("{PEER_V4}/24"),
        );
        crate::netns::add_addr(agent_ns, &host_dev, &format!("{HOST_V6}/64"));
        crate::netns::add_addr(&peer, &peer_dev, &format!("{PEER_V6}/64"));
        d.peer_ns = Some(peer);
        d
    }

    fn new(
        ctl_ns: Option<Netns>,
        agent_ns: Option<Netns>,
        listen: &str,
        names: &[&str],
        extra: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("controller");
        let mut init = Command::new(bin("cordon-controller"));
        init.args(["init", "--data-dir"])
            .arg(&data_dir)
            .args(["--listen", listen]);
        for name in names {
            init.args(["--name", name]);
        }
        run_ok(init);
        // No web console unless `extra` asks for one (`init` puts it on the next port, which
        // another test's listener may hold).
        merge_toml(
            &data_dir.join("controller.toml"),
            "[console]\nlisten = \"\"\n",
        );
        // Settings in `extra` replace those `init` wrote.
        merge_toml(&data_dir.join("controller.toml"), extra);
        let url = format!("https://{listen}");
        let mut d = Self {
            dir,
            data_dir,
            url,
            controller: None,
            log_filter: None,
            agent_link: None,
            ctl_ns,
            agent_ns,
            peer_ns: None,
        };
        d.start_controller();
        d
    }

    pub(crate) fn in_ctl_ns(&self, program: PathBuf) -> Command {
        match &self.ctl_ns {
            Some(ns) => ns.command(program),
            None => Command::new(program),
        }
    }

    /// The running controller's pid, to read its memory from /proc.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Proc::pid)
    }

    pub fn controller_log(&self) -> PathBuf {
        self.dir.path().join("controller.log")
    }

    /// Starts the controller and waits until it answers.
    pub fn start_controller(&mut self) {
        let mut cmd = self.in_ctl_ns(bin("cordon-controller"));
        cmd.args(["serve", "--data-dir"]).arg(&self.data_dir);
        if let Some(filter) = &self.log_filter {
            cmd.env("CORDON_LOG", filter);
        }
        // Append, so a restart keeps the earlier log for diagnosis.
        let log = self.controller_log();
        let earlier = std::fs::read_to_string(&log).unwrap_or_default();
        self.controller = Some(Proc::spawn("cordon-controller", cmd, log.clone()));
        if answers_within(Duration::from_secs(20), || {
            self.try_ctl(&["agents", "list"])
        }) {
            return;
        }
        panic!(
            "controller did not come up:\n{earlier}{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Merges settings into the controller's config and restarts it with them.
    pub fn configure_controller(&mut self, extra: &str) {
        self.stop_controller();
        merge_toml(&self.data_dir.join("controller.toml"), extra);
        self.start_controller();
    }

    pub fn stop_controller(&mut self) {
        if let Some(mut p) = self.controller.take() {
            p.terminate();
        }
    }

    pub fn kill9_controller(&mut self) {
        if let Some(mut p) = self.controller.take() {
            p.kill9();
        }
    }

    /// Starts the (stopped) controller again on `listen`, with the same data directory, as
    /// a replica on another address would serve: its `url` and the administrator's
    /// credential follow it there.
    pub fn move_controller(&mut self, listen: &str) {
        assert!(self.controller.is_none(), "stop the controller first");
        self.url = format!("https://{listen}");
        let url = toml::Value::from(self.url.clone());
        let listen = toml::Value::from(listen);
        merge_toml(
            &self.data_dir.join("controller.toml"),
            &format!("listen = {listen}\nurl = {url}\n"),
        );
        merge_toml(
            &self.data_dir.join("admin.toml"),
            &format!("controller = {url}\n"),
        );
        self.start_controller();
    }

    /// The administrator's credential and the controller's namespace, for a client that
    /// talks to the controller from inside that namespace (a namespace deployment only).
    pub fn admin_in_ctl_ns(&self) -> anyhow::Result<(cordonctl::client::AdminConfig, String)> {
        let admin = cordonctl::client::AdminConfig::load(&self.data_dir.join("admin.toml"))?;
        let ns = self.ctl_ns.as_ref().map(|n| n.name.clone());
        Ok((
            admin,
            ns.ok_or_else(|| anyhow::anyhow!("not a namespace deployment"))?,
        ))
    }

    /// Runs cordonctl (from the controller's namespace) and returns the raw output.
    pub fn try_ctl(&self, args: &[&str]) -> Output {
        let mut cmd = self.in_ctl_ns(bin("cordonctl"));
        cmd.env("CORDON_ADMIN", self.data_dir.join("admin.toml"))
            .args(args);
        run(cmd, Duration::from_secs(60))
    }

    /// Runs cordonctl, which must succeed; returns stdout.
    /// Runs a cordonctl command that must fail and returns its error text.
    pub fn ctl_refused(&self, args: &[&str]) -> String {
        let out = self.try_ctl(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "cordonctl {args:?} succeeded: {err}");
        err
    }

    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.try_ctl(args);
        assert!(
            out.status.success(),
            "cordonctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a cordonctl command that prints one thing with `--json`: exactly one JSON object
    /// on one line.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut lines = self.ctl_lines(args);
        assert_eq!(lines.len(), 1, "cordonctl {args:?} --json: one object");
        lines.remove(0)
    }

    /// Runs a cordonctl listing with `--json`: its JSON lines, as an array.
    /// The audit entries of `action`, oldest first (the newest 1,000 entries looked at).
    pub fn audited(&self, action: &str) -> Vec<Value> {
        let all = self.ctl_list(&["audit", "--limit", "1000"]);
        let all = all.as_array().expect("a list");
        all.iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }

    pub fn ctl_list(&self, args: &[&str]) -> Value {
        Value::Array(self.ctl_lines(args))
    }

    /// The bodies of the events of `kind` stored for `agent` (at most 10,000, the newest),
    /// those whose summary contains `text` when given, oldest first.
    pub fn event_bodies(
        &self,
        agent: &str,
        kind: &str,
        text: Option<&str>,
    ) -> Vec<cordon_proto::event::Body> {
        let mut args = vec!["events", "query", "--agent", agent, "--kind", kind];
        if let Some(text) = text {
            args.extend(["--contains", text]);
        }
        args.extend(["--limit", "10000", "--json"]);
        self.ctl(&args)
            .lines()
            .filter_map(|l| event_line(l).event?.body)
            .collect()
    }

    /// The isolate commands issued for `agent`, newest first.
    pub fn isolations(&self, agent: &str) -> Vec<Value> {
        let all = self.ctl_lines(&["commands", "list", "--agent", agent]);
        all.into_iter().filter(|c| c["kind"] == "isolate").collect()
    }

    /// Runs cordonctl with `--json` and parses every line of its output as one JSON object.
    fn ctl_lines(&self, args: &[&str]) -> Vec<Value> {
        json_lines(args, |all| self.ctl(all))
    }

    /// Creates a token and enrols a new agent with it (in the agent namespace, if any).
    pub fn enroll_agent(&self, name: &str, labels: &[&str]) -> AgentHandle {
        let token = self.ctl_json(&["token", "create", "--ttl", "10m"]);
        self.enroll_agent_with(&token, name, labels)
    }

    /// Enrols a new agent with `token` (as `cordonctl token create --json` printed it), asking
    /// for `labels` (key=value) from the host's side.
    /// A token (as `token create --json` prints it) that labels its agents with `labels`.
    pub fn token_with_labels(&self, labels: &[&str]) -> Value {
        let mut args = vec!["token", "create", "--ttl", "10m"];
        labels.iter().for_each(|l| args.extend(["--label", l]));
        self.ctl_json(&args)
    }

    pub fn enroll_agent_with(&self, token: &Value, name: &str, labels: &[&str]) -> AgentHandle {
        let url = token["controller_url"].as_str().unwrap();
        self.enroll_agent_through(token, name, labels, &[url])
    }

    /// As [`Self::enroll_agent_with`], through the first of `controllers` that answers.
    pub fn enroll_agent_through(
        &self,
        token: &Value,
        name: &str,
        labels: &[&str],
        controllers: &[&str],
    ) -> AgentHandle {
        let netns = self.agent_ns.as_ref().map(|ns| ns.name.as_str());
        self.enrol(token, name, labels, controllers, netns)
    }

    /// A new agent enrolled (and later run) in the network namespace `netns`, one a test made
    /// beside the deployment's own (routed to the controller).
    pub fn enroll_agent_in(&self, name: &str, netns: &str) -> AgentHandle {
        let token = self.ctl_json(&["token", "create", "--ttl", "10m"]);
        let url = token["controller_url"].as_str().unwrap().to_string();
        self.enrol(&token, name, &[], &[&url], Some(netns))
    }

    fn enrol(
        &self,
        token: &Value,
        name: &str,
        labels: &[&str],
        controllers: &[&str],
        netns: Option<&str>,
    ) -> AgentHandle {
        let state_dir = self.dir.path().join(name);
        let mut cmd = Command::new(bin("cordon-agent"));
        cmd.arg("enroll");
        for url in controllers {
            cmd.args(["--controller", url]);
        }
        cmd.args(["--token", token["token"].as_str().unwrap()])
            .args([
                "--ca-fingerprint",
                token["ca_fingerprint"].as_str().unwrap(),
            ])
            .arg("--state-dir")
            .arg(&state_dir);
        for l in labels {
            cmd.args(["--label", l]);
        }
        if let Some(ns) = netns {
            cmd.args(["--netns", ns]);
        }
        let out = run_ok(cmd);
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("enrolled as agent "))
            .expect("agent id in enrol output")
            .trim()
            .to_string();
        let config = self.dir.path().join(format!("{name}.toml"));
        // The file sensor keeps to the configured directories (inotify) and the network
        // sensor is off unless a test asks: host-wide, every test's agent would store every
        // write and connection on the machine (builds, other tests), and counts of stored
        // events would depend on the neighbours. Prevention and tamper protection are off
        // too (a test turns them on): they act on the whole host.
        std::fs::write(
            &config,
            "heartbeat_interval_secs = 1\nreconnect_min_ms = 100\nreconnect_max_secs = 2\n\
             [files]\nmode = \"inotify\"\n[network]\nmode = \"off\"\n\
             [prevention]\nmode = \"off\"\n[tamper]\nprotect = false\n",
        )
        .unwrap();
        let log = self.dir.path().join(format!("{name}.log"));
        AgentHandle {
            id,
            state_dir,
            config,
            log,
            proc: None,
            netns: netns.map(str::to_string),
        }
    }

    /// The command that runs `agent` (entering the agent namespace, if any).
    pub fn agent_command(&self, agent: &AgentHandle) -> Command {
        let mut cmd = Command::new(bin("cordon-agent"));
        cmd.arg("run")
            .arg("--state-dir")
            .arg(&agent.state_dir)
            .arg("--config")
            .arg(&agent.config);
        if let Some(filter) = &self.log_filter {
            cmd.env("CORDON_LOG", filter);
        }
        if let Some(ns) = &agent.netns {
            cmd.args(["--netns", ns]);
        }
        cmd
    }

    pub fn start_agent(&self, agent: &mut AgentHandle) {
        let cmd = self.agent_command(agent);
        agent.proc = Some(Proc::spawn("cordon-agent", cmd, agent.log.clone()));
    }

    pub fn agent_record(&self, id: &str) -> Value {
        self.ctl_json(&["agents", "show", id])
    }

    /// Every stored event of the agent, in sequence order, as `cordonctl events query --json`
    /// gives them.
    pub fn stored_events(&self, agent_id: &str) -> Vec<EventRecord> {
        const LIMIT: usize = 10_000;
        let out = self.ctl(&[
            "events",
            "query",
            "--agent",
            agent_id,
            "--limit",
            &LIMIT.to_string(),
            "--json",
        ]);
        let mut events: Vec<EventRecord> = out.lines().map(event_line).collect();
        assert!(
            events.len() < LIMIT,
            "{} events: the query may have cut some off",
            events.len()
        );
        events.sort_by_key(|e| e.seq);
        events
    }

    /// A barrier for everything `agent` saw before now: runs one last exec with a unique
    /// marker and waits until it is stored. An agent's events are stored in order, each with
    /// its alerts, so every event before it (and every alert they raised) is stored too.
    pub fn barrier(&self, agent: &AgentHandle, what: &str) {
        let marker = format!("cordon-barrier-{what}-{}", std::process::id());
        let out = Command::new("/bin/echo").arg(&marker).output().unwrap();
        assert!(out.status.success());
        crate::poll(Duration::from_secs(30), || {
            let query = [
                "events",
                "query",
                "--agent",
                &agent.id,
                "--contains",
                &marker,
            ];
            (!self.ctl(&query).trim().is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("the barrier exec {marker} was not stored"));
    }

    /// Waits until the agent's online state is `online`; returns how long that took.
    pub fn wait_online(&self, agent: &AgentHandle, online: bool, timeout: Duration) -> Duration {
        let started = Instant::now();
        if crate::within(timeout, || {
            self.agent_record(&agent.id)["online"].as_bool() == Some(online)
        }) {
            return started.elapsed();
        }
        panic!(
            "agent {} did not become {} within {timeout:?}\nagent log:\n{}\ncontroller log:\n{}",
            agent.id,
            if online { "online" } else { "offline" },
            agent.log_text(),
            std::fs::read_to_string(self.controller_log()).unwrap_or_default()
        );
    }
}

/// A loopback port free now (nothing listens on it, so a connection to it is refused), below
/// the kernel's ephemeral range: an outgoing connection of another test never takes it before
/// a controller binds it, or between a controller's stop and its restart on it.
pub fn free_loopback_port() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let ephemeral = range
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral / 2);
    (0..1000)
        .map(|_| rand::random_range(low..ephemeral))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free loopback port below the ephemeral range")
}

/// One line of `cordonctl events query --json` as the event record it shows.
pub fn event_line(line: &str) -> EventRecord {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    event_record_from_json(&v).unwrap_or_else(|| panic!("not an event record: {line}"))
}
