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

/// The most nodes a scenario may expand to, aliases included. A few hundred bytes of nested
/// aliases (a "billion laughs") would otherwise expand to gigabytes; real scenarios have a few
/// hundred nodes.
pub const MAX_NODES: usize = 100_000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Each anchored node, with how many nodes it expands to.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes built so far, aliases counted at their expanded size.
    nodes: usize,
    error: Option<SyntaxError>,
}

/// A collection being built.
struct Frame {
    node: Node,
    pending_key: Option<Node>,
    anchor: usize,
    /// The node count when it started, to size it when it ends.
    nodes_before: usize,
    /// Keys seen in a mapping, with their line: duplicates found in constant time each.
    keys: HashMap<String, usize>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { pos, message });
        }
    }

    /// Count `size` more nodes; false (and an error) once past [`MAX_NODES`].
    fn count(&mut self, size: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.fail(
                pos,
                format!(
                    "the document expands to more than {MAX_NODES} nodes (through aliases?); a scenario is far smaller"
                ),
            );
            return false;
        }
        true
    }

    fn push_value(&mut self, node: Node) {
        let Some(frame) = self.stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return;
        };
        let duplicate = match &mut frame.node.value {
            Value::Seq(items) => {
                items.push(node);
                None
            }
            Value::Map(entries) => match frame.pending_key.take() {
                None => {
                    frame.pending_key = Some(node);
                    None
                }
                Some(key) => {
                    let first = frame.keys.get(&key_text(&key)).copied();
                    if first.is_none() {
                        frame.keys.insert(key_text(&key), key.pos.line);
                    }
                    let duplicate = first.map(|line| {
                        (
                            key.pos,
                            format!(
                                "duplicate key {} (first at line {line})",
                                describe_key(&key)
                            ),
                        )
                    });
                    entries.push((key, node));
                    duplicate
                }
            },
            _ => unreachable!("only collections are pushed on the stack"),
        };
        if let Some((pos, message)) = duplicate {
            self.fail(pos, message);
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
    }

    /// Open a collection (unless it is one node too many).
    fn start(&mut self, value: Value, anchor: usize, pos: Pos) {
        if !self.count(1, pos) {
            return;
        }
        self.stack.push(Frame {
            node: Node { value, pos },
            pending_key: None,
            anchor,
            nodes_before: self.nodes,
            keys: HashMap::new(),
        });
    }
}

/// A key as text for the duplicate check: equal keys give equal text.
fn key_text(key: &Node) -> String {
    format!("{:?}", key.value)
}

fn describe_key(key: &Node) -> String {
    match &key.value {
        Value::Str(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        // After an error nothing more is built: a bomb stops growing where it was found.
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from(mark);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                if !self.count(1, pos) {
                    return;
                }
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                let node = Node { value, pos };
                self.remember(anchor, &node, 1);
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => self.start(Value::Seq(Vec::new()), anchor, pos),
            Event::MappingStart(anchor, _) => self.start(Value::Map(Vec::new()), anchor, pos),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let size = self.nodes - frame.nodes_before;
                    self.remember(frame.anchor, &frame.node, size);
                    self.push_value(frame.node);
                }
            }
            Event::Alias(anchor) => {
                // Counted before it is copied, so a bomb is refused before it is built.
                let size = self.anchors.get(&anchor).map_or(1, |(_, size)| *size);
                if !self.count(size, pos) {
                    return;
                }
                let node = self.anchors.get(&anchor).map_or(
                    Node {
                        value: Value::Null,
                        pos,
                    },
                    |(node, _)| node.clone(),
                );
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

    #[test]
    fn issue_15_8_an_alias_bomb_is_refused_at_its_position() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(
            err.message.contains("more than 100000 nodes"),
            "{}",
            err.message
        );
        assert!(err.pos.line > 1, "{:?}", err.pos);
    }

    #[test]
    fn issue_15_8_many_keys_are_checked_for_duplicates_and_bounded() {
        let keys: String = (0..20_000).map(|i| format!("k{i}: {i}\n")).collect();
        let doc = parse(&keys).unwrap();
        assert_eq!(doc.as_map().unwrap().len(), 20_000);
        let err = parse(&format!("{keys}k7: again\n")).unwrap_err();
        assert!(
            err.message
                .contains("duplicate key \"k7\" (first at line 8)"),
            "{}",
            err.message
        );
        assert_eq!(err.pos.line, 20_001);
        let too_many: String = (0..60_000).map(|i| format!("k{i}: {i}\n")).collect();
        assert!(parse(&too_many).unwrap_err().message.contains("nodes"));
    }
}
