//! Character-level XML rules for the reader: which characters are allowed, names,
//! line numbers, entity and character references, and the XML declaration.

/// The 1-based line of byte `offset`: lines end at LF, CRLF or a lone CR (XML §2.11).
pub(crate) fn line_at(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    let mut line = 1;
    for (i, &b) in bytes[..end].iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line += 1;
        }
    }
    line
}

/// Whether `c` is allowed in an XML document (the `Char` production, XML §2.2).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first character that XML does not allow, with its byte offset.
pub(crate) fn first_bad_char(src: &str) -> Option<(usize, char)> {
    src.char_indices().find(|&(_, c)| !is_xml_char(c))
}

/// Name characters, simplified: any non-ASCII character counts, so that a name never
/// ends inside a multi-byte character.
pub(crate) fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

pub(crate) fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

/// Decodes entity and character references; in attribute values (`attr`) also
/// turns tabs and line ends into spaces (XML §3.3.3).
///
/// On error, returns the byte offset in `raw` of the bad reference and why.
pub(crate) fn decode(raw: &str, attr: bool) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '&' => {
                let tail = raw.get(i + 1..).unwrap_or("");
                let semi = tail.bytes().take(12).position(|b| b == b';');
                let reference = semi.map(|n| tail.get(..n).unwrap_or(""));
                let decoded = match reference {
                    Some(r)
                        if !r.is_empty()
                            && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'#') =>
                    {
                        entity(r).map_err(|m| (i, m))?
                    }
                    _ => {
                        let msg = "\"&\" that starts no entity reference (write &amp;)";
                        return Err((i, msg.into()));
                    }
                };
                out.push(decoded);
                let after = i + 1 + reference.map_or(0, str::len);
                while chars.next_if(|&(j, _)| j <= after).is_some() {}
            }
            '\r' => {
                chars.next_if(|&(_, n)| n == '\n');
                out.push(if attr { ' ' } else { '\n' });
            }
            '\n' | '\t' if attr => out.push(' '),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Offset just past the `>` ending a DOCTYPE whose rest starts at `from`: skips
/// quoted strings and the internal subset `[...]` with its comments. `None` if the
/// document ends first.
pub(crate) fn doctype_end(bytes: &[u8], from: usize) -> Option<usize> {
    let find = |from: usize, pat: &[u8]| {
        let hay = bytes.get(from..)?;
        hay.windows(pat.len())
            .position(|w| w == pat)
            .map(|i| from + i)
    };
    let mut in_subset = false;
    let mut i = from;
    loop {
        match bytes.get(i)? {
            &q @ (b'"' | b'\'') => i = find(i + 1, &[q])? + 1,
            b'<' if in_subset && bytes.get(i..)?.starts_with(b"<!--") => {
                i = find(i + 4, b"-->")? + 3;
            }
            b'[' if !in_subset => {
                in_subset = true;
                i += 1;
            }
            b']' if in_subset => {
                in_subset = false;
                i += 1;
            }
            b'>' if !in_subset => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The character an entity or character reference (between `&` and `;`) stands for.
fn entity(reference: &str) -> Result<char, String> {
    let named = match reference {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    };
    if let Some(c) = named {
        return Ok(c);
    }
    let number = if let Some(hex) = reference.strip_prefix("#x") {
        (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
    } else if let Some(dec) = reference.strip_prefix('#') {
        (!dec.is_empty() && dec.bytes().all(|b| b.is_ascii_digit()))
            .then(|| dec.parse::<u32>().ok())
            .flatten()
    } else {
        return Err(format!("unknown entity \"&{reference};\""));
    };
    number
        .and_then(char::from_u32)
        .filter(|&c| is_xml_char(c))
        .ok_or_else(|| format!("\"&{reference};\" is not a character allowed in XML"))
}

/// Checks the pseudo-attributes of `<?xml ...?>`: `version`, then optionally
/// `encoding` and `standalone`, each quoted, separated by whitespace.
pub(crate) fn check_declaration(body: &str) -> Result<(), String> {
    let ws: &[char] = &[' ', '\t', '\n', '\r'];
    let mut rest = body;
    let mut expected: &[&str] = &["version", "encoding", "standalone"];
    let mut seen_version = false;
    loop {
        let trimmed = rest.trim_start_matches(ws);
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            return Err("XML declaration: pseudo-attributes need spaces between them".into());
        }
        let bad = || format!("XML declaration: cannot read {}", super::quote(trimmed));
        let (name, after) = trimmed.split_once('=').ok_or_else(bad)?;
        let name = name.trim_end_matches(ws);
        if !seen_version && name != "version" {
            return Err(format!(
                "XML declaration: {} before the version",
                super::quote(name)
            ));
        }
        let Some(pos) = expected.iter().position(|&n| n == name) else {
            return Err(format!(
                "XML declaration: unexpected {}",
                super::quote(name)
            ));
        };
        expected = &expected[pos + 1..];
        seen_version |= name == "version";
        let after = after.trim_start_matches(ws);
        let quote = after
            .chars()
            .next()
            .filter(|&q| q == '"' || q == '\'')
            .ok_or_else(bad)?;
        let (value, tail) = after
            .get(1..)
            .unwrap_or("")
            .split_once(quote)
            .ok_or_else(bad)?;
        let minor = value.strip_prefix("1.").unwrap_or("");
        if name == "version" && (minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!(
                "XML declaration: version {} is not 1.x",
                super::quote(value)
            ));
        }
        rest = tail;
    }
    if seen_version {
        Ok(())
    } else {
        Err("XML declaration without a version".into())
    }
}
