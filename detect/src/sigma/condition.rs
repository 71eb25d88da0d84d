//! The `condition` language: identifiers, `and`, `or`, `not`, parentheses, and `1 of x*`,
//! `all of x*`, `N of x*`, `1 of them`, `all of them`. Precedence: `not` binds tightest,
//! then `and`, then `or`. Keywords are case-insensitive. Aggregations (`| count() ...`) and
//! `near` belong to the old correlation syntax and are refused.
//!
//! Positions in messages are 0-based character offsets into the condition.

use super::error::{Problem, invalid, unsupported};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// A detection name.
    Ident(String),
    /// `N of pattern` (`them` when the pattern is `None`); `All` for `all of`.
    Of(Quantity, Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantity {
    AtLeast(usize),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Pipe,
    Word(String),
}

fn tokenize(s: &str) -> Vec<(usize, Tok)> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '|' => {
                out.push((
                    i,
                    match c {
                        '(' => Tok::Open,
                        ')' => Tok::Close,
                        _ => Tok::Pipe,
                    },
                ));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()|".contains(chars[i]) {
                    i += 1;
                }
                out.push((start, Tok::Word(chars[start..i].iter().collect())));
            }
        }
    }
    out
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Open => "(".into(),
        Tok::Close => ")".into(),
        Tok::Pipe => "|".into(),
        Tok::Word(w) => w.clone(),
    }
}

/// Parses one condition string.
pub(crate) fn parse(text: &str) -> Result<Cond, Problem> {
    let toks = tokenize(text);
    let mut p = CondParser {
        toks,
        at: 0,
        end: text.chars().count(),
    };
    let cond = p.or()?;
    match p.toks.get(p.at) {
        None => Ok(cond),
        Some((pos, Tok::Pipe)) => Err(unsupported(format!(
            "condition: aggregation `|` at {pos} (correlation rules are not supported)"
        ))),
        Some((pos, t)) => Err(invalid(format!(
            "condition: unexpected token `{}` at {pos}",
            show(t)
        ))),
    }
}

struct CondParser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

impl CondParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.peek().is_some_and(|t| is_kw(t, kw));
        if yes {
            self.at += 1;
        }
        yes
    }

    fn unexpected(&self) -> Problem {
        match self.toks.get(self.at) {
            Some((pos, t)) => invalid(format!(
                "condition: unexpected token `{}` at {pos}",
                show(t)
            )),
            None => invalid(format!("condition: unexpected end at {}", self.end)),
        }
    }

    fn or(&mut self) -> Result<Cond, Problem> {
        let mut items = vec![self.and()?];
        while self.eat_kw("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, Problem> {
        let mut items = vec![self.not()?];
        while self.eat_kw("and") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, Problem> {
        if self.eat_kw("not") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, Problem> {
        let Some((pos, tok)) = self.toks.get(self.at).cloned() else {
            return Err(self.unexpected());
        };
        match tok {
            Tok::Open => {
                self.at += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(match self.toks.get(self.at) {
                        None => invalid(format!("condition: `(` at {pos} is never closed")),
                        Some(_) => self.unexpected(),
                    });
                }
                self.at += 1;
                Ok(inner)
            }
            Tok::Word(w) => {
                let of_next = self
                    .toks
                    .get(self.at + 1)
                    .is_some_and(|(_, t)| is_kw(t, "of"));
                if is_quantity(&w) && of_next {
                    self.at += 2;
                    self.of(&w, pos)
                } else if is_reserved(&w) {
                    Err(self.unexpected())
                } else if w.eq_ignore_ascii_case("near") {
                    Err(unsupported(format!(
                        "condition: `near` at {pos} (correlation rules are not supported)"
                    )))
                } else {
                    self.at += 1;
                    Ok(Cond::Ident(w))
                }
            }
            _ => Err(self.unexpected()),
        }
    }

    fn of(&mut self, quantity: &str, pos: usize) -> Result<Cond, Problem> {
        let q = if quantity.eq_ignore_ascii_case("all") {
            Quantity::All
        } else if quantity.eq_ignore_ascii_case("any") {
            Quantity::AtLeast(1)
        } else {
            match quantity.parse::<usize>() {
                Ok(n) if n >= 1 => Quantity::AtLeast(n),
                _ => {
                    return Err(invalid(format!(
                        "condition: `{quantity} of` at {pos} needs 1 or more, `any` or `all`"
                    )));
                }
            }
        };
        match self.toks.get(self.at).cloned() {
            Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case("them") => {
                self.at += 1;
                Ok(Cond::Of(q, None))
            }
            Some((_, Tok::Word(w))) if !is_reserved(&w) => {
                self.at += 1;
                Ok(Cond::Of(q, Some(w)))
            }
            _ => Err(self.unexpected()),
        }
    }
}

fn is_quantity(w: &str) -> bool {
    w.eq_ignore_ascii_case("all")
        || w.eq_ignore_ascii_case("any")
        || w.chars().all(|c| c.is_ascii_digit())
}

fn is_reserved(w: &str) -> bool {
    ["and", "or", "not", "of", "them", "all"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// Whether a detection name matches an `of` pattern (`*` any run, `?` one character).
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Cond {
        Cond::Ident(s.into())
    }

    #[test]
    fn precedence_not_and_or() {
        assert_eq!(
            parse("a or not b and c").unwrap(),
            Cond::Or(vec![
                id("a"),
                Cond::And(vec![Cond::Not(Box::new(id("b"))), id("c")])
            ])
        );
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Cond::And(vec![Cond::Or(vec![id("a"), id("b")]), id("c")])
        );
    }

    #[test]
    fn quantifiers() {
        assert_eq!(
            parse("1 of selection_* and not all of them").unwrap(),
            Cond::And(vec![
                Cond::Of(Quantity::AtLeast(1), Some("selection_*".into())),
                Cond::Not(Box::new(Cond::Of(Quantity::All, None)))
            ])
        );
        assert_eq!(
            parse("ALL OF x*").unwrap(),
            Cond::Of(Quantity::All, Some("x*".into()))
        );
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = |s: &str| match parse(s) {
            Err(Problem::Invalid(m) | Problem::Unsupported(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e("selection and )"),
            "condition: unexpected token `)` at 14"
        );
        assert_eq!(e("selection and"), "condition: unexpected end at 13");
        assert_eq!(e("(a or b"), "condition: `(` at 0 is never closed");
        assert_eq!(e("a b"), "condition: unexpected token `b` at 2");
        assert!(e("selection | count() > 5").contains("aggregation"));
        assert!(e("0 of x").contains("`0 of`"));
    }

    #[test]
    fn name_patterns() {
        assert!(name_matches("selection_*", "selection_img"));
        assert!(!name_matches("selection_*", "filter"));
        assert!(name_matches("sel?", "sel1"));
        assert!(name_matches("a", "a"));
    }
}
