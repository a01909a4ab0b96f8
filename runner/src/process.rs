//! Child processes that never outlive the runner.
//!
//! A command runs in a process group of its own under a small `sh` guard:
//! the guard is the group's leader, starts the command in the group and
//! waits for it. The kernel sends the guard SIGTERM when the runner dies,
//! however it dies (a parent-death signal, kill -9 included), and the
//! guard then stops the whole group: SIGTERM, and SIGKILL to whatever is
//! left after the grace period. The runner itself stops the group the same
//! way on Ctrl-C, SIGTERM or a timeout, and when the command ends it stops
//! what the command left running in its group. Only a process that leaves
//! the group on purpose (`setsid`) escapes.

#![expect(
    unsafe_code,
    reason = "the parent-death signal and signals to a process group have no safe wrapper in std; the calls below are the whole of it"
)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long a stopped command gets to end on SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// The guard: `sh -c GUARD switchyard-guard GRACE PROGRAM ARGS…`. On
/// SIGTERM or SIGINT it sends SIGTERM to the group, waits for the command
/// at most GRACE seconds (a timer in the group kills everything after it), and
/// then kills what is left, itself included. Otherwise it ends as the
/// command ended: with its exit status, or killed by the same signal.
const GUARD: &str = r#"g=$1; shift
trap 'trap "" INT TERM; kill -TERM 0 2>/dev/null; (sleep "$g"; kill -KILL 0) & wait "$c"; kill -KILL 0' INT TERM
"$@" &
c=$!
wait "$c"
s=$?
if [ "$s" -gt 128 ] && [ "$s" -lt 160 ]; then trap - INT TERM; kill -s "$(kill -l "$s")" $$; fi
exit "$s"
"#;

/// A command under its guard, in a new process group, whose guard gets
/// SIGTERM when the thread that started it ends (the kernel ties the
/// parent-death signal to the thread; steps start commands on the thread
/// that runs them, which lives as long as the runner works on the step) or
/// the runner dies.
pub fn guarded(program: &str, args: &[String]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(GUARD)
        .arg("switchyard-guard")
        .arg(GRACE.as_secs().to_string())
        .arg(program)
        .args(args)
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (prctl, getppid), and nothing is allocated (errors are raw codes).
    unsafe {
        c.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner died before the signal was set: nobody would stop us.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    c
}

/// Sends `signal` to the process group led by `child`; false when the
/// group has no member left.
fn signal_group(child: &Child, signal: i32) -> bool {
    let Ok(pgid) = i32::try_from(child.id()) else {
        return false;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; it
    // touches no memory of ours.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Stops the group of `child` (a guard started by [`guarded`]): SIGTERM,
/// then SIGKILL after [`GRACE`]; waits for the guard.
pub fn stop_group(child: &mut Child) {
    if signal_group(child, libc::SIGTERM) {
        let deadline = Instant::now() + GRACE + Duration::from_secs(1);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) && !signal_group(child, 0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Only a group that still has members: its number is not reused then.
    if signal_group(child, 0) {
        signal_group(child, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// After the command ended: stops what it left running in its group.
pub fn stop_leftovers(child: &mut Child) {
    if signal_group(child, 0) {
        tracing::warn!(
            "the command left processes running in its group; stopping them (SIGTERM, then SIGKILL after {})",
            humantime::format_duration(GRACE)
        );
        stop_group(child);
    }
}
