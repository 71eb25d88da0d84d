//! Parsing: metadata, and refusals that name the rule and the construct.

use super::*;

const HEAD: &str =
    "title: Foo\nid: 1234-abcd\nlogsource:\n    category: process_creation\n    product: linux\n";

fn with_detection(detection: &str) -> String {
    format!("{HEAD}detection:\n{detection}")
}

fn err(yaml: &str) -> RuleError {
    match parse_rule(yaml, "rules/x.yml") {
        Ok(r) => panic!("parsed: {}", r.id),
        Err(e) => e,
    }
}

#[test]
fn reads_metadata() {
    let yaml = format!(
        "{HEAD}status: test\nlevel: high\nauthor: A. Author\ndescription: d\n\
         tags:\n    - attack.execution\nfalsepositives: Admins\nreferences:\n    - https://x\n\
         date: 2024-01-01\ndetection:\n    sel:\n        Image: x\n    condition: sel\n"
    );
    let r = parse_rule(&yaml, "inline").unwrap();
    assert_eq!(r.id, "1234-abcd");
    assert_eq!(r.title, "Foo");
    assert_eq!(r.status, "test");
    assert_eq!(r.level, "high");
    assert_eq!(r.author, "A. Author");
    assert_eq!(r.tags, ["attack.execution"]);
    assert_eq!(r.falsepositives, ["Admins"]);
    assert_eq!(r.references, ["https://x"]);
    assert_eq!(r.date, "2024-01-01");
    assert_eq!(r.logsource.category.as_deref(), Some("process_creation"));
    assert_eq!(r.origin, "inline");
    assert_eq!(r.source, yaml);
    assert_eq!(r.category(), "process_creation");
    // The stored source parses again to the same rule.
    assert_eq!(parse_rule(&r.source, "inline").unwrap().id, r.id);
}

#[test]
fn level_defaults_to_medium_and_is_checked() {
    let r = parse_rule(
        &with_detection("    s:\n        Image: x\n    condition: s\n"),
        "i",
    )
    .unwrap();
    assert_eq!(r.level, "medium");
    let e = err(&format!(
        "{}level: severe\n",
        with_detection("    s:\n        Image: x\n    condition: s\n")
    ));
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("level `severe`"), "{e}");
}

#[test]
fn unsupported_modifier_names_rule_and_construct() {
    let e = err(&with_detection(
        "    s:\n        CommandLine|utf16le|base64: x\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "rules/x.yml (Foo, 1234-abcd): unsupported modifier `utf16le` on field CommandLine in detection.s"
    );
    let e = err(&with_detection(
        "    s:\n        Image|expand: '%x%'\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[test]
fn unknown_modifier_is_invalid() {
    let e = err(&with_detection(
        "    s:\n        Image|contain: x\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(
        e.to_string()
            .starts_with("rules/x.yml (Foo, 1234-abcd): detection.s (line 8 column 9): unknown modifier `contain` on field Image"),
        "{e}"
    );
}

#[test]
fn condition_errors_point_at_the_token() {
    let e = err(&with_detection(
        "    s:\n        Image: x\n    condition: s and (s or )\n",
    ));
    assert_eq!(
        e.to_string(),
        "rules/x.yml (Foo, 1234-abcd): condition: unexpected token `)` at 12"
    );
    let e = err(&with_detection(
        "    s:\n        Image: x\n    condition: s and t\n",
    ));
    assert!(
        e.to_string().ends_with("condition: unknown detection `t`"),
        "{e}"
    );
    let e = err(&with_detection(
        "    s:\n        Image: x\n    condition: 1 of f*\n",
    ));
    assert!(
        e.to_string()
            .ends_with("condition: `f*` matches no detection"),
        "{e}"
    );
    let e = err(&with_detection(
        "    s:\n        Image: x\n    condition: s | count() by Image > 3\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = err(&with_detection("    s:\n        Image: x\n"));
    assert!(e.to_string().ends_with("detection: no `condition`"), "{e}");
}

#[test]
fn yaml_errors_carry_line_and_column() {
    let e = err("title: Foo\nid: 1\ndetection:\n  sel: [a, b\n  condition: sel\n");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let s = e.to_string();
    assert!(s.starts_with("rules/x.yml: YAML: line "), "{s}");
    assert!(s.contains("column"), "{s}");
}

#[test]
fn missing_fields_are_invalid() {
    assert!(
        err("id: 1\nlogsource: {category: process_creation}\n")
            .to_string()
            .contains("no `title`")
    );
    let e = err("title: T\nlogsource: {category: process_creation}\n");
    assert_eq!(
        e.to_string(),
        "rules/x.yml (T): no `id` (rules are identified by id)"
    );
    assert!(
        err("title: T\nid: 1\n")
            .to_string()
            .contains("no `logsource`")
    );
    assert!(
        err("title: T\nid: 1\nlogsource: {category: process_creation}\n")
            .to_string()
            .contains("no `detection`")
    );
    assert!(err("- a\n- b\n").to_string().contains("must be a mapping"));
}

#[test]
fn skipped_log_sources_say_why() {
    let e = err(
        "title: A\nid: 1\nlogsource:\n    product: linux\n    service: auditd\ndetection:\n    s:\n        type: EXECVE\n    condition: s\n",
    );
    assert!(e.is_skipped());
    assert!(e.to_string().contains("service `auditd`"), "{e}");
    let e = err(
        "title: A\nid: 1\nlogsource:\n    product: linux\n    category: file_delete\ndetection:\n    s:\n        x: y\n    condition: s\n",
    );
    assert!(e.is_skipped());
    assert!(e.to_string().contains("file_delete"), "{e}");
}

#[test]
fn other_refusals() {
    let e = err(&format!(
        "{HEAD}detection:\n    s:\n        Image: x\n    condition: s\n---\naction: global\n"
    ));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("multi-document"), "{e}");
    let e = err(&with_detection(
        "    s:\n        Image: x\n    timeframe: 5m\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = err(&with_detection(
        "    s:\n        CommandLine|re: '(?<=a)b'\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("look-around"), "{e}");
    let e = err(&with_detection(
        "    s:\n        CommandLine|re: '(ab'\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let e = err(&with_detection(
        "    s:\n        CommandLine|contains|startswith: x\n    condition: s\n",
    ));
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let e = err(&with_detection(
        "    s:\n        ProcessId|lt: many\n    condition: s\n",
    ));
    assert!(e.to_string().contains("needs a number"), "{e}");
    let e = err(&with_detection(
        "    s:\n        Ip|cidr: 10.0.0.0/99\n    condition: s\n",
    ));
    assert!(e.to_string().contains("not a network"), "{e}");
    let e = err(&with_detection(
        "    s:\n        Image:\n            a: b\n    condition: s\n",
    ));
    assert!(e.to_string().contains("not a mapping"), "{e}");
}

#[test]
fn unmapped_fields_are_listed() {
    let r = parse_rule(
        &with_detection("    s:\n        User: root\n        LogonId: 0\n    condition: s\n"),
        "i",
    )
    .unwrap();
    assert_eq!(r.unmapped_fields(), ["LogonId"]);
}
