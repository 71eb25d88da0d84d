//! The admin RPCs of file fetch: the list of fetched files, and a file's bytes streamed in
//! the chunks the agent sent (the download audited as `file.download` by the core).

use super::admin::{Answer, answer};
use crate::core::{Admin, Controller};
use crate::store::FetchedFileRow;
use cordon_proto::{FetchedFileRecord, FileChunk, ListFetchedFilesResponse};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

pub type DownloadStream = ReceiverStream<Result<FileChunk, Status>>;

pub fn record(f: FetchedFileRow) -> FetchedFileRecord {
    FetchedFileRecord {
        id: f.id,
        agent_id: f.agent_id,
        path: f.path,
        size: f.size,
        sha256: f.sha256,
        mode: f.mode,
        uid: f.uid,
        gid: f.gid,
        mtime: f.mtime,
        fetched_at_ms: f.fetched_at_ms,
    }
}

pub async fn list(ctl: &Controller, agent: &str, limit: u32) -> Answer<ListFetchedFilesResponse> {
    answer(ctl.fetched_files(agent, limit).await, |files| {
        ListFetchedFilesResponse {
            files: files.into_iter().map(record).collect(),
        }
    })
}

/// Streams file `id`'s chunks in order, the first carrying its record.
pub async fn download(ctl: Arc<Controller>, admin: &Admin, id: &str) -> Answer<DownloadStream> {
    let slot = ctl.admin_streams.take(admin)?;
    let file = ctl.download(admin, id).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        send(ctl, file, tx).await;
        drop(slot);
    });
    Ok(Response::new(ReceiverStream::new(rx)))
}

async fn send(
    ctl: Arc<Controller>,
    file: FetchedFileRow,
    tx: mpsc::Sender<Result<FileChunk, Status>>,
) {
    let (id, size) = (file.id.clone(), file.size);
    let mut first = Some(record(file));
    let (mut index, mut offset) = (0u32, 0u64);
    while offset < size || first.is_some() {
        let chunk = match ctl.fetched_chunk(&id, index).await {
            Ok(Some(c)) => Ok(FileChunk {
                file: first.take(),
                offset: c.offset,
                data: c.data,
            }),
            Ok(None) if offset == size => Ok(FileChunk {
                file: first.take(),
                ..Default::default()
            }),
            Ok(None) => Err(Status::data_loss(format!(
                "chunk {index} of file {id} is missing"
            ))),
            Err(e) => Err(Status::from(e)),
        };
        let stop = chunk.is_err();
        if let Ok(c) = &chunk {
            offset += c.data.len() as u64;
        }
        if tx.send(chunk).await.is_err() || stop {
            return;
        }
        index += 1;
    }
}
