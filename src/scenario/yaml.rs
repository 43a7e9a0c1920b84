//! A YAML tree that remembers where each node was written, so every validation problem can
//! be reported as `FILE:LINE:COL`.
//!
//! Typed deserialisation still goes through serde (via `serde_yaml::Value`); this tree only
//! adds positions. serde's error paths (`steps[3].with.timeout`) are mapped back to nodes with
//! [`Node::at_path`].

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl From<Marker> for Pos {
    fn from(mark: Marker) -> Self {
        Self {
            line: mark.line(),
            col: mark.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Strings keep whether they were quoted: a quoted "1" is text, a plain 1 a number.
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Every string scalar in this subtree (keys excluded), for variable checks.
    pub fn strings(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        self.collect_strings(&mut out);
        out
    }

    fn collect_strings<'a>(&'a self, out: &mut Vec<&'a Node>) {
        match &self.value {
            Value::Str(_) => out.push(self),
            Value::Seq(items) => items.iter().for_each(|n| n.collect_strings(out)),
            Value::Map(entries) => entries.iter().for_each(|(_, v)| v.collect_strings(out)),
            _ => {}
        }
    }

    /// Replace every string scalar (keys excluded) with what `f` makes of it.
    pub fn map_strings<E>(&mut self, f: &mut impl FnMut(&str, Pos) -> Result<Value, E>) -> Vec<E> {
        let mut errors = Vec::new();
        self.map_strings_into(f, &mut errors);
        errors
    }

    fn map_strings_into<E>(
        &mut self,
        f: &mut impl FnMut(&str, Pos) -> Result<Value, E>,
        errors: &mut Vec<E>,
    ) {
        let pos = self.pos;
        match &mut self.value {
            Value::Str(s) => match f(s, pos) {
                Ok(new) => self.value = new,
                Err(err) => errors.push(err),
            },
            Value::Seq(items) => items.iter_mut().for_each(|n| n.map_strings_into(f, errors)),
            Value::Map(entries) => entries
                .iter_mut()
                .for_each(|(_, v)| v.map_strings_into(f, errors)),
            _ => {}
        }
    }

    /// The deepest node named by a serde error path; as far as the path exists.
    pub fn at_path(&self, path: &serde_path_to_error::Path) -> &Node {
        use serde_path_to_error::Segment;
        let mut node = self;
        for segment in path.iter() {
            let next = match segment {
                Segment::Seq { index } => node.as_seq().and_then(|items| items.get(*index)),
                Segment::Map { key } => node.entry(key).map(|(_, v)| v),
                Segment::Enum { .. } | Segment::Unknown => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// Where serde's complaint belongs: an unknown field is pointed at its key, anything
    /// else at the value it is about.
    pub fn pos_for_error(&self, path: &serde_path_to_error::Path, message: &str) -> Pos {
        use serde_path_to_error::Segment;
        let node = self.at_path(path);
        if !message.starts_with("unknown field") {
            return node.pos;
        }
        let segments: Vec<&Segment> = path.iter().collect();
        let Some((Segment::Map { key }, parents)) = segments.split_last() else {
            return node.pos;
        };
        let mut parent = self;
        for segment in parents {
            let next = match segment {
                Segment::Seq { index } => parent.as_seq().and_then(|items| items.get(*index)),
                Segment::Map { key } => parent.get(key),
                _ => None,
            };
            match next {
                Some(n) => parent = n,
                None => return node.pos,
            }
        }
        parent.entry(key).map(|(k, _)| k.pos).unwrap_or(node.pos)
    }

    /// The same tree without positions, for serde.
    pub fn to_yaml(&self) -> serde_yaml::Value {
        use serde_yaml::Value as Y;
        match &self.value {
            Value::Null => Y::Null,
            Value::Bool(b) => Y::Bool(*b),
            Value::Int(i) => Y::Number((*i).into()),
            Value::Float(f) => Y::Number((*f).into()),
            Value::Str(s) => Y::String(s.clone()),
            Value::Seq(items) => Y::Sequence(items.iter().map(Node::to_yaml).collect()),
            Value::Map(entries) => Y::Mapping(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_yaml(), v.to_yaml()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parse one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|err| SyntaxError {
            pos: (*err.marker()).into(),
            message: err.info().to_string(),
        })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    }))
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>, usize)>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some((parent, pending_key, _)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        if let Some((dup, _)) = entries.iter().find(|(k, _)| k.value == key.value) {
                            if self.error.is_none() {
                                self.error = Some(SyntaxError {
                                    pos: key.pos,
                                    message: format!(
                                        "duplicate key {} (first at line {})",
                                        describe_key(&key),
                                        dup.pos.line
                                    ),
                                });
                            }
                        }
                        entries.push((key, node));
                    }
                },
                _ => unreachable!("only collections are pushed on the stack"),
            },
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

fn describe_key(key: &Node) -> String {
    match &key.value {
        Value::Str(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = Pos::from(mark);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                let node = Node { value, pos };
                self.remember(anchor, &node);
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((
                    Node {
                        value: Value::Seq(Vec::new()),
                        pos,
                    },
                    None,
                    anchor,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((
                    Node {
                        value: Value::Map(Vec::new()),
                        pos,
                    },
                    None,
                    anchor,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _, anchor)) = self.stack.pop() {
                    self.remember(anchor, &node);
                    self.push_value(node);
                }
            }
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().unwrap_or(Node {
                    value: Value::Null,
                    pos,
                });
                self.push_value(node);
            }
            _ => {}
        }
    }
}

/// YAML 1.2 core schema for plain scalars.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    let looks_numeric = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'));
    if looks_numeric {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let doc = parse("name: x\nsteps:\n  - { do: sleep, with: { duration: 1s } }\n").unwrap();
        let steps = doc.get("steps").unwrap();
        assert_eq!(steps.pos.line, 3);
        let first = &steps.as_seq().unwrap()[0];
        let (key, value) = first.entry("do").unwrap();
        assert_eq!((key.pos.line, key.pos.col), (3, 7));
        assert_eq!(value.as_str(), Some("sleep"));
        assert_eq!((value.pos.line, value.pos.col), (3, 11));
    }

    #[test]
    fn plain_scalars_resolve_to_types_but_quoted_stay_text() {
        let doc = parse("a: 1\nb: \"1\"\nc: true\nd: 1.5\ne: ~\nf: 5m\n").unwrap();
        assert_eq!(doc.get("a").unwrap().value, Value::Int(1));
        assert_eq!(doc.get("b").unwrap().value, Value::Str("1".into()));
        assert_eq!(doc.get("c").unwrap().value, Value::Bool(true));
        assert_eq!(doc.get("d").unwrap().value, Value::Float(1.5));
        assert_eq!(doc.get("e").unwrap().value, Value::Null);
        assert_eq!(doc.get("f").unwrap().value, Value::Str("5m".into()));
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_carry_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
        assert!(err.message.contains("duplicate key"), "{}", err.message);
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let doc = parse("x: &v { a: 1 }\ny: *v\n").unwrap();
        assert_eq!(doc.get("y").unwrap().get("a").unwrap().value, Value::Int(1));
    }
}
