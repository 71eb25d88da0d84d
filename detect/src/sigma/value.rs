//! One Sigma value: wildcards and escapes, the value transformations (base64, base64offset,
//! windash), and the shape it compiles to (an anchored literal for Aho-Corasick, or a regex).
//!
//! Strings: `*` is any run of characters, `?` one character, and a backslash escapes `*`,
//! `?` and itself; before any other character it is an ordinary backslash (so Windows paths
//! need no doubling). Matching is case-insensitive (both sides lower-cased) except with
//! `cased`, for `re`, and for base64 text (changing the case of Base64 changes what it
//! encodes).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::{Problem, invalid};

/// A piece of a Sigma string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Lit(char),
    Star,
    Question,
}

/// Splits a Sigma string into literal characters and wildcards.
pub(crate) fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push(Token::Lit(n));
                }
                _ => out.push(Token::Lit('\\')),
            },
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Question),
            c => out.push(Token::Lit(c)),
        }
    }
    out
}

/// Tokens for text taken literally (the output of a transformation).
pub(crate) fn literal(s: &str) -> Vec<Token> {
    s.chars().map(Token::Lit).collect()
}

pub(crate) fn has_wildcards(tokens: &[Token]) -> bool {
    tokens.iter().any(|t| !matches!(t, Token::Lit(_)))
}

/// Where a literal must occur in the field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Contains,
    Start,
    End,
    Exact,
}

/// What one value compiles to before the rule set assigns pattern ids.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// Any value at all (the pattern was only `*`).
    Any,
    /// Exactly the empty string.
    Empty,
    Literal(String, Anchor),
    /// A wildcard pattern other than the four literal shapes: an anchored regex source, and
    /// the longest literal run in it (which must occur for it to match).
    Glob {
        regex: String,
        required: String,
    },
}

/// Which way a value is wrapped in wildcards by `contains`, `startswith`, `endswith`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Position {
    #[default]
    Whole,
    Contains,
    StartsWith,
    EndsWith,
}

/// Applies the position modifier, then finds the cheapest shape. `lower` folds literal
/// text to lower case (the haystack is folded the same way).
pub(crate) fn shape(mut tokens: Vec<Token>, position: Position, lower: bool) -> Shape {
    if matches!(position, Position::Contains | Position::EndsWith) {
        tokens.insert(0, Token::Star);
    }
    if matches!(position, Position::Contains | Position::StartsWith) {
        tokens.push(Token::Star);
    }
    tokens.dedup_by(|a, b| *a == Token::Star && *b == Token::Star);
    let fold = |s: String| if lower { s.to_lowercase() } else { s };
    let lead = tokens.first() == Some(&Token::Star);
    let trail = tokens.len() > 1 && tokens.last() == Some(&Token::Star);
    let inner = &tokens[usize::from(lead)..tokens.len() - usize::from(trail)];
    if !has_wildcards(inner) {
        let text: String = inner
            .iter()
            .filter_map(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        let anchor = match (lead, trail) {
            (false, false) => Anchor::Exact,
            (true, false) => Anchor::End,
            (false, true) => Anchor::Start,
            (true, true) => Anchor::Contains,
        };
        return match (text.is_empty(), anchor) {
            (true, Anchor::Exact) => Shape::Empty,
            (true, _) => Shape::Any,
            (false, _) => Shape::Literal(fold(text), anchor),
        };
    }
    glob(&tokens, lower)
}

fn glob(tokens: &[Token], lower: bool) -> Shape {
    let fold = |s: String| if lower { s.to_lowercase() } else { s };
    let mut regex = String::from("^");
    let mut run = String::new();
    let mut required = String::new();
    let mut flush = |run: &mut String, regex: &mut String| {
        let text = fold(std::mem::take(run));
        regex.push_str(&regex::escape(&text));
        if text.chars().count() > required.chars().count() {
            required = text;
        }
    };
    for t in tokens {
        match t {
            Token::Lit(c) => run.push(*c),
            Token::Star => {
                flush(&mut run, &mut regex);
                regex.push_str(".*");
            }
            Token::Question => {
                flush(&mut run, &mut regex);
                regex.push('.');
            }
        }
    }
    flush(&mut run, &mut regex);
    regex.push('$');
    Shape::Glob {
        regex: format!("(?s){regex}"),
        required,
    }
}

/// `base64`: the value's Base64 encoding. Wildcards cannot be encoded.
pub(crate) fn base64(tokens: &[Token]) -> Result<Vec<Vec<Token>>, Problem> {
    let text = plain_text(tokens, "base64")?;
    Ok(vec![literal(&STANDARD.encode(text.as_bytes()))])
}

/// `base64offset`: the three encodings of the value at each offset within a Base64 triple,
/// cut to the characters that do not depend on its neighbours (as pySigma does).
pub(crate) fn base64offset(tokens: &[Token]) -> Result<Vec<Vec<Token>>, Problem> {
    let text = plain_text(tokens, "base64offset")?;
    const START: [usize; 3] = [0, 2, 3];
    const END_CUT: [usize; 3] = [0, 3, 2];
    Ok((0..3)
        .map(|i| {
            let mut bytes = vec![b' '; i];
            bytes.extend_from_slice(text.as_bytes());
            let encoded = STANDARD.encode(&bytes);
            let cut = END_CUT[(text.len() + i) % 3];
            literal(&encoded[START[i]..encoded.len() - cut])
        })
        .collect())
}

fn plain_text(tokens: &[Token], modifier: &str) -> Result<String, Problem> {
    if has_wildcards(tokens) {
        return Err(invalid(format!(
            "a value with wildcards cannot be encoded by `{modifier}`"
        )));
    }
    Ok(tokens
        .iter()
        .filter_map(|t| match t {
            Token::Lit(c) => Some(*c),
            _ => None,
        })
        .collect())
}

/// `windash`: the value with every dash or slash that starts a word (an option such as
/// `-enc` or `/enc`) written as `-`, `/`, en dash, em dash and horizontal bar.
pub(crate) fn windash(tokens: &[Token]) -> Vec<Vec<Token>> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let starts: Vec<usize> = (0..tokens.len())
        .filter(|&i| {
            matches!(tokens[i], Token::Lit('-' | '/'))
                && (i == 0 || matches!(tokens[i - 1], Token::Lit(c) if c.is_whitespace()))
        })
        .collect();
    if starts.is_empty() {
        return vec![tokens.to_vec()];
    }
    DASHES
        .iter()
        .map(|&d| {
            let mut t = tokens.to_vec();
            for &i in &starts {
                t[i] = Token::Lit(d);
            }
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str, p: Position) -> Shape {
        shape(tokenize(v), p, true)
    }

    fn lit(t: &str, a: Anchor) -> Shape {
        Shape::Literal(t.into(), a)
    }

    #[test]
    fn modifiers_and_wildcards_pick_literal_shapes() {
        assert_eq!(s("/Bin/Sh", Position::Whole), lit("/bin/sh", Anchor::Exact));
        assert_eq!(s("x", Position::Contains), lit("x", Anchor::Contains));
        assert_eq!(s("x", Position::StartsWith), lit("x", Anchor::Start));
        assert_eq!(s("x", Position::EndsWith), lit("x", Anchor::End));
        assert_eq!(s("*x*", Position::Whole), lit("x", Anchor::Contains));
        assert_eq!(s("x*", Position::StartsWith), lit("x", Anchor::Start));
        assert_eq!(s("*", Position::Whole), Shape::Any);
        assert_eq!(s("", Position::Whole), Shape::Empty);
        assert_eq!(s("", Position::Contains), Shape::Any);
    }

    #[test]
    fn escapes() {
        assert_eq!(s(r"a\*b", Position::Whole), lit("a*b", Anchor::Exact));
        assert_eq!(s(r"a\?b", Position::Whole), lit("a?b", Anchor::Exact));
        assert_eq!(s(r"c:\win", Position::Whole), lit(r"c:\win", Anchor::Exact));
        assert_eq!(s(r"a\\*", Position::Whole), lit(r"a\", Anchor::Start));
    }

    #[test]
    fn inner_wildcards_become_anchored_regexes() {
        let Shape::Glob { regex, required } = s("*curl*|*sh?", Position::Whole) else {
            panic!("not a glob")
        };
        assert_eq!(regex, r"(?s)^.*curl.*\|.*sh.$");
        assert_eq!(required, "curl");
    }

    #[test]
    fn base64offset_matches_pysigma() {
        // pySigma: base64offset of "/bin/bash" -> L2Jpbi9iYXNo, 9iaW4vYmFza, vYmluL2Jhc2
        let got: Vec<String> = base64offset(&tokenize("/bin/bash"))
            .unwrap()
            .iter()
            .map(|t| {
                t.iter()
                    .map(|t| if let Token::Lit(c) = t { *c } else { '*' })
                    .collect()
            })
            .collect();
        assert_eq!(got, ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
        assert!(base64offset(&tokenize("a*")).is_err());
    }

    #[test]
    fn windash_variants() {
        let v = windash(&tokenize(" -enc x-y"));
        assert_eq!(v.len(), 5);
        assert_eq!(v[1], tokenize(" /enc x-y"));
        assert_eq!(windash(&tokenize("a-b")).len(), 1);
    }
}
