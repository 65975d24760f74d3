//! Charts as SVG (plotters): learning curves per table group with a ±1 std band over seeds, and
//! a paper-vs-this-run dot plot. Methods keep one colour across every chart.

use std::collections::BTreeMap;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::results::outcome::SuiteOutcome;

/// One named curve: (x, mean over seeds, std over seeds) points, and its colour.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend label.
    pub(crate) name: String,
    /// (epoch, mean, sample std) points.
    pub(crate) points: Vec<(f64, f64, f64)>,
    /// Line colour.
    pub(crate) color: RGBColor,
}

/// Most curves on one chart; larger groups are split over several charts.
pub(crate) const MAX_CURVES: usize = 6;

/// Colour of a method family: No Mixup grey, Input Mixup blue, Manifold Mixup red; None for
/// any other method.
pub(crate) fn family_color(method: &str) -> Option<RGBColor> {
    let m = method.to_lowercase();
    if m.contains("no mixup") || m.starts_with("none") {
        Some(RGBColor(90, 90, 90))
    } else if m.contains("manifold") {
        Some(RGBColor(214, 39, 40))
    } else if m.contains("input") {
        Some(RGBColor(31, 119, 180))
    } else {
        None
    }
}

/// Colour of a row's method in `report`: its family's, else a palette colour by the order in
/// which other methods first appear in the table, so a method looks the same on every chart.
pub(crate) fn method_color(report: &SuiteOutcome, method: &str) -> RGBColor {
    family_color(method).unwrap_or_else(|| {
        let mut others: Vec<&str> = Vec::new();
        for r in &report.rows {
            if family_color(&r.method).is_none() && !others.contains(&r.method.as_str()) {
                others.push(&r.method);
            }
        }
        let i = others
            .iter()
            .position(|m| *m == method)
            .unwrap_or(others.len());
        let p = Palette99::pick(i + 2).to_rgba();
        RGBColor(p.0, p.1, p.2)
    })
}

/// Mean and sample std over seeds of `f(epoch record)` for one experiment.
pub(crate) fn curve(
    report: &SuiteOutcome,
    experiment: &str,
    f: &dyn Fn(&crate::train::EpochRecord) -> Option<f64>,
) -> Vec<(f64, f64, f64)> {
    let mut acc: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (exp, _seed, epochs) in &report.curves {
        if exp != experiment {
            continue;
        }
        for e in epochs {
            if let Some(v) = f(e) {
                acc.entry(e.epoch).or_default().push(v);
            }
        }
    }
    acc.into_iter()
        .map(|(e, v)| {
            let (mean, std) = mean_std(&v);
            (e as f64 + 1.0, mean, std)
        })
        .collect()
}

/// Mean and sample standard deviation (0 for a single value) of a non-empty slice.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// Curves of `f` grouped as the table is (group × architecture), at most [`MAX_CURVES`] per
/// chart: (chart title, series).
pub(crate) fn grouped_curves(
    report: &SuiteOutcome,
    f: &dyn Fn(&crate::train::EpochRecord) -> Option<f64>,
) -> Vec<(String, Vec<Series>)> {
    let mut groups: Vec<(String, String, Vec<Series>)> = Vec::new();
    for row in report.rows.iter().filter(|r| r.quoted.is_none()) {
        let points = curve(report, &row.experiment, f);
        if points.is_empty() {
            continue;
        }
        let title = match &row.group {
            Some(g) => format!("{g} — {}", row.architecture),
            None => row.architecture.clone(),
        };
        let color = method_color(report, &row.method);
        let name = row.row.clone().unwrap_or_else(|| row.method.clone());
        let series = Series {
            name,
            points,
            color,
        };
        // Charts of one table group share its title; a full one continues as "(2)", "(3)".
        match groups
            .iter_mut()
            .rev()
            .find(|(base, _, s)| *base == title && s.len() < MAX_CURVES)
        {
            Some((_, _, s)) => s.push(series),
            None => {
                let n = groups.iter().filter(|(base, _, _)| *base == title).count();
                let shown = if n == 0 {
                    title.clone()
                } else {
                    format!("{title} ({})", n + 1)
                };
                groups.push((title, shown, vec![series]));
            }
        }
    }
    let mut groups: Vec<(String, Vec<Series>)> =
        groups.into_iter().map(|(_, t, s)| (t, s)).collect();
    // Rows of one method on one chart (an α sweep) keep the method's hue, from light to dark.
    for (_, series) in &mut groups {
        let base: Vec<RGBColor> = series.iter().map(|s| s.color).collect();
        for (i, s) in series.iter_mut().enumerate() {
            let same: Vec<usize> = (0..base.len()).filter(|&j| base[j] == base[i]).collect();
            if same.len() > 1 {
                let k = same.iter().position(|&j| j == i).unwrap_or(0) as f64;
                let t = 0.55 - 0.9 * k / (same.len() - 1) as f64;
                s.color = shade(base[i], t);
            }
        }
    }
    groups
}

/// `c` lightened (t > 0, towards white) or darkened (t < 0, towards black).
fn shade(c: RGBColor, t: f64) -> RGBColor {
    let f = |v: u8| -> u8 {
        let v = v as f64;
        let out = if t >= 0.0 {
            v + (255.0 - v) * t
        } else {
            v * (1.0 + t)
        };
        out.round().clamp(0.0, 255.0) as u8
    };
    RGBColor(f(c.0), f(c.1), f(c.2))
}

fn bounds(values: impl Iterator<Item = (f64, f64)>) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in values {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    (x0, x1, y0, y1)
}

/// A line chart with a ±1 std band per series, as an SVG string.
pub(crate) fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<String> {
    line_chart_in(title, (x_label, y_label), series, None)
}

/// The (x0, x1, y0, y1) range of `series` with their ±1 std bands: charts drawn in one range
/// share their axes.
pub(crate) fn series_range(series: &[Series]) -> (f64, f64, f64, f64) {
    bounds(series.iter().flat_map(|s| {
        s.points
            .iter()
            .flat_map(|&(x, m, sd)| [(x, m - sd), (x, m + sd)])
    }))
}

/// [`line_chart`] in a given (x0, x1, y0, y1) range (None: the series' own).
pub(crate) fn line_chart_in(
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    range: Option<(f64, f64, f64, f64)>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (620, 340)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (x0, x1, y0, y1) = range.unwrap_or_else(|| series_range(series));
        let pad = (y1 - y0) * 0.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| err(&e))?;
        for s in series {
            let color = s.color;
            if s.points.iter().any(|p| p.2 > 0.0) {
                let mut band: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, p.1 + p.2)).collect();
                band.extend(s.points.iter().rev().map(|p| (p.0, p.1 - p.2)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        color.mix(0.15).filled(),
                    )))
                    .map_err(|e| err(&e))?;
            }
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// The `i`-th of [`CLASS_COLORS`], for curves that have no method colour.
pub(crate) fn palette(i: usize) -> RGBColor {
    CLASS_COLORS[i % CLASS_COLORS.len()]
}

/// Ten distinct class colours (matplotlib's `tab10`), cycled beyond ten classes.
const CLASS_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A scatter plot of (x, y, class) points, one colour per class, with the legend (`class c`)
/// in a column right of the plot so it never hides points; as an SVG string.
pub(crate) fn scatter_chart(title: &str, points: &[(f64, f64, u32)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 380)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (plot, legend) = root.split_horizontally(400);
        let (x0, x1, y0, y1) = bounds(points.iter().map(|p| (p.0, p.1)));
        let (px, py) = ((x1 - x0) * 0.05, (y1 - y0) * 0.05);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("unit 1")
            .y_desc("unit 2")
            .draw()
            .map_err(|e| err(&e))?;
        let mut classes: Vec<u32> = points.iter().map(|p| p.2).collect();
        classes.sort_unstable();
        classes.dedup();
        for (row, &c) in classes.iter().enumerate() {
            let color = CLASS_COLORS[c as usize % CLASS_COLORS.len()];
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == c)
                        .map(|p| Circle::new((p.0, p.1), 2, color.mix(0.6).filled())),
                )
                .map_err(|e| err(&e))?;
            let y = 40 + 18 * row as i32;
            legend
                .draw(&Circle::new((10, y), 4, color.filled()))
                .map_err(|e| err(&e))?;
            legend
                .draw(&Text::new(
                    format!("class {c}"),
                    (20, y - 6),
                    ("sans-serif", 12),
                ))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// Decision regions of a 2-D input plane: each grid cell in its predicted class's colour,
/// paler where the prediction is less sure (white at probability 1/2 or below for two
/// classes), with the test points on top in their true class's colour; as an SVG string.
pub(crate) fn decision_chart(
    title: &str,
    axis: &[f64],
    cells: &[(u32, f64)],
    test: &[(f64, f64, u32)],
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (400, 380)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let n = axis.len();
        let (lo, hi) = (axis[0], axis[n - 1]);
        let half = (hi - lo) / (n - 1).max(1) as f64 / 2.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d((lo - half)..(hi + half), (lo - half)..(hi + half))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("input 1")
            .y_desc("input 2")
            .draw()
            .map_err(|e| err(&e))?;
        let classes = cells.iter().map(|c| c.0).max().unwrap_or(0) as f64 + 1.0;
        chart
            .draw_series(cells.iter().enumerate().map(|(i, &(c, p))| {
                let (x, y) = (axis[i % n], axis[i / n]);
                // Probability 1/classes (a coin toss) is white, 1 the full class colour.
                let sure = ((p - 1.0 / classes) / (1.0 - 1.0 / classes)).clamp(0.0, 1.0);
                let color = shade(palette(c as usize), 0.85 * (1.0 - sure) + 0.1);
                // Wider than the cell by about a pixel on each side: the SVG backend rounds
                // corners to whole pixels, and a narrower overlap left white hairline seams.
                let h = half * 1.3;
                Rectangle::new([(x - h, y - h), (x + h, y + h)], color.filled())
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(test.iter().map(|&(x, y, c)| {
                // Darker than the regions' colours, so a point shows on its own class's region.
                Circle::new((x, y), 2, shade(palette(c as usize), -0.55).filled())
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// A 2-D bottleneck: the grid's points as small black dots under the test points in their
/// class colours (Fig. 1 (d)/(e)); as an SVG string.
pub(crate) fn bottleneck_chart(
    title: &str,
    grid: &[(f64, f64)],
    test: &[(f64, f64, u32)],
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (400, 380)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (x0, x1, y0, y1) = bounds(grid.iter().copied().chain(test.iter().map(|p| (p.0, p.1))));
        let (px, py) = ((x1 - x0) * 0.05, (y1 - y0) * 0.05);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("unit 1")
            .y_desc("unit 2")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                grid.iter()
                    .map(|&(x, y)| Circle::new((x, y), 1, BLACK.mix(0.5).filled())),
            )
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                test.iter()
                    .map(|&(x, y, c)| Circle::new((x, y), 2, palette(c as usize).filled())),
            )
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// The paper's printed value against this run's mean, one dot per row, with the diagonal;
/// None when no row has both.
pub(crate) fn paper_dot_plot(
    report: &SuiteOutcome,
    metric: &str,
    label: &str,
) -> Result<Option<String>> {
    let mut dots: Vec<(f64, f64, RGBColor)> = Vec::new();
    for row in &report.rows {
        let base = metric
            .strip_suffix(crate::results::record::BEST_SUFFIX)
            .unwrap_or(metric);
        let Some(p) = row.paper.get(base).and_then(|p| p.mean) else {
            continue;
        };
        let Some(c) = row
            .diffs
            .iter()
            .find(|d| d.metric == metric)
            .and_then(|d| d.current.as_ref())
        else {
            continue;
        };
        dots.push((p, c.mean, method_color(report, &row.method)));
    }
    if dots.is_empty() {
        return Ok(None);
    }
    let title = format!("{label}: paper vs this run");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (380, 340)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (lo0, hi0, lo1, hi1) = bounds(dots.iter().map(|d| (d.0, d.1)));
        let (lo, hi) = (lo0.min(lo1), hi0.max(hi1));
        let pad = (hi - lo) * 0.05 + 1e-9;
        let r = (lo - pad)..(hi + pad);
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(r.clone(), r)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("paper")
            .y_desc("this run")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(
                [(lo - pad, lo - pad), (hi + pad, hi + pad)],
                BLACK.mix(0.3),
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                dots.iter()
                    .map(|&(x, y, c)| Circle::new((x, y), 4, c.filled())),
            )
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(Some(svg))
}

/// Singular-value spectra charts (Figs 9–12): for each evaluation that stored per-class
/// spectra (`<id>.class<c>`) and each table group, one chart of the per-class spectra and one of
/// the all-classes spectrum (`<id>.all`); one line per row, the mean over classes and seeds at
/// each index with a ±1 std band. Returns (chart title, series).
pub(crate) fn spectrum_charts(report: &SuiteOutcome) -> Vec<(String, Vec<Series>)> {
    let mut ids: Vec<String> = Vec::new();
    for (_, _, arrays) in &report.arrays {
        for k in arrays.keys() {
            if let Some((id, name)) = k.rsplit_once('.')
                && name.starts_with("class")
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_string());
            }
        }
    }
    let mut charts = Vec::new();
    for id in &ids {
        for (kind, all) in [("per-class spectra", false), ("all classes together", true)] {
            let mut groups: Vec<(String, Vec<Series>)> = Vec::new();
            for row in report.rows.iter().filter(|r| r.quoted.is_none()) {
                let vectors: Vec<&Vec<f64>> = report
                    .arrays
                    .iter()
                    .filter(|(exp, _, _)| *exp == row.experiment)
                    .flat_map(|(_, _, a)| {
                        a.iter().filter(move |(k, _)| {
                            k.rsplit_once('.').is_some_and(|(i, n)| {
                                i == id
                                    && if all {
                                        n == "all"
                                    } else {
                                        n.starts_with("class")
                                    }
                            })
                        })
                    })
                    .map(|(_, v)| v)
                    .collect();
                let len = vectors.iter().map(|v| v.len()).max().unwrap_or(0);
                if len == 0 {
                    continue;
                }
                let points = (0..len)
                    .map(|i| {
                        let xs: Vec<f64> =
                            vectors.iter().filter_map(|v| v.get(i).copied()).collect();
                        let (mean, sd) = mean_std(&xs);
                        (i as f64 + 1.0, mean, sd)
                    })
                    .collect();
                let title = format!(
                    "{} — {id}: {kind}",
                    row.group
                        .clone()
                        .unwrap_or_else(|| row.architecture.clone())
                );
                let series = Series {
                    name: row.row.clone().unwrap_or_else(|| row.method.clone()),
                    points,
                    color: method_color(report, &row.method),
                };
                match groups.iter_mut().find(|(t, _)| *t == title) {
                    Some((_, s)) => s.push(series),
                    None => groups.push((title, vec![series])),
                }
            }
            charts.extend(groups);
        }
    }
    charts
}

/// Trend charts from the report's history: one chart per metric (at most three experiments
/// each), each experiment's value per run as a line and its baseline mean ± tolerance as a band
/// in the same colour. Returns (chart title, series, x labels = commits).
pub(crate) fn trend_charts(report: &SuiteOutcome) -> Vec<(String, Vec<Series>)> {
    let mut out = Vec::new();
    if report.history.len() < 2 {
        return out;
    }
    for m in &report.metrics {
        let label = m.label.clone().unwrap_or_else(|| m.name.clone());
        let mut series = Vec::new();
        for row in &report.rows {
            let points: Vec<(f64, f64, f64)> = report
                .history
                .iter()
                .enumerate()
                .filter_map(|(i, h)| {
                    let e = h.experiments.get(&row.experiment)?;
                    e.metrics.get(&m.name).map(|s| (i as f64, s.mean, 0.0))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let color = method_color(report, &row.method);
            let base = row
                .diffs
                .iter()
                .find(|d| d.metric == m.name)
                .and_then(|d| d.baseline.as_ref());
            if let Some(b) = base {
                let x1 = (report.history.len() - 1) as f64;
                series.push(Series {
                    name: format!("{} baseline ± tol", row.experiment),
                    points: vec![(0.0, b.mean, m.tolerance), (x1, b.mean, m.tolerance)],
                    color: RGBColor(color.0, color.1, color.2),
                });
            }
            series.push(Series {
                name: row.experiment.clone(),
                points,
                color,
            });
        }
        for (k, chunk) in series.chunks(2 * (MAX_CURVES / 2)).enumerate() {
            out.push((
                format!(
                    "{label} over the last {} runs ({})",
                    report.history.len(),
                    k + 1
                ),
                chunk.to_vec(),
            ));
        }
    }
    out
}
