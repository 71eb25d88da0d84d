//! The fault driver: every few seconds one fault at random (the controller killed with
//! SIGKILL and restarted, an agent killed and restarted a moment later, a host's link cut and
//! restored, a spool's file system filled and freed, a spool segment corrupted while its agent
//! is down), isolate and release orders on a cadence of their own, and memory sampled once a
//! second. What a fault undoes later is kept as due work; at the end everything is restored.

use super::commander::Commander;
use super::hosts::{Host, corrupt_middle_segment};
use super::rss::Sampler;
use crate::deploy::Deployment;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Work a fault left for later.
#[derive(Debug, Clone, Copy)]
enum Undo {
    Link(usize),
    Free(usize),
    StartAgent(usize),
}

pub struct Driver<'a> {
    pub d: &'a mut Deployment,
    pub hosts: &'a mut [Host],
    pub commander: &'a Commander,
    pub rss: &'a mut Sampler,
    rng: StdRng,
    due: Vec<(Instant, Undo)>,
    /// How many times each fault was injected.
    pub faults: BTreeMap<&'static str, usize>,
}

/// A uniformly random duration in [lo, hi] milliseconds.
fn ms(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.random_range(lo..=hi))
}

impl<'a> Driver<'a> {
    pub fn new(
        d: &'a mut Deployment,
        hosts: &'a mut [Host],
        commander: &'a Commander,
        rss: &'a mut Sampler,
        seed: u64,
    ) -> Self {
        Self {
            d,
            hosts,
            commander,
            rss,
            rng: StdRng::seed_from_u64(seed),
            due: Vec::new(),
            faults: BTreeMap::new(),
        }
    }

    /// Runs faults and orders for `length`, then restores everything.
    pub fn run(&mut self, length: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + length;
        let mut next_fault = Instant::now() + ms(&mut self.rng, 2000, 5000);
        let mut next_order = Instant::now() + ms(&mut self.rng, 1000, 3000);
        let mut next_sample = Instant::now();
        while Instant::now() < end {
            self.undo_due(false)?;
            if Instant::now() >= next_fault {
                self.fault()?;
                next_fault = Instant::now() + ms(&mut self.rng, 2000, 6000);
            }
            if Instant::now() >= next_order {
                self.order();
                next_order = Instant::now() + ms(&mut self.rng, 1500, 4000);
            }
            if Instant::now() >= next_sample {
                self.sample();
                next_sample += Duration::from_secs(1);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.undo_due(true)
    }

    fn sample(&mut self) {
        self.rss.sample("controller", self.d.controller_pid());
        for h in self.hosts.iter() {
            let pid = h.agent.proc.as_ref().map(|p| p.pid());
            self.rss.sample(&h.name, pid);
        }
    }

    fn order(&mut self) {
        let i = self.rng.random_range(0..self.hosts.len());
        let isolate = self.rng.random_bool(0.5);
        self.commander.order(&self.hosts[i].agent.id, isolate);
    }

    /// Does the work that is due (all of it when `all`).
    fn undo_due(&mut self, all: bool) -> anyhow::Result<()> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.due.drain(..).partition(|(t, _)| all || *t <= now);
        self.due = later;
        for (_, undo) in due {
            match undo {
                Undo::Link(i) => self.hosts[i].set_link(true)?,
                Undo::Free(i) => self.hosts[i].free()?,
                Undo::StartAgent(i) => self.start_agent(i),
            }
        }
        Ok(())
    }

    fn start_agent(&mut self, i: usize) {
        if !self.hosts[i].running() {
            self.d.start_agent(&mut self.hosts[i].agent);
        }
    }

    fn later(&mut self, lo: u64, hi: u64, undo: Undo) {
        let at = Instant::now() + ms(&mut self.rng, lo, hi);
        self.due.push((at, undo));
    }

    /// Injects one fault, picked at random among those that apply now.
    fn fault(&mut self) -> anyhow::Result<()> {
        let i = self.rng.random_range(0..self.hosts.len());
        let name = match self.rng.random_range(0..5) {
            0 => {
                self.d.kill9_controller();
                std::thread::sleep(ms(&mut self.rng, 200, 1500));
                self.d.start_controller();
                "controller killed and restarted"
            }
            1 if self.hosts[i].running() => {
                if let Some(p) = self.hosts[i].agent.proc.as_mut() {
                    p.kill9();
                }
                self.hosts[i].agent.proc = None;
                self.later(300, 3000, Undo::StartAgent(i));
                "agent killed and restarted"
            }
            2 if self.hosts[i].link_up => {
                self.hosts[i].set_link(false)?;
                self.later(3000, 15_000, Undo::Link(i));
                "link cut and restored"
            }
            3 if !self.hosts[i].filled => {
                self.hosts[i].fill()?;
                self.later(2000, 8000, Undo::Free(i));
                "spool file system filled and freed"
            }
            4 => match self.corrupt()? {
                true => "spool segment corrupted",
                false => "segment corruption skipped (no backlog of three segments in time)",
            },
            _ => "skipped (the host was already in that state)",
        };
        *self.faults.entry(name).or_default() += 1;
        Ok(())
    }

    /// Builds a backlog on a running host (its link cut, a burst of files made) until its
    /// spool holds three segments, then kills its agent, flips bytes in a middle segment and
    /// starts the agent again; the link comes back a moment later. False when no backlog of
    /// three segments built up in time.
    fn corrupt(&mut self) -> anyhow::Result<bool> {
        let start = self.rng.random_range(0..self.hosts.len());
        let Some(i) = (0..self.hosts.len())
            .map(|k| (start + k) % self.hosts.len())
            .find(|&i| self.hosts[i].running())
        else {
            return Ok(false);
        };
        if self.hosts[i].link_up {
            self.hosts[i].set_link(false)?;
            self.later(2000, 6000, Undo::Link(i));
        }
        self.hosts[i].burst(BURST)?;
        let host = &self.hosts[i];
        if !crate::within(Duration::from_secs(15), || host.segments().len() >= 3) {
            return Ok(false);
        }
        if let Some(p) = self.hosts[i].agent.proc.as_mut() {
            p.kill9();
        }
        self.hosts[i].agent.proc = None;
        let done = corrupt_middle_segment(&self.hosts[i].segments())?;
        self.start_agent(i);
        Ok(done)
    }
}

/// Files made at once to pile up a backlog: a few segments' worth of events.
const BURST: usize = 1500;
