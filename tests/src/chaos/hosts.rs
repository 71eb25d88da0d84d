//! The soak's hosts: each agent in a network namespace of its own, joined to the controller's
//! by a veth pair and routed to its address, with its spool on a small tmpfs (so the driver can
//! fill that file system) and a directory its file sensor watches.

use crate::deploy::{AgentHandle, Deployment};
use crate::netns::{Netns, link, set_link};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Each spool's file system: room for the spool's 1 MiB bound and the agent's state files,
/// little enough to fill in a moment.
const SPOOL_FS: &str = "size=4m,mode=0700";

/// The agent settings of the soak: the smallest spool bound (1 MiB, in 64 KiB segments), so a
/// cut link overflows it within the run and segments pile up to be corrupted.
const AGENT_TOML: &str = "spool_max_bytes = 1048576\n";

/// One soak host (fields drop in order: the agent's process first, then its spool's file
/// system, then its namespace).
pub struct Host {
    pub name: String,
    pub agent: AgentHandle,
    pub watch: PathBuf,
    spool_fs: Tmpfs,
    dev: String,
    /// The controller's end of this host's link, the route to the controller's address.
    gateway: String,
    pub ns: Netns,
    pub link_up: bool,
    pub filled: bool,
    /// Bursts of files made so far.
    bursts: usize,
}

impl Host {
    /// Makes host `i`: namespace, link and route, tmpfs spool, enrolment, start.
    pub fn start(d: &Deployment, i: usize) -> anyhow::Result<Self> {
        let ctl_ns = d.ctl_ns.as_ref().context("a namespace deployment")?;
        let ns = Netns::new(&format!("chaos{i}"));
        let net = 40 + i;
        let (_, dev) = link(
            ctl_ns,
            &format!("10.231.{net}.1/24"),
            &ns,
            &format!("10.231.{net}.2/24"),
        );
        let gateway = format!("10.231.{net}.1");
        route(&ns, &gateway)?;
        let name = format!("chaos{i}");
        let mut agent = d.enroll_agent_in(&name, &ns.name);
        let watch = d.dir.path().join(format!("{name}-watch"));
        std::fs::create_dir(&watch)?;
        let spool_fs = Tmpfs::mount(&agent.spool_dir())?;
        let dir = toml::Value::from(watch.display().to_string());
        agent.configure(&format!(
            "{AGENT_TOML}[files]\nmode = \"inotify\"\nwatch = [{dir}]\nrecursive = []\n"
        ));
        d.start_agent(&mut agent);
        d.wait_online(&agent, true, Duration::from_secs(30));
        Ok(Self {
            name,
            agent,
            watch,
            spool_fs,
            dev,
            gateway,
            ns,
            link_up: true,
            filled: false,
            bursts: 0,
        })
    }

    /// Takes the agent's end of its link down or up. (Taking it down drops the route through
    /// it, so bringing it up puts the route back.)
    pub fn set_link(&mut self, up: bool) -> anyhow::Result<()> {
        set_link(&self.ns, &self.dev, up);
        if up {
            route(&self.ns, &self.gateway)?;
        }
        self.link_up = up;
        Ok(())
    }

    /// Fills the spool's file system (a file of zeros until it is full).
    pub fn fill(&mut self) -> anyhow::Result<()> {
        self.spool_fs.fill()?;
        self.filled = true;
        Ok(())
    }

    /// Frees what [`Self::fill`] took.
    pub fn free(&mut self) -> anyhow::Result<()> {
        self.spool_fs.free()?;
        self.filled = false;
        Ok(())
    }

    /// Makes `n` files at once in the watched directory (names of their own, so each is
    /// counted once).
    pub fn burst(&mut self, n: usize) -> anyhow::Result<()> {
        self.bursts += 1;
        for j in 0..n {
            let name = format!("burst-{}-{j:05}", self.bursts);
            std::fs::write(self.watch.join(name), b"burst")?;
        }
        Ok(())
    }

    /// The spool's segment files, oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        let mut segs: Vec<PathBuf> = std::fs::read_dir(self.agent.spool_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        segs.sort();
        segs
    }

    pub fn running(&self) -> bool {
        self.agent.proc.is_some()
    }
}

/// Flips 16 bytes in the middle of the spool segment that is neither the oldest nor the
/// newest; false when there are fewer than three.
pub fn corrupt_middle_segment(segments: &[PathBuf]) -> anyhow::Result<bool> {
    let [_, middle, _, ..] = segments else {
        return Ok(false);
    };
    let mut bytes = std::fs::read(middle)?;
    let mid = bytes.len() / 2;
    let Some(span) = bytes.get_mut(mid..mid + 16) else {
        return Ok(false);
    };
    span.iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(middle, bytes)?;
    Ok(true)
}

/// A tmpfs mounted by the soak, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

/// The filler file [`Tmpfs::fill`] writes.
const FILLER: &str = "chaos-filler";

impl Tmpfs {
    fn mount(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", SPOOL_FS, "tmpfs"])
            .arg(dir)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "mount tmpfs on {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes zeros until the file system is full (at most its size).
    fn fill(&self) -> anyhow::Result<()> {
        let mut f = std::fs::File::create(self.dir.join(FILLER))?;
        let chunk = vec![0u8; 64 << 10];
        for _ in 0..64 {
            if f.write_all(&chunk).is_err() {
                return Ok(());
            }
        }
        bail!("{} did not fill up", self.dir.display())
    }

    fn free(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.dir.join(FILLER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

/// The controller listens on its address on the deployment's own link: reached from a host
/// through the controller's end of the host's link.
fn route(ns: &Netns, gateway: &str) -> anyhow::Result<()> {
    let route = ["route", "replace", "10.231.0.0/24", "via", gateway];
    ip(&[&["-n", ns.name.as_str()][..], &route[..]].concat())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
