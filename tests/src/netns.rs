//! Network namespaces for tests, made with iproute2 and removed on drop (also when the test
//! panics). Tests contain only namespaces they made; nothing here touches the root namespace
//! beyond creating and deleting these.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (install iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace with a unique name starting with `prefix`, loopback up.
    pub fn new(prefix: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("cdt-{prefix}-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// `cmd` run inside this namespace (via `ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Joins two namespaces with a veth pair: `a_cidr` on a's end, `b_cidr` on b's end.
pub fn link(a: &Netns, a_cidr: &str, b: &Netns, b_cidr: &str) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let tag = format!("{}{n}", std::process::id() % 100_000);
    let (va, vb) = (format!("cva{tag}"), format!("cvb{tag}"));
    ip(&[
        "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns", &b.name,
    ]);
    ip(&["-n", &a.name, "addr", "add", a_cidr, "dev", &va]);
    ip(&["-n", &b.name, "addr", "add", b_cidr, "dev", &vb]);
    ip(&["-n", &a.name, "link", "set", &va, "up"]);
    ip(&["-n", &b.name, "link", "set", &vb, "up"]);
}
