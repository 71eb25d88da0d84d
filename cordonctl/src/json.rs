//! `--json`: protocol messages printed as JSON lines, in the one shape `cordon_proto::json`
//! gives them (documented there and in the README): a listing prints one compact object per
//! line (nothing when empty), every other command exactly one.

use crate::error::CtlError;
use crate::term::emit;
pub use cordon_proto::json::{ToJson, event_from_json, event_record_from_json};

/// Prints one object on one line.
pub fn print_one(item: &impl ToJson) -> Result<(), CtlError> {
    print_lines(std::slice::from_ref(item))
}

/// Prints a listing: one object per line.
pub fn print_lines<T: ToJson>(items: &[T]) -> Result<(), CtlError> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(&item.to_json()?)?);
        text.push('\n');
    }
    emit(&text, false);
    Ok(())
}
