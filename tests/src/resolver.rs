//! A small DNS resolver for tests, run in a namespace: answers A queries for the names it is
//! given (NOERROR with the address), NXDOMAIN for other names, and NOERROR with no answer for
//! other types. Stops when dropped; its loop is bounded by a deadline too.

use simple_dns::rdata::{A, RData};
use simple_dns::{CLASS, Packet, PacketFlag, QTYPE, RCODE, ResourceRecord, TYPE};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Resolver {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// The reply to one query, or None for a message that is not a query.
fn reply(query: &[u8], names: &HashMap<String, Ipv4Addr>) -> Option<Vec<u8>> {
    let q = Packet::parse(query).ok()?;
    if q.has_flags(PacketFlag::RESPONSE) {
        return None;
    }
    let question = q.questions.first()?.clone();
    let name = question
        .qname
        .to_string()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut r = Packet::new_reply(q.id());
    r.set_flags(PacketFlag::RECURSION_AVAILABLE);
    match names.get(&name) {
        None => *r.rcode_mut() = RCODE::NameError,
        Some(ip) if question.qtype == QTYPE::TYPE(TYPE::A) => {
            let answer = ResourceRecord::new(
                question.qname.clone(),
                CLASS::IN,
                300,
                RData::A(A::from(*ip)),
            );
            r.answers.push(answer);
        }
        Some(_) => {}
    }
    r.questions.push(question);
    r.build_bytes_vec().ok()
}

impl Resolver {
    /// Serves `names` (lower case, no final dot) on UDP `addr` inside namespace `ns`.
    pub fn start(ns: &str, addr: &str, names: &[(&str, Ipv4Addr)]) -> Self {
        let addr: SocketAddr = addr.parse().expect("addr");
        let socket =
            crate::netns::in_netns(ns, move || UdpSocket::bind(addr)).expect("bind the resolver");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let names: HashMap<String, Ipv4Addr> =
            names.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok((n, from)) = socket.recv_from(&mut buf)
                    && let Some(answer) = reply(&buf[..n], &names)
                {
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        Self { addr, stop }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
