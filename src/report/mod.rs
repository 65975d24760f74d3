//! Reports: the paper's table with this run, the baseline and verdicts, as Markdown, HTML
//! (with SVG learning curves), CSV and Parquet.

pub mod comparison;
pub mod html;
pub mod markdown;
pub mod plot;
pub mod table;

use std::path::PathBuf;

pub use table::{Report, ReportRow, build};

use crate::error::Result;
use crate::results::layout::Layout;

/// Writes `<reports>/<suite>-<profile>.{md,html,csv,parquet}` and returns their paths.
pub fn write_all(report: &Report, layout: &Layout) -> Result<Vec<PathBuf>> {
    let stem = format!("{}-{}", report.suite, report.profile);
    let md = layout.report(&stem, "md")?;
    let html = layout.report(&stem, "html")?;
    let csv = layout.report(&stem, "csv")?;
    let parquet = layout.report(&stem, "parquet")?;
    crate::files::write_atomic(&md, markdown::render(report).as_bytes())?;
    crate::files::write_atomic(&html, html::render(report)?.as_bytes())?;
    table::write_tables(report, &csv, &parquet)?;
    Ok(vec![md, html, csv, parquet])
}
