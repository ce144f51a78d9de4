//! Key path → `line:column` in the YAML text, for errors found after parsing (a bad URL,
//! regex, label name or range). The text is read with a YAML event parser that reports the
//! position of every node, so the answer is the position of the key itself, not a guess from
//! searching the text.
//!
//! A path that is not in the file entirely (a value that came from a default, say) resolves
//! to the deepest part that is: `remote_write.queue.capacity` with no `capacity:` key points
//! at `queue:`.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::validate::{KeyPath, Segment};

/// 1-based line and column.
pub type Position = (usize, usize);

#[derive(Debug)]
enum Node {
    Scalar,
    Seq(Vec<(Position, Node)>),
    Map(Vec<(String, Position, Node)>),
}

/// An open collection: where it starts, what it holds so far, and for a mapping the key
/// waiting for its value.
type Open = (Position, Node, Option<(String, Position)>);

/// Builds a tree of positions from the parser's events (the first document only).
#[derive(Default)]
struct Builder {
    /// Open collections: the node, and for a mapping the key waiting for its value.
    stack: Vec<Open>,
    root: Option<(Position, Node)>,
    done: bool,
}

impl Builder {
    fn push_value(&mut self, at: Position, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some((at, node));
                }
                self.done = true;
            }
            Some((_, Node::Seq(items), _)) => items.push((at, node)),
            Some((_, Node::Map(entries), pending)) => match pending.take() {
                Some((key, key_at)) => entries.push((key, key_at, node)),
                None => {
                    // A key: only scalar keys can be addressed by a path.
                    *pending = Some((String::new(), at));
                }
            },
            Some((_, Node::Scalar, _)) => {}
        }
    }
}

impl Builder {
    /// Closes the innermost open collection. A mapping is placed at its first key (the
    /// parser marks a block mapping where it recognised it, after that key).
    fn close(&mut self) {
        if let Some((start, node, _)) = self.stack.pop() {
            let at = match &node {
                Node::Map(entries) => entries.first().map_or(start, |(_, at, _)| *at),
                _ => start,
            };
            self.push_value(at, node);
        }
    }

    /// Closes whatever a parse error left open, keeping what was read.
    fn finish(&mut self) {
        while !self.stack.is_empty() && !self.done {
            self.close();
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        // yaml-rust2's columns count from 0.
        let at = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(value, ..) => {
                if let Some((_, Node::Map(_), pending @ None)) = self.stack.last_mut() {
                    *pending = Some((value, at));
                } else {
                    self.push_value(at, Node::Scalar);
                }
            }
            Event::Alias(_) => self.push_value(at, Node::Scalar),
            Event::SequenceStart(..) => self.stack.push((at, Node::Seq(Vec::new()), None)),
            Event::MappingStart(..) => {
                // A collection used as a mapping key cannot be addressed: skip it whole.
                self.stack.push((at, Node::Map(Vec::new()), None));
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::DocumentEnd | Event::StreamEnd => self.done = true,
            Event::Nothing | Event::StreamStart | Event::DocumentStart => {}
        }
    }
}

/// The position of `path` in `text`: the key of the last mapping step, the item of the last
/// sequence step; the deepest existing prefix when the path goes past what the file has.
/// `None` when the text does not parse or the path's first step is not in it.
///
/// ```
/// use livetranslate_agent::config::locate::locate;
/// use livetranslate_agent::validate::KeyPath;
/// let text = "scrape_configs:\n  - job_name: a\n    timeout: 20s\n";
/// let p = KeyPath::root().key("scrape_configs").index(0).key("timeout");
/// assert_eq!(locate(text, &p), Some((3, 5)));
/// ```
pub fn locate(text: &str, path: &KeyPath) -> Option<Position> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // A parse error keeps what was built before it.
    let _ = parser.load(&mut b, false);
    b.finish();
    let (_, root) = b.root?;
    let mut node = &root;
    let mut found: Option<Position> = None;
    for seg in path.segments() {
        let next = match (seg, node) {
            (Segment::Key(k), Node::Map(entries)) => entries
                .iter()
                .find(|(name, _, _)| name == k)
                .map(|(_, at, n)| (*at, n)),
            (Segment::Index(i), Node::Seq(items)) => items.get(*i).map(|(at, n)| (*at, n)),
            _ => None,
        };
        match next {
            Some((at, n)) => {
                found = Some(at);
                node = n;
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
listen: 127.0.0.1:1
labels: {environment: prod, 'bad-name': x}
logs:
  inputs:
    - paths: [\"/a/*.log\"]
    - paths: [\"/b/*.log\"]
      multiline:
        first_line: \"([\"
remote_write:
  url: http://x/w
  queue:
    capacity: 10
";

    fn at(path: KeyPath) -> Option<Position> {
        locate(TEXT, &path)
    }

    #[test]
    fn keys_items_and_flow_style() {
        let r = KeyPath::root();
        assert_eq!(at(r.key("listen")), Some((1, 1)));
        assert_eq!(at(r.key("labels").key("bad-name")), Some((2, 29)));
        assert_eq!(at(r.key("logs").key("inputs").index(1)), Some((6, 7)));
        assert_eq!(
            at(r.key("logs")
                .key("inputs")
                .index(1)
                .key("multiline")
                .key("first_line")),
            Some((8, 9))
        );
        assert_eq!(
            at(r.key("remote_write").key("queue").key("capacity")),
            Some((12, 5))
        );
    }

    #[test]
    fn missing_tails_resolve_to_the_deepest_prefix() {
        let r = KeyPath::root();
        assert_eq!(
            at(r.key("remote_write")
                .key("queue")
                .key("max_samples_per_send")),
            Some((11, 3))
        );
        assert_eq!(at(r.key("logs").key("inputs").index(7)), Some((4, 3)));
        assert_eq!(at(r.key("nowhere")), None);
        assert_eq!(locate("", &r.key("x")), None);
        assert_eq!(locate("a: [1, 2", &r.key("a")), Some((1, 1)));
    }
}
