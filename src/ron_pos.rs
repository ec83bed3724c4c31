//! Positions in RON text, so that errors found after parsing (a duplicate hotkey, a bad repo id, an invalid
//! competition) and ron's own syntax errors name `file:line:column` the way an editor shows them.
//!
//! serde hands the loaders plain values without positions, so instead of threading spans through every type,
//! [`Locator::new`] walks the source text **once** and records where every value starts; [`Locator::locate`] then
//! follows a path such as `miners[3].repo` through that index. Building is linear in the text and each lookup is
//! cheap, so a fleet of 10 000 miners costs one pass, not one pass per miner. Offsets become line and column
//! through a table of line starts ([`LineIndex`]).
//!
//! The walker understands just enough RON to find values: comments (line and nested block), strings (escaped,
//! raw, byte), chars, named and anonymous structs and tuples, lists, maps, `Some(...)` wrappers and
//! `#![enable(...)]` attributes. It never fails loudly: text it does not understand (it only ever sees text ron
//! already accepted) leaves the rest unindexed, and lookups there answer `None`; callers then name the field
//! without a position. Nesting deeper than [`MAX_DEPTH`] is not indexed (ron itself refuses such text).

/// One step of a path into a RON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// A named field of a struct.
    Field(&'a str),
    /// The n-th element (0-based) of a list, tuple, map or struct.
    Index(usize),
}

/// A 1-based line and column (columns count characters), as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct LineCol {
    /// The line, counted from 1.
    pub line: usize,
    /// The column in characters, counted from 1.
    pub col: usize,
}

impl LineCol {
    /// The line and column of byte offset `offset` in `src`. Linear in `offset`: for many lookups in one text use
    /// a [`LineIndex`].
    pub fn of_offset(src: &str, offset: usize) -> LineCol {
        LineIndex::new(src).line_col(offset)
    }
}

/// Deepest nesting the walker indexes.
pub const MAX_DEPTH: usize = 256;

/// Line starts of a text: byte offset → line and column in `O(log lines + line length)`.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// The index of `src`, built in one pass over the text.
    pub fn new(src: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { src, starts }
    }

    /// The line and column of byte offset `offset` (clamped to the text; a split character counts whole).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let mut offset = offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        LineCol {
            line,
            col: self.src[start..offset].chars().count() + 1,
        }
    }

    /// The byte offset of a 1-based line and column, if the text has it.
    pub fn offset(&self, at: LineCol) -> Option<usize> {
        let start = *self.starts.get(at.line.checked_sub(1)?)?;
        let end = self.starts.get(at.line).copied().unwrap_or(self.src.len());
        let line = &self.src[start..end];
        line.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(line.len()))
            .nth(at.col.checked_sub(1)?)
            .map(|i| start + i)
    }
}

/// The offset of the first byte at or after `offset` that is not whitespace or part of a comment (line or nested
/// block); the text's length if there is none.
pub fn skip_trivia(src: &str, offset: usize) -> usize {
    let mut w = Walker {
        src: src.as_bytes(),
        pos: offset.min(src.len()),
    };
    w.skip_trivia();
    w.pos
}

/// Where ron's error span really points: ron's span may start before the whitespace and comments that precede the
/// offending token; skip them, staying within the span.
pub fn token_start(src: &str, start: LineCol, end: LineCol) -> LineCol {
    let lines = LineIndex::new(src);
    let (Some(from), Some(to)) = (lines.offset(start), lines.offset(end).or(Some(src.len())))
    else {
        return start;
    };
    lines.line_col(skip_trivia(src, from).min(to))
}

/// The 1-based line of the first token (not whitespace, not a comment); 1 for a text without one.
pub fn first_token_line(src: &str) -> usize {
    let at = skip_trivia(src, 0);
    if at >= src.len() {
        1
    } else {
        LineIndex::new(src).line_col(at).line
    }
}

/// The position of the value reached by following `path` from the document's top-level value (one-shot; build a
/// [`Locator`] for many lookups).
pub fn locate(src: &str, path: &[Step<'_>]) -> Option<LineCol> {
    Locator::new(src).locate(path)
}

/// A RON text indexed once for any number of [`Locator::locate`] calls (see the module docs).
#[derive(Debug)]
pub struct Locator<'a> {
    lines: LineIndex<'a>,
    root: Option<Node>,
}

/// One value: where it starts and, for a group, its items.
#[derive(Debug)]
struct Node {
    start: usize,
    /// Name before a group (`Miner(`, `Some(`), as a byte range of the text.
    name: Option<(usize, usize)>,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    /// `field:` of a struct item, as a byte range of the text.
    field: Option<(usize, usize)>,
    node: Node,
}

impl<'a> Locator<'a> {
    /// Index `src` (one pass).
    pub fn new(src: &'a str) -> Locator<'a> {
        let mut w = Walker {
            src: src.as_bytes(),
            pos: 0,
        };
        w.skip_trivia();
        // `#![enable(...)]` attributes precede the value.
        let mut root = None;
        loop {
            if w.peek() == Some(b'#') {
                if w.skip_until_after(b']').is_none() {
                    break;
                }
                w.skip_trivia();
                continue;
            }
            root = w.value(0);
            break;
        }
        Locator {
            lines: LineIndex::new(src),
            root,
        }
    }

    /// The position of the value `path` leads to, if the text has it.
    pub fn locate(&self, path: &[Step<'_>]) -> Option<LineCol> {
        let src = self.lines.src;
        let text = |(a, b): (usize, usize)| &src[a..b];
        let mut node = self.root.as_ref()?;
        for step in path {
            // `Some(x)` is looked through on the way down.
            while node.name.map(text) == Some("Some") && node.items.len() == 1 {
                node = &node.items[0].node;
            }
            let item = match step {
                Step::Field(wanted) => node
                    .items
                    .iter()
                    .find(|i| i.field.map(text) == Some(*wanted))?,
                Step::Index(n) => node.items.get(*n)?,
            };
            node = &item.node;
        }
        Some(self.lines.line_col(node.start))
    }

    /// The line and column of a byte offset of the indexed text.
    pub fn line_col(&self, offset: usize) -> LineCol {
        self.lines.line_col(offset)
    }
}

struct Walker<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn skip_until_after(&mut self, byte: u8) -> Option<()> {
        let rel = self.src.get(self.pos..)?.iter().position(|&b| b == byte)?;
        self.pos += rel + 1;
        Some(())
    }

    /// Whitespace and comments (line, and nested block comments).
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(b), _) if b.is_ascii_whitespace() => self.pos += 1,
                (Some(b'/'), Some(b'/')) => match self.skip_until_after(b'\n') {
                    Some(()) => {}
                    None => self.pos = self.src.len(),
                },
                (Some(b'/'), Some(b'*')) => {
                    self.pos += 2;
                    let mut depth = 1usize;
                    while depth > 0 && self.pos < self.src.len() {
                        match (self.src[self.pos], self.peek_at(1)) {
                            (b'/', Some(b'*')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            (b'*', Some(b'/')) => {
                                depth -= 1;
                                self.pos += 2;
                            }
                            _ => self.pos += 1,
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn is_ident_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
    }

    /// An identifier (`r#name` included) as a byte range; the cursor is unchanged when there is none.
    fn ident(&mut self) -> Option<(usize, usize)> {
        let start = self.pos;
        if self.peek() == Some(b'r')
            && self.peek_at(1) == Some(b'#')
            && self.peek_at(2) != Some(b'"')
        {
            self.pos += 2;
        }
        let name_start = self.pos;
        if self
            .peek()
            .is_none_or(|b| b.is_ascii_digit() || !Self::is_ident_byte(b))
        {
            self.pos = start;
            return None;
        }
        while self.peek().is_some_and(Self::is_ident_byte) {
            self.pos += 1;
        }
        Some((name_start, self.pos))
    }

    /// At `r"`, `r#"`, `br"`, `br#"`: a raw string starts here.
    fn at_raw_string(&self) -> bool {
        let mut i = self.pos;
        if self.src.get(i) == Some(&b'b') {
            i += 1;
        }
        if self.src.get(i) != Some(&b'r') {
            return false;
        }
        i += 1;
        while self.src.get(i) == Some(&b'#') {
            i += 1;
        }
        self.src.get(i) == Some(&b'"')
    }

    /// One value at the cursor (after trivia), indexed; `None` when the text is not RON the walker understands.
    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_trivia();
        let start = self.pos;
        let leaf = |_: ()| Node {
            start,
            name: None,
            items: Vec::new(),
        };
        match self.peek()? {
            b'"' => self.skip_string().map(leaf),
            b'b' if self.peek_at(1) == Some(b'"') => {
                self.pos += 1;
                self.skip_string().map(leaf)
            }
            b'\'' => self.skip_char().map(leaf),
            _ if self.at_raw_string() => self.skip_raw_string().map(leaf),
            b'(' | b'[' | b'{' => self.group(start, None, depth),
            _ => {
                // An identifier (maybe the name of a struct or variant followed by a group), number, bool, unit.
                if let Some(name) = self.ident() {
                    let after = self.pos;
                    self.skip_trivia();
                    if self.peek() == Some(b'(') {
                        return self.group(start, Some(name), depth);
                    }
                    self.pos = after;
                    return Some(leaf(()));
                }
                let atom = self.pos;
                while self.peek().is_some_and(|b| {
                    !b.is_ascii_whitespace()
                        && !matches!(
                            b,
                            b',' | b')'
                                | b']'
                                | b'}'
                                | b':'
                                | b'('
                                | b'['
                                | b'{'
                                | b'/'
                                | b'"'
                                | b'\''
                        )
                }) {
                    self.pos += 1;
                }
                (self.pos > atom).then(|| leaf(()))
            }
        }
    }

    /// A `( )`, `[ ]` or `{ }` group at the cursor with its items.
    fn group(&mut self, start: usize, name: Option<(usize, usize)>, depth: usize) -> Option<Node> {
        let close = match self.peek()? {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            _ => return None,
        };
        self.pos += 1;
        let mut node = Node {
            start,
            name,
            items: Vec::new(),
        };
        loop {
            self.skip_trivia();
            if self.peek()? == close {
                self.pos += 1;
                return Some(node);
            }
            // A `name:` prefix makes this a named field (structs only).
            let mut field = None;
            if close == b')' {
                let item_start = self.pos;
                if let Some(name) = self.ident() {
                    self.skip_trivia();
                    if self.peek() == Some(b':') {
                        self.pos += 1;
                        field = Some(name);
                    } else {
                        self.pos = item_start;
                    }
                }
            }
            let value = self.value(depth + 1)?;
            if close == b'}' {
                // A map entry `key: value`: the entry is found by its key.
                self.skip_trivia();
                if self.peek() == Some(b':') {
                    self.pos += 1;
                    self.value(depth + 1)?;
                }
            }
            node.items.push(Item { field, node: value });
            self.skip_trivia();
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => {}
                _ => return None,
            }
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => self.pos += 1,
            }
        }
    }

    /// `'a'`, `'\''`, `'\u{1F600}'`, `'é'`.
    fn skip_char(&mut self) -> Option<()> {
        self.pos += 1;
        if self.peek()? == b'\\' {
            self.pos += 2;
        }
        self.skip_until_after(b'\'')
    }

    fn skip_raw_string(&mut self) -> Option<()> {
        if self.peek() == Some(b'b') {
            self.pos += 1;
        }
        self.pos += 1; // r
        let hashes = self.src[self.pos..]
            .iter()
            .take_while(|b| **b == b'#')
            .count();
        self.pos += hashes + 1; // the hashes and the opening quote
        loop {
            self.skip_until_after(b'"')?;
            let closing = self.src[self.pos..]
                .iter()
                .take(hashes)
                .take_while(|b| **b == b'#')
                .count();
            if closing == hashes {
                self.pos += hashes;
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"#![enable(implicit_some)]
// a fleet
Fleet(
    netuid: 80, /* nested /* block */ comment */
    hub: "http://x/(not a group)",
    defaults: (wallet: "w"),
    miners: [
        Miner(hotkey: "a", repo: "ns/one"),
        (hotkey: "b, c", model_dir: r#"odd"dir"#,
         repo: "ns/two"),
    ],
)
"##;

    fn at(path: &[Step<'_>]) -> Option<(usize, usize)> {
        locate(DOC, path).map(|p| (p.line, p.col))
    }

    #[test]
    fn finds_top_level_fields() {
        assert_eq!(at(&[Step::Field("netuid")]), Some((4, 13)));
        assert_eq!(at(&[Step::Field("hub")]), Some((5, 10)));
        assert_eq!(
            at(&[Step::Field("defaults"), Step::Field("wallet")]),
            Some((6, 24))
        );
    }

    #[test]
    fn finds_list_elements_and_their_fields() {
        assert_eq!(at(&[Step::Field("miners"), Step::Index(0)]), Some((8, 9)));
        assert_eq!(
            at(&[Step::Field("miners"), Step::Index(0), Step::Field("repo")]),
            Some((8, 34))
        );
        assert_eq!(
            at(&[Step::Field("miners"), Step::Index(1), Step::Field("repo")]),
            Some((10, 16))
        );
    }

    #[test]
    fn looks_through_some_and_handles_odd_literals() {
        let doc = "Fleet(a: Some((x: 1)), b: b\"a,b\", c: '\\'', d: br#\"q\"#, e: [1, -2.5e3, 0x1F], f: {\"k\": (z: 2)}, g: 3)";
        let l = Locator::new(doc);
        let col = |p: &[Step<'_>]| l.locate(p).map(|p| p.col);
        assert_eq!(
            col(&[Step::Field("a"), Step::Field("x")]),
            Some(doc.find("1)").unwrap() + 1)
        );
        assert_eq!(col(&[Step::Field("d")]), Some(doc.find("br#").unwrap() + 1));
        assert_eq!(
            col(&[Step::Field("e"), Step::Index(2)]),
            Some(doc.find("0x1F").unwrap() + 1)
        );
        assert_eq!(
            col(&[Step::Field("f"), Step::Index(0)]),
            Some(doc.find("\"k\"").unwrap() + 1)
        );
        assert_eq!(col(&[Step::Field("g")]), Some(doc.find("3)").unwrap() + 1));
    }

    #[test]
    fn missing_paths_are_none() {
        assert_eq!(at(&[Step::Field("nope")]), None);
        assert_eq!(at(&[Step::Field("miners"), Step::Index(7)]), None);
        assert_eq!(locate("Fleet(", &[Step::Field("x")]), None);
        assert_eq!(locate("", &[Step::Field("x")]), None);
        assert_eq!(locate("\"unterminated", &[Step::Field("x")]), None);
        let deep = "[".repeat(10_000);
        assert_eq!(locate(&deep, &[Step::Index(0)]), None);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(
            LineCol::of_offset("ab\ncé d", 7),
            LineCol { line: 2, col: 4 }
        );
        let lines = LineIndex::new("ab\ncé d");
        assert_eq!(lines.offset(LineCol { line: 2, col: 4 }), Some(7));
        assert_eq!(lines.offset(LineCol { line: 3, col: 1 }), None);
        // an offset inside a character counts as that character
        assert_eq!(lines.line_col(5), LineCol { line: 2, col: 2 });
    }

    #[test]
    fn tokens_skip_leading_comments_of_both_kinds() {
        let src = "// c\n/* a\n /* nested */ */ Subnet(";
        assert_eq!(first_token_line(src), 3);
        let end = LineCol { line: 3, col: 30 };
        assert_eq!(
            token_start(src, LineCol { line: 1, col: 1 }, end),
            LineCol { line: 3, col: 18 }
        );
        assert_eq!(first_token_line("  // only a comment"), 1);
    }

    #[test]
    fn large_documents_index_in_one_pass() {
        let mut doc = String::from("Fleet(netuid: 1, miners: [\n");
        for i in 0..20_000 {
            doc.push_str(&format!("  Miner(hotkey: \"h{i}\", repo: \"ns/r{i}\"),\n"));
        }
        doc.push_str("])\n");
        let started = std::time::Instant::now();
        let l = Locator::new(&doc);
        for i in 0..20_000 {
            let p = l
                .locate(&[Step::Field("miners"), Step::Index(i), Step::Field("repo")])
                .unwrap();
            assert_eq!(p.line, i + 2);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
