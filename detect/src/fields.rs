//! How Cordon's events look to a Sigma rule: the log source category an event belongs to and
//! the Sigma field names it answers.
//!
//! `process_creation` is a `ProcessEvent` of kind EXEC:
//!
//! | Sigma field | from |
//! |---|---|
//! | Image | `exe` |
//! | CommandLine | `argv` joined by single spaces |
//! | ParentImage | `parent_exe` |
//! | ParentCommandLine | `parent_argv` joined by single spaces |
//! | User | `user` |
//! | CurrentDirectory | `cwd` |
//! | ProcessId, ParentProcessId | `pid`, `ppid` (numbers) |
//! | Hashes | `SHA256=<exe_sha256>` (the Sigma convention) |
//! | sha256 | `exe_sha256` |
//!
//! Cordon's own process_creation fields (no Sigma equivalent), for the standard streams at exec:
//!
//! | field | from |
//! |---|---|
//! | StdinKind, StdoutKind, StderrKind | `stdin`/`stdout`/`stderr` kind: `file`, `pipe`, `tty`, `socket`, `none`, `other` |
//! | StdinPeer, StdoutPeer, StderrPeer | the stream's peer when it is a connected internet socket (`10.0.0.2:4444`, `[fd00::2]:4444`) |
//! | ParentStdioPeer | `parent_socket`: the peer of an internet socket the parent holds as its stdio |
//! | StdioPeerImage, StdioPeerAddress | `pipe_peer` exe and `pipe_peer_socket` peer: a process at the other end of a stdio pipe or socket pair that holds a connected internet socket |
//!
//! `file_event` is a `FileEvent` of kind CREATE, MODIFY (written and closed) or RENAME (the new
//! name): `TargetFilename` is `path`. DELETE is not a `file_event`: Sigma gives deletions
//! their own category (`file_delete`), and a rule about files being written must not fire
//! when one is removed, and nor is ATTRIB (chmod, chown): Sigma's file_event is about files
//! written. `Image` is the writer's `process.exe` and `ProcessId` its pid where the sensor
//! knows them (fanotify); under inotify, which cannot tell the writer, both are absent, so a
//! rule that needs the writer (`Image|endswith: '/wget'`) does not match, and a filter on it
//! (`not filter` with `Image`) never excludes.
//!
//! Every other field (LogonId, OriginalFileName, ...) is absent. So is a field whose value
//! the sensor could not learn (an empty string in the event), so `Field: null` matches it.
//!
//! `network_connection` and `dns_query`: see [`crate::fields_net`].
//!
//! Keyword (field-less) detections search `CommandLine` and `Image` for process_creation,
//! `TargetFilename` for file_event ([`keyword_fields`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::fields_net::{
    DNS_FIELDS, DNS_QUERY, DnsFields, NETWORK_CONNECTION, NETWORK_FIELDS, NetworkFields,
    is_connection,
};
use cordon_proto::{Event, FileEvent, ProcessEvent, Stdio, event, file_event, process_event};

pub const PROCESS_CREATION: &str = "process_creation";
pub const FILE_EVENT: &str = "file_event";

/// A field's value as an event reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Num(i64),
}

impl Value<'_> {
    /// The value as text: numbers in decimal, as Sigma compares them with strings.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s.as_ref()),
            Value::Num(n) => Cow::Owned(n.to_string()),
        }
    }

    /// The value as a number, if it is one or a string that parses as one.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n as f64),
            Value::Str(s) => s.trim().parse().ok(),
        }
    }
}

/// Something that answers Sigma field names. `None` means the field is absent.
pub trait Fields {
    fn get(&self, name: &str) -> Option<Value<'_>>;
}

/// The Sigma fields of each category Cordon produces, in the order of the table above.
pub fn known_fields(category: &str) -> &'static [&'static str] {
    match category {
        PROCESS_CREATION => &[
            "Image",
            "CommandLine",
            "ParentImage",
            "ParentCommandLine",
            "User",
            "CurrentDirectory",
            "ProcessId",
            "ParentProcessId",
            "Hashes",
            "sha256",
            "StdinKind",
            "StdoutKind",
            "StderrKind",
            "StdinPeer",
            "StdoutPeer",
            "StderrPeer",
            "ParentStdioPeer",
            "StdioPeerImage",
            "StdioPeerAddress",
        ],
        FILE_EVENT => &["TargetFilename"],
        NETWORK_CONNECTION => NETWORK_FIELDS,
        DNS_QUERY => DNS_FIELDS,
        _ => &[],
    }
}

/// The fields a keyword (field-less) detection searches.
pub fn keyword_fields(category: &str) -> &'static [&'static str] {
    match category {
        PROCESS_CREATION => &["CommandLine", "Image"],
        FILE_EVENT => &["TargetFilename"],
        NETWORK_CONNECTION => &["DestinationHostname", "DestinationIp"],
        DNS_QUERY => &["QueryName"],
        _ => &[],
    }
}

/// The Sigma category of an event and its fields, or `None` for events no rule looks at
/// (exits, deletions, agent notices).
pub fn view(event: &Event) -> Option<(&'static str, EventFields<'_>)> {
    view_body(event.body.as_ref()?)
}

/// The same for an event's body alone (the agent's edge policies see bodies before the spool
/// numbers them).
pub fn view_body(body: &event::Body) -> Option<(&'static str, EventFields<'_>)> {
    match body {
        event::Body::Process(p) if p.kind == process_event::Kind::Exec as i32 => {
            Some((PROCESS_CREATION, EventFields::Process(ProcessFields(p))))
        }
        event::Body::File(f) if is_file_event(f) => {
            Some((FILE_EVENT, EventFields::File(FileFields(f))))
        }
        event::Body::Network(n) if is_connection(n) => {
            Some((NETWORK_CONNECTION, EventFields::Network(NetworkFields(n))))
        }
        event::Body::Dns(d) => Some((DNS_QUERY, EventFields::Dns(DnsFields(d)))),
        _ => None,
    }
}

fn is_file_event(f: &FileEvent) -> bool {
    [
        file_event::Kind::Create,
        file_event::Kind::Modify,
        file_event::Kind::Rename,
    ]
    .iter()
    .any(|k| f.kind == *k as i32)
}

/// The fields of either kind of event [`view`] accepts.
pub enum EventFields<'a> {
    Process(ProcessFields<'a>),
    File(FileFields<'a>),
    Network(NetworkFields<'a>),
    Dns(DnsFields<'a>),
}

impl Fields for EventFields<'_> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        match self {
            EventFields::Process(p) => p.get(name),
            EventFields::File(f) => f.get(name),
            EventFields::Network(n) => n.get(name),
            EventFields::Dns(d) => d.get(name),
        }
    }
}

/// A process exec as `process_creation`.
pub struct ProcessFields<'a>(pub &'a ProcessEvent);

pub(crate) fn text(s: &str) -> Option<Value<'_>> {
    (!s.is_empty()).then_some(Value::Str(Cow::Borrowed(s)))
}

pub(crate) fn joined(argv: &[String]) -> Option<Value<'_>> {
    match argv {
        [] => None,
        [one] => text(one),
        _ => Some(Value::Str(Cow::Owned(argv.join(" ")))),
    }
}

impl Fields for ProcessFields<'_> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        let p = self.0;
        match name {
            "Image" => text(&p.exe),
            "CommandLine" => joined(&p.argv),
            "ParentImage" => text(&p.parent_exe),
            "ParentCommandLine" => joined(&p.parent_argv),
            "User" => text(&p.user),
            "CurrentDirectory" => text(&p.cwd),
            "ProcessId" => Some(Value::Num(i64::from(p.pid))),
            "ParentProcessId" => Some(Value::Num(i64::from(p.ppid))),
            "Hashes" if !p.exe_sha256.is_empty() => {
                Some(Value::Str(Cow::Owned(format!("SHA256={}", p.exe_sha256))))
            }
            "sha256" => text(&p.exe_sha256),
            "StdinKind" => stdio_kind(p.stdin.as_ref()),
            "StdoutKind" => stdio_kind(p.stdout.as_ref()),
            "StderrKind" => stdio_kind(p.stderr.as_ref()),
            "StdinPeer" => stdio_peer(p.stdin.as_ref()),
            "StdoutPeer" => stdio_peer(p.stdout.as_ref()),
            "StderrPeer" => stdio_peer(p.stderr.as_ref()),
            "ParentStdioPeer" => stdio_peer(p.parent_socket.as_ref()),
            "StdioPeerImage" => p.pipe_peer.as_ref().and_then(|r| text(&r.exe)),
            "StdioPeerAddress" => stdio_peer(p.pipe_peer_socket.as_ref()),
            _ => None,
        }
    }
}

fn stdio_kind(s: Option<&Stdio>) -> Option<Value<'_>> {
    let name = cordon_proto::streams::kind_name(s?.kind)?;
    Some(Value::Str(Cow::Borrowed(name)))
}

/// Only an internet socket's peer: a unix socket has none in these fields.
fn stdio_peer(s: Option<&Stdio>) -> Option<Value<'_>> {
    let s = s?;
    if s.family.starts_with("inet") {
        text(&s.peer)
    } else {
        None
    }
}

/// A file write, creation or rename as `file_event`.
pub struct FileFields<'a>(pub &'a FileEvent);

impl Fields for FileFields<'_> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        match name {
            "TargetFilename" => text(&self.0.path),
            "Image" => text(&self.0.process.as_ref()?.exe),
            "ProcessId" => match self.0.process.as_ref()?.pid {
                0 => None,
                pid => Some(Value::Num(i64::from(pid))),
            },
            _ => None,
        }
    }
}

/// A JSON object as given to `cordonctl rules test --event`: strings are strings, integers
/// numbers, booleans `true`/`false`; null, arrays and objects are absent.
impl Fields for serde_json::Map<String, serde_json::Value> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        match serde_json::Map::get(self, name)? {
            serde_json::Value::String(s) => Some(Value::Str(Cow::Borrowed(s))),
            serde_json::Value::Number(n) => Some(match n.as_i64() {
                Some(i) => Value::Num(i),
                None => Value::Str(Cow::Owned(n.to_string())),
            }),
            serde_json::Value::Bool(b) => {
                Some(Value::Str(Cow::Borrowed(if *b { "true" } else { "false" })))
            }
            _ => None,
        }
    }
}

impl Fields for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        HashMap::get(self, name).map(|s| Value::Str(Cow::Borrowed(s)))
    }
}

impl Fields for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        BTreeMap::get(self, name).map(|s| Value::Str(Cow::Borrowed(s)))
    }
}

/// Name/value pairs, as tests and tools write them.
impl Fields for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| Value::Str(Cow::Borrowed(*v)))
    }
}

impl<const N: usize> Fields for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        Fields::get(&self[..], name)
    }
}

impl Fields for Vec<(&str, &str)> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        Fields::get(&self[..], name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec() -> ProcessEvent {
        ProcessEvent {
            kind: process_event::Kind::Exec as i32,
            pid: 42,
            ppid: 7,
            exe: "/usr/bin/base64".into(),
            argv: vec!["base64".into(), "-d".into()],
            parent_exe: "/usr/bin/bash".into(),
            parent_argv: vec!["bash".into(), "-c".into(), "echo x | base64 -d".into()],
            user: "root".into(),
            cwd: "/tmp".into(),
            exe_sha256: "ab".repeat(32),
            ..Default::default()
        }
    }

    fn get(e: &Event, name: &str) -> Option<String> {
        let (_, f) = view(e)?;
        f.get(name).map(|v| v.to_text().into_owned())
    }

    #[test]
    fn process_exec_maps_onto_sigma_names() {
        let e = Event {
            body: Some(event::Body::Process(exec())),
            ..Default::default()
        };
        assert_eq!(view(&e).map(|v| v.0), Some(PROCESS_CREATION));
        assert_eq!(get(&e, "Image").as_deref(), Some("/usr/bin/base64"));
        assert_eq!(get(&e, "CommandLine").as_deref(), Some("base64 -d"));
        assert_eq!(
            get(&e, "ParentCommandLine").as_deref(),
            Some("bash -c echo x | base64 -d")
        );
        assert_eq!(get(&e, "ProcessId").as_deref(), Some("42"));
        assert_eq!(get(&e, "ParentProcessId").as_deref(), Some("7"));
        assert_eq!(
            get(&e, "Hashes"),
            Some(format!("SHA256={}", "ab".repeat(32)))
        );
        assert_eq!(get(&e, "LogonId"), None);
        assert_eq!(get(&e, "OriginalFileName"), None);
    }

    #[test]
    fn unknown_values_are_absent() {
        let mut p = exec();
        p.parent_exe.clear();
        p.exe_sha256.clear();
        p.argv.clear();
        let e = Event {
            body: Some(event::Body::Process(p)),
            ..Default::default()
        };
        assert_eq!(get(&e, "ParentImage"), None);
        assert_eq!(get(&e, "Hashes"), None);
        assert_eq!(get(&e, "CommandLine"), None);
    }

    #[test]
    fn exits_deletes_and_notices_have_no_category() {
        let mut p = exec();
        p.kind = process_event::Kind::Exit as i32;
        let exit = Event {
            body: Some(event::Body::Process(p)),
            ..Default::default()
        };
        assert!(view(&exit).is_none());
        let mut f = FileEvent {
            kind: file_event::Kind::Delete as i32,
            path: "/etc/cron.d/x".into(),
            ..Default::default()
        };
        let del = Event {
            body: Some(event::Body::File(f.clone())),
            ..Default::default()
        };
        assert!(view(&del).is_none());
        f.kind = file_event::Kind::Rename as i32;
        let ren = Event {
            body: Some(event::Body::File(f)),
            ..Default::default()
        };
        assert_eq!(view(&ren).map(|v| v.0), Some(FILE_EVENT));
        assert_eq!(
            get(&ren, "TargetFilename").as_deref(),
            Some("/etc/cron.d/x")
        );
        assert_eq!(get(&ren, "Image"), None);
    }

    #[test]
    fn a_file_event_names_its_writer_and_attribute_changes_are_not_file_events() {
        let mut f = FileEvent {
            kind: file_event::Kind::Modify as i32,
            path: "/root/.ssh/authorized_keys".into(),
            process: Some(cordon_proto::ProcessRef {
                pid: 42,
                exe: "/usr/bin/curl".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let write = Event {
            body: Some(event::Body::File(f.clone())),
            ..Default::default()
        };
        assert_eq!(get(&write, "Image").as_deref(), Some("/usr/bin/curl"));
        assert_eq!(get(&write, "ProcessId").as_deref(), Some("42"));
        f.kind = file_event::Kind::Attrib as i32;
        let chmod = Event {
            body: Some(event::Body::File(f)),
            ..Default::default()
        };
        assert!(view(&chmod).is_none());
    }

    #[test]
    fn json_objects_answer_fields() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"Image": "/bin/sh", "ProcessId": 5, "X": null}"#).unwrap();
        let m = v.as_object().unwrap();
        assert_eq!(Fields::get(m, "Image"), Some(Value::Str("/bin/sh".into())));
        assert_eq!(Fields::get(m, "ProcessId"), Some(Value::Num(5)));
        assert_eq!(Fields::get(m, "X"), None);
    }
}
