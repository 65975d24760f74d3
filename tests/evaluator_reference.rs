//! The evaluators against independent expected values: `tools/reference/make_eval_fixtures.py`
//! (numpy) writes `tests/fixtures/reference/sv_classes.json` (per-class singular values at mix
//! point 0, where the representation is the normalised input) and `fgsm_pixel.json` (FGSM with
//! ε > 0 on a one-hidden-layer MLP whose input gradient numpy computes by hand). The
//! deformation draws are checked for range, symmetry, independence across images and
//! determinism per seed, and the evaluator's warped images against the draw they should use.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use mixbench::data::{DatasetProvenance, ImageDataset, Preprocessing, Split};
use mixbench::eval::deformation::Deformation;
use mixbench::eval::fgsm::{AttackLoss, Fgsm, Space, input_gradient};
use mixbench::eval::{EvalContext, EvalOutput, registry};
use mixbench::model::{InputSpec, Model};
use rand::Rng;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/reference/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn vec<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<T> {
    serde_json::from_value(v.clone()).unwrap()
}

fn split(v: &Value) -> Split {
    Split {
        images: vec(&v["images"]),
        labels: vec(&v["labels"]),
    }
}

fn dataset(shape: &[usize], classes: usize, train: Split, test: Split) -> ImageDataset {
    ImageDataset {
        channels: shape[0],
        height: shape[1],
        width: shape[2],
        num_classes: classes,
        train,
        test,
        provenance: DatasetProvenance {
            name: "fixture".into(),
            fingerprint: String::new(),
            files: vec![],
            notes: vec![],
        },
        latent: None,
    }
}

fn preprocessing(v: &Value) -> Preprocessing {
    Preprocessing {
        mean: vec(&v["mean"]),
        std: vec(&v["std"]),
        crop_padding: 0,
        hflip: false,
    }
}

fn evaluate(ctx: &EvalContext, name: &str, p: &Value) -> EvalOutput {
    let ev = (registry::get(name).unwrap().build)(p.as_object().unwrap()).unwrap();
    ev.evaluate(ctx).unwrap()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-10 * want.abs().max(1.0),
        "{what}: {got} vs numpy {want}"
    );
}

/// Per class, the evaluator decomposes exactly that class's rows (capped at `per_class`, the
/// first ones in split order), centred per column when asked, on the split asked for; its
/// metrics are the means of the per-class top and rest sums over the classes present (class 3
/// has no test image) and the top and rest sum of all those rows together.
#[test]
fn singular_values_per_class_match_numpy() {
    assert_eq!(sv_cases(|_| true), 8);
}

/// On the training split, centred, class 1's two rows are rank 1: the one-sided Jacobi
/// rotations reported non-convergence there until negligible columns counted as converged.
#[test]
fn singular_values_centred_rank_deficient_class_matches_numpy() {
    let rank_deficient =
        |p: &Value| p["split"] == "train" && p["center"] == true && p.get("per_class").is_none();
    assert_eq!(sv_cases(rank_deficient), 1);
}

/// Checks the fixture's cases that `select` picks; returns how many.
fn sv_cases(select: impl Fn(&Value) -> bool) -> usize {
    let f = fixture("sv_classes.json");
    let shape: Vec<usize> = vec(&f["shape"]);
    let classes = f["num_classes"].as_u64().unwrap() as usize;
    let data = dataset(
        &shape,
        classes,
        split(&f["splits"]["train"]),
        split(&f["splits"]["test"]),
    );
    let pre = preprocessing(&f["preprocessing"]);
    // Any model: at mix point 0 the representation is the normalised input.
    let model = Model::build(
        "mlp",
        json!({"hidden": [5]}).as_object().unwrap(),
        InputSpec {
            channels: shape[0],
            height: shape[1],
            width: shape[2],
            classes,
        },
        0,
        &Device::Cpu,
    )
    .unwrap();
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 3,
    };
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    let mut checked = 0;
    for case in cases {
        let p = &case["params"];
        if !select(p) {
            continue;
        }
        checked += 1;
        let out = evaluate(&ctx, "singular_values", p);
        assert_eq!(out.n as u64, case["n"].as_u64().unwrap(), "{p}");
        assert_eq!(out.non_finite, 0, "{p}");
        let want: BTreeMap<String, f64> = vec_map(&case["metrics"]);
        assert_eq!(
            out.metrics.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{p}"
        );
        for (k, w) in &want {
            close(out.metrics[k], *w, &format!("{p} {k}"));
        }
        let arrays = case["arrays"].as_object().unwrap();
        let mut want_keys: Vec<&String> = arrays.keys().collect();
        want_keys.sort();
        assert_eq!(
            out.arrays.keys().collect::<Vec<_>>(),
            want_keys,
            "{p}: which classes have a spectrum"
        );
        for (k, w) in arrays {
            let w: Vec<f64> = vec(w);
            let g = &out.arrays[k];
            assert_eq!(g.len(), w.len(), "{p} {k}: {g:?} vs numpy {w:?}");
            for (a, b) in g.iter().zip(&w) {
                // Centring leaves one singular value at rounding level: absolute tolerance.
                assert!(
                    (a - b).abs() <= 1e-10 * w[0].max(1.0),
                    "{p} {k}: {g:?} vs numpy {w:?}"
                );
            }
        }
    }
    checked
}

fn vec_map(v: &Value) -> BTreeMap<String, f64> {
    serde_json::from_value(v.clone()).unwrap()
}

/// The fixture's MLP in f64 and its dataset (the test split holds the fixture's images).
fn fgsm_setup(f: &Value) -> (Model, ImageDataset, Preprocessing) {
    let shape: Vec<usize> = vec(&f["shape"]);
    let classes = f["num_classes"].as_u64().unwrap() as usize;
    let hidden = f["param_shapes"]["fc0.weight"][0].as_u64().unwrap();
    let model = Model::build_with_dtype(
        "mlp",
        json!({"hidden": [hidden], "activation": "relu"})
            .as_object()
            .unwrap(),
        InputSpec {
            channels: shape[0],
            height: shape[1],
            width: shape[2],
            classes,
        },
        0,
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    let mut named = BTreeMap::new();
    for (k, v) in f["params"].as_object().unwrap() {
        let dims: Vec<usize> = vec(&f["param_shapes"][k]);
        let t = Tensor::from_vec(vec::<f64>(v), dims, &Device::Cpu).unwrap();
        named.insert(k.clone(), t);
    }
    model.store.load(&named).unwrap();
    let test = Split {
        images: vec(&f["images"]),
        labels: vec(&f["labels"]),
    };
    let data = dataset(&shape, classes, test.clone(), test);
    (model, data, preprocessing(&f["preprocessing"]))
}

/// `perturb` against numpy's x' = clip(pixel + ε·sign(∇ₓL), 0, 1) mapped back to normalised
/// units (pixel space, per-channel mean and std), x + ε·sign(∇ₓL) (normalised space), and the
/// evaluator's accuracy against the examples numpy finds still correct.
#[test]
fn fgsm_with_positive_epsilon_matches_numpy() {
    let f = fixture("fgsm_pixel.json");
    let (model, data, pre) = fgsm_setup(&f);
    let shape: Vec<usize> = vec(&f["shape"]);
    let n = data.test.len();
    let x = Tensor::from_vec(
        vec::<f64>(&f["x"]),
        (n, shape[0], shape[1], shape[2]),
        &Device::Cpu,
    )
    .unwrap();
    let labels = &data.test.labels;
    let classes = data.num_classes;
    let g: Vec<f64> = input_gradient(&model, &x, labels, classes, AttackLoss::BceSoftmax)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want_sign: Vec<f64> = vec(&f["grad_sign"]);
    let signs: Vec<f64> = g.iter().map(|v| v.signum()).collect();
    assert_eq!(signs, want_sign, "input gradient signs");
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 5,
    };
    let clean = evaluate(&ctx, "clean", &json!({}));
    let clean_correct: Vec<bool> = vec(&f["clean_correct"]);
    let clean_acc = 100.0 * clean_correct.iter().filter(|&&c| c).count() as f64 / n as f64;
    close(clean.metrics["top1_acc"], clean_acc, "clean accuracy");
    for case in f["cases"].as_array().unwrap() {
        let p = &case["params"];
        let fg = Fgsm {
            epsilon: p["epsilon"].as_f64().unwrap(),
            loss: AttackLoss::BceSoftmax,
            space: match p["space"].as_str().unwrap() {
                "pixel" => Space::Pixel,
                _ => Space::Normalized,
            },
            clip: p["clip"].as_bool().unwrap(),
        };
        let adv: Vec<f64> = fg
            .perturb(&model, &x, labels, classes, &pre)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let want: Vec<f64> = vec(&case["adv"]);
        for (i, (a, b)) in adv.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12,
                "{p}: element {i} (image {}, channel {}): {a} vs numpy {b}",
                i / 12,
                (i % 12) / 4
            );
        }
        let out = evaluate(&ctx, "fgsm", p);
        assert_eq!(out.n, n);
        close(
            out.metrics["accuracy"],
            case["accuracy"].as_f64().unwrap(),
            &format!("{p} accuracy"),
        );
        assert!(out.metrics["accuracy"] < clean_acc, "{p}: nothing flipped");
    }
}

fn test_images(n: usize, c: usize, h: usize, w: usize) -> Split {
    Split {
        images: (0..n * c * h * w)
            .map(|i| ((i as u64 * 2654435761 + 13) % 251) as u8)
            .collect(),
        labels: vec![0; n],
    }
}

/// The angle image `i` gets: d·(2u − 1), u the first f64 of stream (seed, kind, i), rebuilt
/// here from the stream rather than through `Deformation::draw`.
fn drawn(seed: u64, purpose: &str, i: u64, half_width: f64) -> f64 {
    let u: f64 = mixbench::rng::stream(seed, purpose, i).random();
    half_width * (2.0 * u - 1.0)
}

/// Rotation and shear draws: within [−d, d], symmetric (mean within 4 standard errors of 0,
/// both signs about equally often over 2,000 images), spread over the range, and each image's
/// warp is the one of its own draw.
#[test]
fn deformation_draws_are_uniform_symmetric_and_used_per_image() {
    for (purpose, d) in [("deform/rotation", 30.0), ("deform/shear", 0.5)] {
        let n = 2000u64;
        let a: Vec<f64> = (0..n).map(|i| drawn(11, purpose, i, d)).collect();
        assert!(a.iter().all(|v| v.abs() <= d), "{purpose}: out of range");
        // U(−d, d) has standard deviation d/√3; the mean of n draws has d/√(3n).
        let mean = a.iter().sum::<f64>() / n as f64;
        let se = d / (3.0 * n as f64).sqrt();
        assert!(mean.abs() < 4.0 * se, "{purpose}: mean {mean}, se {se}");
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let want = d * d / 3.0;
        assert!(
            (var - want).abs() < 0.1 * want,
            "{purpose}: variance {var} vs {want}"
        );
        let pos = a.iter().filter(|v| **v > 0.0).count() as f64;
        assert!((pos / n as f64 - 0.5).abs() < 0.05, "{purpose}: {pos} > 0");
        assert!(a.iter().any(|v| *v > 0.9 * d) && a.iter().any(|v| *v < -0.9 * d));
    }
    // The evaluator warps image i with the draw of stream (seed, kind, i): checked against
    // `warp_nearest` with that angle (the warp itself is checked against scipy in
    // `tests/evaluation.rs`).
    let (c, h, w) = (3usize, 9usize, 7usize);
    let shape = mixbench::data::batch::ImageShape { c, h, w };
    let len = c * h * w;
    let images = test_images(40, c, h, w);
    for (def, purpose, d) in [
        (
            Deformation::Rotation { degrees: 40.0 },
            "deform/rotation",
            40.0,
        ),
        (Deformation::Shear { radians: 0.6 }, "deform/shear", 0.6),
    ] {
        let out = def.apply(&images, shape, 5);
        assert_eq!(out.labels, images.labels);
        let mut changed = 0;
        for i in 0..40 {
            let v = drawn(5, purpose, i as u64, d);
            let a = match def {
                Deformation::Rotation { .. } => mixbench::eval::affine::Affine::rotation(v, h, w),
                _ => mixbench::eval::affine::Affine::shear(v, h, w),
            };
            let mut want = vec![0u8; len];
            mixbench::eval::affine::warp_nearest(
                &images.images[i * len..(i + 1) * len],
                c,
                h,
                w,
                &a,
                &mut want,
            );
            assert_eq!(
                &out.images[i * len..(i + 1) * len],
                &want[..],
                "{def:?}: image {i} (drawn {v})"
            );
            changed += (want != images.images[i * len..(i + 1) * len]) as usize;
        }
        assert!(
            changed >= 35,
            "{def:?}: only {changed} of 40 images changed"
        );
    }
}

/// Different images get different draws, image i's draw does not depend on how many images
/// there are, the same seed gives the same deformed split and another seed another one.
#[test]
fn deformation_draws_are_per_image_and_per_seed() {
    let (c, h, w) = (1usize, 16usize, 16usize);
    let shape = mixbench::data::batch::ImageShape { c, h, w };
    let len = c * h * w;
    // The same image repeated: any difference between outputs comes from the draws.
    let one = test_images(1, c, h, w).images;
    let same = |n: usize| Split {
        images: one.repeat(n),
        labels: vec![0; n],
    };
    for def in [
        Deformation::Rotation { degrees: 45.0 },
        Deformation::Shear { radians: 0.7 },
    ] {
        let long = def.apply(&same(30), shape, 3);
        let short = def.apply(&same(7), shape, 3);
        assert_eq!(
            &long.images[..7 * len],
            &short.images[..],
            "{def:?}: the first images' draws depend on the split's size"
        );
        let distinct: std::collections::BTreeSet<&[u8]> = long.images.chunks(len).collect();
        assert!(
            distinct.len() >= 15,
            "{def:?}: only {} distinct warps of 30 images",
            distinct.len()
        );
        assert_eq!(def.apply(&same(30), shape, 3), long, "{def:?}: same seed");
        let other = def.apply(&same(30), shape, 4);
        let differ = long
            .images
            .chunks(len)
            .zip(other.images.chunks(len))
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ >= 15, "{def:?}: seed 4 changed only {differ} of 30");
    }
}

/// One step per epoch with a learning rate that overflows the weights: the step's loss (taken
/// before the update) is finite, the test outputs after it are not, so training stops at the
/// epoch's evaluation: `Divergence { epoch: 0, step: None, .. }`, the epoch still logged.
#[test]
fn non_finite_test_outputs_stop_training_at_the_evaluation() {
    use mixbench::data::DatasetSource;
    use mixbench::data::generated::synthetic::SyntheticSource;
    let src = SyntheticSource;
    let data = src
        .load(
            &json!({"classes": 4, "train_size": 16, "test_size": 12, "size": 8}),
            &mixbench::data::LoadOptions {
                data_dir: "data".into(),
                allow_unverified: false,
                progress: None,
            },
        )
        .unwrap();
    let pre = src.default_preprocessing();
    let model = Model::build(
        "mlp",
        json!({"hidden": [32]}).as_object().unwrap(),
        InputSpec {
            channels: 3,
            height: 8,
            width: 8,
            classes: 4,
        },
        0,
        &Device::Cpu,
    )
    .unwrap();
    let reg = mixbench::regularizer::registry::build("none", &Default::default()).unwrap();
    let cfg = mixbench::train::TrainConfig {
        epochs: 3,
        batch_size: 16,
        loss: mixbench::scoring::LossKind::BceSoftmax,
        optimizer: mixbench::train::SgdConfig {
            lr: 1.0e36,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
        .into(),
        schedule: Default::default(),
        eval_every: 1,
        eval_batch_size: 5,
        checkpoint_every: 0,
        checkpoint_minutes: 0.0,
    };
    let out = mixbench::train::train(
        &model,
        &data,
        &pre,
        reg.as_ref(),
        &cfg,
        0,
        None,
        &mut mixbench::train::SilentObserver,
    )
    .unwrap();
    let d = out.divergence.expect("training should have diverged");
    assert_eq!((d.epoch, d.step), (0, None), "{d:?}");
    assert!(
        d.reason.ends_with("of 12 test outputs are NaN or infinite"),
        "{}",
        d.reason
    );
    assert_eq!(out.epochs.len(), 1);
    assert!(out.epochs[0].train_loss.is_finite());
    let test = out.epochs[0].test.as_ref().unwrap();
    assert!(test.non_finite > 0 && test.n == 12, "{test:?}");
    assert!(out.final_metrics.is_none());
}

/// PGD against PyTorch (`tools/reference/make_pgd_fixture.py`, float64) on the FGSM fixture's
/// model: unbounded and ε-ball projected, normalised and pixel space with clipping, both losses.
/// The adversarial images agree to 1e-12 and the evaluator's accuracy is PyTorch's.
#[test]
fn pgd_matches_pytorch() {
    let src = fixture("fgsm_pixel.json");
    let f = fixture("pgd.json");
    let (model, data, pre) = fgsm_setup(&src);
    let shape: Vec<usize> = vec(&src["shape"]);
    let n = data.test.len();
    let x = Tensor::from_vec(
        vec::<f64>(&src["x"]),
        (n, shape[0], shape[1], shape[2]),
        &Device::Cpu,
    )
    .unwrap();
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 5,
    };
    let clean: Vec<bool> = vec(&f["clean_correct"]);
    for case in f["cases"].as_array().unwrap() {
        let p = &case["params"];
        assert_eq!(
            case["ambiguous_signs"], 0,
            "the fixture has a near-zero gradient: {p}"
        );
        let mut params = p.clone();
        if p["epsilon"].is_null() {
            params.as_object_mut().unwrap().remove("epsilon");
        }
        let attack = mixbench::eval::pgd::Pgd {
            steps: p["steps"].as_u64().unwrap() as usize,
            step_size: p["step_size"].as_f64().unwrap(),
            epsilon: p["epsilon"].as_f64(),
            random_start: false,
            loss: match p["loss"].as_str().unwrap() {
                "cross_entropy" => AttackLoss::CrossEntropy,
                _ => AttackLoss::BceSoftmax,
            },
            space: match p["space"].as_str().unwrap() {
                "pixel" => Space::Pixel,
                _ => Space::Normalized,
            },
            clip: p["clip"].as_bool().unwrap(),
        };
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let adv: Vec<f64> = attack
            .perturb(
                &model,
                &x,
                &data.test.labels,
                data.num_classes,
                &pre,
                &mut rng,
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let want: Vec<f64> = vec(&case["adv"]);
        for (i, (a, b)) in adv.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12,
                "{p} element {i}: {a} vs PyTorch {b}"
            );
        }
        // An attack never helps; the evaluator scores what PyTorch scored.
        let correct: Vec<bool> = vec(&case["correct"]);
        let right = correct.iter().filter(|&&c| c).count();
        assert!(right <= clean.iter().filter(|&&c| c).count(), "{p}");
        let out = evaluate(&ctx, "pgd", &params);
        close(
            out.metrics["accuracy"],
            100.0 * right as f64 / n as f64,
            "pgd accuracy",
        );
    }
    // A random start: inside the ε-ball, one draw per element, the same for the same stream.
    let attack = mixbench::eval::pgd::Pgd {
        steps: 1,
        step_size: 0.01,
        epsilon: Some(0.05),
        random_start: true,
        loss: AttackLoss::BceSoftmax,
        space: Space::Normalized,
        clip: false,
    };
    let run = |seed: u64| -> Vec<f64> {
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let adv = attack.perturb(
            &model,
            &x,
            &data.test.labels,
            data.num_classes,
            &pre,
            &mut rng,
        );
        let adv: Vec<f64> = adv.unwrap().flatten_all().unwrap().to_vec1().unwrap();
        adv.iter()
            .zip(vec::<f64>(&src["x"]))
            .map(|(a, b)| a - b)
            .collect()
    };
    let (d0, d1) = (run(0), run(1));
    assert_eq!(d0, run(0));
    assert_ne!(d0, d1);
    assert!(d0.iter().all(|d| d.abs() <= 0.05 + 1e-12), "{d0:?}");
    // Without a random start every change would be exactly ±0.01 (one step).
    let off_grid = d0.iter().filter(|d| (d.abs() - 0.01).abs() > 1e-9).count();
    assert!(off_grid > d0.len() / 2, "{d0:?}");
}

/// Two things the 2×2 fixture cannot see: with images of 3×2 pixels (6 per plane, where a
/// plane size of h + w = 5 would shift the channels), each pixel-space step is divided by its own
/// channel's std; and a pixel whose gradient is exactly zero (its input weights zeroed) does not
/// move in either space (torch.sign(0) = 0).
#[test]
fn fgsm_steps_use_each_pixels_channel_and_leave_zero_gradients_alone() {
    let (c, h, w, classes, hidden) = (3usize, 3usize, 2usize, 3usize, 5usize);
    let len = c * h * w;
    let model = Model::build_with_dtype(
        "mlp",
        json!({"hidden": [hidden], "activation": "relu"})
            .as_object()
            .unwrap(),
        InputSpec {
            channels: c,
            height: h,
            width: w,
            classes,
        },
        7,
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    // Zero the first-layer weights of input 4 (channel 0, row 2, column 0): its gradient is 0.
    let mut named = BTreeMap::new();
    let mut wts: Vec<f64> = Vec::new();
    for (name, v) in model
        .store
        .params()
        .into_iter()
        .chain(model.store.buffers())
    {
        if name == "fc0.weight" {
            wts = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for j in 0..hidden {
                wts[j * len + 4] = 0.0;
            }
            named.insert(
                name,
                Tensor::from_vec(wts.clone(), (hidden, len), &Device::Cpu).unwrap(),
            );
        } else {
            named.insert(name, v.as_tensor().copy().unwrap());
        }
    }
    assert_eq!(wts.len(), hidden * len, "fc0.weight found");
    model.store.load(&named).unwrap();
    let pre = Preprocessing {
        mean: vec![0.5, 0.25, 0.75],
        std: vec![0.25, 0.5, 0.125],
        crop_padding: 0,
        hflip: false,
    };
    let n = 4;
    let xs: Vec<f64> = (0..n * len).map(|i| ((i as f64) * 0.37).sin()).collect();
    let x = Tensor::from_vec(xs.clone(), (n, c, h, w), &Device::Cpu).unwrap();
    let labels = [0u32, 1, 2, 1];
    let g: Vec<f64> = input_gradient(&model, &x, &labels, classes, AttackLoss::BceSoftmax)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for (space, eps) in [(Space::Pixel, 0.1), (Space::Normalized, 0.1)] {
        let f = Fgsm {
            epsilon: eps,
            loss: AttackLoss::BceSoftmax,
            space,
            clip: false,
        };
        let adv: Vec<f64> = f
            .perturb(&model, &x, &labels, classes, &pre)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let one_step = mixbench::eval::pgd::Pgd {
            steps: 1,
            step_size: eps,
            epsilon: None,
            random_start: false,
            loss: AttackLoss::BceSoftmax,
            space,
            clip: false,
        };
        let mut rng = mixbench::rng::stream(0, "pgd", 0);
        let pgd: Vec<f64> = one_step
            .perturb(&model, &x, &labels, classes, &pre, &mut rng)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for i in 0..n * len {
            let ch = (i / (h * w)) % c;
            let sign = if g[i] > 0.0 {
                1.0
            } else if g[i] < 0.0 {
                -1.0
            } else {
                0.0
            };
            let want = match space {
                Space::Pixel => xs[i] + eps * sign / pre.std[ch] as f64,
                Space::Normalized => xs[i] + eps * sign,
            };
            assert!(
                (adv[i] - want).abs() < 1e-12,
                "{space:?} element {i} (channel {ch}): {} vs {want}",
                adv[i]
            );
            if i % len == 4 {
                assert_eq!(g[i], 0.0, "input 4 has no weights");
                assert_eq!(adv[i], xs[i], "{space:?}: a zero gradient moved pixel {i}");
            }
            // One unbounded PGD step of size ε is this FGSM step: its pixel units go through
            // each pixel's own channel too.
            assert!(
                (pgd[i] - want).abs() < 1e-12,
                "PGD {space:?} element {i} (channel {ch}): {} vs {want}",
                pgd[i]
            );
        }
    }
    // A random start adds U(−ε, ε) draws from the evaluation's stream, element by element, to
    // the clean input (a step of 1e-200 then changes nothing representable).
    let start = mixbench::eval::pgd::Pgd {
        steps: 1,
        step_size: 1e-200,
        epsilon: Some(0.05),
        random_start: true,
        loss: AttackLoss::BceSoftmax,
        space: Space::Normalized,
        clip: false,
    };
    let mut rng = mixbench::rng::stream(0, "pgd", 0);
    let got: Vec<f64> = start
        .perturb(&model, &x, &labels, classes, &pre, &mut rng)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut draws = mixbench::rng::stream(0, "pgd", 0);
    for (i, g) in got.iter().enumerate() {
        let want = xs[i] + draws.random_range(-0.05..=0.05);
        assert!((g - want).abs() < 1e-15, "element {i}: {g} vs {want}");
        assert!(g != &xs[i]);
    }
}
