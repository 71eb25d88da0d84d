//! The web console as a browser would reach it, without a browser: HTTPS over loopback to the
//! real controller's console listener, trusting the controller's CA, one connection per
//! request (HTTP/1.1, hyper's client connection), cookies and CSRF tokens handled by hand.

use crate::binaries::bin;
use crate::deploy::Deployment;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The session cookie's name, and the sign-in form's.
pub const COOKIE: &str = "__Host-cordon";
pub const SIGN_IN_COOKIE: &str = "__Host-cordon-login";

/// An answer: status, headers and the whole body as text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The session id the answer's `Set-Cookie` hands out, if any.
    pub fn session_id(&self) -> Option<String> {
        self.cookie(COOKIE)
    }

    /// The value of cookie `name` that the answer sets, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        let value = self
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&prefix))?;
        let value = value.split(';').next()?;
        (!value.is_empty()).then(|| value.to_string())
    }

    /// The `Set-Cookie` header that sets cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&prefix))
    }

    /// The CSRF token in the page's forms.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.body[at..].split('"').next()?.to_string())
    }
}

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
#[derive(Debug, Clone)]
pub struct Browser {
    pub session: String,
    pub csrf: String,
}

impl Browser {
    fn cookie(&self) -> String {
        format!("{COOKIE}={}", self.session)
    }
}

/// The console of a deployment.
pub struct Console {
    pub addr: SocketAddr,
    tls: TlsConnector,
    /// The network namespace its address is in (None: this process's own).
    netns: Option<String>,
}

impl Deployment {
    /// A loopback deployment with `extra` settings and its console on a free port, with
    /// `console` settings in `[console]`.
    pub fn with_console(extra: &str, console: &str) -> (Deployment, Console) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let d = Deployment::loopback(&format!(
            "{extra}\n[console]\nlisten = \"{addr}\"\n{console}\n"
        ));
        let console = Console::new(&d, addr);
        (d, console)
    }

    /// A namespace deployment ([`Deployment::namespaces`]) with `extra` settings and its
    /// console on the controller's address in the controller's namespace, reached from there.
    pub fn namespaces_with_console(extra: &str) -> (Deployment, Console) {
        let addr: SocketAddr = format!("{}:7444", crate::deploy::CTL_ADDR).parse().unwrap();
        let d = Deployment::namespaces(&format!("{extra}\n[console]\nlisten = \"{addr}\"\n"));
        let ns = d
            .ctl_ns
            .as_ref()
            .expect("a namespace deployment")
            .name
            .clone();
        let console = Console::new(&d, addr).in_netns(&ns);
        (d, console)
    }

    /// A person's isolation of a protected host, waiting for a second person (with
    /// `[people] four_eyes = true`); its approval id.
    pub fn pending_isolation(&self, asker: &crate::people::Member) -> String {
        let token = self.token_with_labels(&["cordon.protected=true"]);
        let db = self.enroll_agent_with(&token, "db", &[]);
        let asked = self.try_ctl_as(&asker.credential(), &["isolate", &db.id, "--wait", "1"]);
        assert!(!asked.status.success(), "the isolation waits");
        let pending = self.ctl_list(&["approvals", "list"]);
        let pending = pending.as_array().unwrap();
        assert_eq!(pending.len(), 1);
        pending[0]["id"].as_str().unwrap().to_string()
    }

    /// Sets `name`'s console password with `cordonctl users set-password` (on its stdin).
    pub fn set_password(&self, name: &str, password: &str) {
        let mut cmd = self.in_ctl_ns(bin("cordonctl"));
        cmd.env("CORDON_ADMIN", self.data_dir.join("admin.toml"))
            .args(["users", "set-password", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "set-password {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Console {
    pub fn new(d: &Deployment, addr: SocketAddr) -> Self {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let ca = CertificateDer::from_pem_file(d.data_dir.join("ca.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            addr,
            tls: TlsConnector::from(Arc::new(config)),
            netns: None,
        }
    }

    /// The same console, its connections made from inside namespace `ns`.
    pub fn in_netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_string());
        self
    }

    async fn connect(&self) -> TcpStream {
        let Some(ns) = self.netns.clone() else {
            return TcpStream::connect(self.addr).await.unwrap();
        };
        let addr = self.addr;
        let tcp = tokio::task::spawn_blocking(move || {
            crate::netns::in_netns(&ns, move || std::net::TcpStream::connect(addr))
        })
        .await
        .unwrap()
        .unwrap();
        tcp.set_nonblocking(true).unwrap();
        TcpStream::from_std(tcp).unwrap()
    }

    /// Sends one request on a new connection, with `headers` (a cookie: `("cookie",
    /// "NAME=VALUE")`); the answer's head and its body stream.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> http::Response<hyper::body::Incoming> {
        let tcp = self.connect().await;
        let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
        let tls = self.tls.connect(name, tcp).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = form.map(encode).unwrap_or_default();
        if form.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        sender.send_request(req).await.unwrap()
    }

    /// Sends one request and reads the whole answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let res = self.send(method, path, headers, form).await;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, browser: Option<&Browser>) -> Reply {
        match browser {
            Some(b) => {
                let cookie = b.cookie();
                self.request("GET", path, &[("cookie", &cookie)], None)
                    .await
            }
            None => self.request("GET", path, &[], None).await,
        }
    }

    pub async fn post(&self, path: &str, browser: &Browser, form: &[(&str, &str)]) -> Reply {
        let cookie = browser.cookie();
        self.request("POST", path, &[("cookie", &cookie)], Some(form))
            .await
    }

    /// Posts no form, the CSRF token in the `X-CSRF-Token` header instead.
    pub async fn post_with_header(&self, path: &str, browser: &Browser) -> Reply {
        let cookie = browser.cookie();
        let headers = [("cookie", cookie.as_str()), ("x-csrf-token", &browser.csrf)];
        self.request("POST", path, &headers, None).await
    }

    /// Loads the sign-in page and posts its form, as a browser does.
    pub async fn sign_in(&self, name: &str, password: &str, code: &str) -> Reply {
        let form = [("name", name), ("password", password), ("code", code)];
        self.post_public("/login", &form).await
    }

    /// Loads `path`, a page reachable before signing in, and posts its form with `fields`,
    /// as a browser does: with the token the page put in its form and in a cookie.
    pub async fn post_public(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let page = self.get(path, None).await;
        let token = page.cookie(SIGN_IN_COOKIE).expect("the form's cookie");
        let csrf = page.csrf().expect("the form's token");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let cookie = format!("{SIGN_IN_COOKIE}={token}");
        self.request("POST", path, &[("cookie", &cookie)], Some(&form))
            .await
    }

    /// Signs in, which must work, and opens the overview for its CSRF token.
    pub async fn browser(&self, name: &str, password: &str) -> Browser {
        let signed = self.sign_in(name, password, "").await;
        assert_eq!(signed.status, 303, "sign-in of {name}: {}", signed.body);
        let session = signed.session_id().expect("a session cookie");
        let mut b = Browser {
            session,
            csrf: String::new(),
        };
        let page = self.get("/", Some(&b)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        b.csrf = page.csrf().expect("a CSRF token in the page");
        b
    }

    /// Opens the server-sent event stream of `path`: the answer's head, and its events.
    pub async fn events(&self, path: &str, b: &Browser) -> (Reply, Events) {
        let res = self
            .send("GET", path, &[("cookie", &b.cookie())], None)
            .await;
        let (parts, body) = res.into_parts();
        let reply = Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::new(),
        };
        let events = Events {
            body,
            buffer: String::new(),
        };
        (reply, events)
    }
}

/// An open stream of server-sent events.
pub struct Events {
    body: hyper::body::Incoming,
    buffer: String,
}

impl Events {
    /// The next event's text (up to its blank line), if one arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event = self.buffer[..end].to_string();
                self.buffer.drain(..end + 2);
                return Some(event);
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await;
            match frame {
                Ok(Some(Ok(f))) => {
                    if let Some(d) = f.data_ref() {
                        self.buffer.push_str(&String::from_utf8_lossy(d));
                    }
                }
                _ => return None,
            }
        }
    }
}

/// A URL-encoded form body.
fn encode(fields: &[(&str, &str)]) -> String {
    let esc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
