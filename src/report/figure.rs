//! The paper's figures a suite declares (`figures:`), computed from a run's outcome: the
//! training-loss curves of Figures 6/7 with the paper's stated order checked, and the 2-D
//! embeddings of Figures 1 and 5. Renderers (Markdown numbers, HTML pictures) draw these.

use std::collections::BTreeMap;

use crate::results::outcome::{OutcomeRow, SuiteOutcome};
use crate::suite::schema::FigureSpec;

/// One experiment's training-loss curve over seeds.
#[derive(Debug, Clone)]
pub(crate) struct LossCurve {
    /// Experiment id.
    pub(crate) experiment: String,
    /// Label as the table prints the row (its grid row label, else its method).
    pub(crate) label: String,
    /// (epoch, mean, sample std) over seeds.
    pub(crate) points: Vec<(f64, f64, f64)>,
    /// Seeds with a training log.
    pub(crate) seeds: usize,
}

impl LossCurve {
    /// The last epoch's (mean, std) over seeds.
    pub(crate) fn last(&self) -> Option<(f64, f64)> {
        self.points.last().map(|p| (p.1, p.2))
    }
}

/// Whether this run keeps the paper's stated order of final training loss.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderCheck {
    /// The paper's order, highest first (labels).
    pub(crate) paper: Vec<String>,
    /// The same experiments in this run's order, highest final mean first: (label, mean).
    pub(crate) run: Vec<(String, f64)>,
    /// The run's order equals the paper's.
    pub(crate) holds: bool,
}

impl OrderCheck {
    /// The sentence both reports print: the paper's order, this run's with its losses, and
    /// whether it holds (the last as its own string, for emphasis).
    pub(crate) fn sentence(&self) -> (String, &'static str) {
        let run: Vec<String> = self
            .run
            .iter()
            .map(|(l, v)| format!("{l} ({v:.4})"))
            .collect();
        (
            format!(
                "The paper's order of training loss, highest first: {}. This run: {}",
                self.paper.join(" > "),
                run.join(" > ")
            ),
            if self.holds { "holds" } else { "does not hold" },
        )
    }
}

/// The experiments a figure draws, in its order (every row that ran when it names none).
fn drawn<'a>(r: &'a SuiteOutcome, f: &FigureSpec) -> Vec<&'a OutcomeRow> {
    let ran = |row: &&OutcomeRow| row.quoted.is_none();
    match f.experiments.is_empty() {
        true => r.rows.iter().filter(ran).collect(),
        false => f
            .experiments
            .iter()
            .filter_map(|id| r.rows.iter().filter(ran).find(|row| row.experiment == *id))
            .collect(),
    }
}

/// A figure's panels are one table column: the row label alone says which curve it is.
fn label(row: &OutcomeRow) -> String {
    row.row.clone().unwrap_or_else(|| row.method.clone())
}

/// The training-loss curve of each drawn experiment that has a training log.
pub(crate) fn loss_curves(r: &SuiteOutcome, f: &FigureSpec) -> Vec<LossCurve> {
    drawn(r, f)
        .into_iter()
        .filter_map(|row| {
            let points = super::plot::curve(r, &row.experiment, &|e| Some(e.train_loss));
            let seeds = r
                .curves
                .iter()
                .filter(|(e, _, log)| *e == row.experiment && !log.is_empty())
                .count();
            (!points.is_empty()).then(|| LossCurve {
                experiment: row.experiment.clone(),
                label: label(row),
                points,
                seeds,
            })
        })
        .collect()
}

/// The paper's order (`f.order`) against this run's final losses; None when the figure states
/// no order or an ordered experiment has no curve.
pub(crate) fn order_check(curves: &[LossCurve], f: &FigureSpec) -> Option<OrderCheck> {
    if f.order.is_empty() {
        return None;
    }
    let mut ordered = Vec::new();
    for id in &f.order {
        let c = curves.iter().find(|c| c.experiment == *id)?;
        ordered.push((c.label.clone(), c.last()?.0));
    }
    let paper: Vec<String> = ordered.iter().map(|(l, _)| l.clone()).collect();
    let mut run = ordered;
    // Stable: equal losses keep the paper's order.
    run.sort_by(|a, b| b.1.total_cmp(&a.1));
    let holds = run.iter().map(|(l, _)| l).eq(paper.iter());
    Some(OrderCheck { paper, run, holds })
}

/// One experiment's embedded test points (its lowest seed) for a scatter panel.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// Label as the table prints the row.
    pub(crate) label: String,
    /// The seed drawn.
    pub(crate) seed: u64,
    /// (x, y, class) points.
    pub(crate) points: Vec<(f64, f64, u32)>,
}

/// An evaluation's arrays by name (without the evaluation id).
type Arrays<'a> = BTreeMap<&'a str, &'a Vec<f64>>;

/// Points in a plane with their class.
type Points = Vec<(f64, f64, u32)>;

/// The arrays of the figure's evaluation for one drawn experiment's lowest seed that has them:
/// (row label, seed, arrays).
fn evaluation_arrays<'a>(
    r: &'a SuiteOutcome,
    f: &FigureSpec,
    needs: &str,
) -> Vec<(String, u64, Arrays<'a>)> {
    let Some(id) = &f.evaluation else {
        return Vec::new();
    };
    drawn(r, f)
        .into_iter()
        .filter_map(|row| {
            let (_, seed, a) = r
                .arrays
                .iter()
                .filter(|(e, _, a)| {
                    *e == row.experiment && a.contains_key(&format!("{id}.{needs}"))
                })
                .min_by_key(|(_, seed, _)| *seed)?;
            let mine = a
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(id.as_str())?.strip_prefix('.')?, v)))
                .collect();
            Some((label(row), *seed, mine))
        })
        .collect()
}

/// (x, y, class) triples from three equally long arrays.
fn triples(x: &[f64], y: &[f64], c: &[f64]) -> Vec<(f64, f64, u32)> {
    x.iter()
        .zip(y)
        .zip(c)
        .map(|((&x, &y), &c)| (x, y, c as u32))
        .collect()
}

/// One panel per drawn experiment with the figure's embedding arrays.
pub(crate) fn embedding_panels(r: &SuiteOutcome, f: &FigureSpec) -> Vec<Panel> {
    evaluation_arrays(r, f, "x")
        .into_iter()
        .filter_map(|(label, seed, a)| {
            let points = triples(a.get("x")?, a.get("y")?, a.get("label")?);
            Some(Panel {
                label,
                seed,
                points,
            })
        })
        .collect()
}

/// One experiment's decision grid: the plane and, when recorded, the bottleneck.
#[derive(Debug, Clone)]
pub(crate) struct DecisionPanel {
    /// Label as the table prints the row.
    pub(crate) label: String,
    /// The seed drawn.
    pub(crate) seed: u64,
    /// Normalised input value of each grid index (both features).
    pub(crate) axis: Vec<f64>,
    /// Predicted class and its probability per grid point, row-major (y, then x).
    pub(crate) cells: Vec<(u32, f64)>,
    /// Test points in the plane: (x, y, class).
    pub(crate) test: Vec<(f64, f64, u32)>,
    /// Grid points at the bottleneck (x, y) and test points there (x, y, class).
    pub(crate) bottleneck: Option<(Vec<(f64, f64)>, Points)>,
}

/// One decision panel per drawn experiment with the figure's grid arrays.
pub(crate) fn decision_panels(r: &SuiteOutcome, f: &FigureSpec) -> Vec<DecisionPanel> {
    evaluation_arrays(r, f, "class")
        .into_iter()
        .filter_map(|(label, seed, a)| {
            let cells = a
                .get("class")?
                .iter()
                .zip(a.get("confidence")?.iter())
                .map(|(&c, &p)| (c as u32, p))
                .collect();
            let bottleneck = match (a.get("hx"), a.get("hy"), a.get("thx"), a.get("thy")) {
                (Some(hx), Some(hy), Some(tx), Some(ty)) => Some((
                    hx.iter().copied().zip(hy.iter().copied()).collect(),
                    triples(tx, ty, a.get("tl")?),
                )),
                _ => None,
            };
            Some(DecisionPanel {
                label,
                seed,
                axis: a.get("axis")?.to_vec(),
                cells,
                test: triples(a.get("tx")?, a.get("ty")?, a.get("tl")?),
                bottleneck,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::schema::FigureKind;

    fn curve(id: &str, last: f64) -> LossCurve {
        LossCurve {
            experiment: id.into(),
            label: format!("L{id}"),
            points: vec![(1.0, 9.0, 0.0), (2.0, last, 0.1)],
            seeds: 1,
        }
    }

    fn fig(order: &[&str]) -> FigureSpec {
        FigureSpec {
            title: "t".into(),
            kind: FigureKind::TrainLoss,
            experiments: vec![],
            order: order.iter().map(|s| s.to_string()).collect(),
            evaluation: None,
        }
    }

    #[test]
    fn the_order_holds_only_when_final_losses_fall_in_the_papers_order() {
        let curves = [curve("a", 0.5), curve("b", 0.3), curve("c", 0.4)];
        let held = order_check(&curves, &fig(&["a", "c", "b"])).unwrap();
        assert!(held.holds);
        assert_eq!(held.paper, ["La", "Lc", "Lb"]);
        let broken = order_check(&curves, &fig(&["a", "b", "c"])).unwrap();
        assert!(!broken.holds);
        // The run's order is by the last epoch's mean, highest first (not the first epoch's).
        let run: Vec<(&str, f64)> = broken.run.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        assert_eq!(run, [("La", 0.5), ("Lc", 0.4), ("Lb", 0.3)]);
    }

    #[test]
    fn no_order_or_a_missing_curve_checks_nothing() {
        let curves = [curve("a", 0.5)];
        assert_eq!(order_check(&curves, &fig(&[])), None);
        assert_eq!(order_check(&curves, &fig(&["a", "zz"])), None);
    }
}
