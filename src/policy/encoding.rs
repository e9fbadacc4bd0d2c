//! Bytes to text: the size cap, byte-order marks, NUL bytes, UTF-8, and the characters
//! XML allows (docs/protocol.md §2: a policy is plain UTF-8, no length prefix).

use super::lexical;
use super::{Diagnostic, Severity, MAX_POLICY_BYTES};

/// Byte-order marks of encodings a policy may not use (UTF-32 before UTF-16: the
/// UTF-32 LE mark starts with the UTF-16 LE one).
const FOREIGN_BOMS: &[(&[u8], &str)] = &[
    (&[0x00, 0x00, 0xFE, 0xFF], "UTF-32"),
    (&[0xFF, 0xFE, 0x00, 0x00], "UTF-32"),
    (&[0xFE, 0xFF], "UTF-16"),
    (&[0xFF, 0xFE], "UTF-16"),
    (&[0x2B, 0x2F, 0x76], "UTF-7"),
    (&[0xF7, 0x64, 0x4C], "UTF-1"),
    (&[0xDD, 0x73, 0x66, 0x73], "UTF-EBCDIC"),
    (&[0x0E, 0xFE, 0xFF], "SCSU"),
    (&[0xFB, 0xEE, 0x28], "BOCU-1"),
    (&[0x84, 0x31, 0x95, 0x33], "GB 18030"),
];

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// Size and encoding checks. Appends its findings to `out` and returns the text to
/// parse (UTF-8 BOM removed) when there is no error; the first size, BOM, NUL, UTF-8
/// or character problem ends the check (NUL and UTF-8 are both reported if both occur).
pub(crate) fn decode<'b>(bytes: &'b [u8], out: &mut Vec<Diagnostic>) -> Option<&'b str> {
    let mut push = |severity, line, message: String| {
        out.push(Diagnostic {
            severity,
            line,
            message,
        });
    };
    if bytes.len() > MAX_POLICY_BYTES {
        let n = bytes.len();
        let msg =
            format!("document is {n} bytes, more than the {MAX_POLICY_BYTES} a policy may have");
        push(Severity::Error, 0, msg);
        return None;
    }
    if let Some((_, name)) = FOREIGN_BOMS.iter().find(|(bom, _)| bytes.starts_with(bom)) {
        let msg = format!("document starts with a {name} byte-order mark; a policy must be UTF-8");
        push(Severity::Error, 1, msg);
        return None;
    }
    let body = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => {
            let msg = "document starts with a UTF-8 byte-order mark, which players may not accept";
            push(Severity::Warning, 1, msg.to_string());
            rest
        }
        None => bytes,
    };
    let skipped = bytes.len() - body.len();
    let mut failed = false;
    if let Some(i) = body.iter().position(|&b| b == 0) {
        let offset = skipped + i;
        let msg = format!("embedded NUL byte at offset {offset}");
        push(Severity::Error, lexical::line_at(bytes, offset), msg);
        failed = true;
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let offset = skipped + e.valid_up_to();
            let byte = bytes.get(offset).copied().unwrap_or(0);
            let msg = format!("not valid UTF-8 (byte 0x{byte:02x} at offset {offset})");
            push(Severity::Error, lexical::line_at(bytes, offset), msg);
            return None;
        }
    };
    if failed {
        return None;
    }
    if let Some((i, c)) = lexical::first_bad_char(text) {
        let code = u32::from(c);
        let msg = format!("not well-formed: character U+{code:04X} is not allowed in XML");
        push(Severity::Error, lexical::line_at(text.as_bytes(), i), msg);
        return None;
    }
    Some(text)
}
