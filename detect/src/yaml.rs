//! A small YAML document tree built from `yaml-rust2`'s event parser.
//!
//! Sigma needs three things a typical YAML value type loses: mappings in source order (the
//! order of selections and fields is kept in messages), every node's line and column (so a
//! refusal can point at the construct), and each scalar's text as written (so `0`, `010`
//! and `yes` are matched as the strings the author typed, not as re-formatted numbers or
//! booleans). Anchors and aliases are resolved; tags are ignored.
//!
//! The tree is bounded whatever the input: at most [`MAX_NODES`] nodes and [`MAX_TEXT`]
//! bytes of scalar text after aliases are expanded (a few hundred bytes of nested aliases,
//! "billion laughs", would otherwise expand to gigabytes), and at most [`MAX_DEPTH`] levels
//! of nesting (the tree is walked and dropped recursively).

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node starts: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} column {}", self.line, self.col)
    }
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar: its text, and whether it was quoted or a block (so never null or a number).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Key/value pairs in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, quoted: false }
            if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    /// The scalar's text, if this is a scalar (null included, as its text).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// The value under a scalar key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// What kind of node this is, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error or an unsupported document shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// Parses a text holding one YAML document. Returns every document found, so the caller can
/// refuse multi-document files with its own message.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| YamlError {
        pos: Pos::from(*e.marker()),
        message: e.info().to_string(),
    })?;
    match builder.error {
        Some(e) => Err(e),
        None => Ok(builder.docs),
    }
}

enum Open {
    Seq(Pos, usize, Vec<Node>),
    /// Pairs so far and a key waiting for its value.
    Map(Pos, usize, Vec<(Node, Node)>, Option<Node>),
}

/// The most nodes a parsed text may hold, aliases expanded.
pub const MAX_NODES: usize = 100_000;
/// The most bytes of scalar text a parsed text may hold, aliases expanded.
pub const MAX_TEXT: usize = 4 << 20;
/// The deepest nesting of lists and mappings.
pub const MAX_DEPTH: usize = 64;

/// What a node costs against the bounds: nodes and bytes of scalar text, itself included.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    text: usize,
}

impl Size {
    fn of(node: &Node) -> Size {
        match &node.kind {
            Kind::Scalar { text, .. } => Size {
                nodes: 1,
                text: text.len(),
            },
            Kind::Seq(items) => items.iter().fold(Size::one(), |a, n| a.plus(Size::of(n))),
            Kind::Map(pairs) => pairs.iter().fold(Size::one(), |a, (k, v)| {
                a.plus(Size::of(k)).plus(Size::of(v))
            }),
        }
    }

    fn one() -> Size {
        Size { nodes: 1, text: 0 }
    }

    fn plus(self, other: Size) -> Size {
        Size {
            nodes: self.nodes.saturating_add(other.nodes),
            text: self.text.saturating_add(other.text),
        }
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    docs: Vec<Node>,
    /// Each anchored node with its size, so an alias is charged before it is copied.
    anchors: std::collections::HashMap<usize, (Node, Size)>,
    /// What the tree holds so far, aliases expanded.
    total: Size,
    error: Option<YamlError>,
}

impl Builder {
    /// Charges `size` against the bounds; false (with the error set) when it does not fit.
    fn charge(&mut self, size: Size, pos: Pos) -> bool {
        self.total = self.total.plus(size);
        if self.total.nodes > MAX_NODES || self.total.text > MAX_TEXT {
            self.fail(
                pos,
                format!(
                    "the document expands to more than {MAX_NODES} nodes or {} MiB of text \
                     (aliases included); refused",
                    MAX_TEXT >> 20
                ),
            );
            return false;
        }
        true
    }

    fn fail(&mut self, pos: Pos, message: String) {
        self.error = Some(YamlError { pos, message });
    }

    fn open(&mut self, open: Open, pos: Pos) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                pos,
                format!("lists and mappings nested more than {MAX_DEPTH} deep; refused"),
            );
            return;
        }
        if self.charge(Size::one(), pos) {
            self.stack.push(open);
        }
    }

    fn alias(&mut self, id: usize, pos: Pos) {
        let Some(&(_, size)) = self.anchors.get(&id) else {
            return self.fail(pos, "alias to an unknown anchor".into());
        };
        // Charged before it is copied: the copy is what the bounds are for.
        if !self.charge(size, pos) {
            return;
        }
        if let Some((node, _)) = self.anchors.get(&id) {
            let node = node.clone();
            self.push_node(node, 0);
        }
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = Size::of(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, pairs, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from(mark);
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let size = Size {
                    nodes: 1,
                    text: text.len(),
                };
                if !self.charge(size, pos) {
                    return;
                }
                let node = Node {
                    pos,
                    kind: Kind::Scalar { text, quoted },
                };
                self.push_node(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.open(Open::Seq(pos, anchor, Vec::new()), pos),
            Event::MappingStart(anchor, _) => {
                self.open(Open::Map(pos, anchor, Vec::new(), None), pos)
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(pos, anchor, items)) => {
                    self.push_node(
                        Node {
                            pos,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    );
                }
                Some(Open::Map(pos, anchor, pairs, _)) => {
                    // The parser marks a block mapping where its first `:` is; where its
                    // first key starts is what a reader looks for.
                    let pos = pairs.first().map_or(pos, |(k, _)| k.pos);
                    self.push_node(
                        Node {
                            pos,
                            kind: Kind::Map(pairs),
                        },
                        anchor,
                    );
                }
                None => {}
            },
            Event::Alias(id) => self.alias(id, pos),
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_text_and_positions() {
        let docs = parse("b: 1\na:\n  - 010\n  - 'x'\n  - ~\n").unwrap();
        assert_eq!(docs.len(), 1);
        let pairs = docs[0].as_map().unwrap();
        assert_eq!(pairs[0].0.as_str(), Some("b"));
        assert_eq!(pairs[1].0.as_str(), Some("a"));
        let Kind::Seq(items) = &pairs[1].1.kind else {
            panic!("not a list")
        };
        assert_eq!(items[0].as_str(), Some("010"));
        assert!(!items[1].is_null());
        assert!(items[2].is_null());
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(docs[0].pos, Pos { line: 1, col: 1 });
    }

    #[test]
    fn anchors_resolve() {
        let docs = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(docs[0].get("a"), docs[0].get("b"));
    }

    /// "Billion laughs": ten anchors, each aliasing the one before ten times, in 300-odd
    /// bytes. Expanded, that is 10^10 scalars.
    fn alias_bomb() -> String {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_with_its_position() {
        let text = alias_bomb();
        assert!(text.len() < 800, "{} bytes", text.len());
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("expands to more than"), "{e}");
        assert!(e.pos.line > 1, "{e}");
    }

    #[test]
    fn aliases_of_long_text_are_bounded_too() {
        let long = "x".repeat(200_000);
        let mut text = format!("a: &a '{long}'\nb: [");
        text.push_str(&vec!["*a"; 100].join(", "));
        text.push_str("]\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("MiB of text"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nested more than"), "{e}");
        // Deeper still, the parser's own limit speaks first.
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&text).is_err());
        // Just inside the bound is fine.
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e}");
    }

    #[test]
    fn counts_documents() {
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap().len(), 2);
    }
}
