//! Large imports split into requests that fit the admin service's message limit.
//!
//! One request may carry at most [`limits::ADMIN_MAX_MESSAGE`] bytes; a file of a million
//! indicators or a directory of thousands of rules is bigger. Rather than let the transport
//! fail with a protocol error, `cordonctl` sends such an import in parts of at most
//! [`PART_BYTES`] each (half the limit, leaving room for the encoding's own bytes).

use crate::error::CtlError;
use cordon_proto::limits;

/// The most content one part carries.
pub const PART_BYTES: usize = limits::ADMIN_MAX_MESSAGE / 2;

/// Splits `items` in order into parts of at most `max_items` items and [`PART_BYTES`] bytes
/// by `size` (an item bigger than that alone goes in a part of its own: the receiver refuses
/// it by its own rule, naming it).
pub fn split<T>(items: Vec<T>, size: impl Fn(&T) -> usize, max_items: usize) -> Vec<Vec<T>> {
    let mut parts = Vec::new();
    let mut part = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        if !part.is_empty() && (bytes + n > PART_BYTES || part.len() >= max_items) {
            parts.push(std::mem::take(&mut part));
            bytes = 0;
        }
        bytes += n;
        part.push(item);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

/// A file's size checked against its limit before anything is sent.
pub fn check_size(what: &str, origin: &str, len: usize, max: usize) -> Result<(), CtlError> {
    if len > max {
        return Err(CtlError::Input(format!(
            "{origin}: {what} of {len} bytes is over the limit of {max} bytes ({} KiB)",
            max / 1024
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_order_and_stay_under_both_bounds() {
        let items: Vec<usize> = (0..1000).map(|i| 1 + i % 7).collect();
        let parts = split(items.clone(), |_| PART_BYTES / 10, 4);
        assert!(parts.iter().all(|p| p.len() <= 4 && !p.is_empty()));
        assert_eq!(parts.concat(), items);
        let by_bytes = split(vec![0; 25], |_| PART_BYTES / 10, 100);
        assert_eq!(
            by_bytes.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
    }

    #[test]
    fn an_oversized_item_goes_alone() {
        let parts = split(vec![1, PART_BYTES * 2, 1], |n| *n, 100);
        assert_eq!(parts, vec![vec![1], vec![PART_BYTES * 2], vec![1]]);
    }

    #[test]
    fn empty_input_makes_no_request() {
        assert!(split(Vec::<u8>::new(), |_| 1, 10).is_empty());
    }
}
