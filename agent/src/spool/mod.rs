//! The durable outbound queue: every event the agent accepts gets the next per-agent sequence
//! number and is appended to checksummed segment files in the state directory (fsynced before
//! it counts as accepted). Events leave only when the controller acknowledges having stored
//! them; whole acknowledged segments are then deleted. When the spool hits its bound, the
//! oldest segment goes and an `events_lost` event records exactly how many events and which
//! sequence range were lost. A torn or corrupt tail is detected at open, cut off and reported.

mod segment;

use cordon_proto::files::{PRIVATE, atomic_write};
use cordon_proto::{AgentNotice, Event, event};
use segment::{Damage, Record, Segment};
use std::collections::VecDeque;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Most bytes kept on disk before the oldest events are dropped (and counted).
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

/// What opening the spool found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Corrupt or torn regions cut off.
    pub corrupt_regions: u64,
    pub corrupt_bytes: u64,
    /// Sequence numbers passed over because damage in the newest segment may have hidden
    /// events that were already sent: none of them is used again.
    pub skipped: Option<(u64, u64)>,
    /// The sequence numbers (first, last) of unacknowledged events that damage to an older
    /// segment cut, exactly: those between the damaged segment's last good record and the
    /// next segment's first.
    pub cut: Vec<(u64, u64)>,
}

pub struct Spool {
    cfg: SpoolConfig,
    segments: VecDeque<Segment>,
    next_seq: u64,
    /// Sequence numbers below this may have been handed out; it is on disk before any is.
    reserved: u64,
    acked: u64,
    /// Events lost to the bound since the last report: how many, and the sequence range
    /// they were dropped from.
    lost: Option<(u64, u64, u64)>,
    /// Events lost to the bound since the spool was opened.
    lost_total: u64,
    /// When `acked` was last written to disk.
    acked_written: Option<std::time::Instant>,
    /// The newest events appended and not yet read: the next read takes them from memory
    /// instead of reading and decoding them back from the file. At most FRESH of them;
    /// anything else is read from disk.
    fresh: VecDeque<Event>,
}

/// Most events kept in memory for the next read.
const FRESH: usize = 4096;

/// A batch that did not reach the disk: every event of it, to append again, and why.
#[derive(Debug, thiserror::Error)]
#[error("appending {} events to the spool: {error}", items.len())]
pub struct AppendFailed {
    pub items: Vec<Event>,
    #[source]
    pub error: SpoolError,
}

/// Where the spool stood before an append, to go back to if it fails.
struct Undo {
    next_seq: u64,
    segments: usize,
    back: Option<segment::Position>,
}

const ACKED_FILE: &str = "acked";
const RESERVED_FILE: &str = "reserved";
/// Sequence numbers reserved on disk at a time.
const RESERVE: u64 = 1 << 16;
/// The acknowledged number is written at most this often (and always before a segment goes):
/// after a restart the controller is sent at most this much of what it already has again,
/// and stores it once.
const ACKED_WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The unacknowledged sequence numbers lost to damage in older segments: after a damaged
/// segment's last good record (or the segment before it, or the acknowledged number) up to the
/// first record of the next segment that has one.
fn cut_ranges(segments: &VecDeque<Segment>, damaged: &[bool], acked: u64) -> Vec<(u64, u64)> {
    let mut cut = Vec::new();
    let mut good_through = acked;
    for (i, seg) in segments.iter().enumerate() {
        if let Some(l) = seg.last_seq {
            good_through = good_through.max(l);
        }
        if !damaged[i] {
            continue;
        }
        let next = segments.iter().skip(i + 1).find_map(|s| s.first_seq);
        if let Some(next) = next.filter(|n| *n > good_through + 1) {
            cut.push((good_through + 1, next - 1));
        }
    }
    cut
}

fn read_number(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

impl Spool {
    /// Opens (or creates) the spool, checking every record.
    pub fn open(cfg: SpoolConfig) -> Result<(Self, OpenReport), SpoolError> {
        cordon_proto::files::private_dir(&cfg.dir).map_err(io(&cfg.dir))?;
        let acked = read_number(&cfg.dir.join(ACKED_FILE));
        let reserved = read_number(&cfg.dir.join(RESERVED_FILE));
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&cfg.dir)
            .map_err(io(&cfg.dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        paths.sort();
        let mut report = OpenReport::default();
        let mut segments = VecDeque::new();
        let count = paths.len();
        let mut newest_corrupt = false;
        let mut damaged = Vec::with_capacity(count);
        for (i, path) in paths.into_iter().enumerate() {
            let newest = i + 1 == count;
            let (seg, bad) = Segment::scan(path, newest)?;
            damaged.push(bad.is_some() && !newest);
            if let Some((bytes, damage)) = bad {
                report.corrupt_regions += 1;
                report.corrupt_bytes += bytes;
                newest_corrupt |= newest && damage == Damage::Corrupt;
            }
            segments.push_back(seg);
        }
        report.cut = cut_ranges(&segments, &damaged, acked);
        let last = segments.iter().rev().find_map(|s| s.last_seq).unwrap_or(0);
        let mut next_seq = last.max(acked) + 1;
        // The damaged tail of the newest segment may have held events already sent (and
        // perhaps stored): handing their numbers out again would have the controller drop the
        // new events as duplicates. Skip to the end of the reserved block instead.
        if newest_corrupt && reserved > next_seq {
            report.skipped = Some((next_seq, reserved - 1));
            next_seq = reserved;
        }
        let mut spool = Self {
            cfg,
            segments,
            next_seq,
            reserved,
            acked,
            lost: None,
            lost_total: 0,
            acked_written: None,
            fresh: VecDeque::new(),
        };
        spool.trim_acked()?;
        Ok((spool, report))
    }

    /// Appends events (time and body), assigning sequence numbers; durable on return.
    /// Returns the last sequence number used. A batch that does not reach the disk (a full
    /// disk) is handed back whole in the error, and the spool is as it was before it, so the
    /// caller can keep the events and try again: nothing is lost, nothing is half written.
    pub fn append(&mut self, items: Vec<Event>) -> Result<u64, AppendFailed> {
        let undo = self.undo_point();
        if let Err(error) = self.reserve(self.next_seq + items.len() as u64 + 1) {
            return Err(AppendFailed { items, error });
        }
        let mut events = Vec::with_capacity(items.len());
        let mut rest = items.into_iter();
        let written = rest
            .by_ref()
            .try_for_each(|event| self.write(event, &mut events))
            .and_then(|()| self.sync());
        if let Err(error) = written {
            self.rewind(undo);
            let mut items = events;
            items.extend(rest);
            return Err(AppendFailed { items, error });
        }
        for ev in events {
            if self.fresh.len() >= FRESH {
                self.fresh.pop_front();
            }
            self.fresh.push_back(ev);
        }
        // The batch is durable: what follows only tidies up, and its failure must not have
        // the caller append the batch again.
        if let Err(e) = self.after_append() {
            tracing::warn!(error = %e, "enforcing the spool bound failed; retried on the next append");
        }
        Ok(self.next_seq - 1)
    }

    /// Makes sure every sequence number below `end` is reserved on disk before any is used.
    fn reserve(&mut self, end: u64) -> Result<(), SpoolError> {
        if end <= self.reserved {
            return Ok(());
        }
        let reserved = end.max(self.next_seq + RESERVE);
        let path = self.cfg.dir.join(RESERVED_FILE);
        atomic_write(&path, reserved.to_string().as_bytes(), PRIVATE).map_err(io(&path))?;
        self.reserved = reserved;
        Ok(())
    }

    fn undo_point(&self) -> Undo {
        Undo {
            next_seq: self.next_seq,
            segments: self.segments.len(),
            back: self.segments.back().map(Segment::position),
        }
    }

    /// Puts the spool back where `undo` was taken: segments made since are removed, the one
    /// appended to is cut back, the sequence numbers are handed out again. Only if the file
    /// cannot be cut are the numbers skipped instead (whatever part of the batch is in the
    /// sealed file may then be sent as well as its retry: twice, never lost).
    fn rewind(&mut self, undo: Undo) {
        while self.segments.len() > undo.segments {
            if let Some(seg) = self.segments.pop_back() {
                let _ = seg.remove();
            }
        }
        let cut = match (self.segments.back_mut(), &undo.back) {
            (Some(seg), Some(pos)) => seg.rewind(pos),
            _ => Ok(()),
        };
        match cut {
            Ok(()) => self.next_seq = undo.next_seq,
            Err(e) => {
                tracing::warn!(error = %e, "cutting a failed append off the spool failed; its sequence numbers are skipped");
                if let Some(seg) = self.segments.back_mut() {
                    seg.sealed = true;
                }
            }
        }
    }

    fn after_append(&mut self) -> Result<(), SpoolError> {
        self.enforce_bound()?;
        // Say what the bound cost at once, right behind the events that displaced it.
        if let Some((count, from, to)) = self.lost.take() {
            let notice = AgentNotice {
                kind: "events_lost".into(),
                message: format!(
                    "spool full: {count} events dropped (sequence numbers {from} to {to}) before the controller stored them"
                ),
                count,
                first_seq: from,
                last_seq: to,
            };
            let mut written = Vec::new();
            let notice = Event {
                time_ms: cordon_proto::time::now_ms(),
                body: Some(event::Body::Notice(notice)),
                ..Default::default()
            };
            self.write(notice, &mut written)?;
            self.sync()?;
            self.fresh.extend(written);
        }
        Ok(())
    }

    /// Numbers and encodes one event onto the newest segment; it lands in `events` (with its
    /// body) as soon as it has its number, so a failure never loses it.
    /// Numbers `event` with the next sequence number and writes it.
    fn write(&mut self, mut event: Event, events: &mut Vec<Event>) -> Result<(), SpoolError> {
        let seq = self.next_seq;
        self.reserve(seq + 1)?;
        self.next_seq += 1;
        event.seq = seq;
        events.push(event);
        let record = events.last().map(Record::encode).unwrap_or_default();
        self.writable()?.push(seq, &record)
    }

    fn sync(&mut self) -> Result<(), SpoolError> {
        match self.segments.back_mut() {
            Some(seg) => seg.sync(),
            None => Ok(()),
        }
    }

    /// The segment to append to, rolling to a new one when the current one is full.
    fn writable(&mut self) -> Result<&mut Segment, SpoolError> {
        let roll = self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= self.cfg.segment_bytes || s.sealed);
        if roll {
            if let Some(seg) = self.segments.back_mut() {
                seg.sync()?;
                seg.sealed = true;
            }
            let path = self.cfg.dir.join(format!("{:020}.seg", self.next_seq));
            self.segments.push_back(Segment::create(path)?);
        }
        Ok(self
            .segments
            .back_mut()
            .expect("a segment was just ensured"))
    }

    fn enforce_bound(&mut self) -> Result<(), SpoolError> {
        while self.bytes() > self.cfg.max_bytes && self.segments.len() > 1 {
            let Some(oldest) = self.segments.pop_front() else {
                break;
            };
            if let (Some(first), Some(last)) = (oldest.first_seq, oldest.last_seq) {
                let from = first.max(self.acked + 1);
                if last >= from {
                    // Count the events dropped; a loss report dropped with them passes its
                    // own count and range on, so the total stays exact and the range covers
                    // every sequence number lost.
                    let mut events = Vec::new();
                    oldest.read_into(from, usize::MAX, &mut events)?;
                    let mut first = from;
                    let mut count = 0;
                    for ev in &events {
                        count += match &ev.body {
                            Some(event::Body::Notice(n)) if n.kind == "events_lost" => {
                                if n.first_seq > 0 {
                                    first = first.min(n.first_seq);
                                }
                                n.count
                            }
                            _ => 1,
                        };
                    }
                    self.lost_total += count;
                    self.lost = Some(match self.lost {
                        Some((c, f, _)) => (c + count, f.min(first), last),
                        None => (count, first, last),
                    });
                    tracing::error!(
                        count,
                        from,
                        to = last,
                        "spool full: dropped the oldest events"
                    );
                }
            }
            if let Some(last) = oldest.last_seq {
                while self.fresh.front().is_some_and(|e| e.seq <= last) {
                    self.fresh.pop_front();
                }
            }
            oldest.remove()?;
        }
        Ok(())
    }

    /// Reads up to `max_events` events with seq >= `from`, in order. Events read for the
    /// first time come from memory; any read again (after a broken stream) from disk.
    pub fn read_from(&mut self, from: u64, max_events: usize) -> Result<Vec<Event>, SpoolError> {
        while self.fresh.front().is_some_and(|e| e.seq < from) {
            self.fresh.pop_front();
        }
        if self.fresh.front().is_some_and(|e| e.seq == from) {
            let n = max_events.min(self.fresh.len());
            return Ok(self.fresh.drain(..n).collect());
        }
        let mut out = Vec::new();
        for seg in &self.segments {
            if seg.last_seq.is_none_or(|l| l < from) {
                continue;
            }
            seg.read_into(from, max_events, &mut out)?;
            if out.len() >= max_events {
                break;
            }
        }
        Ok(out)
    }

    /// The controller has stored everything through `seq`: forget it.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        let seq = seq.min(self.next_seq - 1);
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        let trims = self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| s.last_seq.is_none_or(|l| l <= seq));
        if trims
            || self
                .acked_written
                .is_none_or(|t| t.elapsed() >= ACKED_WRITE_EVERY)
        {
            let path = self.cfg.dir.join(ACKED_FILE);
            atomic_write(&path, seq.to_string().as_bytes(), PRIVATE).map_err(io(&path))?;
            self.acked_written = Some(std::time::Instant::now());
        }
        self.trim_acked()
    }

    fn trim_acked(&mut self) -> Result<(), SpoolError> {
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| s.last_seq.is_none_or(|l| l <= self.acked))
        {
            if let Some(seg) = self.segments.pop_front() {
                seg.remove()?;
            }
        }
        Ok(())
    }

    /// Events lost to the bound since the spool was opened.
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Events not yet acknowledged.
    pub fn depth(&self) -> u64 {
        self.last_seq() - self.acked
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
}

#[cfg(test)]
mod tests;
