//! One segment file: records of `[length u32 LE][crc32 u32 LE][encoded Event]`, appended and
//! fsynced, read back in order, checked record by record.

use super::{SpoolError, io};
use cordon_proto::Event;
use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Largest record accepted when reading back; anything larger is corruption.
const MAX_RECORD: u32 = 8 * 1024 * 1024;
const HEADER: u64 = 8;

pub struct Record;

impl Record {
    pub fn encode(ev: &Event) -> Vec<u8> {
        let payload = ev.encode_to_vec();
        let mut out = Vec::with_capacity(payload.len() + HEADER as usize);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

pub struct Segment {
    pub path: PathBuf,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub bytes: u64,
    /// No more appends (a newer segment exists).
    pub sealed: bool,
    file: Option<File>,
    /// Records pushed but not yet written: a batch goes to the file in one write, at `sync`.
    unwritten: Vec<u8>,
    /// (seq, byte offset) of every MARK_EVERY-th record, so a read starts near its first
    /// event instead of scanning the segment from the top.
    marks: Vec<(u64, u64)>,
    records: u64,
}

const MARK_EVERY: u64 = 64;

/// Where a segment stands between batches, to go back to when a batch does not reach the disk.
#[derive(Debug, Clone)]
pub struct Position {
    bytes: u64,
    records: u64,
    marks: usize,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

impl Segment {
    pub fn position(&self) -> Position {
        Position {
            bytes: self.bytes,
            records: self.records,
            marks: self.marks.len(),
            first_seq: self.first_seq,
            last_seq: self.last_seq,
        }
    }

    /// Goes back to `pos`: what was pushed since is forgotten and the file is cut back to it,
    /// so a batch that failed part way leaves no record behind and the segment takes appends
    /// again. If the file cannot be cut, the segment stays sealed.
    pub fn rewind(&mut self, pos: &Position) -> Result<(), SpoolError> {
        self.unwritten.clear();
        if let Some(f) = self.file.as_ref() {
            f.set_len(pos.bytes).map_err(io(&self.path))?;
        }
        self.bytes = pos.bytes;
        self.records = pos.records;
        self.marks.truncate(pos.marks);
        self.first_seq = pos.first_seq;
        self.last_seq = pos.last_seq;
        self.sealed = false;
        Ok(())
    }

    fn mark(&mut self, seq: u64, offset: u64) {
        if self.records.is_multiple_of(MARK_EVERY) {
            self.marks.push((seq, offset));
        }
        self.records += 1;
        self.first_seq.get_or_insert(seq);
        self.last_seq = Some(seq);
    }
}

/// How a segment's records went bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside a record: a write cut short by a crash, never synced, so never
    /// shipped.
    Torn,
    /// A record that is all there but wrong (checksum, length, encoding, or a sequence number
    /// not above the one before it): it may have been shipped before it was damaged.
    Corrupt,
}

/// Reads the next record: Ok(None) at a clean end, Err on a torn or corrupt record.
fn next_record(r: &mut impl Read) -> Result<Option<(Event, u64)>, Damage> {
    let torn = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Damage::Torn,
        _ => Damage::Corrupt,
    };
    let mut header = [0u8; HEADER as usize];
    match r.read(&mut header[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(_) => return Err(Damage::Corrupt),
    }
    r.read_exact(&mut header[1..]).map_err(torn)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Err(Damage::Corrupt);
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).map_err(torn)?;
    if crc32fast::hash(&payload) != crc {
        return Err(Damage::Corrupt);
    }
    let ev = Event::decode(payload.as_slice()).map_err(|_| Damage::Corrupt)?;
    Ok(Some((ev, HEADER + u64::from(len))))
}

impl Segment {
    pub fn create(path: PathBuf) -> Result<Self, SpoolError> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Self {
            path,
            first_seq: None,
            last_seq: None,
            bytes: 0,
            sealed: false,
            file: Some(file),
            unwritten: Vec::new(),
            marks: Vec::new(),
            records: 0,
        })
    }

    /// Reads a segment back, checking every record. A bad record ends the segment there: the
    /// last segment is cut back to its last good record (a torn write), an older one keeps its
    /// good prefix. Returns the number of bytes given up and how they were damaged, if any.
    pub fn scan(path: PathBuf, last: bool) -> Result<(Self, Option<(u64, Damage)>), SpoolError> {
        let file = File::open(&path).map_err(io(&path))?;
        let size = file.metadata().map_err(io(&path))?.len();
        let mut reader = BufReader::new(file);
        let mut seg = Self {
            path: path.clone(),
            first_seq: None,
            last_seq: None,
            bytes: 0,
            sealed: !last,
            file: None,
            unwritten: Vec::new(),
            marks: Vec::new(),
            records: 0,
        };
        let mut good = 0u64;
        let bad = loop {
            match next_record(&mut reader) {
                // Numbers only grow within a segment: a record that repeats or goes back (a
                // segment pieced together, a hostile writer) ends it as a bad checksum would.
                Ok(Some((ev, _))) if seg.last_seq.is_some_and(|l| ev.seq <= l) => {
                    break Some((size - good, Damage::Corrupt));
                }
                Ok(Some((ev, n))) => {
                    seg.mark(ev.seq, good);
                    good += n;
                }
                Ok(None) => break None,
                Err(damage) => break Some((size - good, damage)),
            }
        };
        if let Some((bytes, _)) = bad {
            tracing::error!(segment = %path.display(), bytes, "corrupt or torn spool records cut off");
            if last {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                f.set_len(good).map_err(io(&path))?;
                f.sync_all().map_err(io(&path))?;
            }
        }
        // Only the newest segment takes appends (after a torn tail, from its last good record).
        if last {
            seg.file = Some(
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io(&path))?,
            );
        }
        seg.bytes = good;
        Ok((seg, bad))
    }

    /// Appends the encoded record of event `seq`; it is in the file after the next `sync`.
    pub fn push(&mut self, seq: u64, record: &[u8]) -> Result<(), SpoolError> {
        if self.file.is_none() {
            return Err(SpoolError::Io {
                path: self.path.clone(),
                source: std::io::Error::other("segment is sealed"),
            });
        }
        self.unwritten.extend_from_slice(record);
        let offset = self.bytes;
        self.bytes += record.len() as u64;
        self.mark(seq, offset);
        Ok(())
    }

    /// Writes what was pushed and makes it durable.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if let Some(f) = self.file.as_mut() {
            if !self.unwritten.is_empty() {
                let written = f.write_all(&self.unwritten);
                self.unwritten.clear();
                if written.is_err() {
                    // Whatever part of the batch reached the file ends there; the next
                    // append starts a new segment.
                    self.sealed = true;
                }
                written.map_err(io(&self.path))?;
            }
            f.sync_data().map_err(io(&self.path))?;
        }
        Ok(())
    }

    /// Appends events with seq >= `from` to `out`, up to `max` in all.
    pub fn read_into(&self, from: u64, max: usize, out: &mut Vec<Event>) -> Result<(), SpoolError> {
        let mut file = File::open(&self.path).map_err(io(&self.path))?;
        let start = match self.marks.partition_point(|(seq, _)| *seq <= from) {
            0 => 0,
            i => self.marks[i - 1].1,
        };
        file.seek(SeekFrom::Start(start)).map_err(io(&self.path))?;
        let mut reader = BufReader::new(file.take(self.bytes - start));
        while out.len() < max {
            match next_record(&mut reader) {
                Ok(Some((ev, _))) if ev.seq >= from => out.push(ev),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        Ok(())
    }

    pub fn remove(self) -> Result<(), SpoolError> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(io(&self.path))
    }
}
