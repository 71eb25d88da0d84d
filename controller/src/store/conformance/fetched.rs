//! The fetched files contract: each chunk stored once by (command, index) however often it
//! comes again, read back by index, with the count and bytes stored; verified files recorded
//! once and listed newest first, by agent.

use crate::store::{Agents, CommandQueue, FetchedFileRow, FetchedFiles, FileChunkRow, Tokens};

fn chunk(index: u32, offset: u64, data: &[u8]) -> FileChunkRow {
    FileChunkRow {
        index,
        offset,
        data: data.to_vec(),
    }
}

fn file(id: &str, agent: &str, at: i64) -> FetchedFileRow {
    FetchedFileRow {
        id: id.into(),
        agent_id: agent.into(),
        path: format!("/tmp/{id}"),
        size: 5,
        sha256: "ab".repeat(32),
        mode: 0o755,
        uid: 1000,
        gid: 1000,
        mtime: 1_700_000_000,
        fetched_at_ms: at,
    }
}

/// `s` is fresh. Two agents, a fetch each, and one more on the first.
pub async fn fetched_files<S: FetchedFiles + CommandQueue + Agents + Tokens>(s: &S) {
    for (agent, command) in [("a1", "f1"), ("a2", "f2"), ("a1", "f3")] {
        if command != "f3" {
            super::enrolled(s, agent).await;
        }
        let mut row = super::fleet::command(command, agent, 1, i64::MAX);
        row.kind = "fetch".into();
        s.insert_command(row).await.expect("insert");
    }
    let add = |index, offset, data: &[u8]| {
        s.add_file_chunk("f1".into(), "a1".into(), chunk(index, offset, data))
    };
    assert_eq!(
        s.file_chunk_total("f1".into()).await.expect("total"),
        (0, 0)
    );
    assert!(add(0, 0, b"\x00\xffab").await.expect("add"));
    assert!(
        !add(0, 0, b"\x00\xffab").await.expect("again"),
        "a chunk sent again adds nothing"
    );
    assert!(add(1, 4, b"c").await.expect("add"));
    assert_eq!(
        s.file_chunk_total("f1".into()).await.expect("total"),
        (2, 5)
    );
    let back = s.file_chunk("f1".into(), 0).await.expect("read");
    assert_eq!(
        back,
        Some(chunk(0, 0, b"\x00\xffab")),
        "bytes come back as sent"
    );
    assert_eq!(s.file_chunk("f1".into(), 2).await.expect("read"), None);
    assert_eq!(s.file_chunk("f2".into(), 0).await.expect("read"), None);

    assert!(
        s.record_fetched_file(file("f1", "a1", 10))
            .await
            .expect("record")
    );
    assert!(
        !s.record_fetched_file(file("f1", "a1", 11))
            .await
            .expect("again")
    );
    assert!(
        s.record_fetched_file(file("f2", "a2", 20))
            .await
            .expect("record")
    );
    assert!(
        s.record_fetched_file(file("f3", "a1", 30))
            .await
            .expect("record")
    );
    assert_eq!(
        s.fetched_file("f1".into()).await.expect("one"),
        Some(file("f1", "a1", 10)),
        "recorded once, as first given"
    );
    assert_eq!(s.fetched_file("nope".into()).await.expect("one"), None);
    let ids = |files: Vec<FetchedFileRow>| files.into_iter().map(|f| f.id).collect::<Vec<_>>();
    let all = s.fetched_files(None, 10).await.expect("list");
    assert_eq!(ids(all), ["f3", "f2", "f1"], "newest first");
    let a1 = s.fetched_files(Some("a1".into()), 10).await.expect("list");
    assert_eq!(ids(a1), ["f3", "f1"]);
    let one = s.fetched_files(None, 1).await.expect("list");
    assert_eq!(ids(one), ["f3"]);
}
