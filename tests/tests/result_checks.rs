//! The controller's checks of what comes back in chunks (issue #15), on an in-process
//! controller fed chunks and results as an agent would send them:
//! - a fetched file arrives only whole and with the agent's hash; a resent chunk is stored
//!   once; a missing chunk, a wrong hash or chunks past the controller's limit fail the
//!   command with the reason, and nothing is recorded;
//! - a collection's rows are stored once each however often a chunk comes; a result whose
//!   rows did not all arrive (a chunk lost, or refused as not JSON rows) fails the command;
//!   a chunk for another agent's command stores nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::store::{
    Collections, CommandQueue, CommandRow, CommandStatus, FetchedFiles,
};
use cordon_proto::{
    CollectionResult, CommandOutcome, CommandResult, FetchedFile, ResultChunk, command_result,
};
use cordon_tests::inproc::TestController;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// A controller that takes at most 1,000 bytes a fetch, and one enrolled agent's id.
async fn controller() -> (TestController, String) {
    let c = TestController::start_configured("[investigation]\nmax_fetch_bytes = 1000\n").await;
    let agent = c.enroll().await.id;
    (c, agent)
}

/// Queues a command of `kind` (`fetch`, `collect`) with `id` for `agent`, delivered.
async fn queue(c: &TestController, kind: &str, id: &str, agent: &str) {
    let row = CommandRow {
        id: id.into(),
        agent_id: agent.into(),
        kind: kind.into(),
        envelope: vec![],
        created_at_ms: 1,
        expires_at_ms: i64::MAX,
        status: CommandStatus::Pending,
        delivered_at_ms: None,
        completed_at_ms: None,
        error: String::new(),
        result: None,
        created_by: "admin".into(),
    };
    c.ctl.store.insert_command(row).await.unwrap();
    c.ctl.store.mark_delivered(id.into(), 2).await.unwrap();
}

/// Sends `pieces` as chunks (index, offset, bytes), then a result claiming `whole`; returns
/// the command's status and error.
async fn send(
    c: &TestController,
    agent: &str,
    id: &str,
    pieces: &[(u32, u64, &[u8])],
    whole: &[u8],
    sha: &str,
) -> (CommandStatus, String) {
    queue(c, "fetch", id, agent).await;
    for (index, offset, data) in pieces {
        let chunk = ResultChunk {
            command_id: id.into(),
            index: *index,
            first_row: 0,
            offset: *offset,
            data: data.to_vec(),
        };
        c.ctl.record_chunk(agent, chunk).await.unwrap();
    }
    let file = FetchedFile {
        path: "/tmp/evil".into(),
        size: whole.len() as u64,
        sha256: sha.into(),
        chunks: pieces.len() as u32,
        ..Default::default()
    };
    let result = CommandResult {
        command_id: id.into(),
        outcome: CommandOutcome::Succeeded.into(),
        output: Some(command_result::Output::Fetched(file)),
        ..Default::default()
    };
    c.ctl.record_result(agent, result).await.unwrap();
    let row = c.ctl.store.command(id.into()).await.unwrap().unwrap();
    (row.status, row.error)
}

#[tokio::test]
async fn a_whole_file_with_the_agents_hash_is_recorded_once() {
    let (c, agent) = controller().await;
    let whole = b"hello, world";
    let pieces: [(u32, u64, &[u8]); 3] = [(0, 0, b"hello"), (0, 0, b"hello"), (1, 5, b", world")];
    let (status, error) = send(&c, &agent, "f-ok", &pieces, whole, &sha256(whole)).await;
    assert_eq!((status, error.as_str()), (CommandStatus::Succeeded, ""));
    let file = c
        .ctl
        .store
        .fetched_file("f-ok".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((file.size, file.agent_id), (12, agent));
    assert_eq!(
        c.ctl.store.file_chunk_total("f-ok".into()).await.unwrap(),
        (2, 12)
    );
}

#[tokio::test]
async fn a_wrong_hash_or_a_missing_chunk_fails_the_fetch() {
    let (c, agent) = controller().await;
    let whole = b"hello, world";
    let all: [(u32, u64, &[u8]); 2] = [(0, 0, b"hello"), (1, 5, b", world")];
    let (status, error) = send(&c, &agent, "f-hash", &all, whole, &sha256(b"other")).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(error.starts_with("hash mismatch"), "{error}");

    let second: [(u32, u64, &[u8]); 1] = [(1, 5, b", world")];
    let (status, error) = send(&c, &agent, "f-gap", &second, whole, &sha256(whole)).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(error.starts_with("7 of 12 bytes arrived"), "{error}");

    let misnumbered: [(u32, u64, &[u8]); 1] = [(1, 0, whole)];
    let (status, error) = send(&c, &agent, "f-index", &misnumbered, whole, &sha256(whole)).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(
        error.starts_with("0 of 12 bytes arrived"),
        "not from chunk 0: {error}"
    );

    let first: [(u32, u64, &[u8]); 1] = [(0, 0, b"hello")];
    let (status, error) = send(&c, &agent, "f-short", &first, whole, &sha256(whole)).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(error.starts_with("5 of 12 bytes arrived"), "{error}");
    let listed = c.ctl.store.fetched_files(None, 10).await.unwrap();
    assert!(listed.is_empty(), "nothing unverified is recorded");
}

#[tokio::test]
async fn chunks_past_the_controllers_limit_are_dropped_and_the_fetch_fails() {
    let (c, agent) = controller().await;
    let whole = vec![7u8; 1200];
    let pieces: [(u32, u64, &[u8]); 2] = [(0, 0, &whole[..600]), (1, 600, &whole[600..])];
    let (status, error) = send(&c, &agent, "f-big", &pieces, &whole, &sha256(&whole)).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(error.starts_with("600 of 1200 bytes arrived"), "{error}");
    assert_eq!(
        c.ctl.store.file_chunk_total("f-big".into()).await.unwrap(),
        (1, 600)
    );

    let at_limit = &whole[..1000];
    let resent: [(u32, u64, &[u8]); 3] = [
        (0, 0, &at_limit[..600]),
        (1, 600, &at_limit[600..]),
        (1, 600, &at_limit[600..]),
    ];
    let (status, error) = send(&c, &agent, "f-full", &resent, at_limit, &sha256(at_limit)).await;
    let ok = (CommandStatus::Succeeded, "");
    assert_eq!(
        (status, error.as_str()),
        ok,
        "a file of the limit, a chunk resent"
    );
}

/// Sends `chunks` of rows (first row, JSON lines) for collection `id` as `sender`, then
/// `agent`'s result counting `rows`; returns the command's status and error.
async fn collect(
    c: &TestController,
    (agent, sender): (&str, &str),
    id: &str,
    chunks: &[(u64, &str)],
    rows: u64,
) -> (CommandStatus, String) {
    queue(c, "collect", id, agent).await;
    for (i, (first_row, data)) in chunks.iter().enumerate() {
        let chunk = ResultChunk {
            command_id: id.into(),
            index: i as u32,
            first_row: *first_row,
            offset: 0,
            data: data.as_bytes().to_vec(),
        };
        c.ctl.record_chunk(sender, chunk).await.unwrap();
    }
    let done = CollectionResult {
        collector: "processes".into(),
        rows,
        ..Default::default()
    };
    let result = CommandResult {
        command_id: id.into(),
        outcome: CommandOutcome::Succeeded.into(),
        output: Some(command_result::Output::Collection(done)),
        ..Default::default()
    };
    c.ctl.record_result(agent, result).await.unwrap();
    let row = c.ctl.store.command(id.into()).await.unwrap().unwrap();
    (row.status, row.error)
}

#[tokio::test]
async fn a_collections_rows_are_stored_once_and_a_short_one_fails() {
    let (c, agent) = controller().await;
    let two = "{\"pid\":1}\n{\"pid\":2}\n";
    let chunks = [(0, two), (0, two), (2, "{\"pid\":3}\n")];
    let (status, error) = collect(&c, (&agent, &agent), "c-ok", &chunks, 3).await;
    assert_eq!((status, error.as_str()), (CommandStatus::Succeeded, ""));
    assert_eq!(
        c.ctl
            .store
            .collection_row_count("c-ok".into())
            .await
            .unwrap(),
        3
    );

    let lost = [(0, two)];
    let (status, error) = collect(&c, (&agent, &agent), "c-lost", &lost, 3).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(error.contains("collected 3 rows but 2 arrived"), "{error}");

    let not_rows = [(0, "{\"pid\":1}\nnot json\n")];
    let (status, error) = collect(&c, (&agent, &agent), "c-bad", &not_rows, 2).await;
    assert_eq!(status, CommandStatus::Failed);
    assert!(
        error.contains("but 0 arrived"),
        "the whole chunk is refused: {error}"
    );

    let other = c.enroll().await.id;
    let (status, _) = collect(&c, (&agent, &other), "c-theirs", &[(0, two)], 2).await;
    assert_eq!(
        status,
        CommandStatus::Failed,
        "another agent's rows are not taken"
    );
    assert_eq!(
        c.ctl
            .store
            .collection_row_count("c-theirs".into())
            .await
            .unwrap(),
        0
    );
}
