//! `${var}` inside a command line that `sh -c` runs (a `shell` step's `run`,
//! a restore `command` written as one string). A value comes from `--var`
//! or from a path, so it may hold a quote, a `;` or a `$(…)`. It never
//! enters the line itself: the line gets a reference to an environment
//! variable that holds the value (`"$SWITCHYARD_word"`), and the shell
//! never reads the result of a parameter expansion as code. The reference
//! is written for where it lands (outside quotes, inside `'…'` or `"…"`),
//! so that it also stays one word.

/// Why a command line cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// `${name}` names no variable.
    Unknown(String),
    /// `${` without `}`.
    Unclosed,
    /// `\${name}`: a backslash that would escape the runner's reference.
    Escaped(String),
}

/// A command line with its variables replaced by references, and the
/// environment that holds their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    /// The line for `sh -c`.
    pub line: String,
    /// The variables the references read: name and value.
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Bare,
    Single,
    Double,
}

/// Replaces `${name}` in `line` with a reference to an environment
/// variable holding `lookup(name)`; `$$` is a literal `$` for the shell.
pub fn expand_quoted(
    line: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Quoted, QuoteError> {
    let mut out = Quoted {
        line: String::with_capacity(line.len()),
        env: Vec::new(),
    };
    let mut context = Context::Bare;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '$' && !escaped {
            if let Some(tail) = rest.strip_prefix("$$") {
                out.line.push('$');
                rest = tail;
                continue;
            }
            if let Some(tail) = rest.strip_prefix("${") {
                let end = tail.find('}').ok_or(QuoteError::Unclosed)?;
                let name = tail[..end].trim();
                let value = lookup(name).ok_or_else(|| QuoteError::Unknown(name.to_string()))?;
                let env = out.variable(name, value);
                out.line.push_str(&reference(&env, context));
                rest = &tail[end + 1..];
                continue;
            }
        }
        if c == '$' && escaped && rest.starts_with("${") {
            let name = rest[2..].split('}').next().unwrap_or("").trim();
            return Err(QuoteError::Escaped(name.to_string()));
        }
        out.line.push(c);
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

impl Quoted {
    /// The environment variable that holds `name`'s value (one per name;
    /// another name that would map to the same one gets a number).
    fn variable(&mut self, name: &str, value: String) -> String {
        let base: String = std::iter::once("SWITCHYARD_".to_string())
            .chain(
                name.chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }.to_string()),
            )
            .collect();
        let mut env = base.clone();
        let mut n = 1;
        loop {
            match self.env.iter().find(|(e, _)| *e == env) {
                Some((_, v)) if *v == value => return env,
                Some(_) => {
                    n += 1;
                    env = format!("{base}_{n}");
                }
                None => {
                    self.env.push((env.clone(), value));
                    return env;
                }
            }
        }
    }
}

/// A reference to `env` that is one word at a place of `context`.
fn reference(env: &str, context: Context) -> String {
    match context {
        Context::Bare => format!("\"${{{env}}}\""),
        // Close the quote, expand in double quotes, open it again: the
        // shell joins the three into one word.
        Context::Single => format!("'\"${{{env}}}\"'"),
        Context::Double => format!("${{{env}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const EVIL: &str = "1; touch pwned # $(touch pwned) `touch pwned` \"x\" 'y' \\ $HOME";

    fn vars(name: &str) -> Option<String> {
        match name {
            "evil" => Some(EVIL.into()),
            "plain" => Some("a b".into()),
            "a-b" | "a_b" => Some(name.into()),
            _ => None,
        }
    }

    /// What `sh` prints for `line` once expanded, run in a fresh folder;
    /// and whether anything there was touched.
    fn run(line: &str) -> (String, bool) {
        let q = expand_quoted(line, vars).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(&q.line)
            .envs(q.env.iter().cloned())
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            String::from_utf8(out.stdout).unwrap(),
            dir.path().join("pwned").exists(),
        )
    }

    #[test]
    fn a_value_is_one_literal_word_wherever_it_lands() {
        for line in [
            "printf '[%s]' ${evil}",
            "printf '[%s]' '${evil}'",
            "printf '[%s]' \"${evil}\"",
        ] {
            assert_eq!(run(line), (format!("[{EVIL}]"), false), "{line}");
        }
        assert_eq!(run("printf '[%s]' x${plain}y"), ("[xa by]".into(), false));
        assert_eq!(
            run("printf '[%s]' $${plain}"),
            ("[]".into(), false),
            "`$$` hands the shell a `$`"
        );
    }

    /// Places where a quote tracker could be wrong: inside a command
    /// substitution in double quotes, a here-document, after a quote in a
    /// comment. At worst a value is split into words; it never runs.
    #[test]
    fn no_value_ever_runs_as_code() {
        for line in [
            "echo \"$(echo ${evil})\"",
            "cat <<EOF\n${evil}\nEOF",
            "# it's a comment\necho ${evil}",
            "echo `echo ${evil}`",
        ] {
            let (_, touched) = run(line);
            assert!(!touched, "{line}");
        }
    }

    #[test]
    fn names_that_map_to_one_variable_are_kept_apart() {
        let q = expand_quoted("${a-b} ${a_b} ${a-b}", vars).unwrap();
        assert_eq!(
            q.env,
            vec![
                ("SWITCHYARD_a_b".to_string(), "a-b".to_string()),
                ("SWITCHYARD_a_b_2".to_string(), "a_b".to_string())
            ]
        );
        assert_eq!(
            q.line,
            "\"${SWITCHYARD_a_b}\" \"${SWITCHYARD_a_b_2}\" \"${SWITCHYARD_a_b}\""
        );
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
    }
}
