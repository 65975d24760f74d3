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
    figures(&mut s, r);
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

/// Each declared figure's numbers (the HTML report draws the pictures).
fn figures(s: &mut String, r: &SuiteOutcome) {
    use super::figure::{decision_panels, embedding_panels, loss_curves, order_check};
    use crate::suite::schema::FigureKind;
    for f in &r.figures {
        let _ = writeln!(s, "## {}\n", f.title);
        match f.kind {
            FigureKind::TrainLoss => {
                let curves = loss_curves(r, f);
                if curves.is_empty() {
                    let _ = writeln!(s, "No training log among this run's records.\n");
                    continue;
                }
                let _ = writeln!(
                    s,
                    "| curve | seeds | epochs | training loss, first epoch | last epoch (mean ± std) |\n|---|---|---|---|---|"
                );
                for c in &curves {
                    let (first, (m, sd)) = (c.points[0].1, c.last().unwrap_or_default());
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {first:.4} | {m:.4} ± {sd:.4} |",
                        c.label,
                        c.seeds,
                        c.points.len()
                    );
                }
                if let Some(o) = order_check(&curves, f) {
                    let (text, verdict) = o.sentence();
                    let _ = writeln!(s, "\n{text}: **{verdict}**.");
                }
                s.push('\n');
            }
            FigureKind::Decision => {
                let panels = decision_panels(r, f);
                let _ = writeln!(
                    s,
                    "Pictures in the HTML report (one pair of panels per row, its lowest seed).\n\n| panel | seed | grid points | test points | mean confidence on the grid | bottleneck |\n|---|---|---|---|---|---|"
                );
                for p in &panels {
                    let conf =
                        p.cells.iter().map(|c| c.1).sum::<f64>() / p.cells.len().max(1) as f64;
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {:.2}% | {} |",
                        p.label,
                        p.seed,
                        p.cells.len(),
                        p.test.len(),
                        100.0 * conf,
                        if p.bottleneck.is_some() {
                            "drawn"
                        } else {
                            "–"
                        }
                    );
                }
                s.push('\n');
            }
            FigureKind::Embedding => {
                let panels = embedding_panels(r, f);
                if panels.is_empty() {
                    let _ = writeln!(
                        s,
                        "No `{}` embedding among this run's records.\n",
                        f.evaluation.as_deref().unwrap_or_default()
                    );
                    continue;
                }
                let _ = writeln!(
                    s,
                    "Scatter plots in the HTML report (one panel per row, its lowest seed).\n\n| panel | seed | test points | classes |\n|---|---|---|---|"
                );
                for p in &panels {
                    let mut classes: Vec<u32> = p.points.iter().map(|q| q.2).collect();
                    classes.sort_unstable();
                    classes.dedup();
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} |",
                        p.label,
                        p.seed,
                        p.points.len(),
                        classes.len()
                    );
                }
                s.push('\n');
            }
        }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::aggregate::ExperimentSummary;
    use crate::results::outcome::OutcomeRow;
    use crate::results::record::{CodeVersion, ResultRecord, RunEnvironment};
    use crate::results::{aggregate, compare};
    use crate::suite::schema::{Better, Layout, MetricSpec, Which};

    const M: &str = "clean.test_error";

    fn rec(exp: &str, seed: u64, value: f64) -> ResultRecord {
        ResultRecord {
            record_version: 2,
            suite: "s".into(),
            experiment: exp.into(),
            profile: "smoke".into(),
            seed,
            training_hash: "h".into(),
            config: serde_json::from_value(serde_json::json!({
                "dataset": {"name": "synthetic"}, "model": {"arch": "mlp"},
                "regularizer": {"name": "none"}, "optimizer": {"lr": 0.1},
                "epochs": 1, "batch_size": 2
            }))
            .unwrap(),
            dataset: crate::data::DatasetProvenance {
                name: "synthetic".into(),
                fingerprint: "fp".into(),
                files: vec![],
                notes: vec![],
            },
            code: CodeVersion::current(),
            environment: RunEnvironment {
                device: "cpu".into(),
                threads: 1,
                started_at: String::new(),
                finished_at: String::new(),
                wall_seconds: 0.0,
            },
            trainable_params: 0,
            metrics: [(M.to_string(), value)].into(),
            best_metrics: [(M.to_string(), value)].into(),
            best_epoch_index: Some(0),
            metric_sources: [(M.to_string(), "e".to_string())].into(),
            arrays: Default::default(),
            evaluations: vec![],
            diverged: None,
            curves: vec![],
            resumed_from: None,
        }
    }

    fn metrics() -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: M.into(),
            label: None,
            unit: "%".into(),
            better: Better::Lower,
            tolerance: 0.5,
            from: Which::Final,
        }]
    }

    /// A baseline summary written by hand (mean and sample std computed by hand).
    fn base(exp: &str, hash: &str, mean: f64, std: f64, values: &[f64]) -> ExperimentSummary {
        ExperimentSummary {
            experiment: exp.into(),
            training_hash: hash.into(),
            dataset_fingerprint: "fp".into(),
            seeds: (0..values.len() as u64).collect(),
            metrics: [(
                M.to_string(),
                Stat {
                    mean,
                    std,
                    n: values.len(),
                    values: values.to_vec(),
                },
            )]
            .into(),
            metric_sources: [(M.to_string(), "e".to_string())].into(),
            diverged: vec![],
        }
    }

    /// Aggregates `records`, compares each experiment with `baselines` the way a run does, and
    /// wraps the rows in an outcome.
    fn outcome(records: &[ResultRecord], baselines: &[ExperimentSummary]) -> SuiteOutcome {
        let metrics = metrics();
        let summaries = aggregate(records, &metrics).unwrap();
        let rows = summaries
            .iter()
            .map(|s| OutcomeRow {
                experiment: s.experiment.clone(),
                group: None,
                architecture: "MLP".into(),
                method: s.experiment.clone(),
                quoted: None,
                row: None,
                column: None,
                paper: BTreeMap::new(),
                diffs: compare(
                    s,
                    baselines.iter().find(|b| b.experiment == s.experiment),
                    &metrics,
                    0.05,
                ),
                training_hash: Some(s.training_hash.clone()),
            })
            .collect();
        SuiteOutcome {
            suite: "s".into(),
            title: "T".into(),
            arxiv: String::new(),
            table: String::new(),
            caption: String::new(),
            profile: "smoke".into(),
            profile_description: String::new(),
            metrics,
            layout: Layout::ExperimentsAsRows,
            grid_rows: None,
            figures: vec![],
            summaries,
            rows,
            notes: vec![],
            code: vec![],
            devices: vec!["cpu".into()],
            wall_seconds: 0.0,
            datasets: BTreeMap::new(),
            baseline: None,
            baseline_device: None,
            history: vec![],
            curves: vec![],
            arrays: vec![],
        }
    }

    fn line<'a>(md: &'a str, exp: &str) -> &'a str {
        let prefix = format!("| MLP | {exp} |");
        md.lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row for {exp}:\n{md}"))
    }

    #[test]
    fn the_table_prints_mean_sample_std_delta_status_and_verdict() {
        let mut records = Vec::new();
        // a: 1, 2, 4: mean 7/3 = 2.333, sample std sqrt(((4/3)² + (1/3)² + (5/3)²) / 2)
        // = sqrt(7/3) = 1.528 (the population std would be 1.247).
        // b: 10, 11, 12: mean 11, sample std 1.
        // c: as a, and its baseline is its own summary: bit-identical.
        // d: 5, 5, 5 against a baseline of another training config.
        // e: one seed, no baseline.
        for (exp, values) in [
            ("a", &[1.0, 2.0, 4.0][..]),
            ("b", &[10.0, 11.0, 12.0]),
            ("c", &[1.0, 2.0, 4.0]),
            ("d", &[5.0, 5.0, 5.0]),
            ("e", &[3.0]),
        ] {
            for (seed, v) in values.iter().enumerate() {
                records.push(rec(exp, seed as u64, *v));
            }
        }
        let c_summary = aggregate(&records, &metrics())
            .unwrap()
            .into_iter()
            .find(|s| s.experiment == "c")
            .unwrap();
        let baselines = vec![
            // 1, 2, 3: mean 2, sample std 1.
            base("a", "h", 2.0, 1.0, &[1.0, 2.0, 3.0]),
            base("b", "h", 2.0, 1.0, &[1.0, 2.0, 3.0]),
            c_summary,
            base("d", "h-old", 5.0, 0.0, &[5.0, 5.0, 5.0]),
        ];
        let md = render(&outcome(&records, &baselines));
        // Δ = this run − baseline; a is worse by 1/3 < tolerance 0.5: ✓.
        assert_eq!(
            line(&md, "a"),
            "| MLP | a | – | 2.333 ± 1.528 (n=3) | – | 2.000 ± 1.000 (n=3) | +0.333 | ✓ |"
        );
        // b is worse by 9 > 0.5 and significant: Welch t = 9 / sqrt(1/3 + 1/3), df = 4,
        // one-sided p = 1.925e-4 (scipy.stats.ttest_ind(equal_var=False, alternative='greater')).
        assert_eq!(
            line(&md, "b"),
            "| MLP | b | – | 11.000 ± 1.000 (n=3) | – | 2.000 ± 1.000 (n=3) | +9.000 | ✗ |"
        );
        assert_eq!(
            line(&md, "c"),
            "| MLP | c | – | 2.333 ± 1.528 (n=3) | – | 2.333 ± 1.528 (n=3) | +0.000 | = |"
        );
        assert_eq!(
            line(&md, "d"),
            "| MLP | d | – | 5.000 ± 0.000 (n=3) | – | 5.000 ± 0.000 (n=3) | – | ≠ |"
        );
        assert_eq!(
            line(&md, "e"),
            "| MLP | e | – | 3.000 (n=1) | – | – | – | – |"
        );
        let verdict = md
            .split("## Verdict\n\n")
            .nth(1)
            .and_then(|v| v.split("\n\n").next())
            .unwrap();
        assert_eq!(
            verdict,
            "- `b` clean.test_error: ✗ — worse by 9.0000 > tolerance 0.5, Welch p = 1.925e-4\n\
             - `d` clean.test_error: ≠ — training config differs (baseline h-old vs h)"
        );

        // Without b and d: nothing failed; a and c compared (c bit-identical), e has no baseline.
        let fine: Vec<ResultRecord> = records
            .into_iter()
            .filter(|r| ["a", "c", "e"].contains(&r.experiment.as_str()))
            .collect();
        let md = render(&outcome(&fine, &baselines));
        assert!(
            md.contains("## Verdict\n\nNo regression and nothing incomparable: 2 value(s) compared with the baseline, 1 of them bit-identical; 1 without a baseline.\n"),
            "{md}"
        );
    }
}
