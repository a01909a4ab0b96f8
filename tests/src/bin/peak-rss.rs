//! `peak-rss OUT -- PROGRAM ARGS…`: runs a program, writes its peak
//! resident memory in KiB to the file OUT, and exits as it did.
//!
//! The tests measure the runner through this small process rather than
//! from the test binary itself: Linux counts, in a child's peak, the memory
//! of the process that spawned it as it was just before the child's `exec`,
//! and a test binary running many tests at once is large.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some("--"), Some(program)) =
        (args.first(), args.get(1).map(String::as_str), args.get(2))
    else {
        eprintln!("usage: peak-rss OUT -- PROGRAM ARGS…");
        return ExitCode::from(2);
    };
    let child = match Command::new(program).args(&args[3..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("peak-rss: cannot start `{program}`: {e}");
            return ExitCode::from(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `usage` is a plain C struct that wait4 fills in; all zeroes
    // is a valid value of it.
    #[expect(unsafe_code, reason = "wait4 is the only way to a child's own rusage")]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut usage);
        usage
    };
    if let Err(e) = std::fs::write(out, usage.ru_maxrss.to_string()) {
        eprintln!("peak-rss: cannot write `{out}`: {e}");
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
