//! The candle engine against the PyTorch reference fixtures (issue #5, Rust side).
//!
//! `tests/fixtures/reference/<arch>.safetensors` are written by
//! `tools/reference/make_fixtures.py`; see `tools/reference/README.md` for the names, shapes and
//! semantics. For every architecture this loads `init.*` into a freshly built model and compares:
//!
//! * logits in train and eval mode, and the BN running statistics after one train forward;
//! * the loss of every case (`none`, `mix0` … `mix{K−1}`) × both losses (and, for debugging,
//!   the train-mode logits of every mixed case);
//! * the parameter gradients of the exported (case, loss) pairs and the input gradients;
//! * two SGD steps (Nesterov, weight decay) on case `mixM` with `bce_softmax`: parameters,
//!   momentum buffers, running statistics and the two losses.
//!
//! Every computation starts from a fresh model loaded from `init.*`, as the fixtures do
//! (train-mode forwards move the running statistics).
//!
//! # Relative error
//!
//! For a fixture tensor `b` and our tensor `a` of the same quantity group,
//!
//! ```text
//! rel(a, b) = max|a − b| / max(S, 1e-6),   S = max|b|  if max|b| ≥ 1e-3 · G,
//!                                          S = G       otherwise,
//! ```
//!
//! where `G` is the largest `max|b|` over all tensors of the group (all parameter gradients of
//! one (case, loss) pair, all momentum buffers, all parameters after SGD, all running
//! statistics). So a tensor is measured against its own magnitude, except the tensors that are
//! analytically zero and hold only f32 rounding noise: a bias whose output feeds a train-mode
//! BatchNorm through per-channel shifts only has zero gradient (every WRN conv bias, ~1e-8 · G;
//! the MLP's `fc2.bias` in front of `bn2`, ~1e-6 · G), and its momentum buffer is then the
//! weight-decay term plus that noise (~2e-4 · G to 6e-4 · G). Their relative error is noise over
//! noise; even the float32 fixture differs from a float64 PyTorch run by up to 1e-3 of its
//! own value there. They are measured normwise against `G` instead. In the fixtures, every
//! other tensor has `max|b| ≥ 3.8e-3 · G`, so the split at 1e-3 is unambiguous. For a group
//! of one tensor (a loss, the logits) this is plain `max|a − b| / max(max|b|, 1e-6)`.
//!
//! Gradients are discontinuous at ReLU kinks, and each CNN fixture has pre-activations within
//! 1e-6 of zero (the nearest at 1.6e-7 of its tensor's RMS). Any float32 forward, PyTorch's or
//! ours, differs from the exact one by ~1e-6 relative and can flip such a ReLU, which moves the
//! gradients of all earlier layers by percents: a float32-vs-float32 gradient comparison is
//! ill-posed, whichever side is right. So the fixtures hold float32 parameters and inputs but
//! every quantity computed in float64 (then rounded to float32), and each architecture is
//! checked twice: the f64 engine on every quantity (the exact semantic check: gradients, input
//! gradients and SGD steps included), and the f32 engine, which training uses, on the forward
//! quantities (logits, BN statistics, losses), which are continuous in the inputs.
//!
//! Every quantity must have rel ≤ 1e-4. The worst value per quantity is printed
//! (`cargo test --release --test reference_fixtures -- --nocapture`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result, anyhow, bail, ensure};
use candle_core::{DType, Device, Tensor, Var};
use mixbench::model::{InputSpec, Model};
use mixbench::regularizer::{MixPlan, mix_hidden, soft_targets};
use mixbench::scoring::LossKind;
use mixbench::scoring::loss;
use mixbench::train::{Sgd, SgdConfig};
use serde_json::{Map, Value, json};

/// Maximum relative error accepted for every quantity.
const TOL: f64 = 1e-4;
/// A tensor whose largest entry is below this fraction of its group's largest is treated as
/// analytically zero (rounding noise, possibly plus an exact weight-decay term) and measured
/// against the group's scale.
const NOISE_RATIO: f64 = 1e-3;
/// Absolute floor of a tensor's scale.
const ABS_FLOOR: f64 = 1e-6;

const LOSSES: [(&str, LossKind); 2] = [
    ("bce_softmax", LossKind::BceSoftmax),
    ("soft_cross_entropy", LossKind::SoftCrossEntropy),
];

// ------------------------------------------------------------------------------------------
// Fixture loading
// ------------------------------------------------------------------------------------------

struct Fixture {
    arch: String,
    tensors: HashMap<String, Tensor>,
    meta: HashMap<String, String>,
    input: Tensor,
    labels: Vec<u32>,
    perm: Vec<u32>,
    lambda: f32,
    /// Number of mix points K.
    mix_points: usize,
    /// The mix point of the gradient and SGD cases.
    m: usize,
}

fn fixture_path(arch: &str) -> String {
    format!(
        "{}/tests/fixtures/reference/{arch}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The `__metadata__` map of a safetensors file (candle's loader does not expose it).
fn read_metadata(path: &str) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    ensure!(bytes.len() >= 8, "{path}: too short for a safetensors file");
    let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n])?;
    let meta = header
        .get("__metadata__")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("{path}: no __metadata__"))?;
    Ok(meta
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

fn as_u32(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|v| u32::try_from(v).expect("index fits u32"))
        .collect())
}

impl Fixture {
    fn load(arch: &str) -> Result<Fixture> {
        let path = fixture_path(arch);
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
            .with_context(|| format!("loading {path}"))?;
        let meta = read_metadata(&path)?;
        ensure!(
            meta.get("arch").map(String::as_str) == Some(arch),
            "{path}: arch mismatch"
        );
        let get = |n: &str| -> Result<Tensor> {
            tensors
                .get(n)
                .cloned()
                .ok_or_else(|| anyhow!("{arch}: fixture has no tensor `{n}`"))
        };
        let lambda = get("lambda")?.flatten_all()?.to_vec1::<f32>()?[0];
        let meta_lambda: f32 = meta["lambda"].parse()?;
        ensure!(
            lambda == meta_lambda,
            "{arch}: lambda tensor {lambda} vs metadata {meta_lambda}"
        );
        let fx = Fixture {
            arch: arch.to_string(),
            input: get("input")?,
            labels: as_u32(&get("labels")?)?,
            perm: as_u32(&get("perm")?)?,
            lambda,
            mix_points: meta["mix_points"].parse()?,
            m: meta["M"].parse()?,
            tensors,
            meta,
        };
        Ok(fx)
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| anyhow!("{}: fixture has no tensor `{name}`", self.arch))
    }

    /// All tensors under `prefix.`, keyed by the rest of the name.
    fn prefixed(&self, prefix: &str) -> BTreeMap<String, Tensor> {
        let p = format!("{prefix}.");
        self.tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&p).map(|s| (s.to_string(), v.clone())))
            .collect()
    }

    fn classes(&self) -> usize {
        self.meta["classes"].parse().expect("classes")
    }

    fn input_spec(&self) -> InputSpec {
        let d = self.input.dims();
        InputSpec {
            channels: d[1],
            height: d[2],
            width: d[3],
            classes: self.classes(),
        }
    }

    fn model_params(&self) -> Map<String, Value> {
        let v = if self.arch == "mlp" {
            let hidden: Vec<usize> = self.meta["hidden"]
                .split(',')
                .map(|s| s.parse().expect("hidden width"))
                .collect();
            let bottleneck: usize = self.meta["bottleneck"].parse().expect("bottleneck");
            assert_eq!(self.meta["negative_slope"], "0.01");
            json!({"hidden": hidden, "activation": "leaky_relu", "bottleneck": bottleneck})
        } else {
            let width: f64 = self.meta["width"].parse().expect("width");
            json!({ "width": width })
        };
        v.as_object().cloned().expect("object")
    }

    /// A freshly built model of the fixture's architecture holding `init.*`, in `dtype`.
    fn fresh_model(&self, dtype: DType) -> Result<Model> {
        let model = Model::build_with_dtype(
            &self.arch,
            &self.model_params(),
            self.input_spec(),
            0,
            &Device::Cpu,
            dtype,
        )?;
        model.store.load(&self.prefixed("init"))?;
        Ok(model)
    }

    fn plan(&self, k: usize, lambda: f32) -> MixPlan {
        MixPlan {
            layer: k,
            lambda,
            perm: self.perm.clone(),
            block_gradient: false,
            lambdas: None,
        }
    }

    /// The fixture's optimizer settings.
    fn sgd_config(&self) -> Result<SgdConfig> {
        Ok(SgdConfig {
            lr: self.meta["lr"].parse()?,
            momentum: self.meta["momentum"].parse()?,
            nesterov: self.meta["nesterov"] == "true",
            weight_decay: self.meta["weight_decay"].parse()?,
        })
    }

    /// A fresh `dtype` model after the fixture's SGD steps on `mixM` + `bce_softmax` (each with
    /// a fresh train forward) under `cfg`: the model, the optimizer and each step's loss.
    fn run_sgd(&self, dtype: DType, cfg: SgdConfig) -> Result<(Model, Sgd, Vec<f32>)> {
        let model = self.fresh_model(dtype)?;
        let x = self.input.to_dtype(dtype)?;
        let steps: usize = self.meta["steps"].parse()?;
        let lr = cfg.lr;
        let mut opt = Sgd::new(cfg);
        let plan = self.plan(self.m, self.lambda);
        let params = model.store.params();
        let mut losses = Vec::new();
        for _ in 0..steps {
            let (_, l) = case_loss(self, &model, &x, Some(&plan), LossKind::BceSoftmax)?;
            losses.push(l.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?[0]);
            opt.step(&params, &l.backward()?, lr)?;
        }
        Ok((model, opt, losses))
    }

    fn cases(&self) -> Vec<(String, Option<usize>)> {
        std::iter::once(("none".to_string(), None))
            .chain((0..self.mix_points).map(|k| (format!("mix{k}"), Some(k))))
            .collect()
    }
}

/// Train-mode (or eval-mode) forward, mixing at `plan.layer` when there is a plan.
fn forward(model: &Model, x: &Tensor, train: bool, plan: Option<&MixPlan>) -> Result<Tensor> {
    Ok(match plan {
        None => model.forward(x, train)?,
        Some(p) => {
            let hook = |h: &Tensor| mix_hidden(h, p);
            model.forward_with(x, train, Some((p.layer, &hook)))?
        }
    })
}

/// Loss `kind` of a train-mode forward of `x` under `plan`, against the plan's soft targets.
fn case_loss(
    fx: &Fixture,
    model: &Model,
    x: &Tensor,
    plan: Option<&MixPlan>,
    kind: LossKind,
) -> Result<(Tensor, Tensor)> {
    let logits = forward(model, x, true, plan)?;
    let t = soft_targets(&fx.labels, fx.classes(), plan, &Device::Cpu)?;
    let l = loss(kind, &logits, &t)?;
    Ok((logits, l))
}

// ------------------------------------------------------------------------------------------
// Comparison bookkeeping
// ------------------------------------------------------------------------------------------

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max((*x as f64).abs()))
}

/// Relative errors of `(name, ours, fixture)` triples forming one group (see the module docs).
fn group_errors(items: &[(String, Tensor, Tensor)]) -> Result<Vec<(String, f64)>> {
    let mut flats = Vec::with_capacity(items.len());
    for (name, a, b) in items {
        ensure!(
            a.elem_count() == b.elem_count(),
            "{name}: ours has shape {:?}, the fixture {:?}",
            a.dims(),
            b.dims()
        );
        if a.rank() > 0 && b.rank() > 0 {
            ensure!(
                a.dims() == b.dims(),
                "{name}: shape {:?} vs fixture {:?}",
                a.dims(),
                b.dims()
            );
        }
        flats.push((flat(a)?, flat(b)?));
    }
    let group_scale = flats.iter().map(|(_, b)| max_abs(b)).fold(0f64, f64::max);
    Ok(items
        .iter()
        .zip(&flats)
        .map(|((name, _, _), (a, b))| {
            let diff = a
                .iter()
                .zip(b)
                .map(|(x, y)| (*x as f64 - *y as f64).abs())
                .fold(0f64, |m, d| {
                    if d.is_nan() || m.is_nan() {
                        f64::NAN
                    } else {
                        m.max(d)
                    }
                });
            let own = max_abs(b);
            let scale = if own >= NOISE_RATIO * group_scale {
                own
            } else {
                group_scale
            };
            let scale = scale.max(ABS_FLOOR);
            (name.clone(), diff / scale)
        })
        .collect())
}

/// Worst relative error per quantity for one architecture, and every tensor over the tolerance.
struct Report {
    arch: String,
    worst: BTreeMap<&'static str, (f64, String)>,
    order: Vec<&'static str>,
    failures: Vec<String>,
}

impl Report {
    fn new(arch: &str) -> Self {
        Report {
            arch: arch.to_string(),
            worst: BTreeMap::new(),
            order: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn check(
        &mut self,
        quantity: &'static str,
        items: Vec<(String, Tensor, Tensor)>,
    ) -> Result<()> {
        for (name, e) in group_errors(&items)? {
            let slot = self.worst.entry(quantity).or_insert_with(|| {
                self.order.push(quantity);
                (0.0, String::new())
            });
            if e.is_nan() || e > slot.0 {
                *slot = (e, name.clone());
            }
            if e.is_nan() || e > TOL {
                self.failures.push(format!("{name}: rel err {e:.3e}"));
            }
        }
        Ok(())
    }

    fn finish(self) {
        println!(
            "\n{}: worst relative error per quantity (tolerance {TOL:e})",
            self.arch
        );
        println!("  {:<26} {:>11}  tensor", "quantity", "rel err");
        for q in &self.order {
            let (e, name) = &self.worst[q];
            let mark = if e.is_nan() || *e > TOL {
                "  <-- FAIL"
            } else {
                ""
            };
            println!("  {q:<26} {e:>11.3e}  {name}{mark}");
        }
        assert!(
            self.failures.is_empty(),
            "{}: {} tensor(s) exceed rel err {TOL:e} (first 20):\n  {}",
            self.arch,
            self.failures.len(),
            self.failures
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

// ------------------------------------------------------------------------------------------
// The comparison of one architecture
// ------------------------------------------------------------------------------------------

/// Which quantities a comparison covers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Logits, BN statistics and losses: continuous in the inputs, so f32 must match too.
    Forward,
    /// Everything, gradients and SGD steps included (needs the f64 engine; see module docs).
    All,
}

fn compare_architecture(arch: &str, dtype: DType, scope: Scope) -> Result<()> {
    let fx = Fixture::load(arch)?;
    ensure!(
        fx.meta.get("compute_dtype").map(String::as_str) == Some("float64"),
        "{arch}: fixture was not computed in float64; regenerate it"
    );
    let mut rep = Report::new(&format!("{arch} ({dtype:?} engine)"));
    let x = fx.input.to_dtype(dtype)?;

    // The model has exactly the fixture's parameters and buffers (load() rejects extra or
    // missing names and wrong shapes), and the parameter count matches.
    let model = fx.fresh_model(dtype)?;
    ensure!(
        model.num_mix_points() == fx.mix_points,
        "{arch}: {} mix points, fixture {}",
        model.num_mix_points(),
        fx.mix_points
    );
    let trainable: usize = fx.meta["trainable_params"].parse()?;
    ensure!(
        model.store.num_trainable() == trainable,
        "{arch}: {} trainable, fixture {trainable}",
        model.store.num_trainable()
    );
    let param_names: BTreeSet<String> = model.store.params().into_iter().map(|(n, _)| n).collect();
    let buffer_names: BTreeSet<String> =
        model.store.buffers().into_iter().map(|(n, _)| n).collect();

    // Logits in train mode, and the running statistics that forward leaves behind.
    let logits = forward(&model, &x, true, None)?;
    rep.check(
        "logits.train",
        vec![(
            "logits.train".into(),
            logits,
            fx.get("logits.train")?.clone(),
        )],
    )?;
    let want = fx.prefixed("bn_after_train_forward");
    ensure!(
        want.keys().cloned().collect::<BTreeSet<_>>() == buffer_names,
        "{arch}: buffer names differ"
    );
    rep.check(
        "bn_after_train_forward",
        model
            .store
            .buffers()
            .into_iter()
            .map(|(n, v)| {
                (
                    format!("bn_after_train_forward.{n}"),
                    v.as_tensor().clone(),
                    want[&n].clone(),
                )
            })
            .collect(),
    )?;

    // Logits in eval mode (running statistics of init).
    let model = fx.fresh_model(dtype)?;
    let logits = forward(&model, &x, false, None)?;
    rep.check(
        "logits.eval",
        vec![("logits.eval".into(), logits, fx.get("logits.eval")?.clone())],
    )?;

    // Losses of every case; gradients of the exported pairs.
    let mix_m = format!("mix{}", fx.m);
    let grad_pairs: BTreeSet<(String, &str)> = [
        ("none".to_string(), "bce_softmax"),
        ("mix0".to_string(), "bce_softmax"),
        (mix_m.clone(), "bce_softmax"),
        (mix_m.clone(), "soft_cross_entropy"),
    ]
    .into_iter()
    .collect();
    let input_grad_pairs: BTreeSet<(String, &str)> = [
        ("none".to_string(), "bce_softmax"),
        (mix_m.clone(), "bce_softmax"),
    ]
    .into_iter()
    .collect();
    for (case, k) in fx.cases() {
        let plan = k.map(|k| fx.plan(k, fx.lambda));
        for (lname, kind) in LOSSES {
            let model = fx.fresh_model(dtype)?;
            let xv = Var::from_tensor(&x)?;
            let (logits, l) = case_loss(&fx, &model, xv.as_tensor(), plan.as_ref(), kind)?;
            let tag = format!("loss.{case}.{lname}");
            rep.check(
                "loss",
                vec![(tag.clone(), l.clone(), fx.get(&tag)?.clone())],
            )?;
            if lname == "bce_softmax" && k.is_some() {
                let tag = format!("logits.{case}");
                rep.check(
                    "logits.mix<k> (extra)",
                    vec![(tag.clone(), logits, fx.get(&tag)?.clone())],
                )?;
            }
            if scope == Scope::Forward {
                continue;
            }
            let pair = (case.clone(), lname);
            let want_grads = grad_pairs.contains(&pair);
            let want_input = input_grad_pairs.contains(&pair);
            if !(want_grads || want_input) {
                continue;
            }
            let grads = l.backward()?;
            if want_grads {
                let prefix = format!("grad.{case}.{lname}");
                let want = fx.prefixed(&prefix);
                ensure!(
                    want.keys().cloned().collect::<BTreeSet<_>>() == param_names,
                    "{arch}: {prefix}.* names differ from the parameters"
                );
                let mut items = Vec::new();
                for (n, v) in model.store.params() {
                    let g = grads
                        .get(v.as_tensor())
                        .ok_or_else(|| anyhow!("{arch}: no gradient for {n} ({case}, {lname})"))?;
                    items.push((format!("{prefix}.{n}"), g.clone(), want[&n].clone()));
                }
                rep.check("grad", items)?;
            }
            if want_input {
                let tag = format!("input_grad.{case}.{lname}");
                let g = grads
                    .get(xv.as_tensor())
                    .ok_or_else(|| anyhow!("{arch}: no input gradient ({case}, {lname})"))?;
                rep.check(
                    "input_grad",
                    vec![(tag.clone(), g.clone(), fx.get(&tag)?.clone())],
                )?;
            }
        }
    }
    // Every loss case of the fixture was computed.
    let n_losses = fx.tensors.keys().filter(|k| k.starts_with("loss.")).count();
    ensure!(
        n_losses == fx.cases().len() * LOSSES.len(),
        "{arch}: fixture has {n_losses} losses"
    );

    if scope == Scope::Forward {
        rep.finish();
        return Ok(());
    }

    // Two SGD steps on mixM + bce_softmax, each with a fresh train forward.
    let (model, opt, losses) = fx.run_sgd(dtype, fx.sgd_config()?)?;
    let params = model.store.params();
    let n = losses.len();
    rep.check(
        "sgd.loss",
        vec![(
            "sgd.loss".into(),
            Tensor::from_vec(losses, n, &Device::Cpu)?,
            fx.get("sgd.loss")?.clone(),
        )],
    )?;
    let want = fx.prefixed("sgd.param");
    rep.check(
        "sgd.param",
        params
            .iter()
            .map(|(n, v)| {
                (
                    format!("sgd.param.{n}"),
                    v.as_tensor().clone(),
                    want[n].clone(),
                )
            })
            .collect(),
    )?;
    let want = fx.prefixed("sgd.momentum");
    let bufs = opt.buffers();
    ensure!(
        bufs.keys().cloned().collect::<BTreeSet<_>>() == param_names,
        "{arch}: momentum buffers missing"
    );
    rep.check(
        "sgd.momentum",
        bufs.iter()
            .map(|(n, b)| (format!("sgd.momentum.{n}"), b.clone(), want[n].clone()))
            .collect(),
    )?;
    let want = fx.prefixed("sgd.buffer");
    rep.check(
        "sgd.buffer",
        model
            .store
            .buffers()
            .into_iter()
            .map(|(n, v)| {
                (
                    format!("sgd.buffer.{n}"),
                    v.as_tensor().clone(),
                    want[&n].clone(),
                )
            })
            .collect(),
    )?;

    rep.finish();
    Ok(())
}

/// The exact semantic check (f64 engine, every quantity) and the f32 engine's forward.
fn matches_reference(arch: &str) -> Result<()> {
    compare_architecture(arch, DType::F64, Scope::All)?;
    compare_architecture(arch, DType::F32, Scope::Forward)
}

#[test]
fn preactresnet18_matches_pytorch_reference() -> Result<()> {
    matches_reference("preactresnet18")
}

#[test]
fn preactresnet34_matches_pytorch_reference() -> Result<()> {
    matches_reference("preactresnet34")
}

#[test]
fn wrn28_10_matches_pytorch_reference() -> Result<()> {
    matches_reference("wrn28_10")
}

#[test]
fn mlp_matches_pytorch_reference() -> Result<()> {
    matches_reference("mlp")
}

/// The tolerance is meaningful: a slightly wrong λ (0.31 instead of 0.3), the wrong mix point,
/// or the wrong partner permutation each move the loss of the mixed case by more than 1e-4
/// relative, so the comparison above would catch them.
#[test]
fn comparison_detects_wrong_lambda_mix_point_and_permutation() -> Result<()> {
    for arch in ["mlp", "preactresnet18"] {
        let fx = Fixture::load(arch)?;
        let m = fx.m;
        let (_, kind) = LOSSES[0];
        let want = fx.get(&format!("loss.mix{m}.bce_softmax"))?.clone();
        let rel = |plan: MixPlan| -> Result<f64> {
            let model = fx.fresh_model(DType::F32)?;
            let (_, l) = case_loss(&fx, &model, &fx.input, Some(&plan), kind)?;
            Ok(group_errors(&[("loss".into(), l, want.clone())])?[0].1)
        };
        let right = rel(fx.plan(m, fx.lambda))?;
        ensure!(right <= TOL, "{arch}: the correct plan is off by {right:e}");
        let lam = rel(fx.plan(m, 0.31))?;
        let point = rel(fx.plan(m - 1, fx.lambda))?;
        let mut rev = fx.plan(m, fx.lambda);
        rev.perm = (0..fx.perm.len() as u32)
            .map(|i| fx.perm[fx.perm.len() - 1 - i as usize])
            .collect();
        let perm = if rev.perm != fx.perm {
            rel(rev)?
        } else {
            f64::INFINITY
        };
        println!(
            "{arch}: loss.mix{m}.bce_softmax rel err: correct {right:.2e}, λ=0.31 {lam:.2e}, mix point {} {point:.2e}, other perm {perm:.2e}",
            m - 1
        );
        for (what, e) in [
            ("λ = 0.31", lam),
            ("wrong mix point", point),
            ("wrong permutation", perm),
        ] {
            if e <= TOL {
                bail!(
                    "{arch}: {what} changes the loss only by rel {e:e} ≤ {TOL:e}: the tolerance cannot detect it"
                );
            }
        }
    }
    Ok(())
}

/// Worst relative error of the parameters and momentum buffers after the fixture's SGD steps, with `cfg` in place of
/// the fixture's optimizer settings (f64 engine).
fn sgd_param_error(fx: &Fixture, cfg: SgdConfig) -> Result<f64> {
    let (model, opt, _) = fx.run_sgd(DType::F64, cfg)?;
    let params = model.store.params();
    let want = fx.prefixed("sgd.param");
    let items: Vec<(String, Tensor, Tensor)> = params
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone(), want[n].clone()))
        .collect();
    let want = fx.prefixed("sgd.momentum");
    let buffers: Vec<(String, Tensor, Tensor)> = opt
        .buffers()
        .iter()
        .map(|(n, b)| (n.clone(), b.clone(), want[n].clone()))
        .collect();
    Ok(group_errors(&items)?
        .into_iter()
        .chain(group_errors(&buffers)?)
        .map(|(_, e)| e)
        .fold(0.0, f64::max))
}

/// The optimizer check is meaningful: plain momentum instead of Nesterov, or no weight decay,
/// each miss the fixture's parameters and momentum buffers by far more than the tolerance,
/// while the fixture's own settings match them.
#[test]
fn comparison_detects_wrong_optimizer_rule() -> Result<()> {
    for arch in ["mlp", "preactresnet18", "wrn28_10"] {
        let fx = Fixture::load(arch)?;
        let cfg = fx.sgd_config()?;
        let right = sgd_param_error(&fx, cfg.clone())?;
        ensure!(
            right <= TOL,
            "{arch}: the fixture's own settings are off by {right:e}"
        );
        let no_nesterov = sgd_param_error(
            &fx,
            SgdConfig {
                nesterov: false,
                ..cfg.clone()
            },
        )?;
        let no_decay = sgd_param_error(
            &fx,
            SgdConfig {
                weight_decay: 0.0,
                ..cfg.clone()
            },
        )?;
        println!(
            "{arch}: sgd.param/momentum rel err: correct {right:.2e}, without Nesterov {no_nesterov:.2e}, without weight decay {no_decay:.2e}"
        );
        ensure!(
            no_nesterov > TOL,
            "{arch}: dropping Nesterov is not detected"
        );
        ensure!(
            no_decay > TOL,
            "{arch}: dropping weight decay is not detected"
        );
    }
    Ok(())
}
