//! Bad suites give messages naming the file, line:column and field; hashing is canonical.

use std::path::Path;

use mixbench::suite::load::parse;
use mixbench::suite::resolve;

const GOOD: &str = r#"id: t
title: "test"
paper: {arxiv: "1806.05236v7", table: "1", caption: "c"}
metrics:
  - {name: clean.test_error, unit: "%", better: lower, tolerance: 0.5}
defaults:
  dataset: {name: synthetic, classes: 4, train_size: 32, test_size: 16, size: 8}
  model: {arch: mlp, hidden: [16]}
  regularizer: {name: none}
  optimizer: {lr: 0.1, momentum: 0.9}
  epochs: 1
  batch_size: 8
experiments:
  - id: base
    architecture: MLP
    method: No Mixup
  - id: mm
    architecture: MLP
    method: Manifold Mixup
    overrides:
      regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1]}
profiles:
  smoke:
    description: "tiny"
    seeds: [0, 1]
"#;

fn err(text: &str) -> String {
    match parse(Path::new("suites/t.yaml"), text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_suite_resolves_to_cells() {
    let ls = parse(Path::new("suites/t.yaml"), GOOD).unwrap();
    let cells = resolve(&ls, "smoke", None).unwrap();
    assert_eq!(cells.len(), 4);
    assert_eq!(cells[0].training_hash, cells[1].training_hash);
    assert_ne!(cells[0].training_hash, cells[2].training_hash);
    let cells = resolve(&ls, "smoke", Some(&[7])).unwrap();
    assert_eq!(cells.iter().map(|c| c.seed).collect::<Vec<_>>(), vec![7, 7]);
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let e = err(&GOOD.replace("title: \"test\"", "title: \"test\"\ncolour: red"));
    assert!(e.starts_with("suites/t.yaml:3:"), "{e}");
    assert!(e.contains("unknown field `colour`"), "{e}");
}

#[test]
fn wrong_type_names_the_field_path() {
    let e = err(&GOOD.replace("seeds: [0, 1]", "seeds: zero"));
    assert!(e.contains("suites/t.yaml:"), "{e}");
    assert!(e.contains("profiles.smoke.seeds"), "{e}");
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn missing_field_is_reported() {
    let e = err(&GOOD.replace("    method: No Mixup\n", ""));
    assert!(e.contains("missing field `method`"), "{e}");
    assert!(e.contains("experiments[0]"), "{e}");
    assert_eq!(
        e.matches("experiments[0]").count(),
        1,
        "path said twice: {e}"
    );
}

#[test]
fn negative_alpha_points_at_the_override() {
    let e = err(&GOOD.replace("alpha: 2.0", "alpha: -1.0"));
    assert!(e.contains("suites/t.yaml:21:"), "{e}");
    assert!(
        e.contains("experiments[1].overrides.regularizer.alpha"),
        "{e}"
    );
    assert!(e.contains("alpha must be a number >= 0"), "{e}");
}

#[test]
fn unknown_regularizer_model_dataset_are_named() {
    let e = err(&GOOD.replace("name: manifold_mixup", "name: shakedrop"));
    assert!(
        e.contains("unknown regularizer `shakedrop`")
            && e.contains("experiments[1].overrides.regularizer.name"),
        "{e}"
    );
    let e = err(&GOOD.replace("arch: mlp", "arch: resnet9000"));
    assert!(
        e.contains("unknown model `resnet9000`")
            && e.contains("defaults.model.arch")
            && e.contains(":8:"),
        "{e}"
    );
    let e = err(&GOOD.replace("name: synthetic", "name: imagenet21k"));
    assert!(
        e.contains("unknown dataset `imagenet21k`") && e.contains("defaults.dataset.name"),
        "{e}"
    );
}

#[test]
fn unknown_profile_is_named() {
    let ls = parse(Path::new("suites/t.yaml"), GOOD).unwrap();
    let e = resolve(&ls, "nightly", None).unwrap_err().to_string();
    assert!(
        e.contains("unknown profile `nightly`") && e.contains("smoke"),
        "{e}"
    );
    let e = err(&GOOD.replace(
        "    method: No Mixup\n",
        "    method: No Mixup\n    profile_overrides: {nightly: {epochs: 2}}\n",
    ));
    assert!(e.contains("unknown profile `nightly`"), "{e}");
}

#[test]
fn training_hash_ignores_key_order_and_layout_but_not_values() {
    let ls = parse(Path::new("suites/t.yaml"), GOOD).unwrap();
    let base = resolve(&ls, "smoke", None).unwrap()[2]
        .training_hash
        .clone();
    let reordered = GOOD.replace(
        "regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1]}",
        "regularizer:\n        layers: [0, 1]\n        alpha: 2\n        name: manifold_mixup",
    );
    let ls2 = parse(Path::new("suites/t.yaml"), &reordered).unwrap();
    assert_eq!(resolve(&ls2, "smoke", None).unwrap()[2].training_hash, base);
    let changed = GOOD.replace("alpha: 2.0", "alpha: 2.5");
    let ls3 = parse(Path::new("suites/t.yaml"), &changed).unwrap();
    assert_ne!(resolve(&ls3, "smoke", None).unwrap()[2].training_hash, base);
}

#[test]
fn committed_suites_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
    for id in mixbench::suite::load::list_ids(&dir).unwrap() {
        let ls = mixbench::suite::load(&dir, &id).unwrap();
        for p in ls.suite.profiles.keys() {
            assert!(!resolve(&ls, p, None).unwrap().is_empty());
        }
    }
}

#[test]
fn a_tolerance_for_an_unknown_metric_is_an_error() {
    let e = err(&GOOD.replace(
        "    seeds: [0, 1]",
        "    seeds: [0, 1]\n    tolerances: {test_error: 3.0}",
    ));
    assert!(e.contains("tolerance for `test_error`"), "{e}");
    assert!(e.contains("profiles.smoke.tolerances.test_error"), "{e}");
}

#[test]
fn bad_evaluations_name_file_line_and_field() {
    let e = err(&GOOD.replace(
        "  batch_size: 8",
        "  batch_size: 8\n  evaluations:\n    - {name: fgsm, epsilon: 0.1, eps: 2}",
    ));
    assert!(e.starts_with("suites/t.yaml:"), "{e}");
    assert!(e.contains("unknown field `eps`"), "{e}");
    let e = err(&GOOD.replace(
        "  batch_size: 8",
        "  batch_size: 8\n  evaluations:\n    - {name: fgsn}",
    ));
    assert!(e.contains("unknown evaluator `fgsn`"), "{e}");
    assert!(e.contains("evaluations[0].name"), "{e}");
    // A metric no evaluation produces is a load error, not an empty column.
    let e = err(&GOOD.replace("{name: clean.test_error,", "{name: fgsm_0.1.accuracy,"));
    assert!(
        e.contains("no evaluation of profile `smoke` produces `fgsm_0.1.accuracy`"),
        "{e}"
    );
}

/// Every committed baseline still matches its suite: the training hash of each resolved cell
/// equals the one stored, so a change to hashing or to a suite cannot silently turn every
/// comparison into "not comparable".
#[test]
fn committed_baselines_match_their_suites_hashes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("baselines")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some((suite, profile)) = name.strip_suffix(".json").and_then(|s| s.split_once('.'))
        else {
            continue;
        };
        let b: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let ls = mixbench::suite::load(&root.join("suites"), suite).unwrap();
        let cells = resolve(&ls, profile, None).unwrap();
        for (exp, s) in b["experiments"].as_object().unwrap() {
            let cell = cells.iter().find(|c| &c.experiment == exp).unwrap();
            assert_eq!(
                s["training_hash"].as_str().unwrap(),
                cell.training_hash,
                "{name}: {exp}"
            );
            for (metric, hash) in s["metric_sources"].as_object().unwrap() {
                // Metric names have no dots; ids may (`zoom_1.2`).
                let (id, _) = metric.rsplit_once('.').unwrap();
                let id = cell
                    .evaluations
                    .iter()
                    .find(|e| e.id == id)
                    .unwrap_or_else(|| panic!("{name}: {exp}: no evaluation for {metric}"));
                assert_eq!(
                    hash.as_str().unwrap(),
                    cell.evaluation_hash(id),
                    "{name}: {exp} {metric}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 18 + 4 + 8 + 4, "{checked}");
}

const SWEEP: &str = r#"  - id: mm
    architecture: MLP
    method: Manifold Mixup
    overrides:
      regularizer: {name: manifold_mixup, layers: [0, 1]}
    sweep:
      path: regularizer.alpha
      values: [0.5, 2.0]
      labels: "α = {}"
      paper: {clean.test_error: ["1.5", "1.2"]}
"#;

fn with_sweep(sweep: &str) -> String {
    let i = GOOD.find("  - id: mm\n").unwrap();
    let j = GOOD.find("profiles:").unwrap();
    format!("{}{}{}", &GOOD[..i], sweep, &GOOD[j..])
}

#[test]
fn sweeps_expand_into_validated_rows() {
    let ls = parse(Path::new("suites/t.yaml"), &with_sweep(SWEEP)).unwrap();
    let ids: Vec<&str> = ls.suite.experiments.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["base", "mm-0.5", "mm-2"]);
    let rows: Vec<Option<&str>> = ls
        .suite
        .experiments
        .iter()
        .map(|e| e.row.as_deref())
        .collect();
    assert_eq!(rows, [None, Some("α = 0.5"), Some("α = 2.0")]);
    assert_eq!(ls.suite.experiments[2].paper["clean.test_error"], "1.2");
    let cells = resolve(&ls, "smoke", None).unwrap();
    assert_eq!(cells.len(), 6);
    assert_eq!(cells[2].config.regularizer["alpha"], serde_json::json!(0.5));
    assert_eq!(cells[4].config.regularizer["alpha"], serde_json::json!(2.0));
    assert_eq!(
        cells[4].config.regularizer["layers"],
        serde_json::json!([0, 1])
    );
    assert_ne!(cells[2].training_hash, cells[4].training_hash);
}

#[test]
fn bad_sweeps_name_the_template_and_field() {
    let e = err(&with_sweep(
        &SWEEP.replace("labels: \"α = {}\"", "labels: [a, b, c]"),
    ));
    assert!(
        e.contains("experiments[1].sweep.labels") && e.contains("3 labels for 2 values"),
        "{e}"
    );
    let e = err(&with_sweep(
        &SWEEP.replace("[\"1.5\", \"1.2\"]", "[\"1.5\"]"),
    ));
    assert!(
        e.contains("sweep.paper") && e.contains("1 printed values for 2 sweep values"),
        "{e}"
    );
    let e = err(&with_sweep(
        &SWEEP.replace("values: [0.5, 2.0]", "values: []"),
    ));
    assert!(e.contains("give at least one value"), "{e}");
    // Two values with the same suffix collide.
    let e = err(&with_sweep(
        &SWEEP.replace("values: [0.5, 2.0]", "values: [2, 2.0]"),
    ));
    assert!(e.contains("duplicate experiment id `mm-2`"), "{e}");
    assert!(e.starts_with("suites/t.yaml:"), "{e}");
    // An invalid swept value is caught at load, pointing at the template.
    let e = err(&with_sweep(
        &SWEEP.replace("values: [0.5, 2.0]", "values: [0.5, -1.0]"),
    ));
    assert!(
        e.contains("alpha") && e.contains("experiment `mm--1`"),
        "{e}"
    );
    let e = err(&with_sweep(
        &SWEEP.replace("values: [0.5, 2.0]", "values: [[1, {a: 1}], 2]"),
    ));
    assert!(e.contains("gives no id suffix"), "{e}");
}

#[test]
fn committed_sweep_suites_expand_as_printed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
    let t6 = mixbench::suite::load(&dir, "table6").unwrap();
    assert_eq!(t6.suite.experiments.len(), 12);
    let cells = resolve(&t6, "paper", None).unwrap();
    assert_eq!(cells.len(), 12 * 5);
    let t5 = mixbench::suite::load(&dir, "table5").unwrap();
    let ids: Vec<&str> = t5.suite.experiments.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(&ids[..3], ["c10-s012", "c10-s01", "c10-s0123"]);
    assert_eq!(ids.len(), 20);
    let none = t5
        .suite
        .experiments
        .iter()
        .find(|e| e.id == "c100-none")
        .unwrap();
    assert_eq!(none.row.as_deref(), Some("{}"));
    assert_eq!(none.paper["clean.top1_acc"], "76.40");
}

#[test]
fn hostile_ids_are_refused_at_load() {
    for bad in [
        "../../../../tmp/x",
        "/etc/passwd",
        "a/b",
        "a\\\\b",
        ".hidden",
        "..",
        "",
        "has space",
    ] {
        let e = err(&GOOD.replace("  - id: base\n", &format!("  - id: \"{bad}\"\n")));
        assert!(e.contains("is not a safe name"), "{bad}: {e}");
        assert!(e.starts_with("suites/t.yaml:"), "{bad}: {e}");
    }
    let long = "x".repeat(101);
    let e = err(&GOOD.replace("  - id: base\n", &format!("  - id: {long}\n")));
    assert!(e.contains("is not a safe name"), "{e}");
    let e = err(&GOOD.replace("  smoke:\n", "  \"../p\":\n"));
    assert!(e.contains("profile `../p` is not a safe name"), "{e}");
    // A suite id that is not a safe name is refused even when it matches its file.
    let e = match parse(
        Path::new("suites/..x.yaml"),
        &GOOD.replace("id: t\n", "id: ..x\n"),
    ) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("suite id `..x` is not a safe name"), "{e}");
}

#[test]
fn duplicate_seeds_and_non_finite_numbers_are_refused() {
    let e = err(&GOOD.replace("seeds: [0, 1]", "seeds: [1, 1]"));
    assert!(e.contains("seed 1 is listed twice"), "{e}");
    let ls = parse(Path::new("suites/t.yaml"), GOOD).unwrap();
    let e = resolve(&ls, "smoke", Some(&[3, 3]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed 3 is given twice"), "{e}");
    for bad in [".nan", ".inf", "-.inf"] {
        let e = err(&GOOD.replace("optimizer: {lr: 0.1,", &format!("optimizer: {{lr: {bad},")));
        assert!(
            e.contains("defaults.optimizer.lr: must be a finite number"),
            "{bad}: {e}"
        );
        assert!(e.starts_with("suites/t.yaml:10:"), "{bad}: {e}");
    }
}

/// Optimizer, factor mixup and generated-set sizes are checked at load, before anything trains.
#[test]
fn optimizer_and_factor_mixup_errors_are_found_at_load() {
    let e = err(&GOOD.replace(
        "optimizer: {lr: 0.1, momentum: 0.9}",
        "optimizer: {name: adam, lr: 0.1, betas: [0.9, 1.5]}",
    ));
    assert!(
        e.contains("defaults.optimizer") && e.contains("betas"),
        "{e}"
    );
    let e = err(&GOOD.replace(
        "optimizer: {lr: 0.1, momentum: 0.9}",
        "optimizer: {name: lbfgs, lr: 0.1}",
    ));
    assert!(e.contains("unknown optimizer `lbfgs`"), "{e}");
    let e = err(&GOOD.replace(
        "regularizer: {name: manifold_mixup, alpha: 2.0, layers: [0, 1]}",
        "regularizer: {name: factor_mixup}",
    ));
    assert!(
        e.contains("experiments[1].overrides.regularizer") && e.contains("has none"),
        "{e}"
    );
    let glyphs = GOOD.replace(
        "dataset: {name: synthetic, classes: 4, train_size: 32, test_size: 16, size: 8}",
        "dataset: {name: glyphs, task: c, size: 16, train_size: 32, test_size: 16}",
    );
    assert!(
        parse(
            Path::new("suites/t.yaml"),
            &glyphs.replace(
                "name: manifold_mixup, alpha: 2.0, layers: [0, 1]",
                "name: factor_mixup"
            )
        )
        .is_ok()
    );
    let e = err(&glyphs.replace("test_size: 16}", "test_size: 16, train_per_class: 4}"));
    assert!(
        e.contains("defaults.dataset.train_per_class") && e.contains("train_size"),
        "{e}"
    );
}

/// Every error of a suite at once, each with file:line and experiment id: one found while
/// resolving (a negative learning rate) and two found only by building the model (a zero-width
/// layer, a mix point the model does not have).
#[test]
fn every_error_is_reported_at_once_with_its_line_and_experiment() {
    let text = GOOD.replace(
        "profiles:",
        r#"  - id: zero-width
    architecture: MLP
    method: No Mixup
    overrides: {model: {hidden: [0]}}
  - id: bad-layer
    architecture: MLP
    method: Manifold Mixup
    overrides: {regularizer: {name: manifold_mixup, alpha: 1.0, layers: [0, 7]}}
  - id: bad-lr
    architecture: MLP
    method: No Mixup
    overrides: {optimizer: {lr: -1}}
profiles:"#,
    );
    let e = err(&text);
    assert!(e.starts_with("3 errors in suites/t.yaml"), "{e}");
    for want in [
        "suites/t.yaml:25:34: experiments[2].overrides.model.hidden[0]: model: mlp hidden layer 0 has width 0",
        "(experiment `zero-width`, profile `smoke`)",
        "suites/t.yaml:29:77: experiments[3].overrides.regularizer.layers[1]: regularizer `manifold_mixup`: layer 7 is not a mix point",
        "(experiment `bad-layer`, profile `smoke`)",
        "suites/t.yaml:33:17: experiments[4].overrides.optimizer: optimizer.lr must be a number >= 0, got -1",
    ] {
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
    }
    // Without the resolution error, the build errors are still all found (by `resolve`).
    let text = text.replace("{optimizer: {lr: -1}}", "{optimizer: {lr: 0.5}}");
    let ls = parse(Path::new("suites/t.yaml"), &text).unwrap();
    let e = resolve(&ls, "smoke", None).unwrap_err().to_string();
    assert!(e.starts_with("2 errors in suites/t.yaml"), "{e}");
    assert!(
        e.contains("`zero-width`") && e.contains("`bad-layer`"),
        "{e}"
    );
}

/// `file:line:col: path` of the first line of an error.
fn head(e: &str) -> String {
    let parts: Vec<&str> = e.splitn(3, ": ").collect();
    format!("{}: {}", parts[0], parts.get(1).unwrap_or(&""))
}

/// The error of a suite that loads but whose profile does not build (errors found by building
/// the model or the dataset's shape come from `resolve` when the file is otherwise valid).
fn build_err(text: &str) -> String {
    let ls = parse(Path::new("suites/t.yaml"), text).unwrap();
    match resolve(&ls, "smoke", None) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Adds an experiment `x` with `overrides` (YAML, indented under `overrides:`) to GOOD.
fn with_row(overrides: &str) -> String {
    GOOD.replace(
        "profiles:",
        &format!(
            "  - id: x\n    architecture: MLP\n    method: X\n    overrides:\n{overrides}profiles:"
        ),
    )
}

/// Line (1-based) and column (1-based) of the first `needle` in `text` after `after`.
fn pos(text: &str, after: &str, needle: &str) -> (usize, usize) {
    let start = text.find(after).unwrap();
    let at = start + text[start..].find(needle).unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn a_regularizer_parameter_error_points_at_its_value() {
    let text = with_row("      regularizer: {name: cutmix, alpha: 1.0, prob: 2}\n");
    let (l, c) = pos(&text, "name: cutmix", "prob:");
    let e = err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: experiments[2].overrides.regularizer.prob"),
        "{e}"
    );
    assert!(e.contains("prob must be in [0, 1]"), "{e}");
    // A type error inside the block is placed the same way.
    let text = with_row("      regularizer:\n        name: cutmix\n        alpha: big\n");
    let (l, c) = pos(&text, "name: cutmix", "alpha:");
    let e = err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: experiments[2].overrides.regularizer.alpha"),
        "{e}"
    );
}

#[test]
fn an_evaluator_parameter_error_points_at_its_value_in_the_list() {
    let text = GOOD.replace(
        "  batch_size: 8",
        "  batch_size: 8\n  evaluations:\n    - {name: zoom, factor: 1.2}\n    - name: fgsm\n      epsilon: 0.1\n      loss: hinge",
    );
    let (l, c) = pos(&text, "name: fgsm", "loss:");
    let e = err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: defaults.evaluations[1].loss"),
        "{e}"
    );
    assert!(e.contains("unknown variant `hinge`"), "{e}");
}

#[test]
fn a_model_parameter_error_points_at_its_value() {
    let text = with_row("      model:\n        arch: mlp\n        hidden: [16, 0]\n");
    let (l, c) = pos(&text, "hidden: [16, 0]", "0]");
    let e = build_err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: experiments[2].overrides.model.hidden[1]"),
        "{e}"
    );
    assert!(e.contains("hidden layer 1 has width 0"), "{e}");
}

#[test]
fn a_dataset_parameter_error_points_at_its_value() {
    let text = with_row("      dataset:\n        name: synthetic\n        classes: 1\n");
    let (l, c) = pos(&text, "name: synthetic\n        classes", "classes:");
    let e = build_err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: experiments[2].overrides.dataset.classes"),
        "{e}"
    );
    let text = with_row("      dataset: {name: synthetic, size: eight}\n");
    let (l, c) = pos(&text, "name: synthetic, size", "size:");
    let e = build_err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: experiments[2].overrides.dataset.size"),
        "{e}"
    );
}

/// A downstream regularizer with a typed `Params`, registered through `App`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PenaltyParams {
    beta: f64,
}

fn penalty(
    p: &serde_json::Map<String, serde_json::Value>,
) -> mixbench::Result<Box<dyn mixbench::regularizer::Regularizer>> {
    let q: PenaltyParams = mixbench::params::parse("regularizer `suite_test_penalty`", p)?;
    if q.beta < 0.0 {
        return Err(mixbench::Error::param("beta", "beta must be >= 0"));
    }
    mixbench::regularizer::registry::build("none", &Default::default())
}

#[test]
fn a_downstream_parameter_error_points_at_its_value() {
    mixbench::App::new()
        .regularizer(mixbench::registry::Entry::typed::<PenaltyParams>(
            "suite_test_penalty",
            "test; params: beta",
            penalty,
        ))
        .register()
        .unwrap();
    let text = with_row("      regularizer: {name: suite_test_penalty, beta: -1}\n");
    let (l, c) = pos(&text, "name: suite_test_penalty", "beta:");
    let e = err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: experiments[2].overrides.regularizer.beta"),
        "{e}"
    );
    let e = err(&text.replace("beta: -1", "beta: 1, gamma: 2"));
    assert!(
        e.contains("experiments[2].overrides.regularizer.gamma") && e.contains("unknown field"),
        "{e}"
    );
    // Its parameters are described by `mixbench schema`.
    let s = mixbench::cli::schema::component("regularizer", "suite_test_penalty").unwrap();
    assert_eq!(s["properties"]["beta"]["type"], "number", "{s}");
}

#[test]
fn duplicate_and_merge_keys_are_refused_where_they_are_written() {
    let text = GOOD.replace("optimizer: {lr: 0.1,", "optimizer: {lr: 0.1, lr: 0.2,");
    let (l, c) = pos(&text, "optimizer:", "lr: 0.2");
    let e = err(&text);
    assert_eq!(
        head(&e),
        format!("suites/t.yaml:{l}:{c}: defaults.optimizer"),
        "{e}"
    );
    assert!(e.contains("duplicate key `lr`"), "{e}");
    let text = GOOD.replace(
        "  regularizer: {name: none}",
        "  regularizer: &r {name: none}\n  extra: {<<: *r}",
    );
    let e = err(&text);
    assert!(
        e.starts_with("suites/t.yaml:10:11: defaults.extra: "),
        "{e}"
    );
    assert!(e.contains("merge keys (`<<`) are not supported"), "{e}");
    // YAML 1.1 spellings are strings: `yes` is no boolean, so a bool field refuses it.
    let e = err(&with_row(
        "      regularizer: {name: cutout, length: 4, per_example: yes}\n",
    ));
    assert!(
        e.contains("experiments[2].overrides.regularizer.per_example"),
        "{e}"
    );
    assert!(e.contains("expected a boolean"), "{e}");
}

#[test]
fn an_error_inside_an_alias_points_at_the_anchored_text() {
    let text = GOOD.replace(
        "profiles:",
        "  - id: x\n    architecture: MLP\n    method: X\n    overrides:\n      regularizer: &bad {name: cutmix, alpha: 1.0, prob: 2}\n  - id: y\n    architecture: MLP\n    method: Y\n    overrides: {regularizer: *bad}\nprofiles:",
    );
    let (l, c) = pos(&text, "&bad", "prob:");
    let e = err(&text);
    for row in [2, 3] {
        let want = format!("suites/t.yaml:{l}:{c}: experiments[{row}].overrides.regularizer.prob");
        assert!(e.contains(&want), "missing `{want}` in:\n{e}");
    }
}
