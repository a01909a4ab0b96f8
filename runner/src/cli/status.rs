//! What `runner status` shows: where each step stands, whether a runner
//! is alive for the state folder and when it last reported, the figures of
//! running replays (marked stale when old, `unknown` when the source could
//! not be asked), the restore points and the switch.

use crate::state::State;
use crate::steps::replay::saved::ReplayState;
use crate::workflow::Workflow;

/// Figures older than this are marked stale in `status` (the heartbeat
/// comes every two seconds).
const STALE_AFTER_MS: u64 = 5_000;

/// The text of `runner status` for `state`, read from the state folder of
/// `w`; `alive` says whether a runner holds its lock now.
pub fn text(w: &Workflow, state: &State, alive: bool) -> String {
    let mut out = String::new();
    macro_rules! outln {
        ($($arg:tt)*) => {{
            out.push_str(&format!($($arg)*));
            out.push('\n');
        }};
    }
    outln!("workflow `{}` (state in {})", w.name, w.state_dir.display());
    let now = crate::state::now_ms();
    let ago =
        |ms: u64| crate::report::duration(std::time::Duration::from_millis(now.saturating_sub(ms)));
    let last = state
        .heartbeat_ms
        .map(|ms| format!("last report {} ago", ago(ms)));
    let pid = state.runner_pid.map(|p| format!("pid {p}"));
    let detail: Vec<String> = [pid, last].into_iter().flatten().collect();
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", detail.join(", "))
    };
    let complete = state.finished_at_ms.is_some() && w.all_done(state);
    if alive {
        outln!("  runner: alive{detail}");
    } else if complete {
        outln!("  runner: none; the workflow is complete (`--from STEP` runs a step again)");
    } else {
        outln!("  runner: none alive for this state folder{detail}; `runner exec` resumes");
    }
    for step in w.steps.iter() {
        let id = step.id.get_ref();
        match state.steps.get(id) {
            None if step.config.is_hook() => {
                outln!("  {id:<16} hook     runs when a step names it")
            }
            None => outln!("  {id:<16} pending"),
            Some(st) => {
                use crate::state::Status;
                let status = match (st.background, st.status, alive) {
                    (true, _, true) => "syncing".to_string(),
                    // Marked to resume: the next run starts it again.
                    (true, _, false) => "paused".to_string(),
                    // The runner died in the step.
                    (false, Status::Running, false) => "stopped".to_string(),
                    (false, other, _) => format!("{other:?}").to_lowercase(),
                };
                // "interrupted" is the status already; the rest says what to do.
                let error = st
                    .error
                    .as_deref()
                    .map(|e| e.strip_prefix("interrupted; ").unwrap_or(e));
                let detail = match (error.or(st.summary.as_deref()), status.as_str()) {
                    (Some(d), _) => d,
                    (None, "stopped") => {
                        "the runner ended during this step; `runner exec` runs it again"
                    }
                    (None, "paused") => "resumes from its committed position with `runner exec`",
                    (None, _) => "",
                };
                outln!("  {id:<16} {status:<8} {detail}");
                // What a router counted, as of its last report.
                if let Some(served) = st.own.get("served").and_then(|v| {
                    serde_json::from_value::<crate::router::MetricsSnapshot>(v.clone()).ok()
                }) {
                    outln!("  {:<16}          {}", "", crate::router::summary(&served));
                }
                let running = st.background || st.status != Status::Done;
                // Where a replay stands; other kinds keep none of this.
                let replay: ReplayState = match st.own() {
                    Ok(replay) => replay,
                    Err(e) => {
                        outln!("  {:<16}          {e}", "");
                        ReplayState::default()
                    }
                };
                if running && !replay.partitions.is_empty() {
                    let partitions = &replay.partitions;
                    let lag: Option<u64> = partitions.values().map(|p| p.lag).sum();
                    let rate: f64 = partitions.values().map(|p| p.rate).sum();
                    let at = partitions.values().map(|p| p.at_ms).max().unwrap_or(0);
                    let stale = !alive || now.saturating_sub(at) > STALE_AFTER_MS;
                    outln!(
                        "  {:<16}          lag {}, {}/s (as of {} ago{})",
                        "",
                        lag.map_or("unknown (the source could not be asked)".to_string(), |l| {
                            format!("{} messages", crate::report::thousands(l))
                        }),
                        crate::report::thousands(rate as u64),
                        ago(at),
                        if stale { "; stale" } else { "" }
                    );
                    for (p, ps) in partitions {
                        outln!(
                            "  {:<16}          partition {p:>3}: at {} of {}, lag {}, {}/s",
                            "",
                            ps.acked,
                            ps.high.map_or("unknown".to_string(), |h| h.to_string()),
                            ps.lag
                                .map_or("unknown".to_string(), crate::report::thousands),
                            crate::report::thousands(ps.rate as u64)
                        );
                    }
                } else if let (Some(cp), true) = (&replay.checkpoint, running) {
                    let positions: Vec<String> =
                        cp.next.iter().map(|(p, o)| format!("p{p}@{o}")).collect();
                    outln!("  {:<16}          at {}", "", positions.join(" "));
                }
            }
        }
    }
    for (store, t0) in &state.restore_points {
        outln!("  restore point of `{store}`: {t0}");
    }
    if let Some(to) = &state.cutover_to {
        outln!("  reads switched to `{to}`");
    }
    if w.router.is_some() {
        match crate::router::RoutingFile::new(&w.state_dir).read() {
            Ok(routing) => outln!("  routing: {}", routing.describe()),
            Err(e) => outln!("  routing: {e}"),
        }
    }
    out
}
