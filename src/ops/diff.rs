//! `diff`: two results folders of one suite and profile, the second judged against the first
//! with the profile's tolerances (as `reproduce` and `report` judge).

use std::path::Path;

use crate::error::{Error, Result};
use crate::results::record::{metric_keys, read_dir};
use crate::results::{MetricDiff, aggregate, compare};
use crate::suite::load;
use crate::suite::schema::expand_metrics;

/// One experiment's metric in `b` against `a`.
pub(crate) struct DiffLine {
    /// Experiment id.
    pub(crate) experiment: String,
    /// The comparison.
    pub(crate) diff: MetricDiff,
}

/// Compares the records in `b` against those in `a`; the suite is read from `suites_dir`.
pub(crate) fn diff_dirs(suites_dir: &Path, a: &Path, b: &Path) -> Result<Vec<DiffLine>> {
    let ra = read_dir(a)?;
    let rb = read_dir(b)?;
    let Some(first) = rb.first().or(ra.first()) else {
        return Err(Error::Config(format!(
            "no result records in {} or {}",
            a.display(),
            b.display()
        )));
    };
    let ls = load(suites_dir, &first.suite)?;
    let keys = metric_keys(ra.iter().chain(&rb));
    let metrics = &expand_metrics(&ls.suite.metrics_for(&first.profile), &keys);
    let sa = aggregate(&ra, metrics)?;
    let sb = aggregate(&rb, metrics)?;
    let mut out = Vec::new();
    for cur in &sb {
        let base = sa.iter().find(|x| x.experiment == cur.experiment);
        for d in compare(cur, base, metrics, ls.suite.significance) {
            out.push(DiffLine {
                experiment: cur.experiment.clone(),
                diff: d,
            });
        }
    }
    Ok(out)
}
