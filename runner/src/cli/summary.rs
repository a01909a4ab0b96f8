//! The summary printed when a run ends.

use std::fmt::Write;

use crate::engine::RunReport;

/// The report as a small table, one step a line.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "workflow `{}` completed in {}",
        report.workflow,
        crate::report::duration(report.elapsed)
    );
    let id_width = report.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for s in &report.steps {
        let when = if s.ran {
            crate::report::duration(s.elapsed)
        } else {
            "earlier".to_string()
        };
        let _ = writeln!(
            out,
            "  {:<id_width$}  {:<8} {:>8}  {}",
            s.id, s.kind, when, s.summary
        );
    }
    out
}
