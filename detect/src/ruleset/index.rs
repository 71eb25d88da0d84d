//! The index behind [`super::RuleSet::evaluate`]: per category, the fields rules test, one
//! Aho-Corasick automaton per field (and per case mode) over all rules' literals, and which
//! rules each literal can trigger.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::eval::{self, EventState, FieldValue};
use crate::fields::Fields;
use crate::sigma::Rule;
use crate::sigma::compiled::{Detection, Expr, Leaf, Matcher, Test};

#[derive(Debug, Default)]
pub(super) struct Index {
    categories: Vec<(&'static str, Category)>,
}

#[derive(Debug, Default)]
struct Category {
    slots: Vec<Slot>,
    entries: Vec<Entry>,
    /// Entries with no trigger literal: evaluated for every event.
    always: Vec<usize>,
    /// Pattern id -> entries that literal can trigger.
    triggers: Vec<Vec<usize>>,
    /// (slot, cased, text) -> pattern id.
    patterns: HashMap<(usize, bool, String), u32>,
}

/// A field the category's rules test.
#[derive(Debug)]
struct Slot {
    name: String,
    /// Literals matched on the lower-cased value, and those matched as written.
    folded: Scanner,
    cased: Scanner,
}

/// One enabled rule, with its field and literal numbers mapped onto the category's.
#[derive(Debug)]
pub(super) struct Entry {
    pub rule: usize,
    pub det: Arc<Detection>,
    pub slot_of: Vec<usize>,
    pub pattern_of: Vec<u32>,
}

impl Index {
    pub fn build(rules: &[(Rule, bool)]) -> Index {
        let mut index = Index::default();
        for (n, (rule, enabled)) in rules.iter().enumerate() {
            if *enabled {
                index.add(n, &rule.detection);
            }
        }
        for (_, cat) in &mut index.categories {
            for slot in &mut cat.slots {
                slot.folded.finish();
                slot.cased.finish();
            }
        }
        index
    }

    fn add(&mut self, rule: usize, det: &Arc<Detection>) {
        let at = match self.categories.iter().position(|(c, _)| *c == det.category) {
            Some(i) => i,
            None => {
                self.categories.push((det.category, Category::default()));
                self.categories.len() - 1
            }
        };
        let cat = &mut self.categories[at].1;
        let slot_of: Vec<usize> = det.fields.iter().map(|f| cat.slot(f)).collect();
        let pattern_of: Vec<u32> = det
            .literals
            .iter()
            .map(|l| cat.pattern(slot_of[l.field], l.cased, &l.text))
            .collect();
        let entry = cat.entries.len();
        match triggers(det, &det.expr) {
            None => cat.always.push(entry),
            Some(lits) => {
                for l in lits {
                    let list = &mut cat.triggers[pattern_of[l] as usize];
                    if list.last() != Some(&entry) {
                        list.push(entry);
                    }
                }
            }
        }
        cat.entries.push(Entry {
            rule,
            det: Arc::clone(det),
            slot_of,
            pattern_of,
        });
    }

    /// The numbers of the rules (in the rule set) that match.
    pub fn matching(&self, category: &str, fields: &dyn Fields) -> Vec<usize> {
        let Some((_, cat)) = self.categories.iter().find(|(c, _)| *c == category) else {
            return Vec::new();
        };
        let mut state = EventState::new(cat.triggers.len(), cat.slots.len());
        for (s, slot) in cat.slots.iter().enumerate() {
            let Some(value) = fields.get(&slot.name) else {
                continue;
            };
            let value = FieldValue::new(match value {
                crate::fields::Value::Str(s) => s,
                crate::fields::Value::Num(n) => Cow::Owned(n.to_string()),
            });
            slot.folded.scan(value.folded(), &mut state);
            slot.cased.scan(&value.raw, &mut state);
            state.values[s] = Some(value);
        }
        let mut candidate = vec![false; cat.entries.len()];
        for &e in &cat.always {
            candidate[e] = true;
        }
        for &p in &state.touched {
            for &e in &cat.triggers[p as usize] {
                candidate[e] = true;
            }
        }
        cat.entries
            .iter()
            .zip(candidate)
            .filter(|(entry, yes)| *yes && eval::matches(entry, &state))
            .map(|(entry, _)| entry.rule)
            .collect()
    }
}

impl Category {
    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.name == name) {
            return i;
        }
        self.slots.push(Slot {
            name: name.to_string(),
            folded: Scanner::default(),
            cased: Scanner::default(),
        });
        self.slots.len() - 1
    }

    fn pattern(&mut self, slot: usize, cased: bool, text: &str) -> u32 {
        let key = (slot, cased, text.to_string());
        if let Some(&id) = self.patterns.get(&key) {
            return id;
        }
        let id = u32::try_from(self.triggers.len()).unwrap_or(u32::MAX);
        self.triggers.push(Vec::new());
        let scanner = if cased {
            &mut self.slots[slot].cased
        } else {
            &mut self.slots[slot].folded
        };
        scanner.texts.push(text.to_string());
        scanner.ids.push(id);
        self.patterns.insert(key, id);
        id
    }
}

/// Finds every occurrence of a set of literals in a value.
#[derive(Debug, Default)]
struct Scanner {
    texts: Vec<String>,
    /// Scanner pattern number -> the category's pattern id.
    ids: Vec<u32>,
    ac: Option<AhoCorasick>,
}

impl Scanner {
    fn finish(&mut self) {
        if self.texts.is_empty() {
            return;
        }
        let build = |kind| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .build(&self.texts)
                .ok()
        };
        // A DFA is fastest; should one ever be refused as too large, let the crate choose,
        // and failing that scan with plain substring search (`scan` below).
        self.ac = build(Some(AhoCorasickKind::DFA)).or_else(|| build(None));
    }

    fn scan(&self, haystack: &str, state: &mut EventState<'_>) {
        if self.texts.is_empty() {
            return;
        }
        let len = haystack.len();
        match &self.ac {
            Some(ac) => {
                for m in ac.find_overlapping_iter(haystack) {
                    state.hit(self.ids[m.pattern().as_usize()], m.start(), m.end(), len);
                }
            }
            None => {
                for (i, text) in self.texts.iter().enumerate() {
                    // Every occurrence, overlapping ones included, as the automaton reports.
                    let mut from = 0;
                    while let Some(at) = haystack[from..].find(text.as_str()) {
                        let start = from + at;
                        state.hit(self.ids[i], start, start + text.len(), len);
                        from = start + haystack[start..].chars().next().map_or(1, char::len_utf8);
                    }
                }
            }
        }
    }
}

/// Literals at least one of which must occur for `expr` to hold; `None` if there is no such
/// set (a negation, a regex, an absent-field test).
fn triggers(det: &Detection, expr: &Expr) -> Option<Vec<usize>> {
    match expr {
        Expr::Leaf(i) => leaf_triggers(&det.leaves[*i]),
        Expr::Not(_) => None,
        Expr::And(items) => items
            .iter()
            .filter_map(|e| triggers(det, e))
            .min_by_key(|lits| cost(det, lits)),
        Expr::Or(items) | Expr::AtLeast(_, items) => union(items.iter().map(|e| triggers(det, e))),
    }
}

fn leaf_triggers(leaf: &Leaf) -> Option<Vec<usize>> {
    let Test::Values {
        groups,
        all,
        when_absent,
    } = &leaf.test
    else {
        return None;
    };
    if *when_absent {
        return None;
    }
    let group = |g: &Vec<Matcher>| {
        union(g.iter().map(|m| match m {
            Matcher::Lit(l) => Some(vec![*l]),
            Matcher::Regex {
                trigger: Some(l), ..
            } => Some(vec![*l]),
            _ => None,
        }))
    };
    if *all {
        groups.iter().find_map(group)
    } else {
        union(groups.iter().map(group))
    }
}

fn union(sets: impl Iterator<Item = Option<Vec<usize>>>) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for s in sets {
        out.extend(s?);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Prefer the set whose shortest literal is longest (rarer), then the smaller set.
fn cost(det: &Detection, lits: &[usize]) -> (std::cmp::Reverse<usize>, usize) {
    let shortest = lits
        .iter()
        .map(|&l| det.literals[l].text.len())
        .min()
        .unwrap_or(usize::MAX);
    (std::cmp::Reverse(shortest), lits.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigma::value::Anchor;

    #[test]
    fn plain_search_fallback_agrees_with_the_automaton() {
        let texts = ["aa", "a", "ba", "é", "aé"];
        let mut ac = Scanner::default();
        for (i, t) in texts.iter().enumerate() {
            ac.texts.push(t.to_string());
            ac.ids.push(i as u32);
        }
        ac.finish();
        let plain = Scanner {
            texts: ac.texts.clone(),
            ids: ac.ids.clone(),
            ac: None,
        };
        for hay in ["aaa", "baa", "xaéa", "é", "", "abba"] {
            let (mut a, mut p) = (EventState::new(5, 0), EventState::new(5, 0));
            ac.scan(hay, &mut a);
            plain.scan(hay, &mut p);
            for id in 0..5 {
                for anchor in [Anchor::Contains, Anchor::Start, Anchor::End, Anchor::Exact] {
                    assert_eq!(
                        a.found(id, anchor),
                        p.found(id, anchor),
                        "{hay} {id} {anchor:?}"
                    );
                }
            }
        }
    }
}
