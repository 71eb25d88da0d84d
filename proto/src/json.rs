//! The one conversion from protocol messages to the JSON people and scripts read (cordonctl's
//! `--json`, the console's JSON downloads), so everything shows the same kind of thing the
//! same way. The shape, documented in the README:
//!
//! - keys are snake_case, as the protocol's fields are named;
//! - enums are lower-case names, never numbers: a process event's `"kind": "exec"`, a
//!   command's `"status": "succeeded"`, a result's `"outcome": "refused"`;
//! - a choice between kinds (a protobuf `oneof`) is one field named for the kind it holds:
//!   an event has `"process"`, `"file"`, `"network"`, `"dns"` or `"notice"`; a command's result has `"pong"`,
//!   `"isolation"`, `"kill"`, `"quarantined"`, ... beside its outcome. No wrapper objects;
//! - an event's own `seq` and `time_ms` are those of its record (not repeated inside);
//! - an audit entry's `detail` is JSON, not a string holding JSON;
//! - every output is JSON lines: a listing prints one compact object per line (nothing
//!   when empty), every other command exactly one.
//!
//! [`event_from_json`] reads an event back from its shape (`rules test --event`), and
//! [`event_record_from_json`] the whole record.

use crate::names::{
    self, COMMAND_OUTCOME, COMMAND_STATUS, FILE_KIND, NETWORK_KIND, Names, PREVENTION_KIND,
    PROCESS_KIND, STDIO_KIND,
};
use crate::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A message as its JSON.
pub trait ToJson {
    fn to_json(&self) -> Result<Value, serde_json::Error>;
}

/// Messages with no enum and no oneof inside: their fields as they are.
macro_rules! as_fields {
    ($($t:ty),* $(,)?) => {
        $(impl ToJson for $t {
            fn to_json(&self) -> Result<Value, serde_json::Error> {
                serde_json::to_value(self)
            }
        })*
    };
}

as_fields!(
    AgentRecord,
    ApprovalRecord,
    CreateTokenResponse,
    DryRunPlaybookResponse,
    FetchedFileRecord,
    Inventory,
    InviteUserResponse,
    PlaybookRecord,
    ProcessTree,
    QuarantineEntry,
    RuleOutcome,
    RuleRecord,
    SetUserTotpResponse,
    UserRecord,
    Value,
    VerifyAuditResponse,
    WhoAmIResponse,
);

/// `value` as an object, with `field` replaced by the name of `number` in `names`.
fn named<T: Serialize>(
    value: &T,
    field: &str,
    names: &Names,
    number: i32,
) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(value)?;
    v[field] = json!(names::name(names, number));
    Ok(v)
}

/// Removes `field` from an object (a oneof's wrapper, or a repeated message).
fn without(mut v: Value, field: &str) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.remove(field);
    }
    v
}

/// An event's body as the field named for its kind.
fn body_json(body: &event::Body) -> Result<(&'static str, Value), serde_json::Error> {
    Ok(match body {
        event::Body::Process(p) => {
            let mut v = named(p, "kind", PROCESS_KIND, p.kind)?;
            // Each stream's kind by name, as for the event itself.
            for field in crate::streams::FIELDS {
                if let Some(kind) = v[field].get("kind").and_then(Value::as_i64) {
                    v[field]["kind"] = json!(names::name(STDIO_KIND, kind as i32));
                }
            }
            ("process", v)
        }
        event::Body::File(f) => ("file", named(f, "kind", FILE_KIND, f.kind)?),
        event::Body::Notice(n) => ("notice", serde_json::to_value(n)?),
        event::Body::Network(n) => ("network", named(n, "kind", NETWORK_KIND, n.kind)?),
        event::Body::Dns(d) => ("dns", serde_json::to_value(d)?),
        event::Body::Prevention(p) => ("prevention", named(p, "kind", PREVENTION_KIND, p.kind)?),
    })
}

impl ToJson for EventRecord {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = without(serde_json::to_value(self)?, "event");
        if let Some(body) = self.event.as_ref().and_then(|e| e.body.as_ref()) {
            let (field, value) = body_json(body)?;
            v[field] = value;
        }
        // What the host's edge policies did about it, beside the body.
        if let Some(event) = self.event.as_ref().filter(|e| !e.edge.is_empty()) {
            v["edge"] = serde_json::to_value(&event.edge)?;
        }
        Ok(v)
    }
}

/// The event of a record printed by [`EventRecord::to_json`], if it holds one.
pub fn event_from_json(v: &Value) -> Option<Event> {
    let seq = v.get("seq")?.as_u64()?;
    let time_ms = v.get("time_ms")?.as_i64()?;
    let with_kind = |field: &str, names: &Names| -> Option<Value> {
        let mut body = v.get(field)?.clone();
        let kind = names::value(names, body.get("kind")?.as_str()?)?;
        body["kind"] = json!(kind);
        Some(body)
    };
    let body = if let Some(mut p) = with_kind("process", PROCESS_KIND) {
        for field in crate::streams::FIELDS {
            if let Some(name) = p[field].get("kind").and_then(Value::as_str) {
                p[field]["kind"] = json!(names::value(STDIO_KIND, name)?);
            }
        }
        event::Body::Process(from_fields(p)?)
    } else if let Some(f) = with_kind("file", FILE_KIND) {
        event::Body::File(from_fields(f)?)
    } else if let Some(n) = with_kind("network", NETWORK_KIND) {
        event::Body::Network(from_fields(n)?)
    } else if let Some(d) = v.get("dns") {
        event::Body::Dns(from_fields(d.clone())?)
    } else if let Some(p) = with_kind("prevention", PREVENTION_KIND) {
        event::Body::Prevention(from_fields(p)?)
    } else {
        event::Body::Notice(from_fields(v.get("notice")?.clone())?)
    };
    let edge = match v.get("edge") {
        Some(edge) => serde_json::from_value(edge.clone()).ok()?,
        None => Vec::new(),
    };
    Some(Event {
        seq,
        time_ms,
        body: Some(body),
        edge,
    })
}

/// An event record read back from the line [`EventRecord::to_json`] printed.
pub fn event_record_from_json(v: &Value) -> Option<EventRecord> {
    let mut rec: EventRecord = from_fields(v.clone())?;
    rec.event = event_from_json(v);
    Some(rec)
}

/// A message from an object holding some of its fields (the others take their defaults, as
/// on the wire).
fn from_fields<T: Default + Serialize + DeserializeOwned>(fields: Value) -> Option<T> {
    let mut whole = serde_json::to_value(T::default()).ok()?;
    let (Some(whole_map), Value::Object(given)) = (whole.as_object_mut(), fields) else {
        return None;
    };
    whole_map.extend(given);
    serde_json::from_value(whole).ok()
}

/// A command's output as the field named for its kind.
fn output_json(
    output: &command_result::Output,
) -> Result<(&'static str, Value), serde_json::Error> {
    use command_result::Output;
    let (field, value) = match output {
        Output::Pong(x) => ("pong", serde_json::to_value(x)),
        Output::Inventory(x) => ("inventory", serde_json::to_value(x)),
        Output::Isolation(x) => ("isolation", serde_json::to_value(x)),
        Output::Kill(x) => ("kill", serde_json::to_value(x)),
        Output::Quarantined(x) => ("quarantined", serde_json::to_value(x)),
        Output::QuarantineList(x) => ("quarantine_list", serde_json::to_value(x)),
        Output::Restored(x) => ("restored", serde_json::to_value(x)),
        Output::Block(x) => ("block", serde_json::to_value(x)),
        Output::Collection(x) => ("collection", serde_json::to_value(x)),
        Output::Fetched(x) => ("fetched", serde_json::to_value(x)),
    };
    Ok((field, value?))
}

impl ToJson for CommandResult {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let v = named(self, "outcome", COMMAND_OUTCOME, self.outcome)?;
        let mut v = without(v, "output");
        if let Some(output) = &self.output {
            let (field, value) = output_json(output)?;
            v[field] = value;
        }
        Ok(v)
    }
}

impl ToJson for CommandRecord {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = named(self, "status", COMMAND_STATUS, self.status)?;
        v["result"] = optional(self.result.as_ref())?;
        Ok(v)
    }
}

/// A nested message as its JSON, or null.
fn optional(item: Option<&impl ToJson>) -> Result<Value, serde_json::Error> {
    item.map_or(Ok(Value::Null), ToJson::to_json)
}

/// A repeated message as an array of its JSON.
fn all<T: ToJson>(items: &[T]) -> Result<Value, serde_json::Error> {
    items.iter().map(ToJson::to_json).collect()
}

impl ToJson for HuntAgent {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        named(self, "status", COMMAND_STATUS, self.status)
    }
}

impl ToJson for HuntRecord {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        v["agents"] = all(&self.agents)?;
        Ok(v)
    }
}

impl ToJson for AlertRecord {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        v["event"] = optional(self.event.as_ref())?;
        Ok(v)
    }
}

impl ToJson for IncidentRecord {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        v["alerts"] = all(&self.alerts)?;
        Ok(v)
    }
}

impl ToJson for IncidentReport {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        v["incident"] = optional(self.incident.as_ref())?;
        Ok(v)
    }
}

/// An audit entry, its detail as a JSON value rather than a string of JSON. (The hash covers
/// the detail's exact text: that is the `detail` of `ListAudit` itself.)
impl ToJson for AuditRecord {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        if let Ok(detail) = serde_json::from_str::<Value>(&self.detail) {
            v["detail"] = detail;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
