//! `${var}` inside a command line that `sh -c` runs (a `shell` step's `run`,
//! a restore `command` written as one string). A value comes from `--var`
//! or from a path, so it may hold a quote, a `;` or a `$(…)`: pasted as it
//! is, it would become shell syntax. Here every value is quoted for the
//! place it lands in — outside quotes, inside `'…'` or inside `"…"` — so
//! the shell always sees it as the literal text of one word.

/// Why a command line cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// `${name}` names no variable.
    Unknown(String),
    /// `${` without `}`.
    Unclosed,
    /// `\${name}`: a backslash that would escape the runner's quoting.
    Escaped(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Bare,
    Single,
    Double,
}

/// Expands `${name}` in `line` with `lookup`, quoting each value for its
/// context; `$$` is a literal `$` for the shell.
pub fn expand_quoted(
    line: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, QuoteError> {
    let mut out = String::with_capacity(line.len());
    let mut context = Context::Bare;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '$' && !escaped {
            if let Some(tail) = rest.strip_prefix("$$") {
                out.push('$');
                rest = tail;
                continue;
            }
            if let Some(tail) = rest.strip_prefix("${") {
                let end = tail.find('}').ok_or(QuoteError::Unclosed)?;
                let name = tail[..end].trim();
                let value = lookup(name).ok_or_else(|| QuoteError::Unknown(name.to_string()))?;
                out.push_str(&quote(&value, context));
                rest = &tail[end + 1..];
                continue;
            }
        }
        if c == '$' && escaped && rest.starts_with("${") {
            let name = rest[2..].split('}').next().unwrap_or("").trim();
            return Err(QuoteError::Escaped(name.to_string()));
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        if escaped {
            escaped = false;
            continue;
        }
        context = match (context, c) {
            (Context::Bare, '\'') => Context::Single,
            (Context::Bare, '"') => Context::Double,
            (Context::Single, '\'') | (Context::Double, '"') => Context::Bare,
            (Context::Bare | Context::Double, '\\') => {
                escaped = true;
                context
            }
            (c, _) => c,
        };
    }
    Ok(out)
}

/// `value` as literal text at a place of `context`.
fn quote(value: &str, context: Context) -> String {
    let single = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
    match context {
        Context::Bare => single(value),
        // Close the quote, add the value quoted, open it again: the shell
        // joins the three into one word.
        Context::Single => format!("'{}'", single(value)),
        Context::Double => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '\\' | '$' | '`' | '"') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn vars(name: &str) -> Option<String> {
        match name {
            "evil" => Some("1; touch pwned # $(id) `id` \"x\" 'y' \\ $HOME".into()),
            "plain" => Some("a b".into()),
            _ => None,
        }
    }

    /// What `sh` makes of `line` once expanded: the words `printf` receives.
    fn words(line: &str) -> String {
        let expanded = expand_quoted(line, vars).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '[%s]' {expanded}"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_value_is_one_literal_word_wherever_it_lands() {
        let evil = vars("evil").unwrap();
        assert_eq!(words("${evil}"), format!("[{evil}]"));
        assert_eq!(words("'<${evil}>'"), format!("[<{evil}>]"));
        assert_eq!(words("\"<${evil}>\""), format!("[<{evil}>]"));
        assert_eq!(words("x${plain}y"), "[xa by]");
        assert_eq!(words("$${plain}"), "[]", "`$$` hands the shell a `$`");
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            expand_quoted("${nope}", vars),
            Err(QuoteError::Unknown("nope".into()))
        );
        assert_eq!(expand_quoted("${open", vars), Err(QuoteError::Unclosed));
        assert_eq!(
            expand_quoted("\\${plain}", vars),
            Err(QuoteError::Escaped("plain".into()))
        );
        assert_eq!(expand_quoted("'\\'${plain}", vars).unwrap(), "'\\''a b'");
    }
}
