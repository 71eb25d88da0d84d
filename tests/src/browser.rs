//! A real browser for the console tests: Debian's Chromium, headless, driven by
//! playwright-core through `tests/browser/driver.mjs` (Node.js), which takes one JSON request
//! per line and answers each with one line. The driver runs in the controller's network
//! namespace when the deployment has one, so the browser reaches the console where agents
//! reach the controller. Each person signs in in a browser context of their own.
//!
//! Node.js, Chromium and the driver's packages (`npm ci` in `tests/browser`, which
//! `scripts/test.sh` runs) are prerequisites: without them a test skips visibly, and under
//! `CI=true` fails.

use crate::deploy::Deployment;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Longest a single browser request may take before the driver reports it failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const CHROMIUM: &str = "/usr/bin/chromium";

/// The driver's directory in the checkout.
fn driver_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// What is missing to drive a browser here, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node (Debian package nodejs)".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} (Debian package chromium)"));
    }
    let modules = driver_dir().join("node_modules/playwright-core");
    (!modules.exists()).then(|| "tests/browser/node_modules (run npm ci there)".into())
}

/// A browser driven by the test.
pub struct Chromium {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The console's address, for absolute URLs.
    base: String,
}

impl Chromium {
    /// Starts the browser for `test` against the console at `console`, or `None` (a recorded
    /// skip) when this machine cannot run one outside CI.
    pub fn start(test: &str, d: &Deployment, console: SocketAddr) -> Option<Self> {
        if let Some(what) = missing() {
            assert!(
                !cordon_skips::in_ci(),
                "{test} needs {what} and CI=true: refusing to skip"
            );
            cordon_skips::skip(test, &format!("needs {what} for the browser tests"));
            return None;
        }
        let mut cmd = d.in_ctl_ns(PathBuf::from("node"));
        cmd.arg(driver_dir().join("driver.mjs"))
            .current_dir(driver_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start node with the browser driver");
        let stdin = child.stdin.take().expect("driver stdin");
        let stdout = BufReader::new(child.stdout.take().expect("driver stdout"));
        Some(Self {
            child,
            stdin,
            stdout,
            base: format!("https://{console}"),
        })
    }

    /// The absolute URL of console path `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request and returns its answer; panics with the driver's error if it failed.
    pub fn call(&mut self, request: Value) -> Value {
        let answer = self.try_call(request.clone());
        succeeded(&request, answer)
    }

    /// Sends one request and returns its answer, failed or not.
    pub fn try_call(&mut self, mut request: Value) -> Value {
        if request.get("timeout_ms").is_none() {
            request["timeout_ms"] = json!(STEP_TIMEOUT.as_millis() as u64);
        }
        writeln!(self.stdin, "{request}").expect("write to the browser driver");
        self.stdin.flush().expect("flush the browser driver");
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .expect("read from the browser driver");
        assert!(n > 0, "the browser driver exited during {request}");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver answer {line:?}: {e}"))
    }

    /// A new browser context (own cookies) named `who`.
    pub fn person(&mut self, who: &str) {
        self.call(json!({"op": "context", "as": who}));
    }

    /// Opens console path `path` as `who`; the HTTP status. Chromium abandons a navigation
    /// when it sees the namespace's addresses change (an IPv6 address leaving its tentative
    /// state a moment after the test's veth came up): that navigation is made again, a few
    /// times at most; any other failure fails the test.
    pub fn goto(&mut self, who: &str, path: &str) -> u16 {
        let request = json!({"op": "goto", "as": who, "url": self.url(path)});
        let mut answer = self.try_call(request.clone());
        for _ in 0..3 {
            let changed = answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("net::ERR_NETWORK_CHANGED"));
            if !changed {
                break;
            }
            answer = self.try_call(request.clone());
        }
        succeeded(&request, answer)["status"].as_u64().unwrap_or(0) as u16
    }

    /// Signs `who` in with `password` through the sign-in page.
    pub fn sign_in(&mut self, who: &str, password: &str) {
        self.goto(who, "/login");
        self.fill(who, "input[name=name]", who);
        self.fill(who, "input[name=password]", password);
        self.click(who, "form.login button[type=submit]");
        let url = self.current_url(who);
        assert!(
            !url.ends_with("/login"),
            "{who} is still on the sign-in page: {}",
            self.text(who, "main")
        );
    }

    pub fn fill(&mut self, who: &str, sel: &str, value: &str) {
        self.call(json!({"op": "fill", "as": who, "sel": sel, "value": value}));
    }

    pub fn click(&mut self, who: &str, sel: &str) {
        self.call(json!({"op": "click", "as": who, "sel": sel}));
    }

    pub fn press(&mut self, who: &str, key: &str) {
        self.call(json!({"op": "press", "as": who, "key": key}));
    }

    /// Waits until `sel` is visible (and contains `text`, if given); its text.
    pub fn wait(&mut self, who: &str, sel: &str, text: Option<&str>, timeout: Duration) -> String {
        let ms = timeout.as_millis() as u64;
        let a =
            self.call(json!({"op": "wait", "as": who, "sel": sel, "text": text, "timeout_ms": ms}));
        a["text"].as_str().unwrap_or_default().to_string()
    }

    pub fn text(&mut self, who: &str, sel: &str) -> String {
        let a = self.call(json!({"op": "text", "as": who, "sel": sel}));
        a["text"].as_str().unwrap_or_default().to_string()
    }

    pub fn count(&mut self, who: &str, sel: &str) -> u64 {
        let a = self.call(json!({"op": "count", "as": who, "sel": sel}));
        a["n"].as_u64().unwrap_or(0)
    }

    pub fn attr(&mut self, who: &str, sel: &str, name: &str) -> Option<String> {
        let a = self.call(json!({"op": "attr", "as": who, "sel": sel, "name": name}));
        a["value"].as_str().map(str::to_string)
    }

    pub fn current_url(&mut self, who: &str) -> String {
        let a = self.call(json!({"op": "url", "as": who}));
        a["url"].as_str().unwrap_or_default().to_string()
    }

    /// Messages the page logged, errors included (a CSP violation shows here).
    pub fn console_messages(&mut self, who: &str) -> Vec<String> {
        let a = self.call(json!({"op": "url", "as": who}));
        serde_json::from_value(a["console"].clone()).unwrap_or_default()
    }

    /// The text of the focused element.
    pub fn focused(&mut self, who: &str) -> String {
        let a = self.call(json!({"op": "focused", "as": who}));
        a["text"].as_str().unwrap_or_default().to_string()
    }

    pub fn screenshot(&mut self, who: &str, path: &Path) {
        let path = path.display().to_string();
        self.call(json!({"op": "screenshot", "as": who, "path": path}));
    }

    /// axe-core's serious and critical violations on the current page.
    pub fn axe(&mut self, who: &str) -> Vec<Value> {
        let a = self.call(json!({"op": "axe", "as": who}));
        a["violations"].as_array().cloned().unwrap_or_default()
    }

    /// Clicks `sel` and saves the download it starts into `dir`; its path and name.
    pub fn download(&mut self, who: &str, sel: &str, dir: &Path) -> (PathBuf, String) {
        let dir = dir.display().to_string();
        let a = self.call(json!({"op": "download", "as": who, "sel": sel, "dir": dir}));
        let name = a["name"].as_str().unwrap_or_default().to_string();
        (PathBuf::from(a["path"].as_str().unwrap_or_default()), name)
    }

    /// A form POST to `path` with `who`'s cookies, not from a page: the status and where a
    /// redirect points.
    pub fn post(&mut self, who: &str, path: &str, form: Value) -> (u16, String) {
        let url = self.url(path);
        let a = self.call(json!({"op": "post", "as": who, "url": url, "form": form}));
        let status = a["status"].as_u64().unwrap_or(0) as u16;
        (
            status,
            a["location"].as_str().unwrap_or_default().to_string(),
        )
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "close"}));
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The driver's answer to `request`; panics with its error if it failed.
fn succeeded(request: &Value, answer: Value) -> Value {
    assert!(
        answer["ok"] == true,
        "browser request {request} failed: {}",
        answer["error"]
    );
    answer
}
