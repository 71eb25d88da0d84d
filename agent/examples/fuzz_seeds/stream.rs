//! `agent_stream` seeds: the agent's messages as the gRPC frames of its stream, by tonic's
//! own encoder, plain and gzip-compressed, and a gzip bomb.

use super::{Result, agent_messages};
use std::path::Path;

/// tonic's encoder of the agent's stream, by prost.
struct MessageEncoder;

impl tonic::codec::Encoder for MessageEncoder {
    type Item = cordon_proto::AgentMessage;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Self::Item,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> std::result::Result<(), Self::Error> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// `messages` as the gRPC frames of a request body, gzip-compressed if `gzip`, as the agent's
/// client sends them (tonic's `EncodeBody`, polled to its end: its source is always ready).
fn frames(messages: Vec<cordon_proto::AgentMessage>, gzip: bool) -> Result<Vec<u8>> {
    use std::task::{Context, Poll, Waker};
    use tonic::codegen::Body;
    let source = tokio_stream::iter(messages.into_iter().map(Ok));
    let encoding = gzip.then_some(tonic::codec::CompressionEncoding::Gzip);
    let body = tonic::codec::EncodeBody::new_client(MessageEncoder, source, encoding, None);
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(frame)) => {
                if let Ok(data) = frame?.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(None) => return Ok(out),
            Poll::Pending => return Err("the encoder waited on a ready source".into()),
        }
    }
}

pub fn streams(out: &Path) -> Result<()> {
    let all = agent_messages();
    for (i, m) in all.iter().enumerate() {
        std::fs::write(
            out.join(format!("frame-{i}")),
            frames(vec![m.clone()], false)?,
        )?;
        std::fs::write(
            out.join(format!("frame-gz-{i}")),
            frames(vec![m.clone()], true)?,
        )?;
    }
    let plain = frames(all.clone(), false)?;
    let gzip = frames(all, true)?;
    std::fs::write(out.join("stream"), &plain)?;
    std::fs::write(out.join("stream-gz"), &gzip)?;
    std::fs::write(out.join("stream-mixed"), [plain, gzip].concat())?;
    std::fs::write(out.join("gzip-bomb"), gzip_bomb()?)?;
    Ok(())
}

/// A compressed frame of a chunk of 8 MiB of zeros: under 64 KiB on the wire, twice
/// `AGENT_MAX_MESSAGE` inflated.
fn gzip_bomb() -> Result<Vec<u8>> {
    use cordon_proto::{AgentMessage, ResultChunk, agent_message::Msg};
    let zeros = ResultChunk {
        command_id: "c1".into(),
        data: vec![0; 2 * cordon_proto::limits::AGENT_MAX_MESSAGE],
        ..Default::default()
    };
    let bomb = frames(
        vec![AgentMessage {
            msg: Some(Msg::Chunk(zeros)),
        }],
        true,
    )?;
    match bomb.len() {
        n if n < 64 * 1024 => Ok(bomb),
        n => Err(format!("the gzip bomb is {n} bytes, past fuzz/run.sh's -max_len").into()),
    }
}
