//! The `json` stage: values from a JSON line (or an extracted value) by JMESPath expression.
//!
//! ```yaml
//! - json:
//!     expressions:
//!       level:                 # empty: the name is the expression
//!       user: request.user     # nested field
//!       first: items[0]        # array index (negative counts from the end)
//!       agent: '"user-agent"'  # quoted field name
//!     source: message          # optional: parse this extracted value instead of the line
//!     drop_malformed: false
//! ```
//!
//! The JMESPath subset supported: field names, quoted names, `.` sub-expressions and `[n]`
//! indexes. Anything else (wildcards, filters, slices, functions, pipes, multi-selects) is
//! refused when the configuration is read, naming the expression. What an expression does
//! not find is set to `null`, as Promtail does; objects and arrays are kept as JSON text.
//! Only the fields the expressions need are decoded: the rest of the line is skipped without
//! allocating.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{Cx, Entry, Stage, StageError, Step, Value};

/// `json:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    /// Extracted name → JMESPath expression (empty or null: the name itself).
    pub expressions: BTreeMap<String, Option<String>>,
    /// Extracted value to parse instead of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Drop lines that are not JSON objects.
    #[serde(default)]
    pub drop_malformed: bool,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Field(String),
    Index(i64),
}

/// Compiles the supported JMESPath subset into a path.
fn compile(expr: &str) -> Result<Vec<PathStep>, String> {
    let unsupported = |what: &str| {
        Err(format!(
            "JMESPath expression {expr:?}: {what} is not supported (supported: field names, \
             \"quoted names\", a.b sub-expressions, [n] indexes)"
        ))
    };
    let b = expr.as_bytes();
    let mut i = 0;
    let mut path = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let mut need_field = true; // at the start or after a `.`
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            if need_field {
                return Err(if path.is_empty() {
                    format!("JMESPath expression {expr:?} is empty")
                } else {
                    format!("JMESPath expression {expr:?} ends with `.`")
                });
            }
            break;
        }
        let c = b[i];
        if need_field {
            if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                // A name followed by `(` is a function call.
                let mut j = i;
                skip_ws(&mut j);
                if b.get(j) == Some(&b'(') {
                    return unsupported("a function call");
                }
                path.push(PathStep::Field(expr[start..i].to_owned()));
                need_field = false;
                continue;
            }
            if c == b'"' {
                let (name, len) =
                    quoted(&expr[i..]).map_err(|e| format!("JMESPath expression {expr:?}: {e}"))?;
                path.push(PathStep::Field(name));
                i += len;
                need_field = false;
                continue;
            }
            if c == b'[' && path.is_empty() {
                // `[0]` at the start: an index on the root.
                need_field = false;
                continue;
            }
            return match c {
                b'*' => unsupported("a wildcard"),
                b'@' => unsupported("the current node `@`"),
                b'\'' => unsupported("a raw string literal"),
                b'`' => unsupported("a JSON literal"),
                b'{' => unsupported("a multi-select hash"),
                b'[' => unsupported("a multi-select list"),
                b'&' => unsupported("an expression reference"),
                b'!' => unsupported("a not expression"),
                b'-' | b'0'..=b'9' => Err(format!(
                    "JMESPath expression {expr:?}: a field name cannot start with {:?}; quote it: \"{}\"",
                    c as char,
                    &expr[i..]
                )),
                _ => Err(format!(
                    "JMESPath expression {expr:?}: unexpected {:?} at position {i}; names with \
                     characters other than letters, digits and _ must be quoted: \"a-b\"",
                    c as char
                )),
            };
        }
        match c {
            b'.' => {
                i += 1;
                need_field = true;
            }
            b'[' => {
                let close = expr[i..]
                    .find(']')
                    .map(|p| i + p)
                    .ok_or_else(|| format!("JMESPath expression {expr:?}: unclosed `[`"))?;
                let inner = expr[i + 1..close].trim();
                if inner.is_empty() {
                    return unsupported("flattening `[]`");
                }
                if inner == "*" {
                    return unsupported("a wildcard `[*]`");
                }
                if inner.starts_with('?') {
                    return unsupported("a filter `[?...]`");
                }
                if inner.contains(':') {
                    return unsupported("a slice");
                }
                let n: i64 = inner.parse().map_err(|_| {
                    format!("JMESPath expression {expr:?}: `[{inner}]` is not an array index")
                })?;
                path.push(PathStep::Index(n));
                i = close + 1;
            }
            b'|' => return unsupported("a pipe or `||`"),
            b'&' => return unsupported("`&&`"),
            b'=' | b'<' | b'>' | b'!' => return unsupported("a comparison"),
            _ => {
                return Err(format!(
                    "JMESPath expression {expr:?}: unexpected {:?} at position {i}",
                    c as char
                ))
            }
        }
    }
    Ok(path)
}

/// A JSON-quoted identifier at the start of `s`: its value and length.
fn quoted(s: &str) -> Result<(String, usize), String> {
    let mut de = serde_json::Deserializer::from_str(s).into_iter::<String>();
    match de.next() {
        Some(Ok(v)) => Ok((v, de.byte_offset())),
        _ => Err(format!("bad quoted name {s:?}")),
    }
}

/// The expressions as a tree of the fields and indexes they need.
#[derive(Debug, Default, Clone)]
struct Node {
    /// Expressions (their result slots) that want this node's whole value.
    whole: Vec<usize>,
    fields: Vec<(String, Node)>,
    indexes: Vec<(i64, Node)>,
    /// Every result slot at or below this node.
    all: Vec<usize>,
}

impl Node {
    fn insert(&mut self, path: &[PathStep], slot: usize) {
        self.all.push(slot);
        match path.split_first() {
            None => self.whole.push(slot),
            Some((PathStep::Field(f), rest)) => {
                let i = match self.fields.iter().position(|(k, _)| k == f) {
                    Some(i) => i,
                    None => {
                        self.fields.push((f.clone(), Node::default()));
                        self.fields.len() - 1
                    }
                };
                self.fields[i].1.insert(rest, slot);
            }
            Some((PathStep::Index(n), rest)) => {
                let i = match self.indexes.iter().position(|(k, _)| k == n) {
                    Some(i) => i,
                    None => {
                        self.indexes.push((*n, Node::default()));
                        self.indexes.len() - 1
                    }
                };
                self.indexes[i].1.insert(rest, slot);
            }
        }
    }

    /// Whether the whole value must be decoded (wanted whole, or negative indexes).
    fn materialize(&self) -> bool {
        !self.whole.is_empty() || self.indexes.iter().any(|(n, _)| *n < 0)
    }

    fn clear(&self, results: &mut [Value]) {
        for &s in &self.all {
            results[s] = Value::Null;
        }
    }

    /// Fills the results of this subtree from a decoded value.
    fn eval(&self, v: &serde_json::Value, results: &mut [Value]) {
        for &s in &self.whole {
            results[s] = from_json(v);
        }
        for (k, child) in &self.fields {
            match v.get(k.as_str()) {
                Some(c) if v.is_object() => child.eval(c, results),
                _ => child.clear(results),
            }
        }
        for (n, child) in &self.indexes {
            let item = v.as_array().and_then(|a| {
                let len = a.len() as i64;
                let idx = if *n < 0 { len + n } else { *n };
                (0..len).contains(&idx).then(|| &a[idx as usize])
            });
            match item {
                Some(c) => child.eval(c, results),
                None => child.clear(results),
            }
        }
    }
}

/// A decoded JSON value as an extracted value (objects and arrays as compact JSON text).
fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

/// Decodes the value at a node, keeping only what the subtree needs.
struct AtNode<'n, 'r> {
    node: &'n Node,
    results: &'r mut [Value],
}

impl<'de> DeserializeSeed<'de> for AtNode<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.node.clear(self.results);
        if self.node.fields.is_empty()
            && self.node.indexes.is_empty()
            && !self.node.whole.is_empty()
        {
            // A leaf: decode straight into the extracted value.
            let v = d.deserialize_any(Leaf)?;
            if let Some((&last, rest)) = self.node.whole.split_last() {
                for &s in rest {
                    self.results[s] = v.clone();
                }
                self.results[last] = v;
            }
            return Ok(());
        }
        if self.node.materialize() {
            let v = serde_json::Value::deserialize(d)?;
            self.node.eval(&v, self.results);
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AtNode<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(key) = m.next_key::<KeyStr<'de>>()? {
            match self.node.fields.iter().find(|(k, _)| *k == *key.0) {
                Some((_, child)) => m.next_value_seed(AtNode {
                    node: child,
                    results: self.results,
                })?,
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let mut i = 0i64;
        loop {
            let child = self.node.indexes.iter().find(|(n, _)| *n == i);
            let more = match child {
                Some((_, child)) => s
                    .next_element_seed(AtNode {
                        node: child,
                        results: self.results,
                    })?
                    .is_some(),
                None => s.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// A leaf value decoded straight into a [`Value`] (objects and arrays as JSON text).
struct Leaf;

impl<'de> Visitor<'de> for Leaf {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Value, A::Error> {
        let v = serde_json::Value::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
        Ok(from_json(&v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Value, A::Error> {
        let v = serde_json::Value::deserialize(serde::de::value::SeqAccessDeserializer::new(s))?;
        Ok(from_json(&v))
    }
}

/// A map key, borrowed when it has no escapes.
struct KeyStr<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The top level: an object (or `null`, which Go decodes into an empty map).
struct Root<'n, 'r>(AtNode<'n, 'r>);

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<(), A::Error> {
        self.0.visit_map(m)
    }
}

/// Compiled expressions: extraction from JSON text.
#[derive(Debug, Clone)]
pub(crate) struct Extractor {
    names: Vec<Arc<str>>,
    root: Node,
    results: Vec<Value>,
}

impl Extractor {
    /// Compiles `(name, expression)` pairs; an error names the pair's name.
    pub(crate) fn new<'a>(
        exprs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, (String, String)> {
        let mut names = Vec::new();
        let mut root = Node::default();
        for (slot, (name, expr)) in exprs.into_iter().enumerate() {
            let path = compile(expr).map_err(|e| (name.to_owned(), e))?;
            root.insert(&path, slot);
            names.push(Arc::from(name));
        }
        let results = vec![Value::Null; names.len()];
        Ok(Extractor {
            names,
            root,
            results,
        })
    }

    /// Extracts from `text` into the entry. `Err` when `text` is not a JSON object.
    pub(crate) fn extract(
        &mut self,
        text: &str,
        entry: &mut Entry,
    ) -> Result<(), serde_json::Error> {
        self.root.clear(&mut self.results);
        let mut de = serde_json::Deserializer::from_str(text);
        let root = &self.root;
        let results = &mut self.results[..];
        if root.materialize() {
            // An expression wants the whole top level (`[-1]` or similar): decode it all.
            let v = serde_json::Value::deserialize(&mut de)?;
            if !(v.is_object() || v.is_null()) {
                return Err(serde::de::Error::custom("not a JSON object"));
            }
            root.eval(&v, results);
        } else {
            de.deserialize_any(Root(AtNode {
                node: root,
                results,
            }))?;
        }
        de.end()?;
        for (name, v) in self.names.iter().zip(self.results.iter_mut()) {
            entry.set_extracted(name, std::mem::replace(v, Value::Null));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct JsonStage {
    extractor: Extractor,
    source: Option<String>,
    drop_malformed: bool,
    reason: Arc<str>,
}

impl JsonStage {
    pub(crate) fn new(cfg: &JsonConfig) -> Result<Self, StageError> {
        if cfg.expressions.is_empty() {
            return Err(StageError::key(
                "expressions",
                "JMES expression is required",
            ));
        }
        if cfg.source.as_deref() == Some("") {
            return Err(StageError::key("source", "empty source"));
        }
        let pairs = cfg.expressions.iter().map(|(n, e)| {
            (
                n.as_str(),
                e.as_deref().filter(|e| !e.is_empty()).unwrap_or(n),
            )
        });
        let extractor = Extractor::new(pairs)
            .map_err(|(name, e)| StageError::key(format!("expressions.{name}"), e))?;
        Ok(JsonStage {
            extractor,
            source: cfg.source.clone(),
            drop_malformed: cfg.drop_malformed,
            reason: Arc::from("json_malformed"),
        })
    }
}

impl Stage for JsonStage {
    fn name(&self) -> &'static str {
        "json"
    }

    fn process(&mut self, mut entry: Entry, _cx: &mut Cx) -> Step {
        let result = match &self.source {
            None => {
                let line = std::mem::take(&mut entry.line);
                let r = self.extractor.extract(&line, &mut entry);
                entry.line = line;
                r
            }
            Some(source) => match entry.extracted_text(source) {
                Some(text) => {
                    let text = text.into_owned();
                    self.extractor.extract(&text, &mut entry)
                }
                // A missing source is not malformed JSON: nothing to do.
                None => return Step::Next(entry),
            },
        };
        if result.is_err() && self.drop_malformed {
            return Step::Drop(entry, self.reason.clone());
        }
        Step::Next(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::labels;
    use super::*;

    fn run(yaml: &str, line: &str) -> (Step, BTreeMap<String, Value>) {
        let cfg: JsonConfig = serde_yaml_ng::from_str(yaml).expect("config");
        let mut s = JsonStage::new(&cfg).expect("stage");
        let step = s.process(
            Entry::new(line, 0, labels([("job", "x")])),
            &mut Cx::default(),
        );
        let map = match &step {
            Step::Next(e) | Step::Drop(e, _) => e.extracted_map(),
            _ => BTreeMap::new(),
        };
        (step, map)
    }

    #[test]
    fn promtail_doc_example() {
        // Promtail's json stage docs: expressions with nested and quoted names.
        let (_, m) = run(
            "expressions:\n  output: log\n  stream: stream\n  timestamp: time\n  extra:\n",
            r#"{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z","extra":"{\"user\":\"marco\"}"}"#,
        );
        assert_eq!(m["output"], Value::from("log message\n"));
        assert_eq!(m["stream"], Value::from("stderr"));
        assert_eq!(m["timestamp"], Value::from("2019-04-30T02:12:41.8443515Z"));
        assert_eq!(m["extra"], Value::from(r#"{"user":"marco"}"#));
        assert_eq!(m["job"], Value::from("x"));
    }

    #[test]
    fn nested_quoted_indexes_and_types() {
        let (_, m) = run(
            "expressions:\n  user: request.user.name\n  agent: '\"user-agent\"'\n  first: items[0]\n  last: items[-1]\n  second_id: items[1].id\n  obj: request.user\n  n: count\n  f: ratio\n  b: ok\n  nil: gone\n  missing: nope.deeper\n  arr: tags\n",
            r#"{"request":{"user":{"name":"ana","id":7}},"user-agent":"curl","items":[{"id":1},{"id":2},{"id":3}],"count":12345678901234,"ratio":0.25,"ok":true,"gone":null,"tags":["a","b"]}"#,
        );
        assert_eq!(m["user"], Value::from("ana"));
        assert_eq!(m["agent"], Value::from("curl"));
        assert_eq!(m["first"], Value::from(r#"{"id":1}"#));
        assert_eq!(m["last"], Value::from(r#"{"id":3}"#));
        assert_eq!(m["second_id"], Value::Int(2));
        assert_eq!(m["obj"], Value::from(r#"{"id":7,"name":"ana"}"#));
        assert_eq!(m["n"], Value::Int(12_345_678_901_234));
        assert_eq!(m["f"], Value::Float(0.25));
        assert_eq!(m["b"], Value::Bool(true));
        assert_eq!(m["nil"], Value::Null);
        // Not found: null, as Promtail's JMESPath search gives nil.
        assert_eq!(m["missing"], Value::Null);
        assert_eq!(m["arr"], Value::from(r#"["a","b"]"#));
    }

    #[test]
    fn later_duplicate_keys_win_and_shapes_mismatch_to_null() {
        let (_, m) = run(
            "expressions:\n  ab: a.b\n  x: x\n",
            r#"{"a":{"b":1},"x":1,"a":2,"x":"last"}"#,
        );
        assert_eq!(m["ab"], Value::Null);
        assert_eq!(m["x"], Value::from("last"));
    }

    #[test]
    fn malformed_lines_pass_or_drop() {
        for bad in [
            "not json",
            "[1,2]",
            r#"{"a":1} trailing"#,
            r#"{"a":"#,
            "\"str\"",
        ] {
            let (step, m) = run("expressions:\n  a:\n", bad);
            assert!(matches!(step, Step::Next(_)), "{bad}");
            assert!(!m.contains_key("a"), "{bad}");
            let (step, _) = run("expressions:\n  a:\ndrop_malformed: true\n", bad);
            assert!(
                matches!(step, Step::Drop(_, ref r) if &**r == "json_malformed"),
                "{bad}"
            );
        }
        // `null` decodes into an empty map in Go: the expressions give null.
        let (step, m) = run("expressions:\n  a:\ndrop_malformed: true\n", "null");
        assert!(matches!(step, Step::Next(_)));
        assert_eq!(m["a"], Value::Null);
    }

    #[test]
    fn source_parses_an_extracted_value() {
        let cfg: JsonConfig =
            serde_yaml_ng::from_str("expressions:\n  user:\nsource: extra\n").expect("config");
        let mut s = JsonStage::new(&cfg).expect("stage");
        let mut e = Entry::new("plain text", 0, labels([]));
        e.set_extracted(&Arc::from("extra"), Value::from(r#"{"user":"marco"}"#));
        let Step::Next(e) = s.process(e, &mut Cx::default()) else {
            panic!("kept")
        };
        assert_eq!(e.extracted_text("user").as_deref(), Some("marco"));
        // A missing source does nothing.
        let Step::Next(e) = s.process(Entry::new("x", 0, labels([])), &mut Cx::default()) else {
            panic!("kept")
        };
        assert!(e.extracted("user").is_none());
    }

    #[test]
    fn unsupported_expressions_are_refused_by_name() {
        for (expr, why) in [
            ("a[*].b", "wildcard"),
            ("a.*", "wildcard"),
            ("length(a)", "function call"),
            ("a | b", "pipe"),
            ("a[?x == `1`]", "filter"),
            ("a[0:2]", "slice"),
            ("a-b", "unexpected"),
            ("a.", "ends with"),
            ("{x: a}", "multi-select hash"),
            ("a[]", "flattening"),
        ] {
            let err = compile(expr).expect_err(expr);
            assert!(err.contains(why) && err.contains(expr), "{expr}: {err}");
        }
        let cfg: JsonConfig =
            serde_yaml_ng::from_str("expressions:\n  ua: user-agent\n").expect("yaml");
        let err = JsonStage::new(&cfg).expect_err("refused");
        assert_eq!(err.key, "expressions.ua");
        assert!(err.message.contains("\"user-agent\""), "{err}");
        assert!(JsonStage::new(&JsonConfig {
            expressions: BTreeMap::new(),
            source: None,
            drop_malformed: false
        })
        .is_err());
    }
}
