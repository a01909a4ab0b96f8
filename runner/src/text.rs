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

/// `text` with control characters escaped (`\n`, `\u{1b}` …), so it is
/// one line and cannot move the cursor or colour the terminal.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
