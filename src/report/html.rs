//! The HTML report: the same table, plus learning curves as inline SVG.

use std::fmt::Write;

use super::markdown::{cell_texts, disclaimer};
use super::plot;
use crate::error::Result;
use crate::results::outcome::SuiteOutcome;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the report as a standalone HTML page.
pub(crate) fn render(r: &SuiteOutcome) -> Result<String> {
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
    tables(&mut s, r);
    figures(&mut s, r)?;
    charts(&mut s, r)?;
    let md = super::markdown::render(r);
    let tail = md.find("## Verdict").map(|i| &md[i..]).unwrap_or_default();
    s.push_str(&markdown_to_html(tail));
    s.push_str("</body></html>");
    Ok(s)
}

/// The table's sections, each cell's status coloured with its reason as a tooltip.
fn tables(s: &mut String, r: &SuiteOutcome) {
    for sec in super::table::grid(r) {
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
                "<th>{} paper</th><th>this run</th><th>Δ paper</th><th>baseline</th><th>Δ</th><th></th>",
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
                for t in cell_texts(c) {
                    let _ = write!(s, "<td>{}</td>", esc(&t));
                }
                let _ = write!(s, "<td class=\"{class}\" title=\"{title}\">{sym}</td>");
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
}

/// Paper-vs-run dots, spectra, trends and learning curves as inline SVG.
/// Each declared figure as the paper lays it out: panels side by side on shared axes.
fn figures(s: &mut String, r: &SuiteOutcome) -> Result<()> {
    use super::figure::{decision_panels, embedding_panels, loss_curves, order_check};
    use crate::suite::schema::FigureKind;
    for f in &r.figures {
        let _ = write!(
            s,
            "<h2>{}</h2><div style=\"display:flex;flex-wrap:wrap\">",
            esc(&f.title)
        );
        match f.kind {
            FigureKind::TrainLoss => {
                let curves = loss_curves(r, f);
                let series: Vec<plot::Series> = curves
                    .iter()
                    .enumerate()
                    .map(|(i, c)| plot::Series {
                        name: c.label.clone(),
                        points: c.points.clone(),
                        color: plot::palette(i),
                    })
                    .collect();
                let range = plot::series_range(&series);
                let charts = series.chunks(plot::MAX_CURVES);
                let n = charts.len();
                for (i, chunk) in charts.enumerate() {
                    let title = match n {
                        1 => "training loss".to_string(),
                        _ => format!("training loss ({}/{n})", i + 1),
                    };
                    s.push_str(&plot::line_chart_in(
                        &title,
                        ("epoch", "loss"),
                        chunk,
                        Some(range),
                    )?);
                }
                s.push_str("</div>");
                if let Some(o) = order_check(&curves, f) {
                    let (text, verdict) = o.sentence();
                    let _ = write!(
                        s,
                        "<p>{}: <strong class=\"{}\">{verdict}</strong>. All charts share one y axis.</p>",
                        esc(&text),
                        if o.holds { "good" } else { "bad" },
                    );
                }
            }
            FigureKind::Embedding => {
                for p in embedding_panels(r, f) {
                    s.push_str(&plot::scatter_chart(
                        &format!("{} (seed {})", p.label, p.seed),
                        &p.points,
                    )?);
                }
                s.push_str("</div><p>Test points at the bottleneck, a colour per class; each panel has its own axes.</p>");
            }
            FigureKind::Decision => {
                for p in decision_panels(r, f) {
                    let title = format!("{} (seed {})", p.label, p.seed);
                    s.push_str(&plot::decision_chart(&title, &p.axis, &p.cells, &p.test)?);
                    if let Some((grid, test)) = &p.bottleneck {
                        // Every other grid point each way: the same picture at a quarter of the
                        // file size.
                        let n = p.axis.len();
                        let sparse: Vec<(f64, f64)> = grid
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| (i % n) % 2 == 0 && (i / n) % 2 == 0)
                            .map(|(_, q)| *q)
                            .collect();
                        s.push_str(&plot::bottleneck_chart(
                            &format!("{title}: bottleneck"),
                            &sparse,
                            test,
                        )?);
                    }
                }
                s.push_str("</div><p>Left of each pair: the input plane, each grid point in its predicted class's colour (paler where the model is less sure), test points on top. Right: the 2-D bottleneck, the grid's points as black dots (inputs sampled uniformly over the input range) and the test points in their class colours.</p>");
            }
        }
    }
    Ok(())
}

fn charts(s: &mut String, r: &SuiteOutcome) -> Result<()> {
    let _ = write!(
        s,
        "<h2>Paper vs this run</h2><p>One dot per row (colour: No Mixup grey, Input Mixup blue, Manifold Mixup red); on the diagonal this run equals the printed number.</p>"
    );
    for m in &r.metrics {
        if let Some(svg) = plot::paper_dot_plot(r, &m.name, m.display())? {
            s.push_str(&svg);
        }
    }
    let spectra = plot::spectrum_charts(r);
    if !spectra.is_empty() {
        let _ = write!(
            s,
            "<h2>Singular-value spectra</h2><p>Singular values of the representation, largest first: per class (mean over classes and seeds, band ±1 std over classes and seeds) and over all classes together; one line per method.</p>"
        );
        for (title, series) in spectra {
            s.push_str(&plot::line_chart(
                &title,
                "singular value index",
                "singular value",
                &series,
            )?);
        }
    }
    let trends = plot::trend_charts(r);
    if !trends.is_empty() {
        let runs: Vec<String> = r
            .history
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "{i}: {} {}",
                    &h.commit[..h.commit.len().min(10)],
                    &h.date[..h.date.len().min(16)]
                )
            })
            .collect();
        let _ = write!(
            s,
            "<h2>Trends</h2><p>Each metric over the history's runs (x = run index; {}), with each experiment's baseline mean ± tolerance as a band. A step that stays is reported by <code>mixbench history</code>.</p>",
            esc(&runs.join("; "))
        );
        for (title, series) in trends {
            s.push_str(&plot::line_chart(&title, "run", "value", &series)?);
        }
    }
    let _ = write!(
        s,
        "<h2>Learning curves</h2><p>Mean over seeds, band ±1 std; one chart per table group, at most {} curves each.</p>",
        plot::MAX_CURVES
    );
    for (title, series) in plot::grouped_curves(r, &|e| e.test.map(|t| t.error_pct)) {
        s.push_str(&plot::line_chart(
            &format!("{title}: test error (%)"),
            "epoch",
            "test error %",
            &series,
        )?);
    }
    for (title, series) in plot::grouped_curves(r, &|e| Some(e.train_loss)) {
        s.push_str(&plot::line_chart(
            &format!("{title}: training loss"),
            "epoch",
            "loss",
            &series,
        )?);
    }
    Ok(())
}

/// `code` spans of a Markdown line, escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part).replace("**", ""));
        }
    }
    out
}

/// The Markdown the report writes after its table (headings, lists, tables, paragraphs) as
/// HTML, so Notes and Provenance read as a page, not as source.
pub(crate) fn markdown_to_html(md: &str) -> String {
    let mut out = String::new();
    let (mut in_list, mut in_table) = (false, false);
    for line in md.lines() {
        let t = line.trim();
        let is_item = t.starts_with("- ");
        let is_row = t.starts_with('|');
        if in_list && !is_item {
            out.push_str("</ul>");
            in_list = false;
        }
        if in_table && !is_row {
            out.push_str("</table>");
            in_table = false;
        }
        if let Some(h) = t.strip_prefix("# ") {
            let _ = write!(out, "<h1>{}</h1>", inline(h));
        } else if let Some(h) = t.strip_prefix("## ") {
            let _ = write!(out, "<h2>{}</h2>", inline(h));
        } else if let Some(q) = t.strip_prefix("> ") {
            let _ = write!(out, "<blockquote>{}</blockquote>", inline(q));
        } else if let Some(item) = t.strip_prefix("- ") {
            if !in_list {
                out.push_str("<ul>");
                in_list = true;
            }
            let _ = write!(out, "<li>{}</li>", inline(item));
        } else if is_row {
            let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
            if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                continue;
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<{tag}>{}</{tag}>", inline(c));
            }
            out.push_str("</tr>");
        } else if !t.is_empty() {
            let _ = write!(out, "<p>{}</p>", inline(t));
        }
    }
    if in_list {
        out.push_str("</ul>");
    }
    if in_table {
        out.push_str("</table>");
    }
    out
}
