//! Collection rows as cordonctl prints them (`collect`, `collections rows`, and hunt results):
//! - text: one line a row, the agent, the row number and the row's fields as `key=value`;
//! - `--json`: one object a line, `{"agent_id", "command_id", "row", "data": {the row}}`;
//! - `--csv`: a header, then `agent_id, command_id, row` and one column for each field any
//!   row has (nested values as JSON), for a spreadsheet.
//!
//! Rows are read from the controller a page at a time, up to [`MAX_ROWS`].

use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::call;
use crate::term::{clean, emit, outln};
use cordon_proto::{CollectionRowRecord, ListCollectionRowsRequest};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The most rows one invocation reads.
pub const MAX_ROWS: usize = 1_000_000;
/// Rows a page.
const PAGE: u32 = 10_000;

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

impl Format {
    pub fn new(json: bool, csv: bool) -> Self {
        match (json, csv) {
            (true, _) => Self::Json,
            (_, true) => Self::Csv,
            _ => Self::Text,
        }
    }
}

/// Every row `req` selects (paging from its start), up to [`MAX_ROWS`].
pub async fn fetch(
    admin: &mut AdminClient,
    mut req: ListCollectionRowsRequest,
) -> Result<Vec<CollectionRowRecord>, CtlError> {
    let mut rows = Vec::new();
    req.limit = PAGE;
    loop {
        let page = call(admin.list_collection_rows(req.clone())).await?.rows;
        let full = page.len() == PAGE as usize;
        if let Some(last) = page.last() {
            (req.after_command_id, req.after_row) = (last.command_id.clone(), last.row_no);
        }
        rows.extend(page);
        if !full || rows.len() >= MAX_ROWS {
            rows.truncate(MAX_ROWS);
            return Ok(rows);
        }
    }
}

/// Prints `rows` as `format` says.
pub fn print(rows: &[CollectionRowRecord], format: Format) -> Result<(), CtlError> {
    match format {
        Format::Text => {
            for r in rows {
                outln!("{}  {:>6}  {}", r.agent_id, r.row_no, text(&r.data));
            }
        }
        Format::Json => {
            let mut out = String::new();
            for r in rows {
                let v = serde_json::json!({
                    "agent_id": r.agent_id, "command_id": r.command_id,
                    "row": r.row_no, "data": parse(&r.data),
                });
                out.push_str(&serde_json::to_string(&v)?);
                out.push('\n');
            }
            emit(&out, false);
        }
        Format::Csv => emit(&csv(rows)?, false),
    }
    Ok(())
}

/// A row's JSON text as an object (a row that is not one is kept whole under "raw").
fn parse(data: &str) -> Map<String, Value> {
    match serde_json::from_str(data) {
        Ok(Value::Object(m)) => m,
        _ => Map::from_iter([("raw".to_string(), Value::String(data.to_string()))]),
    }
}

/// A field's value as a cell: strings as they are, anything else as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `key=value` pairs of a row, each value one line.
fn text(data: &str) -> String {
    parse(data)
        .iter()
        .map(|(k, v)| format!("{k}={}", clean(&cell(v))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rows as CSV, with a column for every field any row has.
fn csv(rows: &[CollectionRowRecord]) -> Result<String, CtlError> {
    let parsed: Vec<_> = rows.iter().map(|r| parse(&r.data)).collect();
    let fields: BTreeSet<&String> = parsed.iter().flat_map(|m| m.keys()).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let head = ["agent_id", "command_id", "row"].into_iter();
    let csv_err = |e: csv::Error| CtlError::Input(format!("writing CSV: {e}"));
    w.write_record(head.chain(fields.iter().map(|f| f.as_str())))
        .map_err(csv_err)?;
    for (r, m) in rows.iter().zip(&parsed) {
        let fixed = [
            r.agent_id.clone(),
            r.command_id.clone(),
            r.row_no.to_string(),
        ];
        let rest = fields
            .iter()
            .map(|f| m.get(*f).map(cell).unwrap_or_default());
        w.write_record(fixed.into_iter().chain(rest))
            .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CtlError::Input(format!("writing CSV: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(row_no: u64, data: &str) -> CollectionRowRecord {
        CollectionRowRecord {
            command_id: "c1".into(),
            agent_id: "a1".into(),
            row_no,
            data: data.into(),
        }
    }

    #[test]
    fn csv_has_a_column_for_every_field_and_quotes_what_needs_it() {
        let rows = [
            rec(0, r#"{"path":"/a,b","size":3}"#),
            rec(1, r#"{"path":"x\"y","argv":["sh","-c"]}"#),
        ];
        let out = csv(&rows).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("agent_id,command_id,row,argv,path,size"));
        assert_eq!(lines.next(), Some("a1,c1,0,,\"/a,b\",3"));
        assert_eq!(lines.next(), Some(r#"a1,c1,1,"[""sh"",""-c""]","x""y","#));
    }

    #[test]
    fn text_shows_fields_on_one_line_with_controls_escaped() {
        assert_eq!(text(r#"{"a":"x\ny","n":1}"#), "a=x\\ny n=1");
    }
}
