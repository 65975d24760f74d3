//! Suite + profile ⇒ fully resolved cells (experiment × seed), each with its training hash
//! (what changes the trained weights) and its evaluations (each hashed on top of it).

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
use crate::model;
use crate::numerics::NUMERICS_VERSION;
use crate::regularizer;

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
        let facts = match checker.check(&r.config) {
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
            });
        }
    }
    join_errors(ls, errs)?;
    Ok(cells)
}

/// Resolves one experiment under one profile and validates names and parameters.
pub fn resolve_experiment(ls: &LoadedSuite, e: &ExperimentSpec, profile: &str) -> Result<Resolved> {
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
    let mut v = s.defaults.clone();
    // Later sources win; their paths are remembered to point errors at the value's origin.
    let exp_path = vec![Seg::Key("experiments".into()), Seg::Index(idx)];
    let mut sources: Vec<(Vec<Seg>, &Value)> =
        vec![(vec![Seg::Key("defaults".into())], &s.defaults)];
    let ov = [exp_path.clone(), vec![Seg::Key("overrides".into())]].concat();
    deep_merge(&mut v, &e.overrides);
    sources.push((ov, &e.overrides));
    deep_merge(&mut v, &p.overrides);
    sources.push((
        vec![
            Seg::Key("profiles".into()),
            Seg::Key(profile.into()),
            Seg::Key("overrides".into()),
        ],
        &p.overrides,
    ));
    if let Some(po) = e.profile_overrides.get(profile) {
        deep_merge(&mut v, po);
        sources.push((
            [
                exp_path.clone(),
                vec![
                    Seg::Key("profile_overrides".into()),
                    Seg::Key(profile.into()),
                ],
            ]
            .concat(),
            po,
        ));
    }
    let origin = |field: &[Seg]| -> Vec<Seg> {
        // The last source that sets the field (or its nearest parent) is where the value came from.
        for depth in (1..=field.len()).rev() {
            for (base, src) in sources.iter().rev() {
                if get_path(src, &field[..depth]).is_some() {
                    return [base.clone(), field.to_vec()].concat();
                }
            }
        }
        [exp_path.clone(), field.to_vec()].concat()
    };
    let context = format!("experiment `{}`, profile `{profile}`", e.id);
    let cfg: ExperimentConfig = serde_path_to_error::deserialize(v.clone()).map_err(|err| {
        let field = parse_path(&err.path().to_string());
        ls.error_at(&origin(&field), &format!("{} ({context})", err.inner()))
    })?;
    // Names and parameters of registered components.
    let named = |block: &str, k: &str, names: Vec<&'static str>| -> Result<()> {
        let b = match block {
            "dataset" => &cfg.dataset,
            "model" => &cfg.model,
            _ => &cfg.regularizer,
        };
        let field = vec![Seg::Key(block.into()), Seg::Key(k.into())];
        match b.get(k).and_then(Value::as_str) {
            None => Err(ls.error_at(
                &origin(&field[..1]),
                &format!("missing field `{k}` ({context})"),
            )),
            Some(n) if !names.contains(&n) => Err(ls.error_at(
                &origin(&field),
                &format!(
                    "unknown {block} `{n}`; expected one of: {} ({context})",
                    names.join(", ")
                ),
            )),
            Some(_) => Ok(()),
        }
    };
    named("dataset", "name", data::registry::names())?;
    named("model", "arch", model::registry::names())?;
    named("regularizer", "name", regularizer::registry::names())?;
    let reg_name = cfg.regularizer["name"].as_str().unwrap_or_default();
    let data_name = cfg.dataset["name"].as_str().unwrap_or_default();
    let has_factors = data::registry::get(data_name).is_ok_and(|d| d.has_latent_factors());
    if has_factors && let Some(k) = cfg.subset_key() {
        return Err(ls.error_at(
            &origin(&[Seg::Key("dataset".into()), Seg::Key(k.into())]),
            &format!(
                "dataset `{data_name}` generates its images with latent factors; set its sizes with `train_size` and `test_size` instead ({context})"
            ),
        ));
    }
    match regularizer::registry::build(
        reg_name,
        &ExperimentConfig::block_params(&cfg.regularizer, &["name"]),
    ) {
        Ok(r) if r.needs_factors() && !has_factors => {
            return Err(ls.error_at(
                &origin(&[Seg::Key("regularizer".into()), Seg::Key("name".into())]),
                &format!(
                    "regularizer `{reg_name}` mixes latent factors, but dataset `{data_name}` has none; use a generated set that has them (`glyphs`) ({context})"
                ),
            ));
        }
        Ok(_) => {}
        Err(err) => {
            let msg = err.to_string();
            // Point at the offending parameter when the message names one.
            let field = ["alpha", "layers", "block_gradient"]
                .iter()
                .find(|f| msg.contains(&format!("`{f}`")) || msg.contains(&format!("{f} ")))
                .map(|f| vec![Seg::Key("regularizer".into()), Seg::Key((*f).into())])
                .unwrap_or_else(|| vec![Seg::Key("regularizer".into())]);
            return Err(ls.error_at(&origin(&field), &format!("{msg} ({context})")));
        }
    }
    if let Err(m) = cfg.optimizer.validate() {
        return Err(ls.error_at(
            &origin(&[Seg::Key("optimizer".into())]),
            &format!("{m} ({context})"),
        ));
    }
    if let Err(m) = cfg.schedule.validate() {
        return Err(ls.error_at(
            &origin(&[Seg::Key("schedule".into())]),
            &format!("{m} ({context})"),
        ));
    }
    for (k, bad) in [
        ("epochs", cfg.epochs == 0),
        ("batch_size", cfg.batch_size < 2),
    ] {
        if bad {
            return Err(ls.error_at(
                &origin(&[Seg::Key(k.into())]),
                &format!(
                    "must be >= {} ({context})",
                    if k == "epochs" { 1 } else { 2 }
                ),
            ));
        }
    }
    let evaluations = spec::expand(&cfg.evaluations).map_err(|err| {
        let mut field = vec![Seg::Key("evaluations".into()), Seg::Index(err.index)];
        if let Some(f) = &err.field {
            field.push(Seg::Key(f.clone()));
        }
        ls.error_at(&origin(&field), &format!("{} ({context})", err.message))
    })?;
    if !(cfg.checkpoint_minutes.is_finite() && cfg.checkpoint_minutes >= 0.0) {
        return Err(ls.error_at(
            &origin(&[Seg::Key("checkpoint_minutes".into())]),
            &format!("must be a finite number >= 0 ({context})"),
        ));
    }
    if cfg.eval_batch_size == 0 {
        return Err(ls.error_at(
            &origin(&[Seg::Key("eval_batch_size".into())]),
            &format!("must be >= 1 ({context})"),
        ));
    }
    let origins = ["dataset", "model", "regularizer"].map(|k| origin(&[Seg::Key(k.into())]));
    Ok(Resolved {
        training_hash: training_hash(&cfg),
        config: cfg,
        evaluations,
        origins,
    })
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
    crate::data::hash::sha256_hex(canonical_json(&v).as_bytes())
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
    crate::data::hash::sha256_hex(canonical_json(&v).as_bytes())
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
