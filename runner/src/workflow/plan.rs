//! `runner plan`: the ordered steps and what each will do, touching nothing.

use super::Workflow;
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
fn describe(w: &Workflow) -> Vec<(String, &'static str, String)> {
    w.steps
        .iter()
        .map(|s| {
            (
                s.id.get_ref().clone(),
                s.kind(),
                s.config.describe(&w.setup),
            )
        })
        .collect()
}

/// Where each plugin comes from, for the plan's header.
fn plugin_lines(w: &Workflow) -> Vec<String> {
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
