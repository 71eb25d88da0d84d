//! The `sockets` collector on this host: sockets this test opens on loopback are reported
//! with their state, addresses and this process as their owner.

use crate::collect::{Host, Limits, Sink};
use serde_json::Value;
use std::net::{TcpListener, TcpStream, UdpSocket};

fn collect() -> Vec<Value> {
    let mut sink = Sink::new(Limits::default());
    super::sockets(&Host::default(), &mut sink);
    let outcome = sink.finish();
    assert!(outcome.truncated.is_none());
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    outcome.rows
}

/// The one row of `protocol` with local port `port` and remote port `remote`.
fn find<'a>(rows: &'a [Value], protocol: &str, port: u16, remote: u16) -> &'a Value {
    let found: Vec<_> = rows
        .iter()
        .filter(|r| {
            r["protocol"] == protocol && r["local_port"] == port && r["remote_port"] == remote
        })
        .collect();
    assert_eq!(found.len(), 1, "{protocol} {port}->{remote}: {found:#?}");
    found[0]
}

/// Asserts `row` is in `state`, at `address`, owned by this process.
fn assert_ours(row: &Value, state: &str, address: &str) {
    assert_eq!(row["state"], state, "{row:#}");
    assert_eq!(row["local_address"], address, "{row:#}");
    assert_eq!(row["uid"], nix::unistd::geteuid().as_raw(), "{row:#}");
    assert!(row["inode"].as_u64().is_some_and(|i| i > 0), "{row:#}");
    let pids: Vec<_> = row["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| &p["pid"])
        .collect();
    assert_eq!(pids, [&Value::from(std::process::id())], "{row:#}");
    let comm = row["processes"][0]["comm"].as_str().expect("comm");
    assert!(!comm.is_empty(), "{row:#}");
}

#[test]
fn loopback_sockets_of_this_process_are_reported_with_their_owner() {
    let v4 = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let v6 = TcpListener::bind("[::1]:0").expect("bind [::1]");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let udp6 = UdpSocket::bind("[::1]:0").expect("bind udp6");
    let client = TcpStream::connect(v4.local_addr().expect("addr")).expect("connect");
    let (server, _) = v4.accept().expect("accept");
    let port = |a: std::net::SocketAddr| a.port();
    let (v4_port, v6_port) = (
        port(v4.local_addr().unwrap()),
        port(v6.local_addr().unwrap()),
    );
    let client_port = port(client.local_addr().unwrap());

    let rows = collect();

    assert_ours(find(&rows, "tcp", v4_port, 0), "listen", "127.0.0.1");
    let listen6 = find(&rows, "tcp", v6_port, 0);
    assert_ours(listen6, "listen", "::1");
    assert_eq!(listen6["family"], "ipv6");
    let out = find(&rows, "tcp", client_port, v4_port);
    assert_ours(out, "established", "127.0.0.1");
    assert_eq!(out["remote_address"], "127.0.0.1");
    assert_ours(
        find(&rows, "tcp", v4_port, client_port),
        "established",
        "127.0.0.1",
    );
    assert_ours(
        find(&rows, "udp", port(udp.local_addr().unwrap()), 0),
        "unconnected",
        "127.0.0.1",
    );
    assert_ours(
        find(&rows, "udp", port(udp6.local_addr().unwrap()), 0),
        "unconnected",
        "::1",
    );
    drop((server, client));
}

/// From a thread in a network namespace of its own (as an agent run with `--netns`, which
/// remembers the one it started in first), the collector still reports the host's sockets.
#[test]
fn the_hosts_sockets_are_reported_from_another_network_namespace() {
    if !crate::sys::privileges::is_root() {
        assert!(
            !cordon_skips::in_ci(),
            "entering a network namespace needs root, and CI must run it"
        );
        cordon_skips::skip("sockets from another network namespace", "needs root");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let rows = std::thread::spawn(|| {
        // Other tests' threads share the process: the namespace kept is the host's for them too.
        crate::sys::netns::remember_start().expect("remember the host's namespace");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare the network namespace");
        collect()
    })
    .join()
    .expect("the collecting thread");
    assert_ours(find(&rows, "tcp", port, 0), "listen", "127.0.0.1");
}

#[test]
fn descriptor_links_name_socket_inodes() {
    use std::path::Path;
    assert_eq!(
        super::socket_inode(Path::new("socket:[12345]")),
        Some(12345)
    );
    assert_eq!(super::socket_inode(Path::new("pipe:[12345]")), None);
    assert_eq!(super::socket_inode(Path::new("socket:[x]")), None);
}
