//! The command pipeline against a recording executor: every refusal case, and that nothing
//! runs twice.

use super::*;
use cordon_proto::{Ping, Pong};
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Default)]
struct Counting(AtomicUsize);

impl Executor for &Counting {
    async fn execute(&self, _: &Job, _: &action::Kind) -> Result<command_result::Output, String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(command_result::Output::Pong(Pong { agent_time_ms: 1 }))
    }
}

/// An action that never ends, as a blocked system call would.
struct Hanging;

impl Executor for Hanging {
    async fn execute(&self, _: &Job, _: &action::Kind) -> Result<command_result::Output, String> {
        std::future::pending().await
    }
}

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn signed(key: &Ed25519KeyPair, id: &str, agent: &str, expires_at_ms: i64) -> SignedCommand {
    let c = Command {
        id: id.into(),
        agent_id: agent.into(),
        issued_at_ms: now_ms(),
        expires_at_ms,
        action: Some(action::Kind::Ping(Ping {}).into()),
    };
    let bytes = c.encode_to_vec();
    SignedCommand {
        signature: key.sign(&bytes).as_ref().to_vec(),
        command: bytes,
    }
}

fn dispatcher<E: Executor>(key: &Ed25519KeyPair, exec: E, ledger: Ledger) -> Dispatcher<E> {
    Dispatcher::new(
        Verifier::new("me".into(), key.public_key().as_ref().to_vec()),
        ledger,
        exec,
    )
}

fn later() -> i64 {
    now_ms() + 60_000
}

#[tokio::test]
async fn a_valid_command_runs_once_and_a_replay_does_not_run_again() {
    let k = key();
    let exec = Counting::default();
    let d = dispatcher(&k, &exec, Ledger::memory());
    let cmd = signed(&k, "c1", "me", later());
    let first = d.handle(&cmd).await;
    assert_eq!(first.outcome(), CommandOutcome::Succeeded);
    let again = d.handle(&cmd).await;
    assert_eq!(
        exec.0.load(Ordering::SeqCst),
        1,
        "a replayed command ran twice"
    );
    assert_eq!(
        again, first,
        "a redelivered command must answer with its original result"
    );
}

#[tokio::test]
async fn tampered_unsigned_foreign_misaddressed_and_expired_commands_are_refused() {
    let k = key();
    let exec = Counting::default();
    let d = dispatcher(&k, &exec, Ledger::memory());

    let mut tampered = signed(&k, "t1", "me", later());
    let last = tampered.command.len() - 1;
    tampered.command[last] ^= 0x01;
    let mut unsigned = signed(&k, "u1", "me", later());
    unsigned.signature.clear();
    let foreign = signed(&key(), "f1", "me", later());
    let cases = [
        (tampered, "bad signature"),
        (unsigned, "unsigned"),
        (foreign, "bad signature"),
        (signed(&k, "m1", "someone-else", later()), "misaddressed"),
        (signed(&k, "e1", "me", now_ms() - 1), "expired"),
    ];
    for (cmd, why) in cases {
        let r = d.handle(&cmd).await;
        assert_eq!(r.outcome(), CommandOutcome::Refused, "{why}");
        assert!(r.error.contains(why), "{why}: {}", r.error);
    }
    assert_eq!(exec.0.load(Ordering::SeqCst), 0, "a refused command ran");
}

#[tokio::test]
async fn a_command_started_before_a_restart_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("commands.json");
    let k = key();
    let cmd = signed(&k, "c9", "me", later());
    // A previous agent process recorded the command, then died before finishing it.
    Ledger::open(path.clone())
        .unwrap()
        .begin("c9", later(), now_ms())
        .unwrap();
    let exec = Counting::default();
    let d = dispatcher(&k, &exec, Ledger::open(path).unwrap());
    let r = d.handle(&cmd).await;
    assert_eq!(r.outcome(), CommandOutcome::Refused);
    assert!(r.error.contains("replayed"));
    assert_eq!(exec.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_hung_action_ends_as_failed_with_the_reason_and_is_not_run_again() {
    let k = key();
    let d = dispatcher(&k, Hanging, Ledger::memory()).with_timeout(Duration::from_millis(50));
    let cmd = signed(&k, "h1", "me", later());
    let r = d.handle(&cmd).await;
    assert_eq!(r.outcome(), CommandOutcome::Failed);
    assert!(
        r.error.contains("did not finish within 50ms"),
        "{}",
        r.error
    );
    // The agent goes on: the next command is handled, and the hung one keeps its result.
    assert_eq!(d.handle(&cmd).await, r);
    let r2 = d.handle(&signed(&k, "h2", "me", later())).await;
    assert_eq!(r2.outcome(), CommandOutcome::Failed);
}
