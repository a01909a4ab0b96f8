//! Text that comes from outside the runner — what a plugin says, a row key
//! read from a store — is bounded in length and kept on one line before it
//! is logged, saved in the state folder or shown, so that it can neither
//! fill the disk nor forge a line of the runner's own.

/// The most bytes kept of one outside text (a refusal, a difference, a log
/// line of a plugin).
pub const TEXT_LIMIT: usize = 1024;

/// The most bytes kept of a step's error or summary in the state folder.
pub const STEP_TEXT_LIMIT: usize = 16 * 1024;

/// `text` cut to at most `limit` bytes (at a character boundary), with a
/// note of how much was cut.
pub fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes cut)", &text[..end], text.len() - end)
}

/// `text` cut to at most `limit` bytes in all (at a character boundary,
/// ending with `…` when cut): for fields that are checked against their
/// limit afterwards.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `text` with control characters escaped (`\n`, `\u{1b}` …), so it is
/// one line and cannot move the cursor or colour the terminal.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if moves_the_terminal(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Controls, and the separators and direction marks that move or reorder
/// what a terminal shows.
fn moves_the_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Bytes from a store (a key, a value) shown so they can be typed back:
/// as they are when they are UTF-8 that shows as itself (nothing that
/// moves the terminal, and not starting `hex:`), else `hex:` and their hex.
/// `runner rows --key` takes either form.
pub fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(moves_the_terminal) && !text.starts_with("hex:") => {
            text.to_string()
        }
        _ => format!("hex:{}", hex::encode(bytes)),
    }
}

/// An outside text made safe to show: at most [`TEXT_LIMIT`] bytes of it,
/// on one line.
pub fn foreign(text: &str) -> String {
    one_line(&bounded(text, TEXT_LIMIT))
}

/// Outside bytes (a row key) made safe to show, as text.
pub fn foreign_bytes(bytes: &[u8]) -> String {
    shown_bytes(bytes, TEXT_LIMIT)
}

/// At most `limit` of outside bytes, as one line of text.
pub fn shown_bytes(bytes: &[u8], limit: usize) -> String {
    let cut = &bytes[..bytes.len().min(limit)];
    let mut text = one_line(&String::from_utf8_lossy(cut));
    if cut.len() < bytes.len() {
        text.push_str(&format!("… ({} more bytes cut)", bytes.len() - cut.len()));
    }
    text
}

/// One line as [`read_line`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRead {
    /// Its whole length in bytes, end of line included.
    pub len: u64,
    /// Longer than the limit: only its first bytes were kept.
    pub cut: bool,
}

/// Reads the next line into `buf` (without its end of line), keeping at
/// most `max` bytes of it: the rest of a longer line is skipped, never
/// held, so a line without end cannot fill the memory. `None` at the end.
pub fn read_line(
    reader: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: u64,
) -> std::io::Result<Option<LineRead>> {
    use std::io::{BufRead, Read};
    buf.clear();
    let n = reader
        .by_ref()
        .take(max.saturating_add(1))
        .read_until(b'\n', buf)? as u64;
    if n == 0 {
        return Ok(None);
    }
    let mut len = n;
    let cut = buf.last() != Some(&b'\n') && n > max;
    if cut {
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    reader.consume(i + 1);
                    len += i as u64 + 1;
                    break;
                }
                None => {
                    let l = chunk.len();
                    reader.consume(l);
                    len += l as u64;
                }
            }
        }
        buf.truncate(usize::try_from(max).unwrap_or(usize::MAX));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(LineRead { len, cut }))
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
pub fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_text_keeps_to_its_limit() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(300);
        let c = cut(&long, 256);
        assert!(c.len() <= 256 && c.ends_with('…'), "{}", c.len());
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        let cut = bounded("ééé", 3);
        assert_eq!(cut, "é… (4 more bytes cut)");
        assert!(foreign(&"x".repeat(5000)).len() < TEXT_LIMIT + 40);
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        assert_eq!(
            one_line("ok\nERROR forged\u{1b}[31m"),
            "ok\\nERROR forged\\u{1b}[31m"
        );
        assert_eq!(foreign_bytes(b"k\n1"), "k\\n1");
        assert_eq!(one_line("a\u{202e}b\u{2028}"), "a\\u{202e}b\\u{2028}");
    }

    #[test]
    fn a_line_without_end_is_cut_and_the_next_one_read_whole() {
        let mut text = vec![b'x'; 10_000];
        text.extend_from_slice(b"\nnext\r\n");
        let mut input = std::io::Cursor::new(text);
        let mut buf = Vec::new();
        let first = read_line(&mut input, &mut buf, 100).unwrap().unwrap();
        assert_eq!((first.len, first.cut, buf.len()), (10_001, true, 100));
        let next = read_line(&mut input, &mut buf, 100).unwrap().unwrap();
        assert_eq!((next.cut, &buf[..]), (false, &b"next"[..]));
        assert_eq!(read_line(&mut input, &mut buf, 100).unwrap(), None);
    }
}
