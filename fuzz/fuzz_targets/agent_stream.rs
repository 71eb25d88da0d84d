//! The raw stream an agent sends, as it arrives on the controller's wire: any bytes as the
//! body of a `Stream` call, in HTTP/2-sized pieces, through tonic's own request decoder with
//! the controller's settings (gzip accepted, `AGENT_MAX_MESSAGE` bound): the gRPC frames (a
//! compression flag, a big-endian length, the payload), gzip inflation, then each
//! `AgentMessage` handled as `agent_message` handles it (`cordon_fuzz::handle_agent_message`).
//! What must hold: no panic; a frame or an inflated message past the bound ends the stream in
//! `OutOfRange` or `ResourceExhausted` (anything else wrong in `Internal`), never in
//! allocating it; memory bounded (run.sh's `-rss_limit_mb`).
#![no_main]

use bytes::Bytes;
use cordon_proto::AgentMessage;
use cordon_proto::limits::AGENT_MAX_MESSAGE;
use http_body_util::StreamBody;
use http_body_util::combinators::BoxBody;
use libfuzzer_sys::fuzz_target;
use std::convert::Infallible;
use std::sync::OnceLock;
use tonic::codec::{CompressionEncoding, Streaming};
use tonic::{Code, Status};

/// The largest DATA frame an HTTP/2 peer sends by default: the body arrives in such pieces.
const PIECE: usize = 16 * 1024;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// `data` as a request body, in the pieces a peer would send it in.
fn body(data: &[u8]) -> BoxBody<Bytes, Infallible> {
    let pieces: Vec<Result<_, Infallible>> = data
        .chunks(PIECE)
        .map(|p| Ok(http_body::Frame::data(Bytes::copy_from_slice(p))))
        .collect();
    BoxBody::new(StreamBody::new(tokio_stream::iter(pieces)))
}

/// How the decoder may refuse a stream.
fn check_refusal(status: &Status) {
    let allowed = [Code::Internal, Code::OutOfRange, Code::ResourceExhausted];
    assert!(allowed.contains(&status.code()), "{status:?}");
    if status.message().contains("size limit") {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
}

async fn drain(data: &[u8]) {
    let mut stream: Streaming<AgentMessage> = Streaming::new_request(
        tonic_prost::ProstDecoder::default(),
        body(data),
        Some(CompressionEncoding::Gzip),
        Some(AGENT_MAX_MESSAGE),
    );
    loop {
        match stream.message().await {
            Ok(Some(msg)) => cordon_fuzz::handle_agent_message(msg),
            Ok(None) => return,
            Err(status) => return check_refusal(&status),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(drain(data));
});
