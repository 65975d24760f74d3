//! Learning curves as SVG (plotters), averaged over seeds per experiment.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::Report;
use crate::error::{Error, Result};

/// One named line.
pub type Series = (String, Vec<(f64, f64)>);

/// Mean over seeds of `f(epoch record)` per experiment, for epochs where it is defined.
pub fn curves(
    report: &Report,
    f: impl Fn(&crate::train::EpochRecord) -> Option<f64>,
) -> Vec<Series> {
    let mut acc: BTreeMap<String, BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
    for (exp, _seed, epochs) in &report.curves {
        for e in epochs {
            if let Some(v) = f(e) {
                let slot = acc
                    .entry(exp.clone())
                    .or_default()
                    .entry(e.epoch)
                    .or_insert((0.0, 0));
                slot.0 += v;
                slot.1 += 1;
            }
        }
    }
    acc.into_iter()
        .map(|(k, pts)| {
            (
                k,
                pts.into_iter()
                    .map(|(e, (s, n))| (e as f64 + 1.0, s / n as f64))
                    .collect(),
            )
        })
        .collect()
}

/// Renders a line chart to an SVG string.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 420)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Other(format!("plot `{title}`: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let pts = series.iter().flat_map(|s| s.1.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 - x0 < 1e-9 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0) * 0.05).max(1e-6);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
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
        for (i, (name, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(name.as_str())
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
