//! `${var}` inside a script a shell runs (a `shell` step's `run`, a restore
//! `command` written as one string, the script after `sh -c` in a command
//! list). A value comes from `--var` or from a path, so it may hold a
//! quote, a `;` or a `$(…)`. It never enters the script itself: the script
//! gets a reference to an environment variable that holds the value
//! (`"${SWITCHYARD_word}"`), and a shell never reads the result of a
//! parameter expansion as code. Every command step gets all the
//! workflow's variables that way ([`environment`]), so a script can also
//! write `"$SWITCHYARD_word"` itself where the runner cannot place one.
//!
//! The reference is written for where it lands, which the runner follows
//! through quotes and comments. Where it cannot tell how the value would be
//! read — inside `'…'` (often a script for another shell), a command
//! substitution, arithmetic or a here-document — it refuses, and says to
//! write the variable's name there instead.

use std::collections::BTreeMap;

use super::code::reads_as_code;

/// Why a script cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// `${name}` names no variable.
    Unknown(String),
    /// `${` without `}`.
    Unclosed,
    /// `${name}` where a program would read its value as code: the code
    /// after `python3 -c`, a script a nested shell runs, what `eval` runs.
    Code {
        /// The variable.
        name: String,
        /// The program that would read it, as written.
        program: String,
        /// The environment variable that holds its value.
        env: String,
    },
    /// `${name}` in a place the runner does not follow (named).
    Unclear {
        /// The variable.
        name: String,
        /// The place, in words.
        place: &'static str,
        /// The environment variable that holds its value.
        env: String,
    },
}

/// The environment variables that hold the workflow's variables, by
/// variable name: `SWITCHYARD_` and the name, with anything but letters,
/// digits and `_` made `_` (a name that would clash gets a number).
pub fn environment(vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut taken = std::collections::BTreeSet::new();
    for var in vars.keys() {
        let base: String = std::iter::once("SWITCHYARD_".to_string())
            .chain(
                var.chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }.to_string()),
            )
            .collect();
        let mut env = base.clone();
        let mut n = 1;
        while !taken.insert(env.clone()) {
            n += 1;
            env = format!("{base}_{n}");
        }
        names.insert(var.clone(), env);
    }
    names
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Bare,
    Single,
    Double,
    Comment,
}

/// Replaces `${name}` in `script` with a reference to the environment
/// variable `env[name]`; `$$` is a literal `$` for the shell.
pub fn expand_quoted(script: &str, env: &BTreeMap<String, String>) -> Result<String, QuoteError> {
    let mut out = String::with_capacity(script.len());
    let mut context = Context::Bare;
    let mut escaped = false;
    // Open command substitutions and arithmetic, and backquotes.
    let mut substitutions = 0usize;
    let mut backquote = false;
    let mut here_document = false;
    let mut word_start = true;
    // The words of the command being read, unquoted, so a value about to
    // land where a program reads code (`bash -c …`, `eval …`) is refused.
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut rest = script;
    while let Some(c) = rest.chars().next() {
        if c == '$' && !escaped && context != Context::Comment {
            if let Some(tail) = rest.strip_prefix("$$") {
                out.push('$');
                rest = tail;
                word_start = false;
                continue;
            }
            if let Some(tail) = rest.strip_prefix("${") {
                let end = tail.find('}').ok_or(QuoteError::Unclosed)?;
                let name = tail[..end].trim();
                let var = env
                    .get(name)
                    .ok_or_else(|| QuoteError::Unknown(name.to_string()))?;
                let unclear = |place| QuoteError::Unclear {
                    name: name.to_string(),
                    place,
                    env: var.clone(),
                };
                if substitutions > 0 || backquote {
                    return Err(unclear("a command substitution, arithmetic or backquotes"));
                }
                if here_document {
                    return Err(unclear("a here-document"));
                }
                let reference = match context {
                    Context::Bare => format!("\"${{{var}}}\""),
                    Context::Double => format!("${{{var}}}"),
                    Context::Single => return Err(unclear("single quotes")),
                    Context::Comment => unreachable!("comments are copied as they are"),
                };
                let written: Vec<&str> = words.iter().map(String::as_str).collect();
                if let Some(reader) = reads_as_code(&written, written.len()) {
                    return Err(QuoteError::Code {
                        name: name.to_string(),
                        program: reader.program,
                        env: var.clone(),
                    });
                }
                word.get_or_insert_default().push('x');
                out.push_str(&reference);
                rest = &tail[end + 1..];
                word_start = false;
                continue;
            }
            // The runner's own variable where a program reads code, in a
            // place this shell expands it first: the same as `${var}`.
            if let Some(tail) = rest.strip_prefix("$SWITCHYARD_")
                && context != Context::Single
            {
                let written: Vec<&str> = words.iter().map(String::as_str).collect();
                if let Some(reader) = reads_as_code(&written, written.len()) {
                    let len = tail
                        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                        .unwrap_or(tail.len());
                    let env_name = format!("SWITCHYARD_{}", &tail[..len]);
                    let name = env
                        .iter()
                        .find(|(_, e)| **e == env_name)
                        .map_or(env_name.clone(), |(n, _)| n.clone());
                    return Err(QuoteError::Code {
                        name,
                        program: reader.program,
                        env: env_name,
                    });
                }
            }
            if rest.starts_with("$(") && context != Context::Single {
                substitutions += 1;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        if escaped {
            escaped = false;
            word_start = false;
            // A backslash-newline joins two lines: no character at all.
            if c != '\n' {
                word.get_or_insert_default().push(c);
            }
            continue;
        }
        let before = context;
        context = match (context, c) {
            (Context::Comment, '\n') => Context::Bare,
            (Context::Comment, _) => Context::Comment,
            (Context::Bare, '#') if word_start => Context::Comment,
            (Context::Bare, '\'') => Context::Single,
            (Context::Bare, '"') => Context::Double,
            (Context::Single, '\'') | (Context::Double, '"') => Context::Bare,
            (Context::Bare | Context::Double, '\\') => {
                escaped = true;
                context
            }
            (Context::Bare | Context::Double, '`') => {
                backquote = !backquote;
                context
            }
            (Context::Bare | Context::Double, ')') if substitutions > 0 => {
                substitutions -= 1;
                context
            }
            (Context::Bare, '<') if rest.starts_with('<') => {
                here_document = true;
                context
            }
            (c, _) => c,
        };
        track_words(before, context, c, &mut words, &mut word);
        word_start = context == Context::Bare && (c.is_whitespace() || ";&|(".contains(c));
    }
    Ok(out)
}

/// Follows the words of the command a script is at, as a shell splits
/// them: quotes are dropped, unquoted blanks end a word, and `;`, `&`,
/// `|`, `(`, `)`, newlines and the end of a comment start a new command.
/// `before` and `after` are the contexts around `c`.
fn track_words(
    before: Context,
    after: Context,
    c: char,
    words: &mut Vec<String>,
    word: &mut Option<String>,
) {
    let quote = matches!((before, c), (Context::Bare, '\'' | '"'))
        || matches!(
            (before, c),
            (Context::Single, '\'') | (Context::Double, '"')
        );
    match before {
        Context::Comment if after == Context::Bare => {
            word.take();
            words.clear();
        }
        Context::Comment => {}
        Context::Bare if after == Context::Comment => {}
        _ if quote => {
            word.get_or_insert_default();
        }
        Context::Bare if c.is_whitespace() || ";&|()".contains(c) => {
            words.extend(word.take());
            if c == '\n' || ";&|()".contains(c) {
                words.clear();
            }
        }
        Context::Bare if c == '\\' => {}
        _ => word.get_or_insert_default().push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const EVIL: &str = "1; touch pwned # $(touch pwned) `touch pwned` \"x\" 'y' \\ $HOME *";

    fn vars() -> BTreeMap<String, String> {
        [("evil", EVIL), ("plain", "a b"), ("a-b", "1"), ("a_b", "2")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into()
    }

    /// What `sh` prints for `script` once expanded, run in a fresh folder
    /// with one file in it (for globs); and whether anything was touched.
    fn run(script: &str) -> (String, bool) {
        let vars = vars();
        let env = environment(&vars);
        let line = expand_quoted(script, &env).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .envs(env.iter().map(|(var, name)| (name, &vars[var])))
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
        for script in [
            "printf '[%s]' ${evil}",
            "printf '[%s]' \"${evil}\"",
            "printf '[%s]' \"<${evil}>\" | tr -d '<>'",
            "# it's a comment with a \" in it\nprintf '[%s]' ${evil}",
        ] {
            assert_eq!(run(script), (format!("[{EVIL}]"), false), "{script}");
        }
        assert_eq!(run("printf '[%s]' x${plain}y"), ("[xa by]".into(), false));
        assert_eq!(
            run("printf '[%s]' $${plain}"),
            ("[]".into(), false),
            "`$$` hands the shell a `$`"
        );
        assert_eq!(
            run("sh -c 'printf \"[%s]\" \"$SWITCHYARD_evil\"'"),
            (format!("[{EVIL}]"), false),
            "a nested shell reads the variable itself"
        );
    }

    #[test]
    fn where_the_reading_is_unclear_the_runner_refuses() {
        let env = environment(&vars());
        for (script, place) in [
            ("sh -c 'echo ${plain}'", "single quotes"),
            (
                "echo \"$(echo ${plain})\"",
                "a command substitution, arithmetic or backquotes",
            ),
            (
                "echo $(( ${plain} + 1 ))",
                "a command substitution, arithmetic or backquotes",
            ),
            (
                "echo `echo ${plain}`",
                "a command substitution, arithmetic or backquotes",
            ),
            ("cat <<EOF\n${plain}\nEOF", "a here-document"),
        ] {
            assert_eq!(
                expand_quoted(script, &env),
                Err(QuoteError::Unclear {
                    name: "plain".into(),
                    place,
                    env: "SWITCHYARD_plain".into()
                }),
                "{script}"
            );
        }
    }

    #[test]
    fn names_that_map_to_one_variable_are_kept_apart() {
        let env = environment(&vars());
        assert_eq!(env["a-b"], "SWITCHYARD_a_b");
        assert_eq!(env["a_b"], "SWITCHYARD_a_b_2");
    }

    #[test]
    fn mistakes_are_named_and_shells_in_command_lists_found() {
        let env = environment(&vars());
        assert_eq!(
            expand_quoted("${nope}", &env),
            Err(QuoteError::Unknown("nope".into()))
        );
        assert_eq!(expand_quoted("${open", &env), Err(QuoteError::Unclosed));
        let shell = |a: &[&str], at| reads_as_code(a, at).map(|r| r.shell);
        assert_eq!(shell(&["sh", "-c", "x"], 2), Some(true));
        assert_eq!(shell(&["env", "A=1", "sh", "-c", "x"], 4), Some(true));
        assert_eq!(shell(&["python3", "-c", "x"], 2), Some(false));
    }

    #[test]
    fn where_a_program_would_read_a_value_as_code_the_runner_refuses() {
        let env = environment(&vars());
        for (script, program) in [
            ("bash -c \"printf %s ${evil}\"", "bash"),
            ("sh -c ${evil}", "sh"),
            ("true; eval \"${evil}\"", "eval"),
            ("env python3 -c \"print(${evil})\"", "python3"),
            ("x=1 sudo sh -ec ${evil} | cat", "sh"),
            ("trap ${evil} EXIT", "trap"),
            ("# deploy\nbash -c \"echo ${evil}\"", "bash"),
            ("set -eu # strict\neval \"${evil}\"", "eval"),
            ("bash -c \\\n  \"echo ${evil}\"", "bash"),
            ("perl -pe \"s/a/${evil}/\" f", "perl"),
            ("sh -c -e \"echo ${evil}\"", "sh"),
            ("bash -c \"echo \\\"$SWITCHYARD_evil\\\"\"", "bash"),
        ] {
            assert_eq!(
                expand_quoted(script, &env),
                Err(QuoteError::Code {
                    name: "evil".into(),
                    program: program.into(),
                    env: "SWITCHYARD_evil".into()
                }),
                "{script}"
            );
        }
        // The same programs, given the value as a plain argument.
        for script in [
            "printf '[%s]' ${evil}; sh -c 'true'",
            "python3 -c 'import sys' ${evil} >/dev/null 2>&1; printf '[%s]' ${evil}",
            "bash -c 'printf \"[%s]\" \"$1\"' _ ${evil}",
            "bash -c 'printf \"[%s]\" \"$SWITCHYARD_evil\"'",
            "# a comment\nprintf '[%s]' ${evil} # sh -c",
            "printf '[%s]' \\\n  ${evil}",
        ] {
            assert_eq!(run(script), (format!("[{EVIL}]"), false), "{script}");
        }
    }
}
