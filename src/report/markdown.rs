//! The Markdown report.

use std::fmt::Write;

use crate::results::outcome::SuiteOutcome;
use crate::results::{MetricDiff, Stat, Status};

/// The sentence that keeps cheap profiles from being mistaken for the paper's numbers.
pub(crate) fn disclaimer(r: &SuiteOutcome) -> Option<String> {
    match r.profile.as_str() {
        "paper" => None,
        "paper-code" => Some(format!(
            "These numbers follow the reference code's settings, which differ from the paper's text (see notes); profile `{}`: {}",
            r.profile, r.profile_description
        )),
        _ => Some(format!(
            "These numbers are not a reproduction of the paper's. Profile `{}` — {} — checks the pipeline and catches regressions against its own baseline; only the `paper` profile runs the paper's settings.",
            r.profile, r.profile_description
        )),
    }
}

/// `mean ± std (n=k)`.
pub(crate) fn fmt_stat(s: Option<&Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3} (n={})", s.mean, s.std, s.n),
        Some(s) => format!("{:.3} (n=1)", s.mean),
        None => "–".into(),
    }
}

/// The Δ cell.
pub(crate) fn fmt_delta(d: Option<&MetricDiff>) -> String {
    d.and_then(|d| d.delta)
        .map(|x| format!("{x:+.3}"))
        .unwrap_or_else(|| "–".into())
}

/// The texts of a cell's columns: paper, this run, Δ paper, baseline, Δ baseline.
pub(crate) fn cell_texts(c: &super::table::GridCell) -> [String; 5] {
    let d = c.diff.as_ref();
    [
        c.paper.clone().unwrap_or_else(|| "–".into()),
        fmt_stat(d.and_then(|d| d.current.as_ref())),
        c.delta_paper
            .map(|x| format!("{x:+.3}"))
            .unwrap_or_else(|| "–".into()),
        fmt_stat(d.and_then(|d| d.baseline.as_ref())),
        fmt_delta(d),
    ]
}

/// Renders the report.
pub(crate) fn render(r: &SuiteOutcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {} — profile `{}`\n", r.title, r.profile);
    if let Some(d) = disclaimer(r) {
        let _ = writeln!(s, "> **{d}**\n");
    }
    let _ = writeln!(
        s,
        "Paper: arXiv:{}, Table {}. Caption: “{}”\n",
        r.arxiv, r.table, r.caption
    );
    let _ = writeln!(
        s,
        "Legend: = bit-identical to the baseline · ✓ within tolerance of the baseline · ✗ regression · ▲ better than the baseline · ≠ not comparable (training config, evaluation or data differ) · ⚠ a seed diverged (NaN/Inf; never averaged) · – no baseline / not run.\n"
    );
    tables(&mut s, r);
    verdict(&mut s, r);
    if !r.notes.is_empty() {
        let _ = writeln!(s, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
        s.push('\n');
    }
    provenance(&mut s, r);
    s
}

/// The table's sections: paper, this run, Δ paper, baseline, Δ and status per column.
fn tables(s: &mut String, r: &SuiteOutcome) {
    for sec in super::table::grid(r) {
        if let Some(g) = &sec.title {
            let _ = writeln!(s, "## {g}\n");
        }
        let mut header = format!("| {} |", sec.labels.join(" | "));
        let mut rule = "|---".repeat(sec.labels.len()) + "|";
        for c in &sec.columns {
            let _ = write!(header, " {c} paper | this run | Δ paper | baseline | Δ | |");
            rule.push_str("---|---|---|---|---|---|");
        }
        let _ = writeln!(s, "{header}\n{rule}");
        for row in &sec.rows {
            let _ = write!(s, "| {} |", row.labels.join(" | "));
            for c in &row.cells {
                let status = c.diff.as_ref().map(|d| d.status.symbol()).unwrap_or("–");
                let _ = write!(s, " {} | {status} |", cell_texts(c).join(" | "));
            }
            s.push('\n');
        }
        s.push('\n');
    }
}

/// The values that failed (regressed, ≠, diverged), or what was compared when none did.
fn verdict(s: &mut String, r: &SuiteOutcome) {
    let regressions: Vec<String> = r
        .rows
        .iter()
        .flat_map(|row| row.diffs.iter().map(move |d| (row, d)))
        .filter(|(_, d)| {
            matches!(
                d.status,
                Status::Regression | Status::NotComparable | Status::Diverged
            )
        })
        .map(|(row, d)| {
            format!(
                "- `{}` {}: {} — {}",
                row.experiment,
                d.metric,
                d.status.symbol(),
                d.reason
            )
        })
        .collect();
    let _ = writeln!(s, "## Verdict\n");
    let diffs = r.rows.iter().flat_map(|row| row.diffs.iter());
    let compared = diffs
        .clone()
        .filter(|d| !matches!(d.status, Status::NoBaseline))
        .count();
    let identical = diffs
        .clone()
        .filter(|d| d.status == Status::Identical)
        .count();
    let unbased = diffs.filter(|d| d.status == Status::NoBaseline).count();
    if regressions.is_empty() && compared == 0 {
        let _ = writeln!(
            s,
            "Nothing was compared: no value of this run has a baseline ({unbased} without one). Bless one with `mixbench reproduce {} --profile {} --bless`.\n",
            r.suite, r.profile
        );
    } else if regressions.is_empty() {
        let _ = writeln!(
            s,
            "No regression and nothing incomparable: {compared} value(s) compared with the baseline, {identical} of them bit-identical; {unbased} without a baseline.\n"
        );
    } else {
        let _ = writeln!(s, "{}\n", regressions.join("\n"));
    }
}

/// Code, devices, datasets, baseline and each experiment's training hash.
fn provenance(s: &mut String, r: &SuiteOutcome) {
    let _ = writeln!(s, "## Provenance\n");
    for c in &r.code {
        let _ = writeln!(
            s,
            "- code: mixbench {} at git {} (dirty: {}), candle {}, numerics version {}",
            c.crate_version, c.git_commit, c.git_dirty, c.candle_version, c.numerics_version
        );
    }
    let _ = writeln!(s, "- device: {}", r.devices.join(", "));
    if r.devices
        .iter()
        .any(|d| !crate::experiment::device::is_bit_exact(d))
    {
        let _ = writeln!(
            s,
            "- ⚠ GPU results: not bit-exact (GPU kernels may sum in another order from run to run); compared within the tolerances"
        );
    }
    if let Some(bd) = &r.baseline_device
        && !bd.is_empty()
        && r.devices.iter().any(|d| d != bd)
    {
        let _ = writeln!(
            s,
            "- ⚠ the baseline was blessed on `{bd}`, this run is on `{}`: compared within the tolerances, not bit for bit",
            r.devices.join(", ")
        );
    }
    let _ = writeln!(s, "- wall time (sum over cells): {:.1} s", r.wall_seconds);
    for (name, fps) in &r.datasets {
        let _ = writeln!(s, "- dataset `{name}`: fingerprint {}", fps.join(", "));
    }
    if let Some((at, code)) = &r.baseline {
        let _ = writeln!(
            s,
            "- baseline: blessed {at} at git {} (candle {}, numerics version {})",
            code.git_commit, code.candle_version, code.numerics_version
        );
    } else {
        let _ = writeln!(
            s,
            "- baseline: none (bless one with `mixbench reproduce {} --profile {} --bless`)",
            r.suite, r.profile
        );
    }
    let _ = writeln!(s, "\n| experiment | training_hash |\n|---|---|");
    for row in r.rows.iter().filter(|x| x.training_hash.is_some()) {
        let _ = writeln!(
            s,
            "| {} | `{}` |",
            row.experiment,
            row.training_hash.as_deref().unwrap_or("")
        );
    }
}
