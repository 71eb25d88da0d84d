//! What a read of a fanotify group in FID mode (`FAN_REPORT_DFID_NAME`) returns, parsed by
//! hand: neither nix nor rustix reads the info records that follow each event's metadata.
//! Every length is the kernel's word, so each one is checked against the buffer: a record
//! that does not fit ends the batch with an error, an info record of a type not known here
//! is skipped. The layouts (linux/fanotify.h):
//!
//! ```text
//! metadata: u32 event_len, u8 vers, u8 reserved, u16 metadata_len, u64 mask, i32 fd, i32 pid
//! info:     u8 info_type, u8 pad, u16 len, then for the FID types:
//!           i32 fsid[2], u32 handle_bytes, i32 handle_type, handle, [name NUL-terminated]
//! ```

use thiserror::Error;

/// `FANOTIFY_METADATA_VERSION`.
pub const VERSION: u8 = 3;
const METADATA_LEN: usize = 24;
const INFO_HEADER_LEN: usize = 4;
/// fsid (8 bytes), handle_bytes, handle_type.
const FID_FIXED_LEN: usize = 16;
/// `MAX_HANDLE_SZ`: the kernel never encodes a longer handle.
pub const MAX_HANDLE: usize = 128;

/// Which object an info record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKind {
    /// The object itself (`FAN_EVENT_INFO_TYPE_FID`).
    Fid,
    /// The directory the entry is in, with the entry's name.
    DfidName,
    /// The directory only (the name was not reported).
    Dfid,
    /// A rename's old directory and name.
    OldDfidName,
    /// A rename's new directory and name.
    NewDfidName,
}

impl InfoKind {
    fn from_type(t: u8) -> Option<Self> {
        Some(match t {
            1 => Self::Fid,
            2 => Self::DfidName,
            3 => Self::Dfid,
            10 => Self::OldDfidName,
            12 => Self::NewDfidName,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            Self::Fid => 1,
            Self::DfidName => 2,
            Self::Dfid => 3,
            Self::OldDfidName => 10,
            Self::NewDfidName => 12,
        }
    }

    fn has_name(self) -> bool {
        matches!(self, Self::DfidName | Self::OldDfidName | Self::NewDfidName)
    }
}

/// A file handle as `open_by_handle_at` takes it, with the filesystem it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    pub fsid: [i32; 2],
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

/// One info record of a known type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub kind: InfoKind,
    pub handle: Handle,
    /// The entry's name in the directory (empty for `Fid` and `Dfid`; "." for the directory
    /// itself).
    pub name: Vec<u8>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub mask: u64,
    /// The process that caused it (thread group id).
    pub pid: i32,
    pub infos: Vec<Info>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("fanotify event at byte {offset}: metadata version {version}, expected {VERSION}")]
    Version { offset: usize, version: u8 },
    #[error("fanotify event at byte {offset}: length {len} does not fit the {left} bytes left")]
    EventLength {
        offset: usize,
        len: usize,
        left: usize,
    },
    #[error("fanotify event at byte {offset}: metadata length {len} is not within the event")]
    MetadataLength { offset: usize, len: usize },
    #[error("fanotify info record at byte {offset}: length {len} does not fit its event")]
    InfoLength { offset: usize, len: usize },
    #[error("fanotify info record at byte {offset}: a handle of {len} bytes does not fit it")]
    HandleLength { offset: usize, len: usize },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(|v| v as i32)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parses every event in `buf`, stopping at the first that does not hold together (the
/// events before it are kept).
pub fn parse(buf: &[u8]) -> (Vec<Record>, Option<RecordError>) {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        match parse_one(buf, offset) {
            Ok((record, len)) => {
                out.push(record);
                offset += len;
            }
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// The event at `offset` and its length.
fn parse_one(buf: &[u8], offset: usize) -> Result<(Record, usize), RecordError> {
    let left = buf.len() - offset;
    let short = RecordError::EventLength {
        offset,
        len: METADATA_LEN,
        left,
    };
    let len = u32_at(buf, offset).ok_or(short)? as usize;
    if len < METADATA_LEN || len > left {
        return Err(RecordError::EventLength { offset, len, left });
    }
    let event = &buf[offset..offset + len];
    let version = event[4];
    if version != VERSION {
        return Err(RecordError::Version { offset, version });
    }
    let meta_len = u16_at(event, 6).unwrap_or_default() as usize;
    if !(METADATA_LEN..=len).contains(&meta_len) {
        return Err(RecordError::MetadataLength {
            offset,
            len: meta_len,
        });
    }
    let mask = u64_at(event, 8).unwrap_or_default();
    let pid = i32_at(event, 20).unwrap_or_default();
    let mut infos = Vec::new();
    let mut at = meta_len;
    while at < len {
        let info_offset = offset + at;
        let info_len = u16_at(event, at + 2).map_or(0, usize::from);
        if info_len < INFO_HEADER_LEN || at + info_len > len {
            return Err(RecordError::InfoLength {
                offset: info_offset,
                len: info_len,
            });
        }
        let body = &event[at..at + info_len];
        if let Some(kind) = InfoKind::from_type(body[0]) {
            infos.push(parse_fid(kind, body, info_offset)?);
        }
        at += info_len;
    }
    Ok((Record { mask, pid, infos }, len))
}

/// One FID info record (`body` starts at its header).
fn parse_fid(kind: InfoKind, body: &[u8], offset: usize) -> Result<Info, RecordError> {
    let fixed = INFO_HEADER_LEN + FID_FIXED_LEN;
    if body.len() < fixed {
        return Err(RecordError::InfoLength {
            offset,
            len: body.len(),
        });
    }
    // Within `fixed`, checked just above.
    let fsid = [
        i32_at(body, 4).unwrap_or_default(),
        i32_at(body, 8).unwrap_or_default(),
    ];
    let handle_len = u32_at(body, 12).unwrap_or_default() as usize;
    let handle_type = i32_at(body, 16).unwrap_or_default();
    let bytes = body
        .get(fixed..)
        .and_then(|rest| rest.get(..handle_len))
        .filter(|_| handle_len <= MAX_HANDLE)
        .ok_or(RecordError::HandleLength {
            offset,
            len: handle_len,
        })?
        .to_vec();
    let name = if kind.has_name() {
        let rest = &body[fixed + handle_len..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        rest[..end].to_vec()
    } else {
        Vec::new()
    };
    Ok(Info {
        kind,
        handle: Handle {
            fsid,
            handle_type,
            bytes,
        },
        name,
    })
}

/// The bytes the kernel would give for `record` (padded as it pads): for tests, the fuzz
/// target and its seed corpus.
pub fn encode(record: &Record) -> Vec<u8> {
    let mut infos = Vec::new();
    for info in &record.infos {
        let mut body = vec![info.kind.code(), 0, 0, 0];
        body.extend(info.handle.fsid[0].to_ne_bytes());
        body.extend(info.handle.fsid[1].to_ne_bytes());
        body.extend((info.handle.bytes.len() as u32).to_ne_bytes());
        body.extend(info.handle.handle_type.to_ne_bytes());
        body.extend(&info.handle.bytes);
        if info.kind.has_name() {
            body.extend(&info.name);
            body.push(0);
        }
        body.resize(body.len().next_multiple_of(4), 0);
        let len = body.len() as u16;
        body[2..4].copy_from_slice(&len.to_ne_bytes());
        infos.extend(body);
    }
    let len = (METADATA_LEN + infos.len()) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend(len.to_ne_bytes());
    out.extend([VERSION, 0]);
    out.extend((METADATA_LEN as u16).to_ne_bytes());
    out.extend(record.mask.to_ne_bytes());
    out.extend((-1i32).to_ne_bytes()); // FAN_NOFD: FID groups get no file descriptors
    out.extend(record.pid.to_ne_bytes());
    out.extend(infos);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: InfoKind, name: &str) -> Info {
        Info {
            kind,
            handle: Handle {
                fsid: [7, -3],
                handle_type: 1,
                bytes: vec![0xaa; 8],
            },
            name: name.as_bytes().to_vec(),
        }
    }

    fn rename() -> Record {
        Record {
            mask: 0x1000_0000,
            pid: 4242,
            infos: vec![
                info(InfoKind::OldDfidName, "old"),
                info(InfoKind::NewDfidName, "new-name"),
            ],
        }
    }

    #[test]
    fn events_with_their_directories_and_names_round_trip() {
        let create = Record {
            mask: 0x100,
            pid: 1,
            infos: vec![info(InfoKind::DfidName, "authorized_keys")],
        };
        let mut buf = encode(&create);
        buf.extend(encode(&rename()));
        let (records, err) = parse(&buf);
        assert_eq!(err, None);
        assert_eq!(records, vec![create, rename()]);
        assert_eq!(records[1].infos[1].name, b"new-name");
    }

    #[test]
    fn an_overflow_has_no_info_and_unknown_info_types_are_skipped() {
        let overflow = Record {
            mask: 0x4000,
            pid: 0,
            infos: vec![],
        };
        let mut buf = encode(&overflow);
        // A pidfd record (type 4, 8 bytes) the parser does not read: skipped, not an error.
        let mut ev = encode(&rename());
        ev.extend([4, 0, 8, 0, 9, 0, 0, 0]);
        let len = ev.len() as u32;
        ev[..4].copy_from_slice(&len.to_ne_bytes());
        buf.extend(ev);
        let (records, err) = parse(&buf);
        assert_eq!(err, None);
        assert_eq!(records, vec![overflow, rename()]);
    }

    #[test]
    fn lengths_that_do_not_fit_end_the_batch_with_the_offset() {
        let good = encode(&rename());
        let at = good.len();
        let mut buf = good.clone();
        buf.extend(&good[..30]);
        let (records, err) = parse(&buf);
        assert_eq!(records.len(), 1);
        assert_eq!(
            err,
            Some(RecordError::EventLength {
                offset: at,
                len: good.len(),
                left: 30
            })
        );
        // A handle longer than its info record.
        let mut bad = good.clone();
        bad[24 + 12..24 + 16].copy_from_slice(&200u32.to_ne_bytes());
        let (records, err) = parse(&bad);
        assert!(records.is_empty());
        assert_eq!(
            err,
            Some(RecordError::HandleLength {
                offset: 24,
                len: 200
            })
        );
        // An info record running past its event.
        let mut bad = good.clone();
        bad[24 + 2..24 + 4].copy_from_slice(&999u16.to_ne_bytes());
        assert_eq!(
            parse(&bad).1,
            Some(RecordError::InfoLength {
                offset: 24,
                len: 999
            })
        );
        let mut bad = good;
        bad[4] = 2;
        assert_eq!(
            parse(&bad).1,
            Some(RecordError::Version {
                offset: 0,
                version: 2
            })
        );
    }
}
