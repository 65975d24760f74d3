//! Reports: the paper's table with this run, the baseline and verdicts, as Markdown, HTML
//! (with SVG learning curves), CSV and Parquet.

pub mod comparison;
pub mod html;
pub mod markdown;
pub mod plot;
pub mod table;

use std::path::{Path, PathBuf};

pub use table::{Report, ReportRow, build};

use crate::error::Result;

/// Writes `<dir>/<suite>-<profile>.{md,html,csv,parquet}` and returns their paths.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    let stem = format!("{}-{}", report.suite, report.profile);
    let md = dir.join(format!("{stem}.md"));
    let html = dir.join(format!("{stem}.html"));
    let csv = dir.join(format!("{stem}.csv"));
    let parquet = dir.join(format!("{stem}.parquet"));
    crate::results::atomic::write_atomic(&md, markdown::render(report).as_bytes())?;
    crate::results::atomic::write_atomic(&html, html::render(report)?.as_bytes())?;
    table::write_tables(report, &csv, &parquet)?;
    Ok(vec![md, html, csv, parquet])
}
