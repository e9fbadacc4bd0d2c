//! A small, strict, non-validating XML 1.0 reader for exactly what a policy may hold:
//! an optional declaration, one DOCTYPE (skipped, internal subset included), elements
//! with attributes, character data, CDATA, comments and processing instructions.
//!
//! It checks well-formedness (tag nesting, one root, quoting, entities, characters)
//! and stops at the first violation. Only the five predefined entities and numeric
//! character references exist: entities declared in a DOCTYPE are not expanded.

use super::lexical::{decode, doctype_end, is_name_char, is_name_start, is_ws};

/// One attribute, its value entity-decoded and whitespace-normalised (XML §3.3.3).
pub(crate) struct Attr<'a> {
    pub name: &'a str,
    pub value: String,
    /// 1-based line where the attribute name starts.
    pub line: usize,
}

/// What the validator sees; comments, PIs, the declaration and whitespace are consumed.
pub(crate) enum Event<'a> {
    Doctype {
        name: &'a str,
        line: usize,
    },
    /// A start tag; an empty-element tag (`<a/>`) is followed by its `End`.
    Start {
        name: &'a str,
        attrs: Vec<Attr<'a>>,
        line: usize,
    },
    End,
    /// Character data (text or CDATA) inside the root that is not all whitespace,
    /// trimmed, with the line of its first non-whitespace character.
    Text {
        text: String,
        line: usize,
    },
}

/// A well-formedness violation: where and what.
pub(crate) struct XmlError {
    pub line: usize,
    pub message: String,
}

/// Pull parser over a UTF-8 document (its BOM already removed).
pub(crate) struct Reader<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Byte offset where each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
    /// Open elements: name and line.
    open: Vec<(&'a str, usize)>,
    root_seen: bool,
    doctype_seen: bool,
    pending_end: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a str) -> Reader<'a> {
        let bytes = src.as_bytes();
        let mut line_starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                line_starts.push(i + 1);
            }
        }
        Reader {
            src,
            bytes,
            pos: 0,
            line_starts,
            open: Vec::new(),
            root_seen: false,
            doctype_seen: false,
            pending_end: false,
        }
    }

    /// The next event, `None` at a well-formed end.
    pub(crate) fn next_event(&mut self) -> Result<Option<Event<'a>>, XmlError> {
        if self.pending_end {
            self.pending_end = false;
            return Ok(Some(Event::End));
        }
        loop {
            if self.pos >= self.bytes.len() {
                return self.finish();
            }
            if self.bytes[self.pos] != b'<' {
                match self.text()? {
                    Some(event) => return Ok(Some(event)),
                    None => continue,
                }
            }
            if self.starts("<?") {
                self.pi()?;
            } else if self.starts("<!--") {
                self.comment()?;
            } else if self.starts("<![CDATA[") {
                if let Some(event) = self.cdata()? {
                    return Ok(Some(event));
                }
            } else if self.starts("<!DOCTYPE") {
                return self.doctype().map(Some);
            } else if self.starts("<!") {
                return Err(self.err(self.pos, "unknown markup declaration \"<!\"".into()));
            } else if self.starts("</") {
                return self.end_tag().map(Some);
            } else {
                return self.start_tag().map(Some);
            }
        }
    }

    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    fn err(&self, offset: usize, message: String) -> XmlError {
        XmlError {
            line: self.line(offset),
            message,
        }
    }

    /// `src[a..b]`, or `""` if that were not on character boundaries (it always is:
    /// every index used stops at an ASCII byte or the end).
    fn slice(&self, a: usize, b: usize) -> &'a str {
        self.src.get(a..b).unwrap_or("")
    }

    fn starts(&self, prefix: &str) -> bool {
        self.bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(prefix.as_bytes()))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Byte offset of the next `pat` at or after `from`.
    fn find(&self, from: usize, pat: &[u8]) -> Option<usize> {
        let hay = self.bytes.get(from..)?;
        hay.windows(pat.len())
            .position(|w| w == pat)
            .map(|i| from + i)
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Some(self.slice(start, self.pos))
    }

    /// What is at `offset`, for messages: `"x"` or `end of document`.
    fn what_at(&self, offset: usize) -> String {
        match self.src.get(offset..).and_then(|s| s.chars().next()) {
            Some(c) => format!("{:?}", c.to_string()),
            None => "end of document".to_string(),
        }
    }

    fn finish(&mut self) -> Result<Option<Event<'a>>, XmlError> {
        if let Some(&(name, line)) = self.open.last() {
            return Err(XmlError {
                line,
                message: format!("element <{name}> opened on line {line} is never closed"),
            });
        }
        if !self.root_seen {
            return Err(XmlError {
                line: 0,
                message: "no root element".to_string(),
            });
        }
        Ok(None)
    }

    fn text(&mut self) -> Result<Option<Event<'a>>, XmlError> {
        let start = self.pos;
        let end = self.find(start, b"<").unwrap_or(self.bytes.len());
        self.pos = end;
        let raw = self.slice(start, end);
        if let Some(i) = raw.find("]]>") {
            return Err(self.err(start + i, "\"]]>\" in text".into()));
        }
        let Some(first) = raw.bytes().position(|b| !is_ws(b)) else {
            return Ok(None);
        };
        if self.open.is_empty() {
            let place = if self.root_seen { "after" } else { "before" };
            let msg = format!("text {} {place} the root element", super::quote(raw.trim()));
            return Err(self.err(start + first, msg));
        }
        let text = decode(raw, false).map_err(|(i, m)| self.err(start + i, m))?;
        if text
            .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
            .is_empty()
        {
            return Ok(None);
        }
        Ok(Some(Event::Text {
            text: text.trim().to_string(),
            line: self.line(start + first),
        }))
    }

    fn pi(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        self.pos += 2;
        let Some(target) = self.name() else {
            return Err(self.err(start, "processing instruction without a target".into()));
        };
        let Some(close) = self.find(self.pos, b"?>") else {
            return Err(self.err(start, "processing instruction is never closed".into()));
        };
        if target.eq_ignore_ascii_case("xml") {
            if target != "xml" {
                let msg = format!("processing instruction target \"{target}\" is reserved for XML");
                return Err(self.err(start, msg));
            }
            if start != 0 {
                let msg = "XML declaration \"<?xml\" is only allowed at the very start".to_string();
                return Err(self.err(start, msg));
            }
            let body = self.slice(self.pos, close);
            super::lexical::check_declaration(body).map_err(|m| self.err(start, m))?;
        } else if close != self.pos && !self.peek().is_some_and(is_ws) {
            let msg =
                format!("processing instruction target \"{target}\" is not followed by a space");
            return Err(self.err(start, msg));
        }
        self.pos = close + 2;
        Ok(())
    }

    fn comment(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        match self.find(start + 4, b"--") {
            Some(i) if self.bytes.get(i + 2) == Some(&b'>') => {
                self.pos = i + 3;
                Ok(())
            }
            Some(i) if i + 2 < self.bytes.len() => {
                Err(self.err(i, "\"--\" inside a comment".into()))
            }
            _ => Err(self.err(start, "comment is never closed".into())),
        }
    }

    fn cdata(&mut self) -> Result<Option<Event<'a>>, XmlError> {
        let start = self.pos;
        if self.open.is_empty() {
            return Err(self.err(start, "CDATA section outside the root element".into()));
        }
        let body = start + 9;
        let Some(end) = self.find(body, b"]]>") else {
            return Err(self.err(start, "CDATA section is never closed".into()));
        };
        self.pos = end + 3;
        let text = self.slice(body, end);
        Ok(text
            .bytes()
            .position(|b| !is_ws(b))
            .map(|first| Event::Text {
                text: text.trim().to_string(),
                line: self.line(body + first),
            }))
    }

    fn doctype(&mut self) -> Result<Event<'a>, XmlError> {
        let start = self.pos;
        if self.root_seen {
            return Err(self.err(start, "DOCTYPE after the root element".into()));
        }
        if self.doctype_seen {
            return Err(self.err(start, "second DOCTYPE".into()));
        }
        self.doctype_seen = true;
        self.pos += 9;
        let name = if self.skip_ws() { self.name() } else { None };
        let Some(name) = name else {
            return Err(self.err(start, "DOCTYPE without a name".into()));
        };
        let Some(end) = doctype_end(self.bytes, self.pos) else {
            return Err(self.err(start, "DOCTYPE is never closed".into()));
        };
        self.pos = end;
        Ok(Event::Doctype {
            name,
            line: self.line(start),
        })
    }

    fn start_tag(&mut self) -> Result<Event<'a>, XmlError> {
        let start = self.pos;
        self.pos += 1;
        let Some(name) = self.name() else {
            let msg = format!(
                "\"<\" followed by {}, not an element name",
                self.what_at(self.pos)
            );
            return Err(self.err(start, msg));
        };
        if self.open.is_empty() && self.root_seen {
            let msg = format!("second root element <{name}> (a document has one root)");
            return Err(self.err(start, msg));
        }
        let never_closed = |r: &Self| r.err(start, format!("tag <{name}> is never closed"));
        let mut attrs: Vec<Attr<'a>> = Vec::new();
        let empty = loop {
            let had_ws = self.skip_ws();
            match self.peek() {
                None => return Err(never_closed(self)),
                Some(b'>') => {
                    self.pos += 1;
                    break false;
                }
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    break true;
                }
                _ => {}
            }
            let at = self.pos;
            let Some(attr) = self.name() else {
                let msg = format!("unexpected {} in tag <{name}>", self.what_at(at));
                return Err(self.err(at, msg));
            };
            let in_tag = format!("attribute \"{attr}\" of <{name}>");
            if !had_ws {
                return Err(self.err(at, format!("no space before {in_tag}")));
            }
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return Err(self.err(at, format!("{in_tag} has no \"=\" and value")));
            }
            self.pos += 1;
            self.skip_ws();
            let quote = match self.peek() {
                Some(q @ (b'"' | b'\'')) => q,
                None => return Err(never_closed(self)),
                Some(_) => return Err(self.err(at, format!("value of {in_tag} is not quoted"))),
            };
            let value_start = self.pos + 1;
            let Some(value_end) = self.find(value_start, &[quote]) else {
                return Err(self.err(at, format!("value of {in_tag} is never closed")));
            };
            let raw = self.slice(value_start, value_end);
            if let Some(i) = raw.find('<') {
                return Err(self.err(value_start + i, format!("\"<\" in the value of {in_tag}")));
            }
            let value = decode(raw, true).map_err(|(i, m)| self.err(value_start + i, m))?;
            if attrs.iter().any(|a| a.name == attr) {
                return Err(self.err(at, format!("duplicate {in_tag}")));
            }
            attrs.push(Attr {
                name: attr,
                value,
                line: self.line(at),
            });
            self.pos = value_end + 1;
        };
        self.root_seen = true;
        let line = self.line(start);
        if empty {
            self.pending_end = true;
        } else {
            self.open.push((name, line));
        }
        Ok(Event::Start { name, attrs, line })
    }

    fn end_tag(&mut self) -> Result<Event<'a>, XmlError> {
        let start = self.pos;
        self.pos += 2;
        let Some(name) = self.name() else {
            let msg = format!(
                "\"</\" followed by {}, not an element name",
                self.what_at(self.pos)
            );
            return Err(self.err(start, msg));
        };
        self.skip_ws();
        if self.peek() != Some(b'>') {
            let msg = format!("unexpected {} in end tag </{name}>", self.what_at(self.pos));
            return Err(self.err(self.pos, msg));
        }
        self.pos += 1;
        match self.open.pop() {
            None => Err(self.err(start, format!("end tag </{name}> without a start tag"))),
            Some((open, line)) if open != name => {
                let msg =
                    format!("end tag </{name}> does not match <{open}> opened on line {line}");
                Err(self.err(start, msg))
            }
            Some(_) => Ok(Event::End),
        }
    }
}
