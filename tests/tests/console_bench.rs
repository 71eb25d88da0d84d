//! The web console's timing header, which `cordon-bench --only console` reads: every answer,
//! a page, an asset, a refusal, says how long the server took over it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_tests::console::Reply;
use cordon_tests::deploy::Deployment;

const PASSWORD: &str = "correct horse battery";

/// The milliseconds of `Server-Timing: app;dur=MS`.
fn server_ms(r: &Reply) -> f64 {
    let t = r.header("server-timing").expect("a Server-Timing header");
    t.strip_prefix("app;dur=").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_answer_says_how_long_the_server_took() {
    let (d, c) = Deployment::with_console("", "");
    d.invite("alice", "viewer", &[]);
    d.set_password("alice", PASSWORD);
    let b = c.browser("alice", PASSWORD).await;
    let answers = [
        (c.get("/", Some(&b)).await, 200),
        (c.get("/assets/console.css", None).await, 200),
        (c.get("/", None).await, 303),
        (c.post("/logout", &b, &[]).await, 403),
    ];
    for (reply, status) in answers {
        assert_eq!(reply.status, status, "{}", reply.body);
        let ms = server_ms(&reply);
        assert!((0.0..60_000.0).contains(&ms), "{ms} ms");
    }
}
