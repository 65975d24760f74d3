//! The `compare` report: per row, the new method beside each baseline method with Δ, the Welch
//! p-value and a verdict; Markdown, HTML with one chart per metric, and CSV.

use std::fmt::Write;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::results::aggregate::Stat;
use crate::results::comparison::{ComparedRow, Comparison};

fn fmt_stat(s: Option<&Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3} (n={})", s.mean, s.std, s.n),
        Some(s) => format!("{:.3} (n={})", s.mean, s.n),
        None => "–".into(),
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:+.digits$}"))
}

fn row_title(r: &ComparedRow) -> String {
    match &r.group {
        Some(g) => format!("{g} — {}", r.architecture),
        None => r.architecture.clone(),
    }
}

/// The comparison as Markdown.
pub(crate) fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} vs. the baselines of {} — profile `{}`\n",
        c.method, c.suite, c.profile
    );
    let _ = writeln!(s, "> Profile `{}`: {}\n", c.profile, c.profile_description);
    let _ = writeln!(
        s,
        "New method: `{}`. Baseline: `{}` (blessed {}). Verdicts: two-sided Welch test at significance {}: better or worse when p < significance, by the side the mean moved; with one seed on a side there is no variance estimate, so no verdict. New results: `<results>/{}/{}/`.\n",
        crate::suite::resolve::canonical_json(&c.spec),
        c.baseline,
        c.baseline_blessed_at,
        c.significance,
        c.derived_suite,
        c.profile
    );
    for r in &c.rows {
        let _ = writeln!(s, "## {}\n", row_title(r));
        s.push_str("| metric | method | mean ± std | Δ (new − method) | Welch p | verdict |\n|---|---|---|---|---|---|\n");
        for m in &c.metrics {
            let label = m.label.clone().unwrap_or_else(|| m.name.clone());
            let _ = writeln!(
                s,
                "| {label} | **{}** (new) | {} | | | |",
                c.method,
                fmt_stat(r.new.get(&m.name))
            );
            for a in &r.against {
                if let Some(mc) = a.metrics.iter().find(|x| x.metric == m.name) {
                    let _ = writeln!(
                        s,
                        "| | {} | {} | {} | {} | {} |",
                        a.method,
                        fmt_stat(mc.baseline.as_ref()),
                        fmt_opt(mc.delta, 3),
                        mc.p_value.map_or("–".into(), |p| format!("{p:.4}")),
                        mc.verdict.text()
                    );
                }
            }
        }
        if !r.diverged.is_empty() {
            let _ = writeln!(
                s,
                "\n⚠ the new method diverged (NaN/Inf) on seed(s) {:?}; they are not averaged.",
                r.diverged
            );
        }
        s.push('\n');
    }
    s
}

/// One chart per metric: each row's methods as dots with ±1 std bars, the new method last.
pub(crate) fn chart(c: &Comparison, metric: &str, label: &str) -> Result<String> {
    // (x, mean, std, is_new)
    let mut dots: Vec<(f64, f64, f64, bool)> = Vec::new();
    let mut ticks: Vec<String> = Vec::new();
    for (i, r) in c.rows.iter().enumerate() {
        ticks.push(r.experiment.clone());
        let mut stats: Vec<(Option<&Stat>, bool)> = r
            .against
            .iter()
            .map(|a| {
                (
                    a.metrics
                        .iter()
                        .find(|m| m.metric == metric)
                        .and_then(|m| m.baseline.as_ref()),
                    false,
                )
            })
            .collect();
        stats.push((r.new.get(metric), true));
        let k = stats.len() as f64;
        for (j, (st, new)) in stats.into_iter().enumerate() {
            if let Some(st) = st {
                let x = i as f64 + (j as f64 + 0.5) / k * 0.8 - 0.4;
                dots.push((x, st.mean, st.std, new));
            }
        }
    }
    let title = format!(
        "{label}: the suite's methods in table order (grey) and {} (red), ±1 std",
        c.method
    );
    let mut svg = String::new();
    {
        let width = (160 * c.rows.len().max(2) as u32).min(1100) + 100;
        let root = SVGBackend::with_string(&mut svg, (width, 340)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let lo = dots.iter().map(|d| d.1 - d.2).fold(f64::INFINITY, f64::min);
        let hi = dots
            .iter()
            .map(|d| d.1 + d.2)
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = (hi - lo) * 0.08 + 1e-6;
        let n = c.rows.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(n - 0.5), (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(c.rows.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    ticks.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(label)
            .draw()
            .map_err(|e| err(&e))?;
        let grey = RGBColor(90, 90, 90);
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(dots.iter().filter(|d| d.2 > 0.0).map(|&(x, m, sd, new)| {
                PathElement::new(
                    vec![(x, m - sd), (x, m + sd)],
                    if new { red } else { grey }.stroke_width(2),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(dots.iter().map(|&(x, m, _, new)| {
                Circle::new((x, m), 4, if new { red } else { grey }.filled())
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// The comparison as a standalone HTML page with one chart per metric.
pub(crate) fn html(c: &Comparison) -> Result<String> {
    let md = markdown(c);
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{} vs {}</title><style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head><body>",
        c.method, c.suite
    );
    s.push_str(&super::html::markdown_to_html(&md));
    for m in &c.metrics {
        let label = m.label.clone().unwrap_or_else(|| m.name.clone());
        s.push_str(&chart(c, &m.name, &label)?);
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

/// One CSV line per (row, metric, method), the new method's line with empty Δ/p/verdict.
pub(crate) fn csv(c: &Comparison) -> String {
    let mut s = String::from("row,metric,method,is_new,mean,std,n,delta,p_value,verdict\n");
    let q = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
    for r in &c.rows {
        for m in &c.metrics {
            let st = r.new.get(&m.name);
            let _ = writeln!(
                s,
                "{},{},{},true,{},{},{},,,",
                q(&r.experiment),
                q(&m.name),
                q(&c.method),
                st.map_or(String::new(), |x| x.mean.to_string()),
                st.map_or(String::new(), |x| x.std.to_string()),
                st.map_or(String::new(), |x| x.n.to_string()),
            );
            for a in &r.against {
                if let Some(mc) = a.metrics.iter().find(|x| x.metric == m.name) {
                    let b = mc.baseline.as_ref();
                    let _ = writeln!(
                        s,
                        "{},{},{},false,{},{},{},{},{},{}",
                        q(&r.experiment),
                        q(&m.name),
                        q(&a.method),
                        b.map_or(String::new(), |x| x.mean.to_string()),
                        b.map_or(String::new(), |x| x.std.to_string()),
                        b.map_or(String::new(), |x| x.n.to_string()),
                        mc.delta.map_or(String::new(), |x| x.to_string()),
                        mc.p_value.map_or(String::new(), |x| x.to_string()),
                        q(mc.verdict.text())
                    );
                }
            }
        }
    }
    s
}

/// The comparison as pretty JSON (for scripts).
pub(crate) fn json(c: &Comparison) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(c).map_err(|e| Error::Other(e.to_string()))
}
