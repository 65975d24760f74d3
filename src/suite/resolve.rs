//! Suite + profile ⇒ fully resolved cells (experiment × seed), each with its training hash
//! (what changes the trained weights) and its evaluations (each hashed on top of it).

use std::sync::Arc;

use serde_json::Value;

use super::check::{Checker, located_error};
use super::loaded::{LoadedSuite, get_path, join_errors, profile_names};
use super::locate::{Seg, parse_path};
use super::merge::deep_merge;
use super::schema::ExperimentSpec;
use crate::data;
use crate::error::{Error, Result};
use crate::eval::{EvaluationSpec, spec};
use crate::experiment::ExperimentConfig;
use crate::experiment::plan::Plan;
use crate::model;
use crate::numerics::NUMERICS_VERSION;
use crate::regularizer::{self, Regularizer};

/// One experiment run with one seed.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Experiment id.
    pub experiment: String,
    /// Seed.
    pub seed: u64,
    /// Fully resolved config.
    pub config: ExperimentConfig,
    /// sha256 of the canonical JSON of the weight-determining part of `config`.
    pub training_hash: String,
    /// Evaluations of the trained model, the clean one first.
    pub evaluations: Vec<EvaluationSpec>,
    /// Relative training cost (epochs × training images × parameters), for balancing shards.
    pub cost: f64,
    /// The components built from `config`'s validated parameters, used as they are.
    pub plan: Plan,
}

impl Cell {
    /// Hash identifying one evaluation of this cell's trained model.
    pub fn evaluation_hash(&self, e: &EvaluationSpec) -> String {
        evaluation_hash(&self.training_hash, e, self.config.eval_batch_size)
    }

    /// Every metric key this cell produces (`<evaluation id>.<metric>`).
    pub fn metric_keys(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in &self.evaluations {
            out.extend(e.metric_keys()?);
        }
        Ok(out)
    }
}

/// A resolved experiment: its config, training hash and evaluations.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The config.
    pub config: ExperimentConfig,
    /// Hash of what changes the trained weights.
    pub training_hash: String,
    /// Evaluations, sweeps expanded, clean first.
    pub evaluations: Vec<EvaluationSpec>,
    /// Where the `dataset`, `model` and `regularizer` blocks got their values (file paths to
    /// point later errors at).
    pub origins: [Vec<Seg>; 3],
    /// The components built from the validated parameters.
    pub plan: Plan,
}

/// All cells of `profile`, with `seeds` replacing the profile's seeds when given.
pub fn resolve(ls: &LoadedSuite, profile: &str, seeds: Option<&[u64]>) -> Result<Vec<Cell>> {
    let p = ls.suite.profiles.get(profile).ok_or_else(|| {
        Error::Config(format!(
            "{}: unknown profile `{profile}`; the suite defines: {}",
            ls.path.display(),
            profile_names(&ls.suite)
        ))
    })?;
    let seeds = seeds.unwrap_or(&p.seeds);
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = seeds.iter().find(|s| !seen.insert(**s)) {
        return Err(Error::Config(format!(
            "seed {dup} is given twice; each seed must count once in the mean, std and Welch test"
        )));
    }
    let mut cells = Vec::new();
    let mut errs = Vec::new();
    let mut checker = Checker::default();
    for e in ls.suite.experiments.iter().filter(|e| e.quoted.is_none()) {
        let r = match resolve_experiment(ls, e, profile) {
            Ok(r) => r,
            Err(err) => {
                errs.push(err);
                continue;
            }
        };
        let facts = match checker.check(&r.config, &r.plan) {
            Ok(f) => f,
            Err(failed) => {
                errs.push(located_error(ls, &r.origins, failed, &e.id, profile));
                continue;
            }
        };
        for &seed in seeds {
            cells.push(Cell {
                experiment: e.id.clone(),
                seed,
                config: r.config.clone(),
                training_hash: r.training_hash.clone(),
                evaluations: r.evaluations.clone(),
                cost: facts.cost(r.config.epochs),
                plan: r.plan.clone(),
            });
        }
    }
    join_errors(ls, errs)?;
    Ok(cells)
}

/// Resolves one experiment under one profile and validates names and parameters.
pub fn resolve_experiment(ls: &LoadedSuite, e: &ExperimentSpec, profile: &str) -> Result<Resolved> {
    let at = Origins::merge(ls, e, profile)?;
    let cfg: ExperimentConfig =
        serde_path_to_error::deserialize(at.merged.clone()).map_err(|err| {
            at.error(
                &parse_path(&err.path().to_string()),
                &err.inner().to_string(),
            )
        })?;
    at.check_names(&cfg)?;
    let regularizer = at.check_components(&cfg)?;
    at.check_settings(&cfg)?;
    let evaluations = spec::expand(&cfg.evaluations).map_err(|err| {
        let mut field = vec![key("evaluations"), Seg::Index(err.index)];
        field.extend(err.field.iter().flat_map(|f| parse_path(f)));
        at.error(&field, &err.message)
    })?;
    let origins = ["dataset", "model", "regularizer"].map(|k| at.origin(&[key(k)]));
    Ok(Resolved {
        training_hash: training_hash(&cfg),
        config: cfg,
        evaluations,
        origins,
        plan: Plan {
            regularizer: Arc::from(regularizer),
        },
    })
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// One experiment's merged config with the file path each of its values came from.
struct Origins<'a> {
    ls: &'a LoadedSuite,
    /// defaults ← experiment overrides ← profile overrides ← experiment's profile overrides.
    merged: Value,
    /// Each source's path in the file with its value, in merge order.
    sources: Vec<(Vec<Seg>, &'a Value)>,
    /// `experiments[i]`, the fallback location.
    exp_path: Vec<Seg>,
    /// `experiment `<id>`, profile `<p>`` appended to every message.
    context: String,
}

impl<'a> Origins<'a> {
    /// Deep-merges the sources of experiment `e` under `profile`, remembering their paths.
    fn merge(ls: &'a LoadedSuite, e: &'a ExperimentSpec, profile: &str) -> Result<Self> {
        let s = &ls.suite;
        let idx = e
            .source
            .or_else(|| s.experiments.iter().position(|x| x.id == e.id))
            .unwrap_or(0);
        let p = s.profiles.get(profile).ok_or_else(|| {
            Error::Config(format!(
                "{}: unknown profile `{profile}`; the suite defines: {}",
                ls.path.display(),
                profile_names(s)
            ))
        })?;
        let exp_path = vec![key("experiments"), Seg::Index(idx)];
        let profile_path = vec![key("profiles"), key(profile), key("overrides")];
        let mut sources: Vec<(Vec<Seg>, &Value)> = vec![
            (vec![key("defaults")], &s.defaults),
            (
                [exp_path.clone(), vec![key("overrides")]].concat(),
                &e.overrides,
            ),
            (profile_path, &p.overrides),
        ];
        if let Some(po) = e.profile_overrides.get(profile) {
            let at = [
                exp_path.clone(),
                vec![key("profile_overrides"), key(profile)],
            ]
            .concat();
            sources.push((at, po));
        }
        let mut merged = Value::Null;
        for (_, v) in &sources {
            deep_merge(&mut merged, v);
        }
        Ok(Origins {
            ls,
            merged,
            sources,
            exp_path,
            context: format!("experiment `{}`, profile `{profile}`", e.id),
        })
    }

    /// Where `field` of the merged config was written: the last source that sets it (or its
    /// nearest parent).
    fn origin(&self, field: &[Seg]) -> Vec<Seg> {
        for depth in (1..=field.len()).rev() {
            for (base, src) in self.sources.iter().rev() {
                if get_path(src, &field[..depth]).is_some() {
                    return [base.clone(), field.to_vec()].concat();
                }
            }
        }
        [self.exp_path.clone(), field.to_vec()].concat()
    }

    /// An error at the file position of `field`, with the experiment and profile named.
    fn error(&self, field: &[Seg], msg: &str) -> Error {
        self.ls
            .error_at(&self.origin(field), &format!("{msg} ({})", self.context))
    }

    /// An error a component's constructor returned for the block at `block`: a parameter
    /// error is placed at its own field, anything else at the block.
    fn component_error(&self, block: &str, err: Error) -> Error {
        let (field, msg) = param_field(&[key(block)], err);
        self.error(&field, &msg)
    }

    /// The dataset, model and regularizer blocks each name a registered entry.
    fn check_names(&self, cfg: &ExperimentConfig) -> Result<()> {
        let blocks = [
            ("dataset", "name", &cfg.dataset, data::registry::names()),
            ("model", "arch", &cfg.model, model::registry::names()),
            (
                "regularizer",
                "name",
                &cfg.regularizer,
                regularizer::registry::names(),
            ),
        ];
        for (block, k, b, names) in blocks {
            match b.get(k).and_then(Value::as_str) {
                None => return Err(self.error(&[key(block)], &format!("missing field `{k}`"))),
                Some(n) if !names.contains(&n) => {
                    return Err(self.error(
                        &[key(block), key(k)],
                        &format!(
                            "unknown {block} `{n}`; expected one of: {}",
                            names.join(", ")
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Builds the regularizer from its typed parameters (once: the cell keeps it) and checks
    /// what needs dataset and regularizer together.
    fn check_components(&self, cfg: &ExperimentConfig) -> Result<Box<dyn Regularizer>> {
        let reg_name = cfg.regularizer["name"].as_str().unwrap_or_default();
        let data_name = cfg.dataset["name"].as_str().unwrap_or_default();
        let has_factors = data::registry::get(data_name).is_ok_and(|d| d.has_latent_factors());
        if has_factors && let Some(k) = cfg.subset_key() {
            return Err(self.error(
                &[key("dataset"), key(k)],
                &format!(
                    "dataset `{data_name}` generates its images with latent factors; set its sizes with `train_size` and `test_size` instead"
                ),
            ));
        }
        let params = ExperimentConfig::block_params(&cfg.regularizer, &["name"]);
        let reg = regularizer::registry::build(reg_name, &params)
            .map_err(|err| self.component_error("regularizer", err))?;
        if reg.needs_factors() && !has_factors {
            return Err(self.error(
                &[key("regularizer"), key("name")],
                &format!(
                    "regularizer `{reg_name}` mixes latent factors, but dataset `{data_name}` has none; use a generated set that has them (`glyphs`)"
                ),
            ));
        }
        Ok(reg)
    }

    /// Optimizer, schedule and the numeric training settings.
    fn check_settings(&self, cfg: &ExperimentConfig) -> Result<()> {
        if let Err(m) = cfg.optimizer.validate() {
            return Err(self.error(&[key("optimizer")], &m));
        }
        if let Err(m) = cfg.schedule.validate() {
            return Err(self.error(&[key("schedule")], &m));
        }
        let checks = [
            ("epochs", cfg.epochs == 0, "must be >= 1"),
            ("batch_size", cfg.batch_size < 2, "must be >= 2"),
            (
                "checkpoint_minutes",
                !(cfg.checkpoint_minutes.is_finite() && cfg.checkpoint_minutes >= 0.0),
                "must be a finite number >= 0",
            ),
            ("eval_batch_size", cfg.eval_batch_size == 0, "must be >= 1"),
        ];
        match checks.into_iter().find(|c| c.1) {
            Some((k, _, msg)) => Err(self.error(&[key(k)], msg)),
            None => Ok(()),
        }
    }
}

/// The field path (under `block`) and message of a component's error: a parameter error
/// names its own field, any other error stays at the block.
pub fn param_field(block: &[Seg], err: Error) -> (Vec<Seg>, String) {
    match err {
        Error::Param { path, message } => ([block, &parse_path(&path)].concat(), message),
        other => (block.to_vec(), other.to_string()),
    }
}

/// Settings that change neither the trained weights nor what is stored with them.
///
/// `eval_every` is not among them: the learning curves and best-epoch metrics stored with a
/// model follow its schedule, so a model trained with another one must not be reused.
pub const NOT_IN_TRAINING_HASH: &[&str] = &[
    "evaluations",
    "eval_batch_size",
    "checkpoint_every",
    "checkpoint_minutes",
];

/// The part of a config that determines the trained weights (with the seed).
pub fn training_config(cfg: &ExperimentConfig) -> Value {
    let mut v = serde_json::to_value(cfg).expect("config serializes");
    if let Value::Object(m) = &mut v {
        for k in NOT_IN_TRAINING_HASH {
            m.remove(*k);
        }
    }
    v
}

/// sha256 of the canonical JSON of [`training_config`] plus the numerics version: sorted keys,
/// integral floats written as integers.
pub fn training_hash(cfg: &ExperimentConfig) -> String {
    training_hash_under(cfg, NUMERICS_VERSION)
}

/// The training hash `cfg` had under numerics version `version`, to find stored models that
/// older code made (version 0 hashed neither the version nor `eval_every`).
pub fn training_hash_under(cfg: &ExperimentConfig, version: u32) -> String {
    let mut v = training_config(cfg);
    if let Value::Object(m) = &mut v {
        if version == 0 {
            m.remove("eval_every");
        } else {
            m.insert("numerics_version".into(), Value::from(version));
        }
    }
    crate::data::files::hash::sha256_hex(canonical_json(&v).as_bytes())
}

/// sha256 identifying one evaluation of the models of a training config: the training hash,
/// the evaluator spec and the evaluation batch size (which can move the last bits of a
/// result). It is the same for every seed, so seeds aggregate and compare under one hash.
pub fn evaluation_hash(training_hash: &str, e: &EvaluationSpec, eval_batch_size: usize) -> String {
    let v = serde_json::json!({
        "numerics_version": NUMERICS_VERSION,
        "training_hash": training_hash,
        "evaluation": e.hashed_value(),
        "eval_batch_size": eval_batch_size,
    });
    crate::data::files::hash::sha256_hex(canonical_json(&v).as_bytes())
}

/// Canonical JSON text: keys sorted at every level, numbers normalised, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    fn norm(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), norm(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => v.clone(),
            },
            _ => v.clone(),
        }
    }
    serde_json::to_string(&norm(v)).expect("json serializes")
}
