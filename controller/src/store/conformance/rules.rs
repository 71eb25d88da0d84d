//! The contract of the detection content aggregate: rules replaced by id on import (keeping
//! whether they are enabled), and indicator lists that hold each value once.

use crate::store::{IocImport, RuleRow, Rules};

fn rule(id: &str, title: &str, imported_at_ms: i64) -> RuleRow {
    RuleRow {
        id: id.into(),
        title: title.into(),
        level: "high".into(),
        status: "stable".into(),
        author: "someone".into(),
        tags: vec!["attack.t1059".into(), "attack.execution".into()],
        logsource: "linux/process_creation".into(),
        origin: format!("rules/{id}.yml"),
        source: format!("title: {title}"),
        enabled: true,
        imported_at_ms,
    }
}

/// Rules round-trip and are listed by id; importing a rule again replaces its content but
/// not whether it is enabled; enabling an unknown rule finds nothing.
pub async fn rules<S: Rules>(s: &S) {
    let (b, a) = (rule("b", "second", 1), rule("a", "first", 1));
    s.upsert_rules(vec![b.clone(), a.clone()])
        .await
        .expect("import");
    assert_eq!(s.rules().await.expect("rules"), [a.clone(), b.clone()]);

    let off = s
        .set_rule_enabled("a".into(), false)
        .await
        .expect("disable");
    assert_eq!(
        off,
        Some(RuleRow {
            enabled: false,
            ..a
        })
    );
    let renamed = rule("a", "first, edited", 2);
    s.upsert_rules(vec![renamed.clone()]).await.expect("import");
    let stored = s.rules().await.expect("rules");
    assert_eq!(
        stored[0],
        RuleRow {
            enabled: false,
            ..renamed
        },
        "replaced, still disabled"
    );
    assert_eq!(stored.len(), 2);
    assert!(
        s.set_rule_enabled("zz".into(), true)
            .await
            .expect("enable")
            .is_none()
    );
}

/// A value is in a list once: importing it again counts it as present; lists of the same
/// kind are separate; every indicator is listed with its kind and list.
pub async fn iocs<S: Rules>(s: &S) {
    let add = |list: &str, values: &[&str]| {
        let values = values.iter().map(|v| v.to_string()).collect();
        s.add_iocs("ip".into(), list.into(), values, 1_000)
    };
    let first = add("bad", &["10.0.0.1", "10.0.0.2"]).await.expect("add");
    assert_eq!(
        first,
        IocImport {
            added: 2,
            already_present: 0,
            list_size: 2
        }
    );
    let again = add("bad", &["10.0.0.2", "10.0.0.3", "10.0.0.3"])
        .await
        .expect("add");
    assert_eq!(
        again,
        IocImport {
            added: 1,
            already_present: 2,
            list_size: 3
        }
    );
    let other = add("worse", &["10.0.0.1"]).await.expect("add");
    assert_eq!(
        other,
        IocImport {
            added: 1,
            already_present: 0,
            list_size: 1
        }
    );
    let mut all = s.iocs().await.expect("iocs");
    all.sort();
    let want = [
        ("10.0.0.1", "bad"),
        ("10.0.0.1", "worse"),
        ("10.0.0.2", "bad"),
        ("10.0.0.3", "bad"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(v, l)| ("ip".to_string(), v.to_string(), l.to_string()))
        .collect();
    assert_eq!(all, want);
}

/// Only the SHA-256 entries of lists marked block are blocked: each once however many block
/// lists hold it, sorted; marking a list again changes nothing.
pub async fn block_lists<S: Rules>(s: &S) {
    let add = |kind: &str, list: &str, values: &[&str]| {
        let values = values.iter().map(|v| v.to_string()).collect();
        s.add_iocs(kind.into(), list.into(), values, 1_000)
    };
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    add("sha256", "miners", &[&b, &a]).await.expect("add");
    add("sha256", "droppers", &[&a]).await.expect("add");
    add("sha256", "watch-only", &[&c]).await.expect("add");
    add("ip", "miners", &["10.0.0.1"]).await.expect("add");
    assert!(s.blocked_sha256().await.expect("blocked").is_empty());
    for (kind, list) in [
        ("sha256", "miners"),
        ("sha256", "droppers"),
        ("ip", "miners"),
    ] {
        s.mark_block_list(kind.into(), list.into())
            .await
            .expect("mark");
    }
    s.mark_block_list("sha256".into(), "miners".into())
        .await
        .expect("mark again");
    assert_eq!(s.blocked_sha256().await.expect("blocked"), vec![a, b]);
}
