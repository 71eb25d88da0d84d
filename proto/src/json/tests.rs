//! The JSON shape scripts read: names not numbers, snake_case keys, oneofs as named fields.

use super::*;

fn process_record() -> EventRecord {
    EventRecord {
        agent_id: "ab12".into(),
        seq: 7,
        time_ms: 1_700_000_000_000,
        kind: "process".into(),
        summary: "exec /usr/bin/id".into(),
        received_at_ms: 1_700_000_000_010,
        event: Some(Event {
            seq: 7,
            time_ms: 1_700_000_000_000,
            body: Some(event::Body::Process(ProcessEvent {
                kind: process_event::Kind::Exec as i32,
                pid: 42,
                exe: "/usr/bin/id".into(),
                argv: vec!["id".into(), "-u".into()],
                stdin: Some(Stdio {
                    kind: stdio::Kind::Socket as i32,
                    family: "inet".into(),
                    peer: "10.0.0.2:4444".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        }),
    }
}

/// Every key of `v`, at any depth, but inside free-form maps (labels, audit detail).
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                out.push(k.clone());
                if !matches!(k.as_str(), "labels" | "detail") {
                    keys(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, out)),
        _ => {}
    }
}

fn assert_snake_case(v: &Value) {
    let mut all = Vec::new();
    keys(v, &mut all);
    for k in all {
        let ok = k
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(ok, "key {k:?} is not snake_case in {v}");
    }
}

#[test]
fn a_process_event_is_named_and_flat() {
    let v = process_record().to_json().unwrap();
    assert_eq!(v["kind"], "process");
    assert_eq!(v["process"]["kind"], "exec");
    assert_eq!(v["process"]["argv"], json!(["id", "-u"]));
    assert_eq!(v["process"]["stdin"]["kind"], "socket");
    assert_eq!(v["process"]["stdin"]["peer"], "10.0.0.2:4444");
    assert_eq!(v["seq"], 7);
    assert!(v.get("event").is_none() && v.get("body").is_none(), "{v}");
    assert_snake_case(&v);
}

#[test]
fn a_file_event_and_a_notice_are_named_fields() {
    let mut r = process_record();
    r.event = Some(Event {
        seq: 8,
        time_ms: 1,
        body: Some(event::Body::File(FileEvent {
            kind: file_event::Kind::Rename as i32,
            path: "/etc/x".into(),
            ..Default::default()
        })),
        ..Default::default()
    });
    let v = r.to_json().unwrap();
    assert_eq!(v["file"]["kind"], "rename");
    assert!(v.get("process").is_none());
    r.event = Some(Event {
        seq: 9,
        time_ms: 1,
        body: Some(event::Body::Notice(AgentNotice {
            kind: "events_lost".into(),
            count: 3,
            ..Default::default()
        })),
        ..Default::default()
    });
    assert_eq!(r.to_json().unwrap()["notice"]["count"], 3);
}

#[test]
fn a_file_event_with_its_writer_reads_back_from_its_json() {
    let mut r = process_record();
    r.event = Some(Event {
        seq: 10,
        time_ms: 1,
        body: Some(event::Body::File(FileEvent {
            kind: file_event::Kind::Attrib as i32,
            path: "/var/tmp/x".into(),
            setuid: true,
            mode: 0o104755,
            source: "fanotify".into(),
            process: Some(crate::ProcessRef {
                pid: 7,
                exe: "/usr/bin/chmod".into(),
                argv: vec!["chmod".into(), "u+s".into(), "/var/tmp/x".into()],
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    });
    let v = r.to_json().unwrap();
    assert_eq!(v["file"]["kind"], "attrib");
    assert_eq!(v["file"]["process"]["exe"], "/usr/bin/chmod");
    assert_eq!(v["file"]["setuid"], true);
    // The record's seq and time are the event's; the body reads back whole.
    let back = event_from_json(&v).unwrap();
    assert_eq!(back.body, r.event.unwrap().body);
}

#[test]
fn an_event_reads_back_from_its_json() {
    let rec = process_record();
    let line = serde_json::to_string(&rec.to_json().unwrap()).unwrap();
    let back = event_from_json(&serde_json::from_str(&line).unwrap()).unwrap();
    assert_eq!(Some(back), rec.event);
    assert!(event_from_json(&json!({"Image": "/bin/sh"})).is_none());
}

#[test]
fn a_command_has_its_status_outcome_and_output_by_name() {
    let rec = CommandRecord {
        command_id: "c1".into(),
        kind: "list_quarantine".into(),
        status: CommandStatus::Succeeded as i32,
        result: Some(CommandResult {
            outcome: CommandOutcome::Succeeded as i32,
            output: Some(command_result::Output::QuarantineList(QuarantineList {
                entries: vec![QuarantineEntry {
                    id: "q1".into(),
                    original_path: "/tmp/x".into(),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = rec.to_json().unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["result"]["outcome"], "succeeded");
    assert_eq!(
        v["result"]["quarantine_list"]["entries"][0]["original_path"],
        "/tmp/x"
    );
    assert!(v["result"].get("output").is_none(), "{v}");
    assert_snake_case(&v);
    let pending = CommandRecord {
        status: CommandStatus::Pending as i32,
        ..Default::default()
    };
    let v = pending.to_json().unwrap();
    assert_eq!(v["status"], "pending");
    assert!(v["result"].is_null());
}

#[test]
fn events_inside_alerts_incidents_and_reports_take_the_same_shape() {
    let alert = AlertRecord {
        id: "a1".into(),
        event: Some(process_record()),
        ..Default::default()
    };
    let incident = IncidentRecord {
        alerts: vec![alert.clone()],
        ..Default::default()
    };
    let tree = ProcessTree {
        process: Some(ProcessNode {
            pid: 7,
            children: vec![ProcessNode {
                pid: 8,
                exited: true,
                ..Default::default()
            }],
            ..Default::default()
        }),
        seq: 3,
        ..Default::default()
    };
    let report = IncidentReport {
        incident: Some(incident.clone()),
        process_tree: Some(tree.clone()),
        ..Default::default()
    };
    let t = tree.to_json().unwrap();
    assert_eq!(t["process"]["children"][0]["exited"], true);
    assert_eq!(alert.to_json().unwrap()["event"]["process"]["kind"], "exec");
    let i = incident.to_json().unwrap();
    assert_eq!(i["alerts"][0]["event"]["process"]["kind"], "exec");
    let r = report.to_json().unwrap();
    assert_eq!(
        r["incident"]["alerts"][0]["event"]["process"]["kind"],
        "exec"
    );
    assert_eq!(
        r["process_tree"], t,
        "the report's tree as the RPC gives it"
    );
    assert_snake_case(&r);
}

#[test]
fn an_audit_detail_is_json() {
    let e = AuditRecord {
        seq: 1,
        action: "quarantine".into(),
        detail: r#"{"force":true}"#.into(),
        ..Default::default()
    };
    assert_eq!(e.to_json().unwrap()["detail"]["force"], true);
}
