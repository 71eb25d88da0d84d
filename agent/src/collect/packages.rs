//! The `packages` collector: dpkg's installed packages with their versions, from
//! `/var/lib/dpkg/status` (under the collection's root). The parser takes the file's
//! stanzas (blank-line separated `Field: value` lines, continuation lines indented) and is
//! total: any text gives packages or nothing, never a panic (fuzz target `dpkg_status`).

use super::{Args, ArgsError, Host, Sink, row};
use serde_json::json;
use std::io::Read;

/// The largest status file read (Debian's with every package is a few MiB).
const MAX_STATUS: u64 = 256 << 20;

/// One package as dpkg records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// dpkg's "want flag status", e.g. "install ok installed".
    pub status: String,
    pub source: String,
}

impl Package {
    /// Whether dpkg considers it installed (its files on disk).
    pub fn installed(&self) -> bool {
        self.status.ends_with(" installed")
    }
}

/// The packages of a status file's text, in order; stanzas without a package name are left
/// out.
pub fn parse(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut current = Package::default();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !current.name.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current = Package::default();
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue; // a continuation of a multi-line field
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match field {
            "Package" => current.name = value,
            "Version" => current.version = value,
            "Architecture" => current.architecture = value,
            "Status" => current.status = value,
            "Source" => current.source = value,
            _ => {}
        }
    }
    out
}

/// The `packages` collector takes no arguments.
pub fn check(args: &Args) -> Result<(), ArgsError> {
    args.only(&[])
}

pub fn collect(host: &Host, sink: &mut Sink) {
    let path = host.path("/var/lib/dpkg/status");
    let mut text = String::new();
    let read =
        std::fs::File::open(&path).and_then(|f| f.take(MAX_STATUS).read_to_string(&mut text));
    if let Err(e) = read {
        sink.error(format!("{}: {e}", path.display()));
        return;
    }
    for p in parse(&text).into_iter().filter(Package::installed) {
        let source = (!p.source.is_empty()).then_some(p.source);
        let flow = sink.push(row([
            ("name", json!(p.name)),
            ("version", json!(p.version)),
            ("architecture", json!(p.architecture)),
            ("source", json!(source)),
        ]));
        if flow.is_break() {
            return;
        }
    }
}
