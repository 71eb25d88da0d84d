//! The login accounting files (utmp, wtmp, btmp) on glibc x86-64: a sequence of 384-byte
//! `struct utmp` records (bits/utmp.h with `__WORDSIZE_TIME64_COMPAT32`, so the session and
//! the time are 32-bit). Read as a stream, one record at a time; a short tail is an error
//! (a file cut while written, or not a utmp file), never a panic. Any 384 bytes are a
//! record: a type outside the known ones is named `unknown(N)`.
//!
//! Layout (byte offsets): `ut_type` i16 at 0 (2 bytes padding), `ut_pid` i32 at 4, `ut_line`
//! [32] at 8, `ut_id` [4] at 40, `ut_user` [32] at 44, `ut_host` [256] at 76, `ut_exit` 2×i16
//! at 332, `ut_session` i32 at 336, `tv_sec` i32 at 340, `tv_usec` i32 at 344, `ut_addr_v6`
//! 4×i32 at 348 (network order), 20 reserved bytes at 364.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The size of one record.
pub const RECORD: usize = 384;

const LINE: (usize, usize) = (8, 32);
const ID: (usize, usize) = (40, 4);
const USER: (usize, usize) = (44, 32);
const HOST: (usize, usize) = (76, 256);

/// One record, its strings cut at their first NUL (they need not have one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub kind: i16,
    pub pid: i32,
    pub line: Vec<u8>,
    pub id: Vec<u8>,
    pub user: Vec<u8>,
    pub host: Vec<u8>,
    pub exit: (i16, i16),
    pub session: i32,
    /// Seconds since the epoch (the file's 32 bits read as unsigned, good to 2106).
    pub time: u32,
    pub usec: i32,
    /// The remote address: IPv4 when only the first word is set, else IPv6.
    pub addr: Option<IpAddr>,
}

/// Why a utmp file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum UtmpError {
    #[error("reading the record at byte {offset}: {source}")]
    Read { offset: u64, source: std::io::Error },
    #[error("truncated record at byte {offset}: {len} of {RECORD} bytes")]
    Truncated { offset: u64, len: usize },
}

/// The name of a record type (`ut_type`).
pub fn type_name(kind: i16) -> String {
    let name = match kind {
        0 => "empty",
        1 => "run_level",
        2 => "boot_time",
        3 => "new_time",
        4 => "old_time",
        5 => "init_process",
        6 => "login_process",
        7 => "user_process",
        8 => "dead_process",
        9 => "accounting",
        n => return format!("unknown({n})"),
    };
    name.to_string()
}

fn i16_at(b: &[u8; RECORD], at: usize) -> i16 {
    i16::from_ne_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8; RECORD], at: usize) -> i32 {
    i32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn text(b: &[u8; RECORD], (at, len): (usize, usize)) -> Vec<u8> {
    let field = &b[at..at + len];
    let end = field.iter().position(|&c| c == 0).unwrap_or(len);
    field[..end].to_vec()
}

fn address(raw: &[u8]) -> Option<IpAddr> {
    let bytes: [u8; 16] = raw.try_into().ok()?;
    if bytes == [0; 16] {
        None
    } else if bytes[4..] == [0; 12] {
        Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into())
    } else {
        Some(Ipv6Addr::from(bytes).into())
    }
}

/// Parses one record.
pub fn parse(b: &[u8; RECORD]) -> Record {
    Record {
        kind: i16_at(b, 0),
        pid: i32_at(b, 4),
        line: text(b, LINE),
        id: text(b, ID),
        user: text(b, USER),
        host: text(b, HOST),
        exit: (i16_at(b, 332), i16_at(b, 334)),
        session: i32_at(b, 336),
        time: i32_at(b, 340) as u32,
        usec: i32_at(b, 344),
        addr: address(&b[348..364]),
    }
}

fn put(b: &mut [u8; RECORD], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

fn put_text(b: &mut [u8; RECORD], (at, len): (usize, usize), s: &[u8]) {
    put(b, at, &s[..s.len().min(len)]);
}

/// The bytes of `r` as glibc writes them (strings longer than their field are cut): for
/// fixtures and fuzz seeds.
pub fn encode(r: &Record) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    put(&mut b, 0, &r.kind.to_ne_bytes());
    put(&mut b, 4, &r.pid.to_ne_bytes());
    put_text(&mut b, LINE, &r.line);
    put_text(&mut b, ID, &r.id);
    put_text(&mut b, USER, &r.user);
    put_text(&mut b, HOST, &r.host);
    put(&mut b, 332, &r.exit.0.to_ne_bytes());
    put(&mut b, 334, &r.exit.1.to_ne_bytes());
    put(&mut b, 336, &r.session.to_ne_bytes());
    put(&mut b, 340, &r.time.to_ne_bytes());
    put(&mut b, 344, &r.usec.to_ne_bytes());
    match r.addr {
        Some(IpAddr::V4(a)) => put(&mut b, 348, &a.octets()),
        Some(IpAddr::V6(a)) => put(&mut b, 348, &a.octets()),
        None => {}
    }
    b
}

/// The records of a utmp file, read one at a time; after an error it yields nothing more.
pub struct Records<R> {
    inner: R,
    offset: u64,
    done: bool,
}

impl<R: Read> Records<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            done: false,
        }
    }

    /// Fills `buf` as far as the input goes: how many bytes it got.
    fn fill(&mut self, buf: &mut [u8; RECORD]) -> Result<usize, std::io::Error> {
        let mut got = 0;
        while got < RECORD {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Record, UtmpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let offset = self.offset;
        let mut buf = [0u8; RECORD];
        let got = match self.fill(&mut buf) {
            Ok(got) => got,
            Err(source) => {
                self.done = true;
                return Some(Err(UtmpError::Read { offset, source }));
            }
        };
        self.offset += got as u64;
        match got {
            0 => {
                self.done = true;
                None
            }
            RECORD => Some(Ok(parse(&buf))),
            len => {
                self.done = true;
                Some(Err(UtmpError::Truncated { offset, len }))
            }
        }
    }
}
