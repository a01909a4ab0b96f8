//! `runner plan`: the ordered steps and what each will do, touching nothing.

use std::fmt::Write;

use super::Workflow;
use super::steps::{StepKind, Until};
use crate::document::values::Point;
use crate::plugin::PluginSource;

/// The text of `runner plan`.
pub fn text(w: &Workflow) -> String {
    let mut out = format!("workflow `{}`", w.name);
    if let Some(d) = &w.description {
        out.push_str(&format!(": {d}"));
    }
    out.push('\n');
    out.push_str(&format!("state: {}\n", w.state_dir.display()));
    for line in plugin_lines(w) {
        out.push_str(&format!("{line}\n"));
    }
    for (i, (id, kind, text)) in describe(w).into_iter().enumerate() {
        out.push_str(&format!("{:>2}. {id} ({kind}): {text}\n", i + 1));
    }
    out
}

/// One line per step, in order, saying what it will do.
pub fn describe(w: &Workflow) -> Vec<(String, &'static str, String)> {
    w.steps
        .iter()
        .map(|s| (s.id.get_ref().clone(), s.kind.name(), step_text(w, &s.kind)))
        .collect()
}

fn step_text(w: &Workflow, kind: &StepKind) -> String {
    match kind {
        StepKind::Shell(s) => match (&s.command, &s.run) {
            (Some(args), _) => format!(
                "run `{}` (no shell)",
                super::steps::CommandLine::Args(args.clone()).shown()
            ),
            (None, Some(line)) => format!("run `{line}` with sh -c"),
            (None, None) => String::new(),
        },
        StepKind::Restore(r) => {
            let point = r.as_of.clone().unwrap_or(Point::Latest);
            match (&r.from, &r.command) {
                (Some(from), _) => format!(
                    "copy {} into {} as of {point}, and record it as the restore point",
                    store_text(w, from.get_ref()),
                    store_text(w, r.into.get_ref())
                ),
                (_, Some(cmd)) => format!(
                    "run `{}` to restore {} as of {point}",
                    cmd.shown(),
                    store_text(w, r.into.get_ref())
                ),
                _ => String::new(),
            }
        }
        StepKind::Replay(r) => format!(
            "replay {} from {} through plugin `{}` into {}, until {}, {} events a batch, refused events: {}",
            source_text(w, r.source.get_ref()),
            if r.start_offsets.is_empty() {
                r.start.clone().unwrap_or(Point::Earliest).to_string()
            } else {
                format!("offsets {:?}", r.start_offsets)
            },
            r.transform.get_ref(),
            store_text(w, r.into.get_ref()),
            match r.until() {
                Until::End => "the end of the log as it is when the step starts".to_string(),
                gated => {
                    let gate = r.caught_up.clone().unwrap_or_default();
                    format!(
                        "caught up (lag ≤ {} for {}){}",
                        gate.max_lag
                            .unwrap_or(crate::steps::replay::DEFAULT_MAX_LAG),
                        humantime::format_duration(
                            gate.hold
                                .map_or(crate::steps::replay::DEFAULT_HOLD, |h| h.0)
                        ),
                        if gated == Until::Cutover {
                            ", then keep syncing in the background until cutover"
                        } else {
                            ""
                        }
                    )
                }
            },
            r.batch_size.unwrap_or(super::steps::DEFAULT_BATCH_SIZE),
            match (&r.on_error, &r.dead_letter, &r.dead_letter_topic) {
                (super::steps::OnError::DeadLetter, Some(d), _) =>
                    format!("dead-letter to `{}`", d.get_ref()),
                (super::steps::OnError::DeadLetter, None, Some(t)) =>
                    format!("dead-letter to topic `{}`", t.get_ref()),
                _ => "fail the step".into(),
            }
        ),
        StepKind::Compare(c) => {
            let mut t = format!(
                "compare tables {} of {} (blue) and {} (green) as of {}",
                c.tables.join(", "),
                store_text(w, c.blue.get_ref()),
                store_text(w, c.green.get_ref()),
                c.as_of
                    .clone()
                    .unwrap_or(Point::Watermark(Default::default()))
            );
            if let Some(check) = &c.check {
                let _ = write!(t, " with plugin `{}`", check.get_ref());
            }
            let _ = write!(
                t,
                "; fail if more than {} keys differ",
                c.max_mismatches.unwrap_or(0)
            );
            if let Some(r) = c.max_mismatch_ratio {
                let _ = write!(t, " or more than {:.3}% of keys", r * 100.0);
            }
            t
        }
        StepKind::Stop(s) if s.replays.is_empty() => "stop every background replay".into(),
        StepKind::Stop(s) => format!(
            "stop the background replays {}",
            s.replays
                .iter()
                .map(|r| format!("`{}`", r.get_ref()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        StepKind::Cutover(c) => match &c.from {
            Some(from) => format!("switch from `{}` to `{}`", from.get_ref(), c.to.get_ref()),
            None => format!("switch to `{}`", c.to.get_ref()),
        },
    }
}

fn store_text(w: &Workflow, name: &str) -> String {
    let Some(store) = w.store(name) else {
        return format!("`{name}`");
    };
    let fed_by = store.fed_by().map_or(String::new(), |f| {
        format!(
            ", written by consumer group `{}` of `{}`",
            f.group,
            f.source.get_ref()
        )
    });
    format!("`{name}` ({}{fed_by})", store.describe(&w.home()))
}

fn source_text(w: &Workflow, name: &str) -> String {
    match w.source(name) {
        Some(source) => format!("`{name}` ({})", source.describe(&w.home(), name)),
        None => format!("`{name}`"),
    }
}

/// Where each plugin comes from, for the plan's header.
pub fn plugin_lines(w: &Workflow) -> Vec<String> {
    w.plugins
        .iter()
        .map(|p| {
            let from = match &p.source {
                PluginSource::Crate(d) => format!("crate {}", d.display()),
                PluginSource::Wasm(f) => format!("component {}", f.display()),
            };
            format!(
                "plugin `{}`: {from}, memory {}, timeout {}{}",
                p.name,
                crate::plugin::limits::show_size(p.limits.memory_bytes),
                humantime::format_duration(p.limits.timeout),
                p.sha256
                    .as_ref()
                    .map_or(String::new(), |s| format!(", pinned sha256 {s}"))
            )
        })
        .collect()
}
