//! The hunts contract: a hunt is stored with its commands, its progress is their statuses,
//! its results are their rows, and cancelling ends what is still open (once).

use crate::store::{
    Agents, Collections, CommandQueue, CommandStatus, HuntCounts, HuntRow, Hunts, RowFilter, Tokens,
};

fn hunt(id: &str) -> HuntRow {
    HuntRow {
        id: id.into(),
        collector: "files".into(),
        args: vec!["root=/etc".into(), "glob=*.conf".into()],
        selector: "all".into(),
        created_by: "admin".into(),
        created_at_ms: 1,
        expires_at_ms: i64::MAX,
        cancelled_at_ms: None,
    }
}

/// `s` is fresh. A hunt over two agents.
pub async fn hunts<S: Hunts + Collections + CommandQueue + Agents + Tokens>(s: &S) {
    let mut commands = Vec::new();
    for (agent, command) in [("a2", "h1-a2"), ("a1", "h1-a1")] {
        super::enrolled(s, agent).await;
        let mut row = super::fleet::command(command, agent, 1, i64::MAX);
        row.kind = "collect".into();
        commands.push(row);
    }
    s.create_hunt(hunt("h1"), commands).await.expect("create");
    let shown = s.hunt("h1".into()).await.expect("get").expect("stored");
    assert_eq!(shown.hunt, hunt("h1"));
    let pending = HuntCounts {
        targeted: 2,
        pending: 2,
        ..Default::default()
    };
    assert_eq!(shown.counts, pending);
    assert!(s.hunt("nope".into()).await.expect("get").is_none());

    s.complete_command(
        "h1-a1".into(),
        "a1".into(),
        CommandStatus::Succeeded,
        String::new(),
        vec![],
        2,
    )
    .await
    .expect("complete");
    s.add_collection_rows(
        "h1-a1".into(),
        "a1".into(),
        0,
        vec![r#"{"path":"/etc/a.conf"}"#.into()],
    )
    .await
    .expect("rows");
    let listed = s.hunts(10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].counts.succeeded, listed[0].counts.pending),
        (1, 1)
    );
    let agents: Vec<String> = s
        .hunt_commands("h1".into())
        .await
        .expect("commands")
        .into_iter()
        .map(|c| c.agent_id)
        .collect();
    assert_eq!(agents, ["a1", "a2"], "in agent order");
    let f = RowFilter {
        hunt_id: Some("h1".into()),
        command_ids: vec!["ignored".into()],
        limit: 10,
        ..Default::default()
    };
    let rows = s.collection_rows(f).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].agent_id, "a1");

    let ended = s.cancel_hunt("h1".into(), 3).await.expect("cancel");
    assert_eq!(
        ended,
        Some(vec!["h1-a2".to_string()]),
        "only the open command ends"
    );
    let shown = s.hunt("h1".into()).await.expect("get").expect("stored");
    assert_eq!(shown.hunt.cancelled_at_ms, Some(3));
    assert_eq!(
        (
            shown.counts.succeeded,
            shown.counts.expired,
            shown.counts.pending
        ),
        (1, 1, 0)
    );
    assert_eq!(
        s.cancel_hunt("h1".into(), 4).await.expect("again"),
        Some(vec![])
    );
    let again = s.hunt("h1".into()).await.expect("get").expect("stored");
    assert_eq!(again.hunt.cancelled_at_ms, Some(3), "cancelled once");
    assert_eq!(
        s.cancel_hunt("nope".into(), 4).await.expect("unknown"),
        None
    );
}
