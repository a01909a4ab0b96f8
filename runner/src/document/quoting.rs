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

/// Why a script cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    /// `${name}` names no variable.
    Unknown(String),
    /// `${` without `}`.
    Unclosed,
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
                out.push_str(&match context {
                    Context::Bare => format!("\"${{{var}}}\""),
                    Context::Double => format!("${{{var}}}"),
                    Context::Single => return Err(unclear("single quotes")),
                    Context::Comment => unreachable!("comments are copied as they are"),
                });
                rest = &tail[end + 1..];
                word_start = false;
                continue;
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
            continue;
        }
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
        word_start = context == Context::Bare && (c.is_whitespace() || ";&|(".contains(c));
    }
    Ok(out)
}

/// Whether a command list runs a shell on a script (`["sh", "-c", …]`):
/// the index of the script, if so.
pub fn shell_script(args: &[String]) -> Option<usize> {
    let program = args.first()?;
    let name = program.rsplit('/').next().unwrap_or(program);
    if !matches!(
        name,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "busybox"
    ) {
        return None;
    }
    let flag = args
        .iter()
        .position(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'))?;
    (flag + 1 < args.len()).then_some(flag + 1)
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
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(shell_script(&args(&["sh", "-c", "x"])), Some(2));
        assert_eq!(
            shell_script(&args(&["/bin/bash", "-ec", "x", "a"])),
            Some(2)
        );
        assert_eq!(shell_script(&args(&["runner", "-c", "x"])), None);
    }
}
