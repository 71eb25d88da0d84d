//! The order of attempts across controllers and addresses, and the delays between them.

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn urls(list: &[&str]) -> Vec<String> {
    list.iter().map(|u| u.to_string()).collect()
}

fn failover(list: &[&str]) -> Failover {
    Failover::new(
        urls(list),
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2)),
    )
}

/// The targets of one whole round, as `URL ADDR` strings.
fn round(f: &mut Failover, resolved: Vec<Result<Vec<SocketAddr>, String>>) -> Vec<String> {
    assert!(f.needs_round());
    f.plan_round(resolved);
    let mut seen = Vec::new();
    while !f.needs_round() {
        seen.push(f.take_next().to_string());
    }
    seen
}

#[test]
fn a_round_tries_every_address_of_every_url_in_order() {
    let mut f = failover(&["https://ctl.example:7443", "https://10.0.0.9:7443"]);
    let seen = round(
        &mut f,
        vec![
            Ok(vec![
                sa("10.0.0.1:7443"),
                sa("[fd00::1]:7443"),
                sa("10.0.0.1:7443"),
            ]),
            Ok(vec![sa("10.0.0.9:7443")]),
        ],
    );
    assert_eq!(
        seen,
        [
            "https://ctl.example:7443 (10.0.0.1:7443)",
            "https://ctl.example:7443 ([fd00::1]:7443)",
            "https://10.0.0.9:7443 (10.0.0.9:7443)",
        ]
    );
}

#[test]
fn a_url_that_does_not_resolve_is_still_tried_so_its_error_is_seen() {
    let mut f = failover(&["https://gone.example:7443", "https://10.0.0.9:7443"]);
    let seen = round(
        &mut f,
        vec![Err("no such host".into()), Ok(vec![sa("10.0.0.9:7443")])],
    );
    assert_eq!(
        seen,
        [
            "https://gone.example:7443",
            "https://10.0.0.9:7443 (10.0.0.9:7443)"
        ]
    );
}

#[test]
fn the_target_that_worked_starts_the_next_round_and_the_rest_follow_in_turn() {
    let list = ["https://a:1", "https://b:1", "https://c:1"];
    let resolved = || {
        vec![
            Ok(vec![sa("10.0.0.1:1")]),
            Ok(vec![sa("10.0.0.2:1")]),
            Ok(vec![sa("10.0.0.3:1")]),
        ]
    };
    let mut f = failover(&list);
    f.plan_round(resolved());
    let _a = f.take_next();
    let b = f.take_next();
    f.worked(&b);
    let seen = round(&mut f, resolved());
    assert_eq!(
        seen,
        [
            "https://b:1 (10.0.0.2:1)",
            "https://c:1 (10.0.0.3:1)",
            "https://a:1 (10.0.0.1:1)"
        ]
    );
    // A target gone from the resolver's answer leaves the order as configured.
    f.worked(&Target {
        url: "https://b:1".into(),
        addr: Some(sa("10.0.0.22:1")),
    });
    assert_eq!(round(&mut f, resolved())[0], "https://a:1 (10.0.0.1:1)");
}

#[test]
fn moving_on_within_a_round_keeps_the_ceiling_and_a_failed_round_raises_it() {
    let mut f = failover(&["https://a:1", "https://b:1"]);
    let two = || vec![Ok(vec![sa("10.0.0.1:1")]), Ok(vec![sa("10.0.0.2:1")])];
    let mut within = Vec::new();
    let mut after_round = Vec::new();
    for _ in 0..6 {
        f.plan_round(two());
        f.take_next();
        within.push(f.delay());
        f.take_next();
        after_round.push(f.delay());
    }
    // Rounds 1..: 100, 200, 400, 800, 1600, 2000 ms ceilings; within a round, that
    // round's ceiling, jittered in its upper half.
    let ceilings = [100u64, 200, 400, 800, 1600, 2000];
    for (i, c) in ceilings.iter().enumerate() {
        let c = Duration::from_millis(*c);
        for d in [within[i], after_round[i]] {
            assert!(d >= c / 2 && d <= c, "round {i}: {d:?} against {c:?}");
        }
    }
    // A connection that worked starts again from the smallest delay.
    let t = f.take_next();
    f.worked(&t);
    assert!(f.delay() <= Duration::from_millis(100));
}

#[tokio::test]
async fn literal_addresses_resolve_to_themselves_with_the_default_port() {
    let mut f = failover(&["https://127.0.0.1:7443", "https://[::1]"]);
    let first = f.next_target().await;
    assert_eq!(first.addr, Some(sa("127.0.0.1:7443")));
    assert_eq!(f.next_target().await.addr, Some(sa("[::1]:443")));
    assert!(f.needs_round());
}

#[test]
fn the_configured_list_overrides_the_enrolled_one() {
    let identity = Identity {
        agent_id: "a".into(),
        controller: "https://a:1".into(),
        replica_urls: urls(&["https://b:1"]),
        ca_fingerprint: String::new(),
        command_signing_key: String::new(),
        enrolled_at_ms: 0,
        cert_issued_at_ms: 0,
        cert_expires_at_ms: 0,
    };
    let mut config = AgentConfig::default();
    assert_eq!(
        configured(&identity, &config),
        ["https://a:1", "https://b:1"]
    );
    config.controllers = urls(&["https://c:1"]);
    assert_eq!(configured(&identity, &config), ["https://c:1"]);
}
