//! The HTML report: the same table, plus learning curves as inline SVG.

use std::fmt::Write;

use super::markdown::{disclaimer, fmt_delta, fmt_stat};
use super::{Report, plot};
use crate::error::Result;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the report as a standalone HTML page.
pub fn render(r: &Report) -> Result<String> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:nth-child(-n+2),th:nth-child(-n+2){{text-align:left}}.warn{{background:#fff3cd;border:1px solid #e0c36a;padding:.8em}}.bad{{color:#b00020;font-weight:bold}}.good{{color:#0a7d28}}</style></head><body>",
        esc(&r.title)
    );
    let _ = write!(
        s,
        "<h1>{} — profile <code>{}</code></h1>",
        esc(&r.title),
        esc(&r.profile)
    );
    if let Some(d) = disclaimer(r) {
        let _ = write!(s, "<p class=\"warn\"><strong>{}</strong></p>", esc(&d));
    }
    let _ = write!(
        s,
        "<p>Paper: arXiv:{}, Table {}. Caption: “{}”</p>",
        esc(&r.arxiv),
        esc(&r.table),
        esc(&r.caption)
    );
    for sec in r.grid() {
        if let Some(g) = &sec.title {
            let _ = write!(s, "<h2>{}</h2>", esc(g));
        }
        s.push_str("<table><tr>");
        for l in &sec.labels {
            let _ = write!(s, "<th>{}</th>", esc(l));
        }
        for c in &sec.columns {
            let _ = write!(
                s,
                "<th>{} paper</th><th>baseline</th><th>this run</th><th>Δ</th><th></th>",
                esc(c)
            );
        }
        s.push_str("</tr>");
        for row in &sec.rows {
            s.push_str("<tr>");
            for l in &row.labels {
                let _ = write!(s, "<td>{}</td>", esc(l));
            }
            for c in &row.cells {
                let d = c.diff.as_ref();
                let (sym, class) = match d.map(|d| d.status) {
                    Some(crate::results::Status::Regression) => ("✗", "bad"),
                    Some(crate::results::Status::Diverged) => ("⚠", "bad"),
                    Some(crate::results::Status::Better) => ("▲", "good"),
                    Some(st) => (st.symbol(), ""),
                    None => ("–", ""),
                };
                let title = d.map(|d| esc(&d.reason)).unwrap_or_default();
                let _ = write!(
                    s,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\" title=\"{title}\">{sym}</td>",
                    esc(c.paper.as_deref().unwrap_or("–")),
                    fmt_stat(d.and_then(|d| d.baseline.as_ref())),
                    fmt_stat(d.and_then(|d| d.current.as_ref())),
                    fmt_delta(d)
                );
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
    let _ = write!(s, "<h2>Learning curves (mean over seeds)</h2>");
    let err = plot::curves(r, |e| e.test.map(|t| t.error_pct));
    let loss = plot::curves(r, |e| Some(e.train_loss));
    s.push_str(&plot::line_chart(
        "Test error (%)",
        "epoch",
        "test error %",
        &err,
    )?);
    s.push_str(&plot::line_chart("Training loss", "epoch", "loss", &loss)?);
    let md = super::markdown::render(r);
    let prov = md
        .split("## Notes")
        .nth(1)
        .map(|x| format!("## Notes{x}"))
        .or_else(|| {
            md.split("## Provenance")
                .nth(1)
                .map(|x| format!("## Provenance{x}"))
        })
        .unwrap_or_default();
    let _ = write!(s, "<pre>{}</pre></body></html>", esc(&prov));
    Ok(s)
}
