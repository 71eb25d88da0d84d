//! HTTP/2 limits of both listeners (the gRPC one and the console's), set here explicitly
//! rather than left to the libraries' defaults, so that a reader sees what holds a flood back:
//! a client that opens streams and resets them at once (the rapid reset, CVE-2023-44487), or
//! makes the server reset them (CVE-2025-8671), gets `GOAWAY ENHANCE_YOUR_CALM` and loses its
//! connection; nobody holds more than a few streams or a large header block on one connection.

/// Streams one connection may have open at once. An agent needs one, cordonctl a few.
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a client may reset before the server has taken them up; past it, GOAWAY.
pub const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the server may reset because of the client's errors; past it, GOAWAY.
pub const MAX_LOCAL_ERROR_RESETS: usize = 256;
/// Largest header block a request may carry, bytes.
pub const MAX_HEADER_LIST: u32 = 16 * 1024;
