//! Evaluations of trained models: FGSM against a PyTorch fixture and finite differences,
//! ε = 0 against the clean metrics, deformations against scipy, training/evaluation hashes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mixbench::data::Preprocessing;
use mixbench::eval::affine::{Affine, warp_nearest};
use mixbench::eval::fgsm::{AttackLoss, Fgsm, Space, input_gradient};
use mixbench::model::{InputSpec, Model};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/reference/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn metadata(path: &str) -> HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

fn vec_f64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// The fixture's model `m` in f64 with its parameters and buffers loaded.
fn fixture_model(t: &HashMap<String, Tensor>, m: &str) -> (Model, Tensor, Vec<u32>) {
    let x = t[&format!("{m}/x")].to_dtype(DType::F64).unwrap();
    let y: Vec<u32> = t[&format!("{m}/y")]
        .to_dtype(DType::I64)
        .unwrap()
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as u32)
        .collect();
    let d = x.dims4().unwrap();
    let params = if m == "mlp" {
        let meta = metadata(&fixture("mlp.safetensors"));
        let hidden: Vec<usize> = meta["hidden"]
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        let bottleneck: usize = meta["bottleneck"].parse().unwrap();
        json!({"hidden": hidden, "activation": "leaky_relu", "bottleneck": bottleneck})
    } else {
        json!({"width": 0.03125})
    };
    let model = Model::build_with_dtype(
        m,
        params.as_object().unwrap(),
        InputSpec {
            channels: d.1,
            height: d.2,
            width: d.3,
            classes: 10,
        },
        0,
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    let prefix = format!("{m}/");
    let mut named = BTreeMap::new();
    for (k, v) in t {
        if let Some(rest) = k.strip_prefix(&prefix)
            && let Some(n) = rest
                .strip_prefix("param/")
                .or_else(|| rest.strip_prefix("buffer/"))
        {
            named.insert(n.to_string(), v.clone());
        }
    }
    model.store.load(&named).unwrap();
    (model, x, y)
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn fgsm_matches_the_pytorch_fixture() {
    let t: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture("fgsm.safetensors"), &Device::Cpu)
            .unwrap()
            .into_iter()
            .collect();
    let pre = Preprocessing::centered(3);
    for m in ["mlp", "preactresnet18"] {
        let (model, x, y) = fixture_model(&t, m);
        let clean = vec_f64(&model.forward(&x, false).unwrap());
        assert!(
            rel(&clean, &vec_f64(&t[&format!("{m}/logits")])) < 1e-5,
            "{m} logits"
        );
        for (lname, loss) in [
            ("bce_softmax", AttackLoss::BceSoftmax),
            ("cross_entropy", AttackLoss::CrossEntropy),
        ] {
            let g = vec_f64(&input_gradient(&model, &x, &y, 10, loss).unwrap());
            let want_g = vec_f64(&t[&format!("{m}/{lname}/input_grad")]);
            let r = rel(&g, &want_g);
            assert!(r < 1e-5, "{m}/{lname}: input gradient rel error {r}");
            let want_sign = vec_f64(&t[&format!("{m}/{lname}/grad_sign")]);
            let signs: Vec<f64> = g
                .iter()
                .map(|v| v.signum() * (*v != 0.0) as u8 as f64)
                .collect();
            let wrong = signs.iter().zip(&want_sign).filter(|(a, b)| a != b).count();
            assert_eq!(wrong, 0, "{m}/{lname}: {wrong} gradient signs differ");
            for eps in [0.03, 0.1] {
                let f = Fgsm {
                    epsilon: eps,
                    loss,
                    space: Space::Normalized,
                    clip: false,
                };
                let adv = f.perturb(&model, &x, &y, 10, &pre).unwrap();
                let want_adv: Vec<f64> = vec_f64(&x)
                    .iter()
                    .zip(&want_sign)
                    .map(|(a, s)| a + eps * s)
                    .collect();
                assert_eq!(vec_f64(&adv), want_adv, "{m}/{lname}/{eps}: x_adv");
                let logits = vec_f64(&model.forward(&adv, false).unwrap());
                let want = vec_f64(&t[&format!("{m}/{lname}/eps{eps}/logits_adv")]);
                let r = rel(&logits, &want);
                assert!(
                    r < 1e-5,
                    "{m}/{lname}/{eps}: adversarial logits rel error {r}"
                );
            }
        }
    }
}

#[test]
fn fgsm_gradient_sign_matches_central_differences() {
    // A small f64 MLP at its random init; each input element nudged by ±h.
    let model = Model::build_with_dtype(
        "mlp",
        json!({"hidden": [12], "activation": "leaky_relu"})
            .as_object()
            .unwrap(),
        InputSpec {
            channels: 1,
            height: 3,
            width: 3,
            classes: 4,
        },
        3,
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    let xs: Vec<f64> = (0..18)
        .map(|i| ((i * 37 % 17) as f64 - 8.0) / 5.0)
        .collect();
    let x = Tensor::from_vec(xs.clone(), (2, 1, 3, 3), &Device::Cpu).unwrap();
    let y = [1u32, 3];
    let loss_at = |v: &[f64]| -> f64 {
        let t = Tensor::from_vec(v.to_vec(), (2, 1, 3, 3), &Device::Cpu).unwrap();
        let logits = model.forward(&t, false).unwrap();
        let onehot =
            Tensor::from_vec(vec![0f64, 1., 0., 0., 0., 0., 0., 1.], (2, 4), &Device::Cpu).unwrap();
        mixbench::scoring::loss(mixbench::scoring::LossKind::BceSoftmax, &logits, &onehot)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let g = vec_f64(&input_gradient(&model, &x, &y, 4, AttackLoss::BceSoftmax).unwrap());
    let h = 1e-6;
    let mut checked = 0;
    for i in 0..xs.len() {
        let (mut a, mut b) = (xs.clone(), xs.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (loss_at(&a) - loss_at(&b)) / (2.0 * h);
        if fd.abs() > 1e-7 {
            assert_eq!(
                fd.signum(),
                g[i].signum(),
                "element {i}: fd {fd} vs grad {}",
                g[i]
            );
            assert!(
                (fd - g[i]).abs() <= 1e-5 * fd.abs().max(1e-3),
                "element {i}: {fd} vs {}",
                g[i]
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 12,
        "only {checked} elements had a clear derivative"
    );
}

fn u8_image(c: usize, h: usize, w: usize, seed: u64) -> Vec<u8> {
    (0..c * h * w)
        .map(|i| ((i as u64 * 2654435761 + seed * 97) % 251) as u8)
        .collect()
}

#[test]
fn identity_deformations_leave_images_unchanged() {
    for (h, w) in [(16, 16), (15, 13), (32, 32)] {
        let img = u8_image(3, h, w, 1);
        for a in [
            Affine::rotation(0.0, h, w),
            Affine::shear(0.0, h, w),
            Affine::zoom(1.0, h, w),
        ] {
            let mut out = vec![0u8; img.len()];
            warp_nearest(&img, 3, h, w, &a, &mut out);
            assert_eq!(out, img, "{h}x{w} {a:?}");
        }
    }
}

#[test]
fn zoom_out_is_black_outside_and_zoom_in_magnifies_the_centre() {
    let (h, w) = (16, 16);
    let img: Vec<u8> = vec![200; 3 * h * w];
    let mut out = vec![0u8; img.len()];
    warp_nearest(&img, 3, h, w, &Affine::zoom(1.8, h, w), &mut out);
    assert_eq!(out[0], 0, "corner is outside the shrunken image");
    assert_eq!(out[8 * w + 8], 200, "centre is inside");
    assert_eq!(out.iter().filter(|&&v| v == 0).count() % 3, 0);
    // Zoom in by 0.5: every output pixel samples the central half, so a frame drawn at the
    // border disappears.
    let mut framed = vec![100u8; h * w];
    for i in 0..w {
        framed[i] = 255;
        framed[(h - 1) * w + i] = 255;
        framed[i * w] = 255;
        framed[i * w + w - 1] = 255;
    }
    let mut out = vec![0u8; h * w];
    warp_nearest(&framed, 1, h, w, &Affine::zoom(0.5, h, w), &mut out);
    assert!(out.iter().all(|&v| v == 100), "{out:?}");
}

fn suites_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("suites")
}

#[test]
fn adding_an_evaluation_keeps_the_training_hash() {
    let dir = suites_dir();
    let text = std::fs::read_to_string(dir.join("table7.yaml")).unwrap();
    let base = mixbench::suite::load::parse(&dir.join("table7.yaml"), &text).unwrap();
    let more = text.replace(
        "- {name: fgsm, epsilon: [0.03, 0.1], loss: bce_softmax, space: normalized}",
        "- {name: fgsm, epsilon: [0.03, 0.1, 0.2], loss: bce_softmax, space: normalized}\n        - {name: rotation, degrees: 30}",
    );
    assert_ne!(more, text);
    let more = mixbench::suite::load::parse(&dir.join("table7.yaml"), &more).unwrap();
    let a = mixbench::suite::resolve(&base, "smoke", None).unwrap();
    let b = mixbench::suite::resolve(&more, "smoke", None).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.training_hash, y.training_hash, "{}", x.experiment);
        assert_eq!(y.evaluations.len(), x.evaluations.len() + 2);
        // The evaluations both have are the same evaluations.
        for e in &x.evaluations {
            let same = y.evaluations.iter().find(|f| f.id == e.id).unwrap();
            assert_eq!(x.evaluation_hash(e), y.evaluation_hash(same));
        }
    }
    // ... but a training setting changes it.
    let lr = text.replace(
        "optimizer: {lr: 0.1}\n      evaluations",
        "optimizer: {lr: 0.05}\n      evaluations",
    );
    assert_ne!(lr, text);
    let lr = mixbench::suite::load::parse(&dir.join("table7.yaml"), &lr).unwrap();
    let c = mixbench::suite::resolve(&lr, "smoke", None).unwrap();
    assert_ne!(a[0].training_hash, c[0].training_hash);
}

#[test]
fn tables_4_and_9_train_the_same_models() {
    let dir = suites_dir();
    let t4 = mixbench::suite::load(&dir, "table4").unwrap();
    let t9 = mixbench::suite::load(&dir, "table9").unwrap();
    for profile in ["smoke", "paper"] {
        let a = mixbench::suite::resolve(&t4, profile, None).unwrap();
        let b = mixbench::suite::resolve(&t9, profile, None).unwrap();
        let seeds = t4.suite.profiles[profile].seeds.len();
        assert_eq!(a.len(), 4 * seeds);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.experiment, y.experiment);
            assert_eq!(
                x.training_hash, y.training_hash,
                "{profile} {}",
                x.experiment
            );
            // Every Table 4 evaluation is a Table 9 evaluation with the same hash.
            for e in &x.evaluations {
                let f = y.evaluations.iter().find(|f| f.id == e.id).unwrap();
                assert_eq!(x.evaluation_hash(e), y.evaluation_hash(f));
            }
        }
        assert_eq!(b[0].evaluations.len(), 1 + 17);
        assert_eq!(a[0].evaluations.len(), 1 + 8);
    }
}

/// The committed smoke baselines come from models trained enough that the evaluations mean
/// something: clean accuracy well above chance, above every FGSM accuracy, and above the mean
/// over deformations (a mild deformation may leave a model's accuracy where it was).
#[test]
fn smoke_baselines_are_trained_enough_to_measure_robustness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines");
    for suite in ["table4", "table7", "table9"] {
        let b: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{suite}.smoke.json"))).unwrap(),
        )
        .unwrap();
        for (exp, s) in b["experiments"].as_object().unwrap() {
            let m = s["metrics"].as_object().unwrap();
            let clean = m["clean.top1_acc"]["mean"].as_f64().unwrap();
            assert!(
                clean > 60.0,
                "{suite}/{exp}: clean accuracy {clean}% (chance 10%)"
            );
            let (mut deformed, mut fgsm) = (vec![], vec![]);
            for (k, v) in m {
                let a = v["mean"].as_f64().unwrap();
                if k.starts_with("fgsm_") {
                    assert!(
                        a < clean,
                        "{suite}/{exp}: {k} = {a}% is not below clean {clean}%"
                    );
                    fgsm.push(a);
                } else if k.ends_with(".accuracy") {
                    deformed.push(a);
                }
            }
            assert!(
                fgsm.len() + deformed.len() >= 2,
                "{suite}/{exp}: nothing to compare"
            );
            if !deformed.is_empty() {
                let mean = deformed.iter().sum::<f64>() / deformed.len() as f64;
                assert!(
                    mean < clean - 10.0,
                    "{suite}/{exp}: mean deformed {mean}% vs clean {clean}%"
                );
            }
        }
    }
}

/// ε = 0 and the identity deformations must reproduce the clean accuracy exactly, through the
/// evaluators themselves (batching, normalisation, scoring), on a trained model.
#[test]
fn identity_evaluations_reproduce_clean_accuracy_exactly() {
    use mixbench::data::DatasetSource;
    use mixbench::data::generated::synthetic::SyntheticSource;
    use mixbench::eval::{EvalContext, registry};
    let src = SyntheticSource;
    let data = src
        .load(
            &json!({"classes": 4, "train_size": 64, "test_size": 48, "size": 8}),
            &mixbench::data::LoadOptions {
                data_dir: "data".into(),
                allow_unverified: false,
                progress: None,
            },
        )
        .unwrap();
    let pre = src.default_preprocessing();
    let model = Model::build(
        "preactresnet18",
        json!({"width": 0.0625}).as_object().unwrap(),
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
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        }
        .into(),
        schedule: Default::default(),
        eval_every: 1,
        eval_batch_size: 16,
        checkpoint_every: 0,
        checkpoint_minutes: 0.0,
    };
    mixbench::train::train(
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
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 5,
        batch_size: 10,
    };
    let run = |name: &str, p: Value| {
        let ev = (registry::get(name).unwrap().build)(p.as_object().unwrap()).unwrap();
        ev.evaluate(&ctx).unwrap()
    };
    let clean = run("clean", json!({}));
    let acc = clean.metrics["top1_acc"];
    assert_eq!(clean.n, 48);
    for (name, p) in [
        ("fgsm", json!({"epsilon": 0.0})),
        (
            "fgsm",
            json!({"epsilon": 0.0, "space": "pixel", "clip": true}),
        ),
        ("rotation", json!({"degrees": 0.0})),
        ("shear", json!({"radians": 0.0})),
        ("zoom", json!({"factor": 1.0})),
    ] {
        let out = run(name, p.clone());
        assert_eq!(out.metrics["accuracy"], acc, "{name} {p}");
    }
    // A real attack lowers it.
    let attacked = run("fgsm", json!({"epsilon": 0.5}));
    assert!(
        attacked.metrics["accuracy"] < acc,
        "{} vs {acc}",
        attacked.metrics["accuracy"]
    );
}

/// FGSM runs on a detached view: same weights (shared, so later updates show), same logits,
/// an input gradient, and no weight gradients to compute.
#[test]
fn detached_view_shares_weights_and_takes_no_weight_gradient() {
    let model = Model::build(
        "preactresnet18",
        json!({"width": 0.0625}).as_object().unwrap(),
        InputSpec {
            channels: 3,
            height: 8,
            width: 8,
            classes: 4,
        },
        1,
        &Device::Cpu,
    )
    .unwrap();
    let view = model.detached().unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu).unwrap();
    let a = vec_f64(&model.forward(&x, false).unwrap());
    assert_eq!(a, vec_f64(&view.forward(&x, false).unwrap()));
    let xv = candle_core::Var::from_tensor(&x).unwrap();
    let g = view
        .forward(xv.as_tensor(), false)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(g.get(xv.as_tensor()).is_some());
    for (name, p) in model.store.params() {
        assert!(g.get(p.as_tensor()).is_none(), "{name} got a gradient");
    }
    // Weights set on the model afterwards are what the view computes with.
    let (name, p) = model.store.params().into_iter().next().unwrap();
    p.set(&p.as_tensor().zeros_like().unwrap()).unwrap();
    let b = vec_f64(&view.forward(&x, false).unwrap());
    assert_eq!(b, vec_f64(&model.forward(&x, false).unwrap()), "{name}");
    assert_ne!(a, b);
}

/// Rotation, shear and zoom against `tools/reference/make_deform_fixtures.py`: the reference's
/// matrices about its centre, sampled as `scipy.ndimage.affine_transform(order=0, cval=0)`.
#[test]
fn deformations_match_the_scipy_fixture() {
    let d: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("deform.json")).unwrap()).unwrap();
    let images: Vec<(Vec<usize>, Vec<u8>)> = d["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| {
            let shape: Vec<usize> = serde_json::from_value(im["shape"].clone()).unwrap();
            let data: Vec<u8> = serde_json::from_value(im["data"].clone()).unwrap();
            (shape, data)
        })
        .collect();
    let (mut cases, mut pixels, mut ties, mut bits_differ) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    for case in d["cases"].as_array().unwrap() {
        let (shape, img) = &images[case["image"].as_u64().unwrap() as usize];
        let (c, h, w) = (shape[0], shape[1], shape[2]);
        let v = case["value"].as_f64().unwrap();
        let a = match case["kind"].as_str().unwrap() {
            "rotate" => Affine::rotation(v, h, w),
            "shear" => Affine::shear(v, h, w),
            "zoom" => Affine::zoom(v, h, w),
            k => panic!("unknown kind {k}"),
        };
        let want_m: Vec<Vec<f64>> = serde_json::from_value(case["matrix"].clone()).unwrap();
        let want_o: Vec<f64> = serde_json::from_value(case["offset"].clone()).unwrap();
        let same_bits = (0..2).all(|i| {
            a.offset[i].to_bits() == want_o[i].to_bits()
                && (0..2).all(|j| a.m[i][j].to_bits() == want_m[i][j].to_bits())
        });
        if !same_bits {
            bits_differ += 1;
        }
        let want: Vec<u8> = serde_json::from_value(case["output"].clone()).unwrap();
        let mut out = vec![0u8; img.len()];
        warp_nearest(img, c, h, w, &a, &mut out);
        let diff = (0..h * w)
            .filter(|&p| (0..c).any(|ch| out[ch * h * w + p] != want[ch * h * w + p]))
            .count();
        let flagged = case["input_coords_boundary"].as_u64().unwrap() as usize
            + case["input_coords_edge"].as_u64().unwrap() as usize;
        if diff > 0 {
            mismatches.push(format!(
                "{} {v} on {h}x{w}: {diff} positions differ ({flagged} flagged ties)",
                case["kind"]
            ));
        }
        // A differing pixel is only acceptable where rounding is a tie and our float bits differ.
        assert!(
            diff == 0 || (!same_bits && diff <= flagged),
            "{} {v} on {h}x{w}: {diff} positions differ, {flagged} are ties",
            case["kind"]
        );
        cases += 1;
        pixels += h * w;
        ties += flagged;
    }
    println!(
        "{cases} cases, {pixels} positions, {ties} on rounding/edge ties, {bits_differ} cases with other matrix/offset bits; mismatches: {mismatches:?}"
    );
    assert!(cases >= 60);
}

/// The flattening evaluator on a real (tiny) model: one spectrum per class and overall, the
/// scalars agree with the spectra, `center` and `per_class` change what is decomposed.
#[test]
fn singular_values_of_hidden_representations() {
    use mixbench::data::DatasetSource;
    use mixbench::data::generated::synthetic::SyntheticSource;
    use mixbench::eval::{EvalContext, registry};
    let src = SyntheticSource;
    let data = src
        .load(
            &json!({"classes": 3, "train_size": 30, "test_size": 30, "size": 4, "channels": 1}),
            &mixbench::data::LoadOptions {
                data_dir: "data".into(),
                allow_unverified: false,
                progress: None,
            },
        )
        .unwrap();
    let pre = Preprocessing::centered(1);
    let model = Model::build(
        "mlp",
        json!({"hidden": [8, 5]}).as_object().unwrap(),
        InputSpec {
            channels: 1,
            height: 4,
            width: 4,
            classes: 3,
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
        batch_size: 7,
    };
    let run = |p: Value| {
        let ev = (registry::get("singular_values").unwrap().build)(p.as_object().unwrap()).unwrap();
        ev.evaluate(&ctx).unwrap()
    };
    let out = run(json!({"point": 2}));
    for c in 0..3 {
        let s = &out.arrays[&format!("class{c}")];
        assert_eq!(s.len(), 5, "min(10 examples, 5 units)");
        assert!(s.windows(2).all(|w| w[0] >= w[1]));
    }
    let tops: Vec<f64> = (0..3)
        .map(|c| out.arrays[&format!("class{c}")][0])
        .collect();
    assert!((out.metrics["top_mean"] - tops.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    let all = &out.arrays["all"];
    assert_eq!(out.metrics["all_top"], all[0]);
    assert!((out.metrics["all_rest_sum"] - all[1..].iter().sum::<f64>()).abs() < 1e-9);
    // Centring removes the class mean: the spectrum changes (and never grows in total energy).
    let c = run(json!({"point": 2, "center": true}));
    let energy = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    assert!(energy(&c.arrays["class0"]) < energy(&out.arrays["class0"]));
    let capped = run(json!({"point": 2, "per_class": 3}));
    assert_eq!(capped.arrays["class1"].len(), 3);
    let e =
        (registry::get("singular_values").unwrap().build)(json!({"point": 9}).as_object().unwrap())
            .unwrap()
            .evaluate(&ctx)
            .err()
            .unwrap()
            .to_string();
    assert!(e.contains("out of range"), "{e}");
}

/// A spiral set and a model with a 2-unit bottleneck at mix point 2, in f64.
fn spiral_bottleneck() -> (mixbench::data::ImageDataset, Model, Preprocessing) {
    use mixbench::data::DatasetSource;
    use mixbench::data::generated::spiral::SpiralSource;
    let src = SpiralSource;
    let data = src
        .load(
            &json!({"train_size": 40, "test_size": 30, "seed": 2}),
            &mixbench::data::LoadOptions {
                data_dir: "data".into(),
                allow_unverified: false,
                progress: None,
            },
        )
        .unwrap();
    let model = Model::build_with_dtype(
        "mlp",
        json!({"hidden": [6, 2, 5], "bottleneck": 1})
            .as_object()
            .unwrap(),
        InputSpec {
            channels: 2,
            height: 1,
            width: 1,
            classes: 2,
        },
        3,
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    (data, model, src.default_preprocessing())
}

/// The network's input for plane bytes (x, y), computed here as the batch filler's f32 formula.
fn plane_input(points: &[(u8, u8)], pre: &Preprocessing) -> Tensor {
    let v: Vec<f64> = points
        .iter()
        .flat_map(|&(x, y)| {
            [(x, 0), (y, 1)].map(|(b, c)| ((b as f32 / 255.0 - pre.mean[c]) / pre.std[c]) as f64)
        })
        .collect();
    Tensor::from_vec(v, (points.len(), 2, 1, 1), &Device::Cpu).unwrap()
}

#[test]
fn decision_grid_scores_each_grid_point_and_maps_it_to_the_bottleneck() {
    use mixbench::eval::{EvalContext, registry};
    let (data, model, pre) = spiral_bottleneck();
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 4,
    };
    let ev = (registry::get("decision_grid").unwrap().build)(
        json!({"size": 5, "point": 2}).as_object().unwrap(),
    )
    .unwrap();
    assert_eq!(ev.default_id(), "grid_5_at_2");
    let out = ev.evaluate(&ctx).unwrap();
    // The grid: bytes 0, 64, 128, 191, 255 on each axis, x fastest.
    let bytes = [0u8, 64, 128, 191, 255];
    let points: Vec<(u8, u8)> = bytes
        .iter()
        .flat_map(|&y| bytes.iter().map(move |&x| (x, y)))
        .collect();
    let x = plane_input(&points, &pre);
    let p = candle_nn::ops::softmax(&model.forward(&x, false).unwrap(), 1).unwrap();
    let p: Vec<Vec<f64>> = p.to_vec2().unwrap();
    let h: Vec<Vec<f64>> = model.hidden(&x, 2, false).unwrap().to_vec2().unwrap();
    for (i, row) in p.iter().enumerate() {
        let best = if row[1] > row[0] { 1.0 } else { 0.0 };
        assert_eq!(out.arrays["class"][i], best, "grid point {i}");
        assert!((out.arrays["confidence"][i] - row[0].max(row[1])).abs() < 1e-12);
        assert!((out.arrays["hx"][i] - h[i][0]).abs() < 1e-12);
        assert!((out.arrays["hy"][i] - h[i][1]).abs() < 1e-12);
    }
    let axis: Vec<f64> = bytes
        .iter()
        .map(|&b| ((b as f32 / 255.0 - pre.mean[0]) / pre.std[0]) as f64)
        .collect();
    assert_eq!(out.arrays["axis"], axis);
    assert!((axis[0] + 1.2).abs() < 1e-6 && (axis[4] - 1.2).abs() < 1e-6);
    let mean: f64 = out.arrays["confidence"].iter().sum::<f64>() / 25.0;
    assert!((out.metrics["mean_confidence"] - 100.0 * mean).abs() < 1e-9);
    let mut differ = 0;
    for y in 0..5 {
        for x in 0..5 {
            let c = out.arrays["class"][y * 5 + x];
            differ += usize::from(x + 1 < 5 && out.arrays["class"][y * 5 + x + 1] != c);
            differ += usize::from(y + 1 < 5 && out.arrays["class"][(y + 1) * 5 + x] != c);
        }
    }
    assert!((out.metrics["boundary"] - 100.0 * differ as f64 / 40.0).abs() < 1e-12);
    // Scored over the 25 grid points, all finite.
    assert_eq!((out.n, out.non_finite), (25, 0));
    // Test points: their plane coordinates and where the bottleneck puts them.
    let test: Vec<(u8, u8)> = data
        .test
        .images
        .chunks_exact(2)
        .map(|q| (q[0], q[1]))
        .collect();
    let th: Vec<Vec<f64>> = model
        .hidden(&plane_input(&test, &pre), 2, false)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(out.arrays["tl"].len(), 30);
    for (i, row) in th.iter().enumerate() {
        assert_eq!(out.arrays["tl"][i], data.test.labels[i] as f64);
        assert!((out.arrays["thx"][i] - row[0]).abs() < 1e-12);
        assert!((out.arrays["thy"][i] - row[1]).abs() < 1e-12);
    }
    // A point whose representation is not 2-D is refused with the reason.
    let wide = (registry::get("decision_grid").unwrap().build)(
        json!({"size": 5, "point": 1}).as_object().unwrap(),
    )
    .unwrap();
    let e = wide.evaluate(&ctx).err().unwrap().to_string();
    assert!(e.contains("6 features"), "{e}");
}

#[test]
fn embedding_keeps_the_first_test_points_at_the_bottleneck_and_their_1nn_error() {
    use mixbench::eval::{EvalContext, registry};
    let (data, model, pre) = spiral_bottleneck();
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 7,
    };
    let ev = (registry::get("embedding").unwrap().build)(
        json!({"point": 2, "count": 20}).as_object().unwrap(),
    )
    .unwrap();
    let out = ev.evaluate(&ctx).unwrap();
    let test: Vec<(u8, u8)> = data.test.images[..40]
        .chunks_exact(2)
        .map(|q| (q[0], q[1]))
        .collect();
    let h: Vec<Vec<f64>> = model
        .hidden(&plane_input(&test, &pre), 2, false)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(out.n, 20);
    let mut wrong = 0;
    for i in 0..20 {
        assert!((out.arrays["x"][i] - h[i][0]).abs() < 1e-12);
        assert!((out.arrays["y"][i] - h[i][1]).abs() < 1e-12);
        assert_eq!(out.arrays["label"][i], data.test.labels[i] as f64);
        // Brute force: the nearest other point (the lower index on a tie).
        let d = |j: usize| (h[i][0] - h[j][0]).powi(2) + (h[i][1] - h[j][1]).powi(2);
        let nearest = (0..20)
            .filter(|&j| j != i)
            .min_by(|&a, &b| d(a).total_cmp(&d(b)).then(a.cmp(&b)))
            .unwrap();
        wrong += usize::from(data.test.labels[nearest] != data.test.labels[i]);
    }
    assert_eq!(out.metrics["nearest_error"], 100.0 * wrong as f64 / 20.0);
}

/// Rows of a hidden representation as the f32 values knn searches in, widened back to f64.
fn rows_f32(h: &Tensor) -> Vec<Vec<f64>> {
    let h: Vec<Vec<f64>> = h.flatten_from(1).unwrap().to_vec2().unwrap();
    h.into_iter()
        .map(|r| r.into_iter().map(|v| v as f32 as f64).collect())
        .collect()
}

/// The k-NN error over the test split by brute force: every distance computed directly, ties in
/// distance to the lower training index, ties in votes to the smaller class.
fn brute_force_knn_error(
    train: &[Vec<f64>],
    labels: &[u32],
    test: &[Vec<f64>],
    truth: &[u32],
    k: usize,
    cosine: bool,
) -> f64 {
    let norm = |a: &[f64]| a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let dist = |a: &[f64], b: &[f64]| {
        if cosine {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            1.0 - dot / (norm(a) * norm(b))
        } else {
            a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
        }
    };
    let mut wrong = 0;
    for (q, &y) in test.iter().zip(truth) {
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.sort_by(|&a, &b| {
            dist(q, &train[a])
                .total_cmp(&dist(q, &train[b]))
                .then(a.cmp(&b))
        });
        let mut votes = [0usize; 2];
        for &j in &order[..k] {
            votes[labels[j] as usize] += 1;
        }
        let pred = u32::from(votes[1] > votes[0]);
        wrong += usize::from(pred != y);
    }
    100.0 * wrong as f64 / test.len() as f64
}

#[test]
fn knn_scores_the_test_split_against_a_brute_force_search_over_the_training_features() {
    use mixbench::eval::{EvalContext, registry};
    let (data, model, pre) = spiral_bottleneck();
    let ctx = EvalContext {
        model: &model,
        data: &data,
        preprocessing: &pre,
        seed: 0,
        batch_size: 7,
    };
    let split_input = |s: &mixbench::data::Split| {
        let p: Vec<(u8, u8)> = s.images.chunks_exact(2).map(|q| (q[0], q[1])).collect();
        plane_input(&p, &pre)
    };
    let (xtr, xte) = (split_input(&data.train), split_input(&data.test));
    let knn = |p: Value| {
        (registry::get("knn").unwrap().build)(p.as_object().unwrap())
            .unwrap()
            .evaluate(&ctx)
    };
    let mut errors = Vec::new();
    for (point, k, cosine) in [(1, 3, false), (2, 1, false), (1, 5, true)] {
        let distance = if cosine { "cosine" } else { "euclidean" };
        let out = knn(json!({"k": k, "point": point, "distance": distance})).unwrap();
        let train = rows_f32(&model.hidden(&xtr, point, false).unwrap());
        let test = rows_f32(&model.hidden(&xte, point, false).unwrap());
        assert_eq!(train.len(), 40);
        assert_eq!(test.len(), 30);
        let want = brute_force_knn_error(
            &train,
            &data.train.labels,
            &test,
            &data.test.labels,
            k,
            cosine,
        );
        let case = format!("point {point}, k {k}, {distance}");
        assert_eq!(out.metrics["error"], want, "{case}");
        assert_eq!(out.metrics["accuracy"], 100.0 - want, "{case}");
        assert_eq!((out.n, out.non_finite), (30, 0), "{case}");
        errors.push(want);
    }
    // The cases differ, so a constant answer cannot pass all three.
    assert!(errors.iter().any(|&e| e != errors[0]), "{errors:?}");
    // `pool` averages image-shaped ([N, C, H, W]) representations only; a flat one is used as
    // it is, so the first case again.
    let pooled = knn(json!({"k": 3, "point": 1, "pool": true})).unwrap();
    assert_eq!(pooled.metrics["error"], errors[0]);
    // A mix point past the last is refused, naming the range the model has.
    let last = model.num_mix_points() - 1;
    let e = knn(json!({"k": 1, "point": last + 1}))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&format!("mix points 0..{last}")), "{e}");
    knn(json!({"k": 1, "point": last})).unwrap();
}

#[test]
fn knn_counts_non_finite_test_rows_and_every_row_when_a_training_row_is_not_finite() {
    use mixbench::eval::{EvalContext, registry};
    let (mut data, model, mut pre) = spiral_bottleneck();
    // x = 128 gives (128/255 − mean) / std = 0 exactly; any other x overflows to ±inf.
    pre.mean[0] = 128.0 / 255.0;
    pre.std[0] = 1e-45;
    for px in data.train.images.chunks_exact_mut(2) {
        px[0] = 128;
    }
    // Test rows 0..30: every third one is not 128, so 10 of the 30 are not finite.
    for (i, px) in data.test.images.chunks_exact_mut(2).enumerate() {
        px[0] = if i % 3 == 0 { 7 } else { 128 };
    }
    let ev =
        (registry::get("knn").unwrap().build)(json!({"k": 1, "point": 0}).as_object().unwrap())
            .unwrap();
    let score = |data: &mixbench::data::ImageDataset| {
        ev.evaluate(&EvalContext {
            model: &model,
            data,
            preprocessing: &pre,
            seed: 0,
            batch_size: 4,
        })
        .unwrap()
    };
    let out = score(&data);
    assert_eq!((out.n, out.non_finite), (30, 10));
    // One non-finite training row can be anyone's neighbour: every test row counts, capped at n.
    data.train.images[0] = 9;
    let out = score(&data);
    assert_eq!((out.n, out.non_finite), (30, 30));
    // Every test row and a training row not finite: still each of the 30 once.
    for px in data.test.images.chunks_exact_mut(2) {
        px[0] = 7;
    }
    let out = score(&data);
    assert_eq!((out.n, out.non_finite), (30, 30));
}

#[test]
fn embedding_refuses_bad_points_caps_count_at_the_split_and_counts_points_it_cannot_draw() {
    use mixbench::eval::{EvalContext, registry};
    let (mut data, model, mut pre) = spiral_bottleneck();
    let embed = |p: Value, data: &mixbench::data::ImageDataset, pre: &Preprocessing| {
        (registry::get("embedding").unwrap().build)(p.as_object().unwrap())
            .unwrap()
            .evaluate(&EvalContext {
                model: &model,
                data,
                preprocessing: pre,
                seed: 0,
                batch_size: 8,
            })
    };
    // More requested than the test split has: all 30, finite.
    let out = embed(json!({"point": 2, "count": 50}), &data, &pre).unwrap();
    assert_eq!((out.n, out.non_finite), (30, 0));
    assert_eq!(out.arrays["x"].len(), 30);
    // A point past the last, and a point that is not 2-D, are refused with the reason.
    let last = model.num_mix_points() - 1;
    let e = embed(json!({"point": last + 1}), &data, &pre)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&format!("mix points 0..{}", last + 1)), "{e}");
    let e = embed(json!({"point": 1}), &data, &pre)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("has 6 features"), "{e}");
    // At point 0 (the 2-D input itself), x = 128 maps to 0 and any other x to ±inf.
    pre.mean[0] = 128.0 / 255.0;
    pre.std[0] = 1e-45;
    let bad: Vec<usize> = (0..30).filter(|i| i % 4 == 1).collect();
    for (i, px) in data.test.images.chunks_exact_mut(2).enumerate() {
        px[0] = if bad.contains(&i) { 3 } else { 128 };
    }
    let out = embed(json!({"point": 0, "count": 30}), &data, &pre).unwrap();
    assert_eq!((out.n, out.non_finite), (30, bad.len()));
    // A point that cannot be drawn has no nearest neighbour (wrong); the others' neighbours are
    // found among the finite points only.
    let y = &out.arrays["y"];
    let labels = &data.test.labels;
    let good: Vec<usize> = (0..30).filter(|i| !bad.contains(i)).collect();
    let mut wrong = bad.len();
    for &i in &good {
        let nearest = good
            .iter()
            .copied()
            .filter(|&j| j != i)
            .min_by(|&a, &b| {
                ((y[a] - y[i]).powi(2))
                    .total_cmp(&(y[b] - y[i]).powi(2))
                    .then(a.cmp(&b))
            })
            .unwrap();
        wrong += usize::from(labels[nearest] != labels[i]);
    }
    assert_eq!(out.metrics["nearest_error"], 100.0 * wrong as f64 / 30.0);
    assert!(wrong > bad.len() && wrong < 30, "{wrong}");
}

#[test]
fn singular_values_skip_absent_classes_name_the_point_range_and_count_unused_non_finite_rows() {
    use mixbench::eval::{EvalContext, registry};
    let (mut data, model, mut pre) = spiral_bottleneck();
    let sv = |p: Value, data: &mixbench::data::ImageDataset, pre: &Preprocessing| {
        (registry::get("singular_values").unwrap().build)(p.as_object().unwrap())
            .unwrap()
            .evaluate(&EvalContext {
                model: &model,
                data,
                preprocessing: pre,
                seed: 0,
                batch_size: 8,
            })
    };
    let last = model.num_mix_points() - 1;
    let e = sv(json!({"point": last + 1}), &data, &pre)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&format!("mix points 0..{last}")), "{e}");
    let full = sv(json!({"point": 1}), &data, &pre).unwrap();
    assert_eq!((full.n, full.non_finite), (30, 0));
    // A test split with no example of class 1: its spectrum is absent, not an empty one
    // averaged in as zero.
    let keep: Vec<usize> = (0..30).filter(|&i| data.test.labels[i] == 0).collect();
    assert!(keep.len() >= 5 && keep.len() < 30);
    let only0 = mixbench::data::subset::select(&data.test, 2, &keep);
    let mut one_class = data.clone();
    one_class.test = only0;
    let out = sv(json!({"point": 1}), &one_class, &pre).unwrap();
    assert!(!out.arrays.contains_key("class1"));
    let s0 = &out.arrays["class0"];
    assert_eq!(out.metrics["top_mean"], s0[0]);
    assert_eq!(out.metrics["rest_sum_mean"], s0[1..].iter().sum::<f64>());
    assert_eq!(out.n, keep.len());
    // At point 0 (the input), x = 128 maps to 0 and any other x to ±inf. With `per_class: 3`
    // only each class's first three rows enter the SVD (all finite), so it succeeds, but the
    // split's other rows are not finite and every example counts as such.
    pre.mean[0] = 128.0 / 255.0;
    pre.std[0] = 1e-45;
    let mut seen = [0usize; 2];
    for (i, px) in data.test.images.chunks_exact_mut(2).enumerate() {
        let c = data.test.labels[i] as usize;
        px[0] = if seen[c] < 3 { 128 } else { 7 };
        seen[c] += 1;
    }
    let out = sv(json!({"point": 0, "per_class": 3}), &data, &pre).unwrap();
    assert_eq!(out.arrays["class0"].len(), 2);
    assert!(out.arrays["all"].iter().all(|v| v.is_finite()));
    assert_eq!((out.n, out.non_finite), (30, 30));
}
