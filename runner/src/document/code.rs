//! Which argument of a command a program reads as code: the script after
//! `sh -c`, the code after `python3 -c` or `perl -e`, the program of `awk`
//! or `sed`, all that `eval` or `ssh HOST` run. A `${var}` must not land
//! there, since its value would run instead of being one word; the
//! quoting of scripts ([`super::quoting`]) and the expansion of command
//! lists ([`super::vars`]) ask here.
//!
//! Shells and interpreters are found anywhere in a command when their code
//! option follows them (`find . -exec sh -c …`, `docker exec app sh -c …`);
//! programs that need no option to read code (`awk`, `eval`, `ssh`) only
//! where a command starts: the first word, or after wrappers such as `env`,
//! `sudo`, `timeout 5` or `xargs` (so `rsync -e ssh …` or `npm run watch`
//! are left alone). A program this does not know can still read an
//! argument as code; the README says so.

/// A program that reads one of its arguments as code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeReader {
    /// The program, as written.
    pub program: String,
    /// Whether it is a shell given a script (`sh -c SCRIPT`), in which the
    /// runner can make each `${var}` a reference to its environment
    /// variable.
    pub shell: bool,
}

/// Programs whose argument after `-c` (or a cluster such as `-ec`, other
/// options between) is a script for a shell; before `-c`, a word that is
/// not an option is a script file, so its arguments are not code.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"];

/// Programs that run the argument after `-c` with a shell, their own
/// operands (a user, a lock file) before it.
const SHELL_RUNNERS: &[&str] = &["su", "runuser", "flock", "script"];

/// Interpreters, and the options after which their next argument is code
/// (also as the last of a cluster: `perl -pe`, `python3 -Sc`).
const INLINE_CODE: &[(&[&str], &[&str])] = &[
    (&["python", "pypy"], &["-c"]),
    (&["perl"], &["-e", "-E"]),
    (&["ruby"], &["-e"]),
    (
        &["node", "nodejs", "deno", "bun"],
        &["-e", "--eval", "-p", "--print"],
    ),
    (&["php"], &["-r"]),
    (&["lua", "luajit", "Rscript", "osascript"], &["-e"]),
    (
        &["fish", "csh", "tcsh", "pwsh", "powershell"],
        &["-c", "-Command"],
    ),
];

/// Programs whose first argument that is not an option is their program
/// (unless `-e` or `-f` gave it).
const PROGRAM_FIRST: &[&str] = &["awk", "gawk", "mawk", "nawk", "sed", "gsed", "trap"];

/// Programs that run every argument after them as code: `eval`, and
/// those that hand their arguments to a shell.
const ALL_CODE: &[&str] = &["eval", "watch", "parallel"];

/// `ssh`'s options that take a value (so the host is found).
const SSH_VALUES: &str = "bBcDEeFIiJLlmOopQRSWw";

/// Programs that run the rest of their arguments as a command, with the
/// letters of their options that take a value and how many operands come
/// before the command (`timeout 5 CMD`).
const WRAPPERS: &[(&str, &str, usize)] = &[
    ("env", "uC", 0),
    ("sudo", "ugCDhprtU", 0),
    ("doas", "uC", 0),
    ("nice", "n", 0),
    ("nohup", "", 0),
    ("timeout", "sk", 1),
    ("time", "fo", 0),
    ("exec", "a", 0),
    ("command", "", 0),
    ("builtin", "", 0),
    ("stdbuf", "ioe", 0),
    ("setsid", "", 0),
    ("ionice", "cnp", 0),
    ("chrt", "", 1),
    ("taskset", "", 1),
    ("chroot", "", 1),
    ("xargs", "aEdIiLlnPs", 0),
    ("unbuffer", "", 0),
];

/// Shell words after which a command starts.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "{",
];

/// The name a program goes by: its file name without a version
/// (`/usr/bin/python3.11` is `python`).
fn name_of(program: &str) -> &str {
    let file = program.rsplit('/').next().unwrap_or(program);
    file.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
}

/// Whether `word` is the option `flag`, alone or as the last of a cluster
/// of one-letter options.
fn is_option(word: &str, flag: &str) -> bool {
    word == flag
        || (flag.len() == 2
            && word.len() > 2
            && word.starts_with('-')
            && !word.starts_with("--")
            && word.ends_with(&flag[1..]))
}

/// Which of `words` start a command: the first, and the one after each
/// wrapper (its options and operands skipped) or shell keyword.
fn command_starts(words: &[&str]) -> Vec<bool> {
    let mut starts = vec![false; words.len()];
    let mut next = true;
    let mut wrapper: Option<(&str, usize)> = None;
    let mut skip = false;
    for (i, word) in words.iter().enumerate() {
        if skip {
            skip = false;
            continue;
        }
        if !next {
            continue;
        }
        if let Some((values, operands)) = wrapper.as_mut() {
            if let Some(option) = word.strip_prefix('-').filter(|o| !o.is_empty()) {
                skip = option.len() == 1 && values.contains(option);
                continue;
            }
            if *operands > 0 {
                *operands -= 1;
                continue;
            }
        }
        let assignment = word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
        });
        if assignment {
            continue;
        }
        if KEYWORDS.contains(word) {
            continue;
        }
        starts[i] = true;
        wrapper = WRAPPERS
            .iter()
            .find(|(name, _, _)| *name == name_of(word))
            .map(|(_, values, operands)| (*values, *operands));
        next = wrapper.is_some();
    }
    starts
}

/// For a shell whose arguments after it are `after` (up to the word in
/// question): whether that word is its script. `operands` says whether
/// words that are not options may come before `-c` (`su USER -c …`).
fn is_script(after: &[&str], operands: bool) -> bool {
    let mut seen_c = false;
    let mut skip = false;
    for word in after {
        if skip {
            skip = false;
        } else if matches!(*word, "-o" | "+o" | "-O" | "+O") {
            skip = true;
        } else if word.starts_with('-') || word.starts_with('+') {
            seen_c |= !word.starts_with("--") && word.contains('c');
        } else if seen_c || !operands {
            // The script came already, or this is a script file.
            return false;
        }
    }
    seen_c && !skip
}

/// Whether `args[at]` is read as code by a program named before it, and
/// by which.
pub fn reads_as_code(args: &[&str], at: usize) -> Option<CodeReader> {
    let reader = |program: &str, shell| {
        Some(CodeReader {
            program: program.to_string(),
            shell,
        })
    };
    let starts = command_starts(&args[..at]);
    for (i, program) in args.iter().enumerate().take(at) {
        let name = name_of(program);
        let after = &args[i + 1..at];
        let leads = starts[i];
        // `$SHELL` in a script may be any shell; `${var}` in a command list
        // is the workflow's own variable, a program like any other.
        let shell_variable = program.starts_with('$') && !program.starts_with("${");
        if SHELLS.contains(&name) || shell_variable {
            if is_script(after, false) {
                return reader(program, true);
            }
        } else if SHELL_RUNNERS.contains(&name) {
            if is_script(after, true) {
                return reader(program, true);
            }
        } else if let Some((_, flags)) = INLINE_CODE.iter().find(|(n, _)| n.contains(&name)) {
            if after
                .last()
                .is_some_and(|a| flags.iter().any(|f| is_option(a, f)))
            {
                return reader(program, false);
            }
        } else if !leads {
            continue;
        } else if PROGRAM_FIRST.contains(&name) {
            if reads_program(after) {
                return reader(program, false);
            }
        } else if ALL_CODE.contains(&name) {
            return reader(program, false);
        } else if name == "ssh" {
            if remote_command(after) {
                return reader(program, false);
            }
        } else if name == "env"
            && after
                .last()
                .is_some_and(|a| is_option(a, "-S") || *a == "--split-string")
        {
            return reader(program, false);
        }
    }
    None
}

/// For `awk` or `sed` given `after`: whether the next word is its program.
fn reads_program(after: &[&str]) -> bool {
    let mut given = false;
    let mut value_of: Option<&str> = None;
    for word in after {
        if let Some(option) = value_of.take() {
            given |= matches!(option, "-e" | "--expression" | "-f" | "--file");
            continue;
        }
        match *word {
            "-e" | "--expression" | "-f" | "--file" | "-F" | "-v" | "-l" => value_of = Some(word),
            w if w.starts_with('-') => {}
            // The program came, so what follows is input.
            _ => return false,
        }
    }
    match value_of {
        Some(option) => matches!(option, "-e" | "--expression"),
        None => !given,
    }
}

/// For `ssh` given `after`: whether the host came, so the next word is
/// part of the command the remote shell runs.
fn remote_command(after: &[&str]) -> bool {
    let mut skip = false;
    for word in after {
        if skip {
            skip = false;
        } else if let Some(option) = word.strip_prefix('-') {
            skip = option.len() == 1 && SSH_VALUES.contains(option);
        } else {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(words: &str) -> Option<String> {
        let args: Vec<&str> = words.split(' ').collect();
        reads_as_code(&args, args.len() - 1).map(|r| r.program)
    }

    #[test]
    fn shells_and_interpreters_are_found_by_their_code_option() {
        for (words, program) in [
            ("sh -c X", "sh"),
            ("/bin/bash -ec X", "/bin/bash"),
            ("bash --norc -o pipefail -c X", "bash"),
            ("sh -c -e X", "sh"),
            ("env A=1 sh -c X", "sh"),
            ("sudo -u app bash -c X", "bash"),
            ("find . -exec sh -c X", "sh"),
            ("docker exec app sh -c X", "sh"),
            ("su - app -c X", "su"),
            ("$SHELL -c X", "$SHELL"),
            ("python3 -c X", "python3"),
            ("python3.11 -Sc X", "python3.11"),
            ("perl -i.bak -pe X", "perl"),
            ("ruby -ne X", "ruby"),
            ("node --eval X", "node"),
            ("awk -F , X", "awk"),
            ("sed -n -e X", "sed"),
            ("timeout 5 eval X", "eval"),
            ("ssh -p 22 host X", "ssh"),
            ("env -S X", "env"),
            ("if trap X", "trap"),
        ] {
            assert_eq!(code(words), Some(program.to_string()), "{words}");
        }
    }

    #[test]
    fn plain_arguments_stay_plain() {
        for words in [
            "sh -c script X",
            "bash ./deploy.sh -c X",
            "sh -c -o X",
            "python3 job.py X",
            "python3 -c code X",
            "awk {print} X",
            "awk -f p.awk X",
            "sed -e s/a/b/ X",
            "ssh -p 22 X",
            "timeout 5 X",
            "rsync -az -e ssh ./dist/ X",
            "docker compose watch X",
            "npm run watch -- X",
            "apt-get install -y parallel gawk X",
            "runner -c X",
            "${runner} -c X",
        ] {
            assert_eq!(code(words), None, "{words}");
        }
    }
}
