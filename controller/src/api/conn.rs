//! One accepted connection as tonic sees it: the TLS stream, its place under the connection
//! caps (freed when the connection ends), and a deadline for its first request. Until a
//! request has begun, the bytes the client sends are followed through the HTTP/2 preface and
//! frame headers ([`FirstRequest`]); the first HEADERS frame (a request opening a stream) ends
//! the deadline for good, so an agent's stream that sits idle between heartbeats is never
//! cut. A client that sends no preface, something else than HTTP/2, or no request in time
//! has its connection closed.

use super::tally::Tally;
use crate::core::admission::Ticket;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

/// The bytes every HTTP/2 client sends first (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of an HTTP/2 frame header, and the type of a HEADERS frame.
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;

/// Where the client's bytes are, on the way to its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRequest {
    /// This many bytes of the preface have been seen.
    Preface(usize),
    /// Part of a frame header.
    Header([u8; FRAME_HEADER], usize),
    /// This many bytes of a frame's payload are still to come.
    Payload(usize),
    /// A request has begun.
    Seen,
}

/// The client sent something other than the HTTP/2 preface.
#[derive(Debug, PartialEq, Eq)]
pub struct NotHttp2;

impl FirstRequest {
    pub fn new() -> Self {
        Self::Preface(0)
    }

    /// Follows `bytes`; true once a request has begun.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<bool, NotHttp2> {
        while !bytes.is_empty() && *self != Self::Seen {
            let used = self.step(bytes)?;
            bytes = &bytes[used..];
        }
        Ok(*self == Self::Seen)
    }

    /// Takes what it can of `bytes` in the current state; returns how many it took.
    fn step(&mut self, bytes: &[u8]) -> Result<usize, NotHttp2> {
        let (next, took) = match *self {
            Self::Preface(n) => {
                let take = bytes.len().min(PREFACE.len() - n);
                if bytes[..take] != PREFACE[n..n + take] {
                    return Err(NotHttp2);
                }
                let next = if n + take == PREFACE.len() {
                    Self::NEXT_FRAME
                } else {
                    Self::Preface(n + take)
                };
                (next, take)
            }
            Self::Header(mut header, n) => {
                let take = bytes.len().min(FRAME_HEADER - n);
                header[n..n + take].copy_from_slice(&bytes[..take]);
                (Self::after_header(header, n + take), take)
            }
            Self::Payload(left) => {
                let take = bytes.len().min(left);
                (Self::payload(left - take), take)
            }
            Self::Seen => (Self::Seen, bytes.len()),
        };
        *self = next;
        Ok(took)
    }

    /// Waiting for the next frame's header.
    const NEXT_FRAME: Self = Self::Header([0; FRAME_HEADER], 0);

    /// The state once `have` bytes of a frame header are in.
    fn after_header(header: [u8; FRAME_HEADER], have: usize) -> Self {
        if have < FRAME_HEADER {
            Self::Header(header, have)
        } else if header[3] == HEADERS {
            Self::Seen
        } else {
            Self::payload(u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize)
        }
    }

    /// Skipping `left` more bytes of payload.
    fn payload(left: usize) -> Self {
        if left == 0 {
            Self::NEXT_FRAME
        } else {
            Self::Payload(left)
        }
    }
}

impl Default for FirstRequest {
    fn default() -> Self {
        Self::new()
    }
}

/// The deadline of a connection still waiting for its first request.
struct Waiting {
    progress: FirstRequest,
    deadline: Pin<Box<Sleep>>,
    peer: IpAddr,
    refusals: Arc<Tally>,
}

pub struct Conn<S> {
    inner: S,
    /// `None` once a request has begun.
    waiting: Option<Waiting>,
    /// Set when the connection was refused; every later read fails.
    refused: Option<io::ErrorKind>,
    _ticket: Ticket,
}

impl<S> Conn<S> {
    /// Wraps `inner`, which must begin a request before `deadline`.
    pub fn new(
        inner: S,
        ticket: Ticket,
        deadline: Instant,
        peer: IpAddr,
        refusals: Arc<Tally>,
    ) -> Self {
        Self {
            inner,
            waiting: Some(Waiting {
                progress: FirstRequest::new(),
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                peer,
                refusals,
            }),
            refused: None,
            _ticket: ticket,
        }
    }

    /// Refuses the connection for `reason`: the read fails with `kind`.
    fn refuse(&mut self, reason: &'static str, kind: io::ErrorKind) -> io::Error {
        if let Some(w) = self.waiting.take() {
            w.refusals.note(reason, w.peer);
        }
        self.refused = Some(kind);
        io::Error::new(kind, reason)
    }

    /// Follows bytes just read; fails if they are not HTTP/2.
    fn follow(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        let Some(w) = &mut self.waiting else {
            return Ok(());
        };
        match w.progress.feed(bytes) {
            Ok(true) => self.waiting = None,
            Ok(false) => {}
            Err(NotHttp2) => return Err(self.refuse("not_http2", io::ErrorKind::InvalidData)),
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(kind) = this.refused {
            return Poll::Ready(Err(io::Error::new(kind, "connection refused")));
        }
        if let Some(w) = &mut this.waiting
            && w.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(this.refuse("no_request", io::ErrorKind::TimedOut)));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Err(e) = this.follow(&buf.filled()[before..])
        {
            return Poll::Ready(Err(e));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The services see the connection's own details (peer address, client certificate).
impl<S: Connected> Connected for Conn<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: payload length, type, flags 0, stream id.
    fn frame(len: u32, kind: u8, stream: u32) -> Vec<u8> {
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.push(kind);
        f.push(0);
        f.extend(stream.to_be_bytes());
        f.extend(std::iter::repeat_n(0, len as usize));
        f
    }

    #[test]
    fn a_request_is_seen_after_the_preface_and_other_frames_in_any_split() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(18, 0x4, 0)); // SETTINGS
        bytes.extend(frame(0, 0x4, 0)); // SETTINGS ack
        bytes.extend(frame(4, 0x8, 0)); // WINDOW_UPDATE
        let before_request = bytes.len();
        bytes.extend(frame(30, HEADERS, 1));
        for chunk in [1, 2, 5, 9, 24, 1000] {
            let mut f = FirstRequest::new();
            let mut seen_at = None;
            for (i, part) in bytes.chunks(chunk).enumerate() {
                if f.feed(part).unwrap() && seen_at.is_none() {
                    seen_at = Some((i + 1) * chunk);
                }
            }
            let seen_at = seen_at.expect("a request");
            assert!(
                seen_at >= before_request + FRAME_HEADER,
                "chunks of {chunk}: seen too early"
            );
            assert!(seen_at - before_request < chunk + FRAME_HEADER);
        }
    }

    #[test]
    fn no_request_without_headers_and_anything_but_http2_is_refused() {
        let mut f = FirstRequest::new();
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(8, 0x6, 0)); // PING
        assert_eq!(f.feed(&bytes), Ok(false));
        assert_eq!(f, FirstRequest::NEXT_FRAME);
        assert_eq!(
            FirstRequest::new().feed(b"GET / HTTP/1.1\r\n"),
            Err(NotHttp2)
        );
        assert_eq!(FirstRequest::new().feed(b"\x16\x03\x01"), Err(NotHttp2));
    }
}
