//! Collections on the controller: the chunks of rows an agent sends before a collection's
//! result are checked against the command they claim (this agent's, a collection, still
//! open) and stored once each; the result is accepted as succeeded only when every row it
//! counts is stored, so rows lost on the way fail the command instead of passing short.

use super::{Controller, CoreError};
use crate::store::{CollectionRow, Collections, CommandQueue, Hunts, RowFilter};
use cordon_proto::{CollectionResult, ResultChunk};

/// The most rows one read returns.
pub const MAX_ROWS: u32 = 10_000;

/// A collection's result in a few words.
pub fn summary(c: &CollectionResult) -> String {
    let mut s = format!("{} rows from {}", c.rows, c.collector);
    if !c.truncated.is_empty() {
        s.push_str(&format!(", cut short by its {}", c.truncated));
    }
    if !c.errors.is_empty() {
        s.push_str(&format!(", {} unreadable", c.errors.len()));
    }
    s
}

/// A collection command's result in a few words and where to read its rows; empty for any
/// other command.
pub fn result_summary(row: &crate::store::CommandRow) -> String {
    use cordon_proto::command_result::Output;
    use prost::Message;
    let result = row
        .result
        .as_deref()
        .and_then(|b| cordon_proto::CommandResult::decode(b).ok());
    match result.and_then(|r| r.output) {
        Some(Output::Collection(c)) => {
            format!("{} (cordonctl collections rows {})", summary(&c), row.id)
        }
        _ => String::new(),
    }
}

impl Controller {
    /// Stores the rows of a chunk `agent_id` sent; a chunk for a command that is not this
    /// agent's open collection, or that is not whole JSON rows, is dropped with a warning
    /// (the collection's result then finds its rows short). A chunk of an open fetch goes to
    /// `record_file_chunk` (`fetch.rs`).
    pub async fn record_chunk(&self, agent_id: &str, chunk: ResultChunk) -> Result<(), CoreError> {
        let id = chunk.command_id.clone();
        let accepted = match self.store.command(id.clone()).await? {
            None => Err("for an unknown command"),
            Some(c) if c.agent_id != agent_id => Err("for another agent's command"),
            Some(c) if c.status.is_final() => Err("for a command already finished"),
            Some(c) if c.kind == "fetch" => return self.record_file_chunk(agent_id, chunk).await,
            Some(c) if c.kind != "collect" => Err("for a command that is not a collection"),
            Some(_) => rows(&chunk.data),
        };
        match accepted {
            Ok(rows) => {
                let agent = agent_id.to_string();
                self.store
                    .add_collection_rows(id, agent, chunk.first_row, rows)
                    .await?;
            }
            Err(why) => {
                tracing::warn!(command_id = %id, agent_id, index = chunk.index, "dropped a chunk of rows {why}")
            }
        }
        Ok(())
    }

    /// Why a succeeded collection's result may not stand: some of the rows it counts were not
    /// stored.
    pub(super) async fn rows_missing(
        &self,
        command_id: &str,
        c: &CollectionResult,
    ) -> Result<Option<String>, CoreError> {
        let stored = self
            .store
            .collection_row_count(command_id.to_string())
            .await?;
        Ok((stored != c.rows).then(|| {
            format!(
                "the agent collected {} rows but {stored} arrived; run the collection again",
                c.rows
            )
        }))
    }

    /// Rows of collection commands, or of a hunt's, as `f` selects.
    pub async fn collection_rows(&self, mut f: RowFilter) -> Result<Vec<CollectionRow>, CoreError> {
        if f.limit == 0 || f.limit > MAX_ROWS {
            f.limit = MAX_ROWS;
        }
        match &f.hunt_id {
            Some(hunt) => {
                self.store
                    .hunt(hunt.clone())
                    .await?
                    .ok_or_else(|| CoreError::NoHunt(hunt.clone()))?;
            }
            None => {
                for id in &f.command_ids {
                    self.command(id).await?;
                }
            }
        }
        Ok(self.store.collection_rows(f).await?)
    }
}

/// The rows of a chunk: one JSON object a line.
fn rows(data: &[u8]) -> Result<Vec<String>, &'static str> {
    let text = std::str::from_utf8(data).map_err(|_| "that is not UTF-8")?;
    text.lines()
        .map(
            |line| match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) if v.is_object() => Ok(line.to_string()),
                _ => Err("holding a line that is not a JSON object"),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_whole_json_objects_or_nothing() {
        assert_eq!(
            rows(b"{\"a\":1}\n{\"b\":\"x\\ny\"}\n").unwrap(),
            vec!["{\"a\":1}", "{\"b\":\"x\\ny\"}"]
        );
        assert!(rows(b"{\"a\":1}\n[1]\n").is_err());
        assert!(rows(b"{\"a\":\n").is_err());
        assert!(rows(b"\xff\n").is_err());
    }
}
