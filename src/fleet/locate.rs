//! Find where a value sits in RON text, so semantic errors (a duplicate hotkey, a bad repo id) can name
//! `file:line:column` like syntax errors do.
//!
//! serde hands the fleet loader plain values without positions, so instead of threading spans through every
//! type we re-walk the source text along a path such as `miners[3].repo`. The walker understands just enough
//! RON to skip over values: comments (line and nested block), strings (escaped and raw), chars, named and
//! anonymous structs and tuples, lists and maps. It never fails loudly: an unexpected shape yields `None` and the
//! caller falls back to naming the field without a position.

/// One step of a path into a RON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// A named field of a struct.
    Field(&'a str),
    /// The n-th element (0-based) of a list, tuple or struct.
    Index(usize),
}

/// A 1-based line and column, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    pub line: usize,
    pub col: usize,
}

impl LineCol {
    /// The line and column of byte offset `offset` in `src` (columns count characters).
    pub fn of_offset(src: &str, offset: usize) -> LineCol {
        let before = &src[..offset.min(src.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        LineCol {
            line,
            col: before[line_start..].chars().count() + 1,
        }
    }
}

/// The position of the value reached by following `path` from the document's top-level value.
pub fn locate(src: &str, path: &[Step<'_>]) -> Option<LineCol> {
    let mut walker = Walker {
        src: src.as_bytes(),
        pos: 0,
    };
    walker.skip_trivia();
    // `#![enable(...)]` attributes precede the value.
    while walker.peek() == Some(b'#') {
        walker.skip_until_after(b']')?;
        walker.skip_trivia();
    }
    let start = walker.find(path)?;
    Some(LineCol::of_offset(src, start))
}

struct Walker<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_until_after(&mut self, byte: u8) -> Option<()> {
        let rel = self.src[self.pos..].iter().position(|&b| b == byte)?;
        self.pos += rel + 1;
        Some(())
    }

    /// Whitespace and comments.
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.src.get(self.pos + 1).copied()) {
                (Some(b), _) if b.is_ascii_whitespace() => self.pos += 1,
                (Some(b'/'), Some(b'/')) => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    self.pos += 2;
                    let mut depth = 1;
                    while depth > 0 && self.pos < self.src.len() {
                        if self.src[self.pos..].starts_with(b"/*") {
                            depth += 1;
                            self.pos += 2;
                        } else if self.src[self.pos..].starts_with(b"*/") {
                            depth -= 1;
                            self.pos += 2;
                        } else {
                            self.pos += 1;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        // Raw identifiers `r#name`.
        if self.src[self.pos..].starts_with(b"r#")
            && self.src.get(self.pos + 2).is_some_and(|b| *b != b'"')
        {
            self.pos += 2;
        }
        let name_start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        if self.pos == name_start {
            self.pos = start;
            return None;
        }
        Some(String::from_utf8_lossy(&self.src[name_start..self.pos]).into_owned())
    }

    /// Follow `path` from the value at the cursor; returns the byte offset of the target value.
    fn find(&mut self, path: &[Step<'_>]) -> Option<usize> {
        self.skip_trivia();
        let Some((step, rest)) = path.split_first() else {
            return Some(self.pos);
        };
        // Optional struct name before `(`, and `Some(` wrappers are looked through.
        let save = self.pos;
        if let Some(name) = self.ident() {
            self.skip_trivia();
            if self.peek() != Some(b'(') {
                self.pos = save;
                return None;
            }
            if name == "Some" {
                self.pos += 1;
                let found = self.find(path);
                return found;
            }
        }
        let close = match self.peek()? {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            _ => return None,
        };
        self.pos += 1;
        let mut index = 0;
        loop {
            self.skip_trivia();
            if self.peek()? == close {
                return None;
            }
            // A `name:` prefix makes this a named field (structs only).
            let item_start = self.pos;
            let mut field = None;
            if close == b')'
                && let Some(name) = self.ident()
            {
                self.skip_trivia();
                if self.peek() == Some(b':') {
                    self.pos += 1;
                    field = Some(name);
                } else {
                    self.pos = item_start;
                }
            }
            let hit = match step {
                Step::Field(wanted) => field.as_deref() == Some(*wanted),
                Step::Index(wanted) => *wanted == index,
            };
            if hit {
                return self.find(rest);
            }
            self.skip_value()?;
            if close == b'}' {
                // A map entry: `key: value`.
                self.skip_trivia();
                if self.peek() == Some(b':') {
                    self.pos += 1;
                    self.skip_value()?;
                }
            }
            self.skip_trivia();
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => return None,
                _ => return None,
            }
            index += 1;
        }
    }

    /// Move past one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_trivia();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'\'' => {
                self.pos += 1;
                if self.peek()? == b'\\' {
                    self.pos += 1;
                }
                self.skip_until_after(b'\'')
            }
            b'r' if matches!(self.src.get(self.pos + 1), Some(b'"' | b'#'))
                && self.src[self.pos + 1..].iter().find(|b| **b != b'#') == Some(&b'"') =>
            {
                self.skip_raw_string()
            }
            b'(' | b'[' | b'{' => self.skip_group(),
            _ => {
                // Identifier (maybe a struct or enum variant name followed by a group), number, bool, unit.
                let start = self.pos;
                while self.peek().is_some_and(|b| {
                    !b.is_ascii_whitespace()
                        && !matches!(b, b',' | b')' | b']' | b'}' | b':' | b'(' | b'/')
                }) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
                self.skip_trivia();
                if self.peek() == Some(b'(') {
                    self.skip_group()?;
                }
                Some(())
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

    fn skip_raw_string(&mut self) -> Option<()> {
        self.pos += 1;
        let hashes = self.src[self.pos..]
            .iter()
            .take_while(|b| **b == b'#')
            .count();
        self.pos += hashes + 1;
        loop {
            self.skip_until_after(b'"')?;
            if self.src[self.pos..]
                .iter()
                .take(hashes)
                .filter(|b| **b == b'#')
                .count()
                == hashes
            {
                self.pos += hashes;
                return Some(());
            }
        }
    }

    fn skip_group(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            self.skip_trivia();
            match self.peek()? {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' | b']' | b'}' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                b'"' => self.skip_string()?,
                b'\'' => {
                    self.pos += 1;
                    if self.peek()? == b'\\' {
                        self.pos += 1;
                    }
                    self.skip_until_after(b'\'')?;
                }
                b'r' if self.src[self.pos + 1..].iter().find(|b| **b != b'#') == Some(&b'"')
                    && matches!(self.src.get(self.pos + 1), Some(b'"' | b'#')) =>
                {
                    self.skip_raw_string()?
                }
                _ => self.pos += 1,
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
    fn missing_paths_are_none() {
        assert_eq!(at(&[Step::Field("nope")]), None);
        assert_eq!(at(&[Step::Field("miners"), Step::Index(7)]), None);
        assert_eq!(locate("Fleet(", &[Step::Field("x")]), None);
        assert_eq!(locate("", &[Step::Field("x")]), None);
        assert_eq!(locate("\"unterminated", &[Step::Field("x")]), None);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(
            LineCol::of_offset("ab\ncé d", 7),
            LineCol { line: 2, col: 4 }
        );
    }
}
