//! Reads a sops-written YAML file as events with byte spans: its value leaves (with their
//! key paths, in document order), its comments, and the `sops:` entries to cut out.
//!
//! The plaintext is the same text with values replaced: `sops decrypt` prints the tree
//! with go-yaml, and the encrypted file was printed by the same emitter from the same tree,
//! so everything between the values (keys, indentation, comments, `---`) is already
//! byte-identical. Layouts sops never writes (flow collections, anchors, tags, comments
//! after a value) are reported as unsupported.
//!
//! Over 500 lines with its unit tests (~50); the code itself is 500.

use std::borrow::Cow;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use super::failure::{Failure, SOPS_KEY};
use super::scalar::{self, Value};

/// A value or comment that sops walks, where it is in the text, and its key path.
#[derive(Debug)]
pub struct Leaf<'t> {
    pub path: Vec<String>,
    pub span: Range<usize>,
    pub kind: LeafKind<'t>,
    /// For a list item alone on its line, where its `- ` starts: sops 3.11 writes a
    /// comment inside an encrypted list as an item, and prints it back as a comment line.
    pub item_start: Option<usize>,
}

#[derive(Debug)]
pub enum LeafKind<'t> {
    /// A scalar value; `literal_indent` is where go-yaml puts a literal block's lines.
    Scalar {
        text: Cow<'t, str>,
        plain: bool,
        literal_indent: usize,
    },
    /// A whole-line comment; `text` follows the `#`.
    Comment { text: Cow<'t, str> },
}

impl Leaf<'_> {
    /// The key path as sops' additional data: `a:b:` (list indices are not part of it),
    /// `:` for the top level (Go's `strings.Join(path, ":") + ":"`).
    pub fn aad(&self) -> String {
        format!("{}:", self.path.join(":"))
    }
}

impl LeafKind<'_> {
    /// The value as go-yaml types it in the encrypted file.
    pub fn source_value(&self) -> Result<Value, Failure> {
        match self {
            LeafKind::Scalar {
                text, plain: true, ..
            } => scalar::resolve_plain(text).map_err(Failure::Unsupported),
            LeafKind::Scalar { text, .. } | LeafKind::Comment { text } => {
                Ok(Value::Str(zeroize::Zeroizing::new(text.to_string())))
            }
        }
    }
}

/// What the reader needs from the text.
#[derive(Debug, Default)]
pub struct Outline<'t> {
    pub leaves: Vec<Leaf<'t>>,
    /// Byte ranges of each document's `sops:` entry, removed from the plaintext.
    pub cuts: Vec<Range<usize>>,
    /// The first document's `sops:` entry as YAML text, where sops reads its metadata.
    pub metadata: Option<&'t str>,
}

enum Frame {
    Map {
        /// Column of its keys.
        col: usize,
        /// go-yaml's indentation level: the dash's column for a mapping in a list item.
        indent: usize,
        path_len: usize,
        key: Option<String>,
        pushed: bool,
    },
    Seq {
        dash_col: usize,
        path_len: usize,
        pushed: bool,
    },
}

impl Frame {
    fn col(&self) -> usize {
        match self {
            Frame::Map { col, .. } => *col,
            Frame::Seq { dash_col, .. } => *dash_col,
        }
    }

    fn pushed(&self) -> bool {
        match self {
            Frame::Map { pushed, .. } | Frame::Seq { pushed, .. } => *pushed,
        }
    }
}

/// Where the walk is inside the `sops:` entry it is skipping.
struct Skip {
    start: usize,
    depth: usize,
    first_document: bool,
}

pub fn outline(text: &str) -> Result<Outline<'_>, Failure> {
    Walker {
        text,
        out: Outline::default(),
        frames: Vec::new(),
        path: Vec::new(),
        skip: None,
        documents: 0,
        sops_seen_in_document: false,
        top_keys: std::collections::HashSet::new(),
        block_scalars: Vec::new(),
    }
    .run()
}

struct Walker<'t> {
    text: &'t str,
    out: Outline<'t>,
    frames: Vec<Frame>,
    path: Vec<String>,
    skip: Option<Skip>,
    documents: usize,
    sops_seen_in_document: bool,
    /// The first document's top-level keys: go-yaml rejects a repeated one there when sops
    /// reads its metadata.
    top_keys: std::collections::HashSet<String>,
    /// Byte ranges of literal and folded block scalars.
    block_scalars: Vec<Range<usize>>,
}

fn unsupported_move() -> Failure {
    Failure::Unsupported(
        "a comment between a nested block and a shallower line (sops moves it)".into(),
    )
}

/// Anchors and aliases are refused, not left to the sops binary: sops never writes them,
/// a kubeconfig has no use for them, and sops' YAML store expands every alias while
/// walking go-yaml's node tree, with no limit (yaml.v3's excessive-aliasing check only
/// guards decoding into Go values): sops 3.11 ran for 30+ minutes on 1 KiB of nested
/// aliases ("billion laughs"). Refusing them here costs nothing a real file has.
fn is_anchor_or_alias(event: &Event) -> bool {
    match event {
        Event::Alias(_) | Event::UnresolvedAlias(_) | Event::Anchor(..) => true,
        Event::Scalar(_, _, anchor, _)
        | Event::MappingStart(_, anchor, _)
        | Event::SequenceStart(_, anchor, _) => *anchor != 0,
        _ => false,
    }
}

fn anchor_refused(span: &Span) -> Failure {
    Failure::Refused(format!(
        "a YAML anchor or alias (`&name`/`*name`) at line {}, column {}: sops never writes them and a break-glass kubeconfig has none; refused rather than expanded",
        span.start.line(),
        span.start.col() + 1
    ))
}

fn unsupported(what: &str) -> Failure {
    Failure::Unsupported(format!("{what} (not something sops writes)"))
}

impl<'t> Walker<'t> {
    fn run(mut self) -> Result<Outline<'t>, Failure> {
        let not_yaml = |e| Failure::Malformed(format!("not YAML: {e}"));
        let mut parser = Parser::new_from_str(self.text);
        while let Some(event) = parser.next() {
            let (event, span) = event.map_err(not_yaml)?;
            if is_anchor_or_alias(&event) {
                return Err(anchor_refused(&span));
            }
            let step = if self.skip.is_some() {
                self.skip_event(&event, &span)
            } else {
                self.event(event, &span)
            };
            if let Err(failure) = step {
                // A syntax error further on is what sops would report.
                for rest in parser {
                    rest.map_err(not_yaml)?;
                }
                return Err(failure);
            }
        }
        Ok(self.out)
    }

    fn offset(&self, span: &Span) -> Result<(usize, usize), Failure> {
        match (span.start.byte_offset(), span.end.byte_offset()) {
            (Some(s), Some(e)) => Ok((s, e)),
            _ => Err(Failure::Malformed(
                "the YAML parser gave no positions".into(),
            )),
        }
    }

    fn event(&mut self, event: Event<'t>, span: &Span) -> Result<(), Failure> {
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                self.sops_seen_in_document = false;
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd => {}
            Event::Comment(text, _) => self.comment(text, span)?,
            Event::Scalar(text, style, _, tag) => {
                if tag.is_some() {
                    return Err(unsupported("a tagged value"));
                }
                self.scalar(text, style, span)?;
            }
            Event::MappingStart(style, _, ref tag) | Event::SequenceStart(style, _, ref tag) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if tag.is_some() {
                    return Err(unsupported("a tagged collection"));
                }
                if style == StructureStyle::Flow {
                    return self.empty_flow(span);
                }
                self.open(is_map, span)?;
            }
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => return Err(unsupported("a YAML construct this reader does not know")),
        }
        Ok(())
    }

    /// `{}` and `[]` are how go-yaml writes empty collections; sops walks nothing in them.
    fn empty_flow(&mut self, span: &Span) -> Result<(), Failure> {
        let (start, _) = self.offset(span)?;
        let rest = &self.text[start..];
        if !(rest.starts_with("{}") || rest.starts_with("[]")) {
            return Err(unsupported("a flow collection with items"));
        }
        if self.frames.is_empty() {
            return Err(unsupported("a document that is not a mapping"));
        }
        // The matching end event closes this placeholder frame.
        self.frames.push(Frame::Seq {
            dash_col: span.start.col(),
            path_len: self.path.len(),
            pushed: false,
        });
        Ok(())
    }

    fn open(&mut self, is_map: bool, span: &Span) -> Result<(), Failure> {
        let col = span.start.col();
        let (indent, pushed) = match self.frames.last_mut() {
            None if !is_map => {
                return Err(Failure::Malformed(
                    "a YAML document that is a list; sops files are mappings".into(),
                ));
            }
            None => (col, false),
            Some(Frame::Seq { dash_col, .. }) => (*dash_col, false),
            Some(Frame::Map { key, .. }) => {
                let key = key
                    .clone()
                    .ok_or_else(|| unsupported("a collection as a mapping key"))?;
                self.path.push(key);
                (col, true)
            }
        };
        let path_len = self.path.len();
        self.frames.push(if is_map {
            Frame::Map {
                col,
                indent,
                path_len,
                key: None,
                pushed,
            }
        } else {
            Frame::Seq {
                dash_col: col,
                path_len,
                pushed,
            }
        });
        Ok(())
    }

    fn close(&mut self) {
        if let Some(frame) = self.frames.pop() {
            if frame.pushed() {
                self.path.pop();
            }
            self.value_done();
        }
    }

    /// After a mapping's value, the mapping expects its next key.
    fn value_done(&mut self) {
        if let Some(Frame::Map { key, .. }) = self.frames.last_mut() {
            *key = None;
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'t, str>,
        style: ScalarStyle,
        span: &Span,
    ) -> Result<(), Failure> {
        let (start, end) = self.offset(span)?;
        let plain = style == ScalarStyle::Plain;
        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            self.block_scalars.push(start..end);
        }
        match self.frames.last_mut() {
            None => Err(unsupported("a document that is a single value")),
            Some(Frame::Map { key: None, .. }) => self.key(text, plain, start),
            Some(Frame::Map {
                indent,
                key: Some(key),
                ..
            }) => {
                let literal_indent = *indent + 4;
                let mut path = self.path.clone();
                path.push(key.clone());
                self.push_scalar(path, start..end, text, plain, literal_indent);
                self.value_done();
                Ok(())
            }
            Some(Frame::Seq { dash_col, .. }) => {
                let dash_col = *dash_col;
                let path = self.path.clone();
                let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
                let dash = line_start + dash_col;
                let alone = self
                    .text
                    .get(line_start..dash)
                    .is_some_and(|s| s.bytes().all(|b| b == b' '))
                    && self.text[dash..].starts_with("- ");
                self.push_scalar(path, start..end, text, plain, dash_col + 2);
                if let Some(leaf) = self.out.leaves.last_mut() {
                    leaf.item_start = alone.then_some(dash);
                }
                Ok(())
            }
        }
    }

    fn key(&mut self, text: Cow<'t, str>, plain: bool, start: usize) -> Result<(), Failure> {
        if plain && !matches!(scalar::resolve_plain(&text), Ok(Value::Str(_))) {
            return Err(unsupported("a mapping key that is not a string"));
        }
        let name = text.into_owned();
        if let Some(Frame::Map { key, .. }) = self.frames.last_mut() {
            *key = Some(name.clone());
        }
        if self.frames.len() > 1 {
            return Ok(());
        }
        if self.documents <= 1 && !self.top_keys.insert(name.clone()) {
            return Err(Failure::Malformed(format!(
                "the key {name:?} appears twice at the top level"
            )));
        }
        let is_sops = name == SOPS_KEY;
        if self.sops_seen_in_document {
            return Err(if is_sops {
                Failure::Malformed(format!("two `{SOPS_KEY}:` entries in one document"))
            } else {
                unsupported("keys after the `sops:` entry")
            });
        }
        if is_sops {
            self.begin_skip(start);
        }
        Ok(())
    }

    fn push_scalar(
        &mut self,
        path: Vec<String>,
        span: Range<usize>,
        text: Cow<'t, str>,
        plain: bool,
        literal_indent: usize,
    ) {
        self.out.leaves.push(Leaf {
            path,
            span,
            kind: LeafKind::Scalar {
                text,
                plain,
                literal_indent,
            },
            item_start: None,
        });
    }

    fn begin_skip(&mut self, key_start: usize) {
        self.sops_seen_in_document = true;
        let line_start = self.text[..key_start].rfind('\n').map_or(0, |i| i + 1);
        self.skip = Some(Skip {
            start: line_start,
            depth: 0,
            first_document: self.documents <= 1,
        });
    }

    /// Follows the `sops:` value to its end; the entry must be the document's last.
    fn skip_event(&mut self, event: &Event<'t>, span: &Span) -> Result<(), Failure> {
        let Some(skip) = self.skip.as_mut() else {
            return Ok(());
        };
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                skip.depth += 1;
                return Ok(());
            }
            Event::MappingEnd | Event::SequenceEnd if skip.depth > 1 => {
                skip.depth -= 1;
                return Ok(());
            }
            Event::Comment(..) => return Err(unsupported("a comment in the `sops:` entry")),
            Event::Scalar(..) if skip.depth > 0 => return Ok(()),
            Event::MappingEnd | Event::SequenceEnd | Event::Scalar(..) => {}
            _ => {
                return Err(Failure::Malformed(format!(
                    "unexpected YAML in the `{SOPS_KEY}:` entry"
                )));
            }
        }
        let (start, first_document) = (skip.start, skip.first_document);
        let (end, _) = self.offset(span)?;
        let end = if matches!(event, Event::Scalar(..)) {
            // A scalar `sops:` value: the entry ends with its line.
            self.text[end..]
                .find('\n')
                .map_or(self.text.len(), |i| end + i + 1)
        } else {
            end
        };
        self.skip = None;
        let range = start..end;
        if first_document {
            self.out.metadata = Some(&self.text[range.clone()]);
        }
        self.out.cuts.push(range);
        self.value_done();
        Ok(())
    }

    fn comment(&mut self, text: Cow<'t, str>, span: &Span) -> Result<(), Failure> {
        let (start, end) = self.offset(span)?;
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        if !self.text[line_start..start].bytes().all(|b| b == b' ') {
            return Err(unsupported("a comment after a value on the same line"));
        }
        let col = start - line_start;
        if self.dangles(line_start, end, col) {
            return Err(unsupported_move());
        }
        let path = self.comment_path(col);
        self.out.leaves.push(Leaf {
            path,
            span: start..end,
            kind: LeafKind::Comment { text },
            item_start: None,
        });
        Ok(())
    }

    /// A comment after a deeper block and before a shallower line: go-yaml's parser makes
    /// it a foot comment of the deeper block, so sops prints it elsewhere (or cannot
    /// decrypt it under the path it then has).
    fn dangles(&self, line_start: usize, line_end: usize, col: usize) -> bool {
        let is_content = |l: &&str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
        let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
        // A literal block's lines count as the line that holds its `|`.
        let before_end = self
            .block_scalars
            .iter()
            .find(|b| b.start < line_start && line_start <= b.end)
            .map_or(line_start, |b| b.start);
        let before = self.text[..before_end].lines().rev().find(is_content);
        let after = self.text[line_end..].lines().find(is_content);
        let (Some(before), after) = (before, after) else {
            return false;
        };
        indent(before) > col && after.map_or(0, indent) < col
    }

    /// The key path of the collection a whole-line comment sits in, by its column: the
    /// parser reports comments before it closes the collections they follow.
    fn comment_path(&self, col: usize) -> Vec<String> {
        let Some(frame) = self.frames.iter().rev().find(|f| f.col() <= col) else {
            return Vec::new();
        };
        match frame {
            Frame::Map {
                col: key_col,
                path_len,
                key,
                ..
            } => {
                let mut path: Vec<String> = self.path.iter().take(*path_len).cloned().collect();
                if let Some(key) = key.as_ref().filter(|_| col > *key_col) {
                    path.push(key.clone());
                }
                path
            }
            Frame::Seq { path_len, .. } => self.path.iter().take(*path_len).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_carry_paths_and_the_sops_entry_is_cut() {
        let text = "# head\na: ENC[x]\nb:\n    l:\n        - x\n        # in list\n        - k: v\n    c: 1\n    # foot of b\nsops:\n    version: 3.11.0\n";
        let outline = outline(text).unwrap();
        let paths: Vec<String> = outline.leaves.iter().map(Leaf::aad).collect();
        assert_eq!(paths, [":", "a:", "b:l:", "b:l:", "b:l:k:", "b:c:", "b:"]);
        assert_eq!(outline.cuts.len(), 1);
        assert_eq!(
            &text[outline.cuts[0].clone()],
            "sops:\n    version: 3.11.0\n"
        );
        assert_eq!(outline.metadata, Some("sops:\n    version: 3.11.0\n"));
    }

    #[test]
    fn literal_indent_follows_go_yaml() {
        let text = "a:\n    - k: v\n      m:\n        n: w\n    - - x\n";
        let outline = outline(text).unwrap();
        let indents: Vec<usize> = outline
            .leaves
            .iter()
            .map(|l| match l.kind {
                LeafKind::Scalar { literal_indent, .. } => literal_indent,
                LeafKind::Comment { .. } => 0,
            })
            .collect();
        assert_eq!(indents, [8, 12, 8]);
    }

    #[test]
    fn layouts_sops_never_writes_are_unsupported() {
        for text in [
            "a: [1, 2]\n",
            "a: !!str 1\n",
            "a: 1 # c\n",
            "sops: {}\nb: 1\n",
            "a:\n    b:\n        c: 1\n    # moved by sops\nd: 2\n",
        ] {
            assert!(
                matches!(outline(text), Err(Failure::Unsupported(_))),
                "{text}"
            );
        }
        assert!(outline("a: {}\nb: []\n").is_ok());
    }

    #[test]
    fn anchors_and_aliases_are_refused_anywhere() {
        for text in [
            "a: &x 1\n",
            "a: &x\n    b: 1\nc: *x\n",
            "a: 1\nsops:\n    version: &v 3.11.0\n",
            "a: 1\nsops:\n    version: 3.11.0\n    other: &o 1\n    age: *o\n",
        ] {
            assert!(matches!(outline(text), Err(Failure::Refused(_))), "{text}");
        }
        // An alias to nothing is a syntax error: not for the binary either.
        assert!(matches!(
            outline("a: 1\nb: *nowhere\n"),
            Err(Failure::Malformed(_))
        ));
    }
}
