//! Reports: pure renderers of what happened (`results::outcome::SuiteOutcome`,
//! `results::comparison::Comparison`) as Markdown, HTML (with SVG charts), CSV, Parquet and
//! JSON, behind one entry point that writes the files, [`write_all`].

pub(crate) mod comparison;
pub(crate) mod figure;
pub(crate) mod html;
pub(crate) mod markdown;
pub(crate) mod plot;
pub(crate) mod table;

use std::path::PathBuf;

use crate::error::Result;
use crate::files::write_atomic;
use crate::results::comparison::Comparison;
use crate::results::layout::Layout;
use crate::results::outcome::SuiteOutcome;

/// What a set of report files is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    /// A suite profile's run: `<suite>-<profile>.{md,html,csv,parquet}`.
    Suite(&'a SuiteOutcome),
    /// A new method against a suite's baselines: `<derived suite>-<profile>.{md,html,csv,json}`.
    Comparison(&'a Comparison),
}

/// One rendered file: its extension and its bytes.
pub(crate) struct Document {
    /// File extension (`md`, `html`, ...).
    pub(crate) extension: &'static str,
    /// Contents.
    pub(crate) bytes: Vec<u8>,
}

/// The file stem and every rendered document of `subject`, in the order they are written.
pub(crate) fn render_all(subject: Subject) -> Result<(String, Vec<Document>)> {
    let doc = |extension, bytes| Document { extension, bytes };
    Ok(match subject {
        Subject::Suite(o) => {
            let (csv, parquet) = table::tables(o)?;
            (
                format!("{}-{}", o.suite, o.profile),
                vec![
                    doc("md", markdown::render(o).into_bytes()),
                    doc("html", html::render(o)?.into_bytes()),
                    doc("csv", csv),
                    doc("parquet", parquet),
                ],
            )
        }
        Subject::Comparison(c) => (
            format!("{}-{}", c.derived_suite, c.profile),
            vec![
                doc("md", comparison::markdown(c).into_bytes()),
                doc("html", comparison::html(c)?.into_bytes()),
                doc("csv", comparison::csv(c).into_bytes()),
                doc("json", comparison::json(c)?),
            ],
        ),
    })
}

/// Renders `subject` and writes each file atomically under `<reports>/`; returns their paths.
pub(crate) fn write_all(subject: Subject, layout: &Layout) -> Result<Vec<PathBuf>> {
    let (stem, docs) = render_all(subject)?;
    let mut paths = Vec::new();
    for d in &docs {
        paths.push(layout.report(&stem, d.extension)?);
    }
    for (path, d) in paths.iter().zip(&docs) {
        write_atomic(path, &d.bytes)?;
    }
    Ok(paths)
}
