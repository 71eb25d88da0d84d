//! Evaluating one rule against one event, once its fields have been scanned: which literals
//! occurred where (`EventState`), and the rule's expression over its leaves.

use std::borrow::Cow;

use super::index::Entry;
use crate::sigma::compiled::{Expr, Leaf, Matcher, Test};
use crate::sigma::value::Anchor;

const HIT: u8 = 1;
const START: u8 = 2;
const END: u8 = 4;
const EXACT: u8 = 8;

/// A field's value in one event, as written and lower-cased.
pub(super) struct FieldValue<'a> {
    pub raw: Cow<'a, str>,
    /// `None` when lower-casing changes nothing.
    lower: Option<String>,
}

impl<'a> FieldValue<'a> {
    pub fn new(raw: Cow<'a, str>) -> Self {
        let lower = if raw.is_ascii() {
            raw.bytes()
                .any(|b| b.is_ascii_uppercase())
                .then(|| raw.to_ascii_lowercase())
        } else {
            Some(raw.to_lowercase()).filter(|l| *l != raw)
        };
        FieldValue { raw, lower }
    }

    pub fn folded(&self) -> &str {
        self.lower.as_deref().unwrap_or(&self.raw)
    }
}

/// What the scan of one event's fields found.
pub(super) struct EventState<'a> {
    /// Per pattern id: HIT, START, END, EXACT bits.
    flags: Vec<u8>,
    /// Pattern ids found at least once.
    pub touched: Vec<u32>,
    /// Per slot: the value, if the field is present.
    pub values: Vec<Option<FieldValue<'a>>>,
}

impl<'a> EventState<'a> {
    pub fn new(patterns: usize, slots: usize) -> Self {
        EventState {
            flags: vec![0; patterns],
            touched: Vec::new(),
            values: (0..slots).map(|_| None).collect(),
        }
    }

    /// Pattern `id` occurs at `start..end` of a value `len` bytes long.
    pub fn hit(&mut self, id: u32, start: usize, end: usize, len: usize) {
        let f = &mut self.flags[id as usize];
        if *f == 0 {
            self.touched.push(id);
        }
        let at_start = if start == 0 { START } else { 0 };
        let at_end = if end == len { END } else { 0 };
        let exact = if start == 0 && end == len { EXACT } else { 0 };
        *f |= HIT | at_start | at_end | exact;
    }

    pub fn found(&self, id: u32, anchor: Anchor) -> bool {
        let want = match anchor {
            Anchor::Contains => HIT,
            Anchor::Start => START,
            Anchor::End => END,
            Anchor::Exact => EXACT,
        };
        self.flags[id as usize] & want != 0
    }
}

/// Whether the entry's rule matches.
pub(super) fn matches(entry: &Entry, state: &EventState<'_>) -> bool {
    expr(entry, state, &entry.det.expr)
}

fn expr(entry: &Entry, state: &EventState<'_>, e: &Expr) -> bool {
    match e {
        Expr::And(items) => items.iter().all(|i| expr(entry, state, i)),
        Expr::Or(items) => items.iter().any(|i| expr(entry, state, i)),
        Expr::Not(inner) => !expr(entry, state, inner),
        Expr::AtLeast(n, items) => items.iter().filter(|i| expr(entry, state, i)).count() >= *n,
        Expr::Leaf(i) => leaf(entry, state, &entry.det.leaves[*i]),
    }
}

fn leaf(entry: &Entry, state: &EventState<'_>, leaf: &Leaf) -> bool {
    let value = state.values[entry.slot_of[leaf.field]].as_ref();
    match &leaf.test {
        Test::Exists(want) => value.is_some() == *want,
        Test::Values {
            groups,
            all,
            when_absent,
        } => {
            let Some(value) = value else {
                return *when_absent;
            };
            let group = |g: &Vec<Matcher>| g.iter().any(|m| matcher(entry, state, value, m));
            if *all {
                groups.iter().all(group)
            } else {
                groups.iter().any(group)
            }
        }
    }
}

fn matcher(entry: &Entry, state: &EventState<'_>, value: &FieldValue<'_>, m: &Matcher) -> bool {
    match m {
        Matcher::Any => true,
        Matcher::Empty => value.raw.is_empty(),
        Matcher::Lit(l) => state.found(entry.pattern_of[*l], entry.det.literals[*l].anchor),
        Matcher::Regex { re, cased, trigger } => {
            if let Some(t) = trigger
                && !state.found(entry.pattern_of[*t], Anchor::Contains)
            {
                return false;
            }
            re.is_match(if *cased { &value.raw } else { value.folded() })
        }
        Matcher::Cidr(net) => net.contains(&value.raw),
        Matcher::Num(cmp, bound) => value
            .raw
            .trim()
            .parse::<f64>()
            .is_ok_and(|v| cmp.holds(v, *bound)),
    }
}
