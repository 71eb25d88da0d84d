//! The collection rows contract: each row stored once however often its chunk comes again,
//! and read back by command, agent and text, a page at a time in (command, row) order.

use crate::store::{Agents, Collections, CommandQueue, RowFilter, Tokens};

/// `s` is fresh. Two agents, a collection each.
pub async fn collection_rows<S: Collections + CommandQueue + Agents + Tokens>(s: &S) {
    for (agent, command) in [("a1", "c1"), ("a2", "c2")] {
        super::enrolled(s, agent).await;
        let mut row = super::fleet::command(command, agent, 1, i64::MAX);
        row.kind = "collect".into();
        s.insert_command(row).await.expect("insert");
    }
    let add = |command: &str, agent: &str, first: u64, rows: &[&str]| {
        let rows = rows.iter().map(|r| r.to_string()).collect();
        s.add_collection_rows(command.into(), agent.into(), first, rows)
    };
    let chunk = [
        r#"{"path":"/etc/cron.d/evil"}"#,
        r#"{"path":"/etc/passwd"}"#,
    ];
    assert_eq!(add("c1", "a1", 0, &chunk).await.expect("add"), 2);
    assert_eq!(
        add("c1", "a1", 0, &chunk).await.expect("again"),
        0,
        "a chunk sent again adds nothing"
    );
    assert_eq!(
        add("c1", "a1", 2, &[r#"{"port":4444}"#])
            .await
            .expect("add"),
        1
    );
    assert_eq!(
        add("c2", "a2", 0, &[r#"{"port":4444}"#])
            .await
            .expect("add"),
        1
    );
    assert_eq!(s.collection_row_count("c1".into()).await.expect("count"), 3);

    let read = |f: RowFilter| async move {
        let rows = s.collection_rows(f).await.expect("rows");
        rows.into_iter()
            .map(|r| format!("{}/{}/{}", r.command_id, r.agent_id, r.row_no))
            .collect::<Vec<_>>()
    };
    let both = || RowFilter {
        command_ids: vec!["c1".into(), "c2".into()],
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        read(both()).await,
        ["c1/a1/0", "c1/a1/1", "c1/a1/2", "c2/a2/0"]
    );
    let port = RowFilter {
        contains: Some("PORT\":4444".into()),
        ..both()
    };
    assert_eq!(
        read(port).await,
        ["c1/a1/2", "c2/a2/0"],
        "text, ASCII case ignored"
    );
    let a2 = RowFilter {
        agent_id: Some("a2".into()),
        ..both()
    };
    assert_eq!(read(a2).await, ["c2/a2/0"]);
    let page = RowFilter {
        after: Some(("c1".into(), 1)),
        limit: 2,
        ..both()
    };
    assert_eq!(read(page).await, ["c1/a1/2", "c2/a2/0"]);
    let none = RowFilter {
        command_ids: vec![],
        ..both()
    };
    assert!(read(none).await.is_empty(), "no command, no rows");
}
