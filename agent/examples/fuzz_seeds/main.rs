//! Writes seed inputs for a fuzz target (fuzz/run.sh) into a directory, made by the agent's
//! own code so they stay real as formats change: `fuzz_seeds TARGET OUT_DIR`.
//! - `spool_segment`: spool segments, one whole and one torn in the middle of a record, each
//!   after the 16 bytes the target reads as the `acked` and `reserved` numbers;
//! - `agent_state`: an identity file, a command ledger and a quarantine record;
//! - `utmp`: generated (not this host's) utmp, wtmp and btmp files, and a wtmp cut mid-record;
//! - `network_records`: the network sensor's kernel records (connections over IPv4 and IPv6, a
//!   DNS query and its answer, and one cut short);
//! - `fanotify_events`: reads of a fanotify group in FID mode (a creation and write, a rename,
//!   a queue overflow), and one cut inside an info record;
//! - `edge_policy`: edge policies as the controller compiles them, one per Cordon rule (with
//!   an event condition and each kind of step), encoded bare and signed;
//! - `agent_message`: what the agent sends on its stream: a hello, a telemetry batch of every
//!   event kind (one with what an edge policy did), a heartbeat, a command result and a chunk;
//! - `agent_stream`: the same messages as gRPC frames, by tonic's own encoder: each alone,
//!   all in one stream, plain and gzip-compressed, a plain stream followed by a compressed
//!   one, and a gzip bomb (a chunk of zeros that inflates past `AGENT_MAX_MESSAGE`);
//! - `admin_request`: a valid request of each admin RPC, after the byte that picks it;
//! - `enrol_request`: an enrolment as this agent sends it (a token as the controller makes
//!   them, a CSR, this host's facts, labels) and a login with an invite code and a CSR, after
//!   the byte that picks them.

mod admin;
mod stream;

use cordon_agent::collect::logins::utmp::{self, Record};
use cordon_agent::commands::Ledger;
use cordon_agent::respond::protect::Protected;
use cordon_agent::respond::quarantine::{Protection, QuarantineStore};
use cordon_agent::sensors::file::records::{self, Handle, Info, InfoKind};
use cordon_agent::spool::{Spool, SpoolConfig};
use cordon_agent::state::{Identity, StateDir};
use cordon_proto::{CommandResult, FileEvent, ProcessEvent, event};
use std::error::Error;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: fuzz_seeds TARGET OUT_DIR".into());
    };
    let out = PathBuf::from(out);
    match target.as_str() {
        "spool_segment" => spool(&out),
        "agent_state" => state(&out),
        "utmp" => accounting(&out),
        "network_records" => network(&out),
        "fanotify_events" => fanotify(&out),
        "edge_policy" => edge(&out),
        "agent_message" => messages(&out),
        "agent_stream" => stream::streams(&out),
        "admin_request" => admin::requests(&out),
        "enrol_request" => admin::enrolments(&out),
        other => Err(format!("no seeds for {other}").into()),
    }
}

fn body(i: u32) -> event::Body {
    if i.is_multiple_of(3) {
        return event::Body::File(FileEvent {
            path: format!("/etc/cron.d/job{i}"),
            ..Default::default()
        });
    }
    event::Body::Process(ProcessEvent {
        pid: 1000 + i,
        ppid: 1,
        exe: "/usr/bin/bash".into(),
        argv: vec!["bash".into(), "-c".into(), format!("echo {i}")],
        ..Default::default()
    })
}

fn spool(out: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = SpoolConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 1 << 20,
    };
    let (mut spool, _) = Spool::open(cfg)?;
    spool.append(
        (0..12)
            .map(|i| cordon_proto::Event {
                time_ms: 1_700_000_000_000 + i64::from(i),
                body: Some(body(i)),
                ..Default::default()
            })
            .collect(),
    )?;
    drop(spool);
    let segment = std::fs::read_dir(dir.path())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .ok_or("the spool wrote no segment")?;
    let bytes = std::fs::read(segment)?;
    let whole = [&b"3       40      "[..], &bytes].concat();
    std::fs::write(out.join("spool-whole"), &whole)?;
    std::fs::write(out.join("spool-torn"), &whole[..16 + bytes.len() / 2])?;
    Ok(())
}

fn state(out: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sd = StateDir::new(dir.path());
    sd.save_identity(&Identity {
        agent_id: "0f6c1a52-8d1e-4b7a-9c1e-2a7d5b9e0c11".into(),
        controller: "https://10.0.0.1:7443".into(),
        replica_urls: vec!["https://10.0.0.2:7443".into()],
        ca_fingerprint: "ab".repeat(32),
        command_signing_key: "cd".repeat(32),
        enrolled_at_ms: 1_700_000_000_000,
        cert_issued_at_ms: 1_700_000_000_000,
        cert_expires_at_ms: 1_731_536_000_000,
    })?;
    std::fs::copy(sd.identity_file(), out.join("identity"))?;
    let mut ledger = Ledger::open(sd.ledger())?;
    ledger.begin("cmd-1", 1_700_000_060_000, 1_700_000_000_000)?;
    ledger.finish("cmd-1", &CommandResult::default())?;
    ledger.begin("cmd-2", 1_700_000_060_000, 1_700_000_000_000)?;
    std::fs::copy(sd.ledger(), out.join("ledger"))?;
    let victim = dir.path().join("files/dropper");
    std::fs::create_dir_all(victim.parent().ok_or("no parent")?)?;
    std::fs::write(&victim, b"#!/bin/sh\necho pwned\n")?;
    let store = QuarantineStore::new(
        dir.path().join("quarantine"),
        Protection {
            own_dirs: Vec::new(),
            own_files: Protected::new(Vec::new()),
            critical: Protected::new(Vec::new()),
        },
    );
    let entry = store.quarantine_file(&victim.display().to_string(), false, 1_700_000_000_000)?;
    let record = dir.path().join(format!("quarantine/{}.json", entry.id));
    std::fs::copy(record, out.join("quarantine-record"))?;
    Ok(())
}

/// A record of `kind` (`ut_type`) for `user` on `line` from `host` (and its `addr`) at `time`.
fn login(kind: i16, user: &str, line: &str, host: &str, addr: &str, time: u32) -> Result<Record> {
    Ok(Record {
        kind,
        pid: 1000 + i32::from(kind),
        line: line.into(),
        id: line.bytes().rev().take(4).collect(),
        user: user.into(),
        host: host.into(),
        session: 7,
        time,
        usec: 250_000,
        addr: if addr.is_empty() {
            None
        } else {
            Some(addr.parse()?)
        },
        ..Default::default()
    })
}

fn accounting(out: &Path) -> Result<()> {
    let file =
        |records: Vec<Record>| -> Vec<u8> { records.iter().flat_map(utmp::encode).collect() };
    let session = vec![
        login(2, "reboot", "~", "6.8.0-generic", "", 1_700_000_000)?,
        login(1, "runlevel", "~", "6.8.0-generic", "", 1_700_000_001)?,
        login(6, "LOGIN", "tty1", "", "", 1_700_000_002)?,
        login(7, "alice", "pts/0", "192.0.2.7", "192.0.2.7", 1_700_000_100)?,
    ];
    std::fs::write(out.join("utmp"), file(session))?;
    let history = vec![
        login(
            7,
            "bob",
            "pts/1",
            "db.example.net",
            "2001:db8::5",
            1_700_000_200,
        )?,
        login(8, "", "pts/1", "", "", 1_700_000_300)?,
        login(7, "carol", ":0", ":0", "", 1_700_000_400)?,
    ];
    let wtmp = file(history);
    std::fs::write(out.join("wtmp"), &wtmp)?;
    std::fs::write(out.join("wtmp-cut"), &wtmp[..utmp::RECORD + 100])?;
    let failed = vec![login(
        6,
        "root",
        "ssh:notty",
        "203.0.113.9",
        "203.0.113.9",
        1_700_000_500,
    )?];
    std::fs::write(out.join("btmp"), file(failed))?;
    Ok(())
}

fn network(out: &Path) -> Result<()> {
    use cordon_agent::sensors::network::{dns, record};
    let connect = record::RawNet {
        kind: record::RecordKind::Connect,
        pid: 42,
        uid: 0,
        start_ns: Some(1_000_000_000),
        time_ns: 2_000_000_000,
        tcp: true,
        source: ("10.0.0.1".parse()?, 40_000),
        destination: ("10.0.0.2".parse()?, 443),
        initiated: true,
        failed: false,
        bytes_sent: 0,
        bytes_received: 0,
        duration_ns: 0,
        cookie: 7,
        payload: Vec::new(),
    };
    let v6 = record::RawNet {
        kind: record::RecordKind::Close,
        source: ("fd00::1".parse()?, 40_001),
        destination: ("fd00::2".parse()?, 22),
        bytes_sent: 100,
        bytes_received: 200,
        ..connect.clone()
    };
    let query = record::RawNet {
        kind: record::RecordKind::DnsQuery,
        tcp: false,
        destination: ("10.0.0.53".parse()?, 53),
        payload: dns::build(9, "c2.evil.example", None),
        ..connect.clone()
    };
    let answer = record::RawNet {
        kind: record::RecordKind::DnsAnswer,
        source: ("10.0.0.53".parse()?, 53),
        payload: dns::build(9, "c2.evil.example", Some("203.0.113.7".parse()?)),
        ..query.clone()
    };
    for (name, r) in [
        ("connect", &connect),
        ("close-v6", &v6),
        ("query", &query),
        ("answer", &answer),
    ] {
        std::fs::write(out.join(name), record::encode(r))?;
    }
    let cut = record::encode(&answer);
    std::fs::write(out.join("answer-cut"), &cut[..cut.len() - 5])?;
    Ok(())
}

fn fanotify(out: &Path) -> Result<()> {
    let info = |kind, name: &str| Info {
        kind,
        handle: Handle {
            fsid: [0x1234, 0x5678],
            handle_type: 1,
            bytes: vec![0x2a, 0, 0, 0, 0x11, 0x22, 0x33, 0x44],
        },
        name: name.as_bytes().to_vec(),
    };
    let record = |mask, infos| {
        records::encode(&records::Record {
            mask,
            pid: 4242,
            infos,
        })
    };
    // FAN_CREATE | FAN_CLOSE_WRITE on one file, as the kernel merges them.
    let write = record(0x108, vec![info(InfoKind::DfidName, "authorized_keys")]);
    // FAN_RENAME | FAN_ONDIR.
    let rename = record(
        0x5000_0000,
        vec![
            info(InfoKind::OldDfidName, "old"),
            info(InfoKind::NewDfidName, "new"),
        ],
    );
    let overflow = record(0x4000, vec![]);
    let mut batch = write.clone();
    batch.extend(&rename);
    batch.extend(&overflow);
    std::fs::write(out.join("write"), &write)?;
    std::fs::write(out.join("batch"), &batch)?;
    std::fs::write(out.join("cut"), &batch[..write.len() + 30])?;
    Ok(())
}

fn edge(out: &Path) -> Result<()> {
    use cordon_proto::{
        EdgeBlockIp, EdgeCondition, EdgeKill, EdgePolicy, EdgeQuarantine, EdgeRule, EdgeStep,
        SignedEdgePolicy, edge_step::Action,
    };
    use prost::Message;
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/linux");
    let step = |name: &str, action| EdgeStep {
        name: name.into(),
        when: Vec::new(),
        action: Some(action),
    };
    for (i, entry) in std::fs::read_dir(rules)?.flatten().enumerate() {
        let policy = EdgePolicy {
            id: format!("playbook:seed-{i}"),
            agent_id: "me".into(),
            version: 1,
            active: true,
            rules: vec![EdgeRule {
                id: format!("rule-{i}"),
                yaml: std::fs::read_to_string(entry.path())?,
                ..Default::default()
            }],
            conditions: vec![EdgeCondition {
                field: "Image".into(),
                op: "endswith".into(),
                values: vec!["/bash".into()],
            }],
            steps: vec![
                step("kill", Action::Kill(EdgeKill { tree: true })),
                step("q", Action::Quarantine(EdgeQuarantine { exe: true })),
                step(
                    "block",
                    Action::BlockIp(EdgeBlockIp {
                        cidr: "destination".into(),
                        ttl_secs: 60,
                    }),
                ),
            ],
            ..Default::default()
        };
        let bare = policy.encode_to_vec();
        let signed = SignedEdgePolicy {
            policy: bare.clone(),
            signature: vec![7; 64],
        };
        std::fs::write(out.join(format!("policy-{i}")), &bare)?;
        std::fs::write(out.join(format!("signed-{i}")), signed.encode_to_vec())?;
    }
    Ok(())
}

/// What an agent sends on its stream: a hello, a telemetry batch of every event kind, a
/// heartbeat, a command result and a chunk.
pub fn agent_messages() -> Vec<cordon_proto::AgentMessage> {
    use cordon_proto::agent_message::Msg;
    use cordon_proto::{
        AgentMessage, AgentMetrics, DnsEvent, EdgeAction, Event, Heartbeat, Hello, HostFacts,
        NetworkEvent, PreventionEvent, ProcessRef, ResultChunk, TelemetryBatch,
    };
    let who = ProcessRef {
        pid: 4242,
        exe: "/usr/bin/curl".into(),
        argv: vec!["curl".into(), "http://evil.example/x".into()],
        ..Default::default()
    };
    let mut bodies: Vec<event::Body> = (0..3).map(body).collect();
    bodies.push(event::Body::Network(NetworkEvent {
        kind: 1,
        protocol: "tcp".into(),
        destination_ip: "10.0.0.2".into(),
        destination_port: 4444,
        process: Some(who.clone()),
        ..Default::default()
    }));
    bodies.push(event::Body::Dns(DnsEvent {
        name: "evil.example".into(),
        answers: vec!["10.0.0.2".into()],
        ..Default::default()
    }));
    bodies.push(event::Body::Prevention(PreventionEvent {
        kind: 1,
        path: "/tmp/x".into(),
        sha256: "ab".repeat(32),
        process: Some(who),
        attempt: "exec".into(),
        mode: "fanotify".into(),
        ..Default::default()
    }));
    let events = bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| Event {
            seq: i as u64 + 1,
            time_ms: 1_700_000_000_000,
            body: Some(b),
            edge: vec![EdgeAction {
                policy_id: "playbook:x".into(),
                version: 2,
                action: "kill_process".into(),
                outcome: "done".into(),
                ..Default::default()
            }],
        })
        .collect();
    let messages = [
        Msg::Hello(Hello {
            agent_id: "0f6c1a52-8d1e-4b7a-9c1e-2a7d5b9e0c11".into(),
            host: Some(HostFacts {
                hostname: "web-1".into(),
                ..Default::default()
            }),
            heartbeat_interval_secs: 30,
        }),
        Msg::Telemetry(TelemetryBatch { events }),
        Msg::Heartbeat(Heartbeat {
            process_sensor: "ebpf".into(),
            metrics: Some(AgentMetrics {
                sensors: vec!["file: fanotify".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        Msg::Result(CommandResult {
            command_id: "c1".into(),
            ..Default::default()
        }),
        Msg::Chunk(ResultChunk {
            command_id: "c1".into(),
            data: b"{\"port\":4444}\n".to_vec(),
            ..Default::default()
        }),
    ];
    messages
        .into_iter()
        .map(|m| AgentMessage { msg: Some(m) })
        .collect()
}

fn messages(out: &Path) -> Result<()> {
    use prost::Message;
    for (i, m) in agent_messages().into_iter().enumerate() {
        std::fs::write(out.join(format!("message-{i}")), m.encode_to_vec())?;
    }
    Ok(())
}
