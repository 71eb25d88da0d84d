//! A webhook receiver for tests: a tiny HTTP/1.1 server on loopback (in a network namespace,
//! if given) that answers 200 and keeps every request's headers and exact body.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub struct WebhookReceiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl WebhookReceiver {
    /// Listens on 127.0.0.1 (inside `netns` when given).
    pub fn start(netns: Option<&str>) -> Self {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let listener = match netns {
            Some(ns) => crate::netns::in_netns(ns, bind),
            None => bind(),
        };
        let addr = listener.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1000).flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some(r) = read_request(&stream) {
                    store.lock().expect("webhook store").push(r);
                }
                let mut s = stream;
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().expect("webhook store").clone()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0u8; len.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Received { headers, body })
}
