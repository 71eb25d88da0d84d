//! Compiles a rule's `detection` section: named selections (field maps, lists of maps,
//! keyword lists) and the condition that combines them.

use regex::RegexBuilder;

use super::compiled::{Cidr, Cmp, Detection, Expr, Leaf, Literal, Matcher, Test};
use super::condition::{self, Cond, Quantity};
use super::error::{Problem, invalid, unsupported};
use super::value::{self, Position, Shape};
use crate::fields;
use crate::yaml::{Kind, Node};

/// Compiles `detection` for a rule of `category`.
pub(crate) fn compile(node: &Node, category: &'static str) -> Result<Detection, Problem> {
    let pairs = node.as_map().ok_or_else(|| {
        invalid(format!(
            "detection: must be a mapping, not {}",
            node.describe()
        ))
    })?;
    let mut c = Compiler {
        det: Detection {
            category,
            fields: Vec::new(),
            literals: Vec::new(),
            leaves: Vec::new(),
            expr: Expr::Or(Vec::new()),
        },
    };
    let mut named: Vec<(String, Expr)> = Vec::new();
    let mut condition = None;
    for (key, value) in pairs {
        let name = key.as_str().unwrap_or_default();
        match name {
            "condition" => condition = Some(value),
            "timeframe" => return Err(unsupported("`timeframe` (correlation rules)")),
            _ => {
                let expr = c
                    .selection(value)
                    .map_err(|p| in_selection(p, name, value))?;
                named.push((name.to_string(), expr));
            }
        }
    }
    let condition = condition.ok_or_else(|| invalid("detection: no `condition`"))?;
    let texts: Vec<&str> = match &condition.kind {
        Kind::Scalar { text, .. } if !condition.is_null() => vec![text],
        Kind::Seq(items) => items
            .iter()
            .map(|i| i.as_str().filter(|_| !i.is_null()))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("condition: a list of conditions must hold only strings"))?,
        _ => return Err(invalid("condition: must be a string or a list of strings")),
    };
    let mut alternatives = Vec::new();
    for text in texts {
        alternatives.push(resolve(&condition::parse(text)?, &named)?);
    }
    c.det.expr = if alternatives.len() == 1 {
        alternatives.remove(0)
    } else {
        Expr::Or(alternatives)
    };
    Ok(c.det)
}

/// Prefixes a problem with the selection it is in (and where, for invalid YAML shapes).
fn in_selection(p: Problem, name: &str, node: &Node) -> Problem {
    match p {
        Problem::Invalid(m) => Problem::Invalid(format!("detection.{name} ({}): {m}", node.pos)),
        Problem::Unsupported(m) => Problem::Unsupported(format!("{m} in detection.{name}")),
        other => other,
    }
}

fn resolve(cond: &Cond, named: &[(String, Expr)]) -> Result<Expr, Problem> {
    Ok(match cond {
        Cond::And(items) => Expr::And(resolve_all(items, named)?),
        Cond::Or(items) => Expr::Or(resolve_all(items, named)?),
        Cond::Not(inner) => Expr::Not(Box::new(resolve(inner, named)?)),
        Cond::Ident(name) => named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
            .ok_or_else(|| invalid(format!("condition: unknown detection `{name}`")))?,
        Cond::Of(q, pattern) => {
            let chosen: Vec<Expr> = named
                .iter()
                .filter(|(n, _)| match pattern {
                    Some(p) => condition::name_matches(p, n),
                    None => !n.starts_with('_'),
                })
                .map(|(_, e)| e.clone())
                .collect();
            let shown = pattern.as_deref().unwrap_or("them");
            if chosen.is_empty() {
                return Err(invalid(format!(
                    "condition: `{shown}` matches no detection"
                )));
            }
            match *q {
                Quantity::All => Expr::And(chosen),
                Quantity::AtLeast(1) => Expr::Or(chosen),
                Quantity::AtLeast(n) => Expr::AtLeast(n, chosen),
            }
        }
    })
}

fn resolve_all(items: &[Cond], named: &[(String, Expr)]) -> Result<Vec<Expr>, Problem> {
    items.iter().map(|c| resolve(c, named)).collect()
}

struct Compiler {
    det: Detection,
}

/// The modifiers of one detection item.
#[derive(Default)]
struct Mods {
    position: Position,
    all: bool,
    re: Option<(bool, bool, bool)>,
    cidr: bool,
    exists: bool,
    cased: bool,
    cmp: Option<Cmp>,
    /// Value transformations in the order written.
    transforms: Vec<&'static str>,
}

impl Mods {
    fn parse(names: &[&str], field: &str) -> Result<Mods, Problem> {
        let on = if field.is_empty() {
            "keywords".to_string()
        } else {
            format!("field {field}")
        };
        let mut m = Mods::default();
        for &name in names {
            let set_position = |m: &mut Mods, p: Position| {
                if m.position != Position::Whole {
                    return Err(invalid(format!(
                        "modifier `{name}` on {on}: only one of contains, startswith, endswith"
                    )));
                }
                m.position = p;
                Ok(())
            };
            match name {
                "contains" => set_position(&mut m, Position::Contains)?,
                "startswith" => set_position(&mut m, Position::StartsWith)?,
                "endswith" => set_position(&mut m, Position::EndsWith)?,
                "all" => m.all = true,
                "re" => m.re = Some((false, false, false)),
                "i" | "m" | "s" => match m.re.as_mut() {
                    Some(flags) if name == "i" => flags.0 = true,
                    Some(flags) if name == "m" => flags.1 = true,
                    Some(flags) => flags.2 = true,
                    None => {
                        return Err(invalid(format!(
                            "modifier `{name}` on {on} needs `re` before it"
                        )));
                    }
                },
                "cidr" => m.cidr = true,
                "exists" => m.exists = true,
                "cased" => m.cased = true,
                "lt" => m.cmp = Some(Cmp::Lt),
                "lte" => m.cmp = Some(Cmp::Lte),
                "gt" => m.cmp = Some(Cmp::Gt),
                "gte" => m.cmp = Some(Cmp::Gte),
                "base64" => m.transforms.push("base64"),
                "base64offset" => m.transforms.push("base64offset"),
                "windash" => m.transforms.push("windash"),
                "utf16le" | "utf16be" | "utf16" | "wide" | "expand" | "fieldref" | "minute"
                | "hour" | "day" | "week" | "month" | "year" => {
                    return Err(unsupported(format!("modifier `{name}` on {on}")));
                }
                _ => return Err(invalid(format!("unknown modifier `{name}` on {on}"))),
            }
        }
        let special = [m.re.is_some(), m.cidr, m.exists, m.cmp.is_some()];
        let other = m.position != Position::Whole || !m.transforms.is_empty() || m.cased;
        if special.iter().filter(|b| **b).count() + usize::from(other) > 1 {
            return Err(invalid(format!(
                "modifiers `{}` on {on} cannot be combined",
                names.join("|")
            )));
        }
        Ok(m)
    }
}

impl Compiler {
    fn field(&mut self, name: &str) -> usize {
        match self.det.fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                self.det.fields.push(name.to_string());
                self.det.fields.len() - 1
            }
        }
    }

    fn leaf(&mut self, leaf: Leaf) -> Expr {
        self.det.leaves.push(leaf);
        Expr::Leaf(self.det.leaves.len() - 1)
    }

    /// A named selection: a field map, a list of maps and/or keywords, or one keyword.
    fn selection(&mut self, node: &Node) -> Result<Expr, Problem> {
        match &node.kind {
            Kind::Map(pairs) => self.map(pairs),
            Kind::Seq(items) if items.iter().all(|i| matches!(i.kind, Kind::Scalar { .. })) => {
                self.item("", &[], node)
            }
            Kind::Seq(items) => {
                let mut alternatives = Vec::new();
                for item in items {
                    alternatives.push(match &item.kind {
                        Kind::Map(pairs) => self.map(pairs)?,
                        Kind::Scalar { .. } => self.item("", &[], item)?,
                        Kind::Seq(_) => return Err(invalid("a list inside a list")),
                    });
                }
                Ok(Expr::Or(alternatives))
            }
            Kind::Scalar { .. } if node.is_null() => Err(invalid("empty selection")),
            Kind::Scalar { .. } => self.item("", &[], node),
        }
    }

    /// A field map: every item must hold.
    fn map(&mut self, pairs: &[(Node, Node)]) -> Result<Expr, Problem> {
        if pairs.is_empty() {
            return Err(invalid("empty selection"));
        }
        let mut items = Vec::new();
        for (key, value) in pairs {
            let key = key.as_str().unwrap_or_default();
            let mut parts = key.split('|');
            let field = parts.next().unwrap_or_default();
            let mods: Vec<&str> = parts.collect();
            items.push(self.item(field, &mods, value)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    /// One `Field|mods: values` item, or keywords when `field` is empty.
    fn item(&mut self, field: &str, mod_names: &[&str], value: &Node) -> Result<Expr, Problem> {
        let mut mods = Mods::parse(mod_names, field)?;
        let values: Vec<&Node> = match &value.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        if values.is_empty() {
            return Err(invalid(format!("`{field}`: empty list of values")));
        }
        if !field.is_empty() {
            return self.field_leaf(field, &mods, &values);
        }
        if mods.exists || mods.cmp.is_some() || mods.cidr {
            return Err(invalid(
                "keywords take no exists, cidr or comparison modifier",
            ));
        }
        if mods.position == Position::Whole && mods.re.is_none() {
            mods.position = Position::Contains;
        }
        let fields = fields::keyword_fields(self.det.category);
        let per_value = |this: &mut Self, vals: &[&Node]| -> Result<Expr, Problem> {
            let mut any = Vec::new();
            for f in fields {
                any.push(this.field_leaf(f, &mods, vals)?);
            }
            Ok(Expr::Or(any))
        };
        if mods.all {
            let mut each = Vec::new();
            for v in &values {
                each.push(per_value(self, &[v])?);
            }
            Ok(Expr::And(each))
        } else {
            per_value(self, &values)
        }
    }

    fn field_leaf(&mut self, name: &str, mods: &Mods, values: &[&Node]) -> Result<Expr, Problem> {
        let field = self.field(name);
        if mods.exists {
            let [v] = values else {
                return Err(invalid(format!(
                    "`{name}|exists` takes one value, true or false"
                )));
            };
            let want = match v.as_str() {
                Some("true" | "True" | "yes") => true,
                Some("false" | "False" | "no") => false,
                _ => return Err(invalid(format!("`{name}|exists` takes true or false"))),
            };
            return Ok(self.leaf(Leaf {
                field,
                test: Test::Exists(want),
            }));
        }
        let mut groups = Vec::new();
        let mut absent = Vec::new();
        for v in values {
            match &v.kind {
                _ if v.is_null() => {
                    groups.push(vec![Matcher::Empty]);
                    absent.push(true);
                }
                Kind::Scalar { text, .. } => {
                    groups.push(self.matchers(field, name, mods, text)?);
                    absent.push(false);
                }
                _ => {
                    return Err(invalid(format!(
                        "`{name}`: a value must be a string, number or null, not {}",
                        v.describe()
                    )));
                }
            }
        }
        let when_absent = if mods.all {
            absent.iter().all(|a| *a)
        } else {
            absent.iter().any(|a| *a)
        };
        Ok(self.leaf(Leaf {
            field,
            test: Test::Values {
                groups,
                all: mods.all,
                when_absent,
            },
        }))
    }

    /// The alternatives one value compiles to.
    fn matchers(
        &mut self,
        field: usize,
        name: &str,
        mods: &Mods,
        text: &str,
    ) -> Result<Vec<Matcher>, Problem> {
        if let Some((i, m, s)) = mods.re {
            let re = RegexBuilder::new(text)
                .case_insensitive(i)
                .multi_line(m)
                .dot_matches_new_line(s)
                .build()
                .map_err(|e| regex_problem(name, text, &e))?;
            return Ok(vec![Matcher::Regex {
                re,
                cased: true,
                trigger: None,
            }]);
        }
        if mods.cidr {
            let net = Cidr::parse(text)
                .ok_or_else(|| invalid(format!("`{name}|cidr`: `{text}` is not a network")))?;
            return Ok(vec![Matcher::Cidr(net)]);
        }
        if let Some(cmp) = mods.cmp {
            let n: f64 = text.trim().parse().map_err(|_| {
                invalid(format!("`{name}`: comparison needs a number, not `{text}`"))
            })?;
            return Ok(vec![Matcher::Num(cmp, n)]);
        }
        let mut variants = vec![value::tokenize(text)];
        let mut cased = mods.cased;
        for t in &mods.transforms {
            let mut next = Vec::new();
            for v in &variants {
                match *t {
                    "base64" => next.extend(value::base64(v)?),
                    "base64offset" => next.extend(value::base64offset(v)?),
                    _ => next.extend(value::windash(v)),
                }
            }
            cased |= *t != "windash";
            variants = next;
        }
        variants
            .into_iter()
            .map(|v| self.shape(field, value::shape(v, mods.position, !cased), cased))
            .collect()
    }

    fn shape(&mut self, field: usize, shape: Shape, cased: bool) -> Result<Matcher, Problem> {
        Ok(match shape {
            Shape::Any => Matcher::Any,
            Shape::Empty => Matcher::Empty,
            Shape::Literal(text, anchor) => Matcher::Lit(self.literal(Literal {
                field,
                text,
                cased,
                anchor,
            })),
            Shape::Glob { regex, required } => {
                let re = RegexBuilder::new(&regex)
                    .build()
                    .map_err(|e| invalid(format!("wildcard pattern: {e}")))?;
                let trigger = (!required.is_empty()).then(|| {
                    self.literal(Literal {
                        field,
                        text: required,
                        cased,
                        anchor: value::Anchor::Contains,
                    })
                });
                Matcher::Regex { re, cased, trigger }
            }
        })
    }

    fn literal(&mut self, lit: Literal) -> usize {
        match self.det.literals.iter().position(|l| *l == lit) {
            Some(i) => i,
            None => {
                self.det.literals.push(lit);
                self.det.literals.len() - 1
            }
        }
    }
}

fn regex_problem(field: &str, text: &str, e: &regex::Error) -> Problem {
    let msg = e.to_string();
    if msg.contains("look-around") || msg.contains("backreferences") {
        unsupported(format!(
            "regex feature in `{field}|re: {text}` (look-around and backreferences are not \
             available in Rust's regex engine)"
        ))
    } else {
        let last = msg.lines().last().unwrap_or_default().trim();
        invalid(format!("`{field}|re`: bad regex `{text}`: {last}"))
    }
}
