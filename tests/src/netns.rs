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

/// Files under `/etc` for one namespace: `ip netns exec` (so [`Netns::command`]) mounts
/// `/etc/netns/NAME/FILE` over `/etc/FILE` for what it runs (`hosts`, `resolv.conf`). Removed
/// on drop, with `/etc/netns` if this made it.
pub struct NsHosts {
    dir: std::path::PathBuf,
    made_parent: bool,
}

const NETNS_ETC: &str = "/etc/netns";

impl NsHosts {
    /// An `/etc/hosts` for `ns`.
    pub fn write(ns: &Netns, hosts: &str) -> Self {
        Self::files(ns, &[("hosts", hosts)])
    }

    /// Each (name, content) as `/etc/NAME` for `ns`.
    pub fn files(ns: &Netns, files: &[(&str, &str)]) -> Self {
        let made_parent = !std::path::Path::new(NETNS_ETC).exists();
        let dir = std::path::Path::new(NETNS_ETC).join(&ns.name);
        std::fs::create_dir_all(&dir).expect("making /etc/netns/NAME");
        let made = Self { dir, made_parent };
        for (name, content) in files {
            std::fs::write(made.dir.join(name), content).expect("writing a namespace's file");
        }
        made
    }
}

impl Drop for NsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_parent {
            // Only if empty: another test's namespace may have put its own there since.
            let _ = std::fs::remove_dir(NETNS_ETC);
        }
    }
}

/// Joins two namespaces with a veth pair: `a_cidr` on a's end, `b_cidr` on b's end.
/// Returns the two interface names.
pub fn link(a: &Netns, a_cidr: &str, b: &Netns, b_cidr: &str) -> (String, String) {
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
    (va, vb)
}

/// Sets interface `dev` in namespace `ns` up or down.
pub fn set_link(ns: &Netns, dev: &str, up: bool) {
    let state = if up { "up" } else { "down" };
    ip(&["-n", &ns.name, "link", "set", dev, state]);
}

/// Runs `f` on a thread inside namespace `ns` and returns its result. Sockets made there stay
/// in that namespace wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        cordon_agent::sys::netns::enter(&ns).expect("enter netns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP echo service in a namespace: each connection gets back what it sends. Stops when
/// dropped (the accept loop is bounded by a deadline too).
pub struct EchoServer {
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EchoServer {
    pub fn start(ns: &str, addr: &str) -> Self {
        use std::io::{Read, Write};
        let addr: std::net::SocketAddr = addr.parse().expect("addr");
        let listener =
            in_netns(ns, move || std::net::TcpListener::bind(addr)).expect("bind echo server");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 1024];
                            while let Ok(n) = s.read(&mut buf) {
                                if n == 0 || s.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Self { addr, stop }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Opens a TCP connection from namespace `ns`.
pub fn connect(
    ns: &str,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> std::io::Result<std::net::TcpStream> {
    in_netns(ns, move || {
        std::net::TcpStream::connect_timeout(&addr, timeout)
    })
}

/// Sends a line on `s` and waits up to `timeout` for the echo.
pub fn echoes(s: &mut std::net::TcpStream, timeout: std::time::Duration) -> bool {
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    if s.write_all(b"ping\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).is_ok() && &buf == b"ping\n"
}

/// Whether a fresh connection from `ns` to `addr` completes and echoes.
pub fn reachable(ns: &str, addr: std::net::SocketAddr) -> bool {
    let timeout = std::time::Duration::from_millis(700);
    connect(ns, addr, timeout)
        .map(|mut s| echoes(&mut s, timeout))
        .unwrap_or(false)
}

/// Adds an address to an interface-less namespace's veth (with `nodad`, so IPv6 is usable at
/// once).
pub fn add_addr(ns: &Netns, dev: &str, cidr: &str) {
    ip(&["-n", &ns.name, "addr", "add", cidr, "dev", dev, "nodad"]);
}

/// Runs `nft ARGS` inside namespace `ns` (one the test made), which must succeed; returns
/// what it printed.
pub fn nft(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .output()
        .expect("ip netns exec nft");
    assert!(
        out.status.success(),
        "nft {args:?} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
