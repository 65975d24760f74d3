//! `mixbench schema`: JSON Schema of the suite format, with every registered component's
//! parameters (built-in or added through `App`), or one component's parameters.

use clap::Args;
use serde_json::{Map, Value, json};

use super::EXIT_OK;
use crate::experiment::ExperimentConfig;
use crate::registry::Entry;
use crate::suite::Suite;
use crate::{data, eval, model, regularizer};

/// Arguments of `mixbench schema`.
#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Component kind: regularizer, model, dataset or evaluator (omit for the suite schema).
    pub kind: Option<String>,
    /// Registered name of the component (omit to list the kind's names).
    pub name: Option<String>,
}

/// Prints the suite schema, or one component's parameter schema.
pub fn run(a: &SchemaArgs) -> anyhow::Result<i32> {
    let out = match (&a.kind, &a.name) {
        (None, _) => suite(),
        (Some(kind), Some(name)) => component(kind, name)?,
        (Some(kind), None) => {
            let names = variants(kind)?.into_iter().map(|(n, _)| Value::from(n));
            Value::Array(names.collect())
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(EXIT_OK)
}

/// One component's parameter schema (its `Params` type; the naming key is not included).
pub fn component(kind: &str, name: &str) -> crate::Result<Value> {
    fn one<F: Copy>(r: &crate::registry::Registry<F>, name: &str) -> crate::Result<Value> {
        let e = r.get(name)?;
        let mut s = (e.schema)();
        s["description"] = Value::from(e.description);
        Ok(s)
    }
    match kind {
        "regularizer" => one(&regularizer::registry::REGISTRY, name),
        "model" => one(&model::registry::REGISTRY, name),
        "dataset" => one(&data::registry::REGISTRY, name),
        "evaluator" => one(&eval::registry::REGISTRY, name),
        _ => Err(unknown_kind(kind)),
    }
}

fn unknown_kind(kind: &str) -> crate::Error {
    crate::Error::Config(format!(
        "unknown component kind `{kind}`; expected one of: regularizer, model, dataset, evaluator"
    ))
}

/// Each entry of `kind` as a block schema: its parameters plus the naming key as a `const`.
fn variants(kind: &str) -> crate::Result<Vec<(&'static str, Value)>> {
    fn all<F: Copy>(r: &crate::registry::Registry<F>, key: &str) -> Vec<(&'static str, Value)> {
        r.entries()
            .iter()
            .map(|e| (e.name, block(e, key)))
            .collect()
    }
    let mut out = match kind {
        "regularizer" => all(&regularizer::registry::REGISTRY, "name"),
        "model" => all(&model::registry::REGISTRY, "arch"),
        "dataset" => all(&data::registry::REGISTRY, "name"),
        "evaluator" => all(&eval::registry::REGISTRY, "name"),
        _ => return Err(unknown_kind(kind)),
    };
    // Keys every block of the kind takes besides the entry's own parameters.
    let common = match kind {
        "model" => json!({"bn_init": {"enum": ["current", "torch1.0"],
            "description": "BatchNorm γ init: 1 (current) or U(0, 1) (torch1.0, the reference's)"}}),
        "dataset" => json!({
            "keep_classes": {"type": "array", "items": {"type": "integer", "minimum": 0},
                "minItems": 1, "uniqueItems": true,
                "description": "train and test on these classes only, relabelled 0.. in this order"},
            "train_per_class": {"type": "integer", "minimum": 0},
            "test_per_class": {"type": "integer", "minimum": 0},
            "validation_per_class": {"type": "integer", "minimum": 1},
            "subset_seed": {"type": "integer", "minimum": 0}}),
        "evaluator" => json!({"id": {"type": "string",
            "description": "prefix of the metric keys (default: generated)"}}),
        _ => json!({}),
    };
    for (_, v) in &mut out {
        if let (Some(props), Value::Object(c)) = (v["properties"].as_object_mut(), &common) {
            props.extend(c.clone());
        }
    }
    Ok(out)
}

/// `e`'s parameter schema as a whole block: `key: const <name>`, sweepable parameters also as
/// lists, its `$defs` renamed under the entry so entries cannot collide.
fn block<F>(e: &Entry<F>, key: &str) -> Value {
    let mut s = (e.schema)();
    let prefix = format!("{}_", e.name);
    rename_refs(&mut s, &prefix);
    let Value::Object(m) = &mut s else {
        return s;
    };
    m.remove("$schema");
    m.insert("title".into(), Value::from(e.name));
    m.insert("description".into(), Value::from(e.description));
    let props = m
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties is a mapping");
    for k in e.sweep {
        if let Some(p) = props.get(*k).cloned() {
            props.insert(
                (*k).into(),
                json!({"anyOf": [p, {"type": "array", "items": p}]}),
            );
        }
    }
    props.insert(key.into(), json!({"const": e.name}));
    s
}

/// Renames `#/$defs/X` to `#/$defs/<prefix>X` throughout `v` (and the `$defs` keys).
fn rename_refs(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/$defs/{prefix}{name}");
            }
            if let Some(Value::Object(defs)) = m.get_mut("$defs") {
                let renamed: Map<String, Value> = std::mem::take(defs)
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .collect();
                *defs = renamed;
            }
            m.values_mut().for_each(|x| rename_refs(x, prefix));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_refs(x, prefix)),
        _ => {}
    }
}

/// Moves the `$defs` of `v` into `defs` (schemars resolves refs from the document root).
fn hoist_defs(v: &mut Value, defs: &mut Map<String, Value>) {
    if let Some(Value::Object(d)) = v.as_object_mut().and_then(|m| m.remove("$defs")) {
        defs.extend(d);
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("$schema");
    }
}

/// The suite schema: `ExperimentConfig` with each component block a choice over the
/// registered entries, and the partial configs of `defaults` and `overrides` pointing at it.
pub fn suite() -> Value {
    let mut suite = serde_json::to_value(schemars::schema_for!(Suite)).expect("schema");
    let mut exp = serde_json::to_value(schemars::schema_for!(ExperimentConfig)).expect("schema");
    let mut defs = Map::new();
    hoist_defs(&mut exp, &mut defs);
    for (field, kind) in [
        ("dataset", "dataset"),
        ("model", "model"),
        ("regularizer", "regularizer"),
    ] {
        let mut refs = Vec::new();
        for (name, mut v) in variants(kind).expect("known kind") {
            hoist_defs(&mut v, &mut defs);
            let def = format!("{kind}_{name}");
            refs.push(json!({"$ref": format!("#/$defs/{def}")}));
            defs.insert(def, v);
        }
        let desc = exp["properties"][field]["description"].clone();
        // anyOf, not oneOf: an override may give only some parameters and no name.
        exp["properties"][field] = json!({"description": desc, "anyOf": refs});
    }
    let mut evals = Vec::new();
    for (name, mut v) in variants("evaluator").expect("known kind") {
        hoist_defs(&mut v, &mut defs);
        if let Some(r) = v.get_mut("required").and_then(Value::as_array_mut) {
            r.push(Value::from("name"));
        } else {
            v["required"] = json!(["name"]);
        }
        let def = format!("evaluator_{name}");
        evals.push(json!({"$ref": format!("#/$defs/{def}")}));
        defs.insert(def, v);
    }
    exp["properties"]["evaluations"]["items"] = json!({"oneOf": evals});
    // Blocks written in parts (defaults, then overrides) need none of their fields.
    let mut partial = exp.clone();
    if let Some(m) = partial.as_object_mut() {
        m.remove("required");
        m.insert("title".into(), Value::from("PartialExperimentConfig"));
    }
    for (_, v) in defs
        .iter_mut()
        .filter(|(k, _)| !k.starts_with("evaluator_"))
    {
        if let Some(m) = v.as_object_mut()
            && m.contains_key("properties")
            && m.get("title").is_some()
        {
            m.remove("required");
        }
    }
    defs.insert("ExperimentConfig".into(), exp);
    defs.insert("PartialExperimentConfig".into(), partial);
    let part = json!({"$ref": "#/$defs/PartialExperimentConfig"});
    if let Some(d) = suite["$defs"].as_object_mut() {
        d.extend(defs);
        if let Some(p) = d.get_mut("ExperimentSpec").map(|s| &mut s["properties"]) {
            p["overrides"] = part.clone();
            p["profile_overrides"]["additionalProperties"] = part.clone();
        }
        if let Some(p) = d.get_mut("ProfileSpec").map(|s| &mut s["properties"]) {
            p["overrides"] = part.clone();
        }
    }
    suite["properties"]["defaults"] = part;
    suite["description"] = Value::String(
        "mixbench suite: `defaults`, experiment `overrides` and profile `overrides` are (partial) ExperimentConfig objects, deep-merged in that order; each component block is one of the registered entries (`mixbench schema <kind> <name>`)".into(),
    );
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_schema_describes_every_component() {
        let s = suite();
        let d = &s["$defs"];
        let cutmix = &d["regularizer_cutmix"];
        assert_eq!(cutmix["properties"]["name"]["const"], "cutmix", "{cutmix}");
        assert_eq!(cutmix["properties"]["alpha"]["type"], "number", "{cutmix}");
        assert_eq!(cutmix["additionalProperties"], false, "{cutmix}");
        let regs = d["ExperimentConfig"]["properties"]["regularizer"]["anyOf"]
            .as_array()
            .unwrap();
        assert_eq!(regs.len(), regularizer::registry::names().len());
        let fgsm = &d["evaluator_fgsm"];
        assert!(fgsm["properties"]["epsilon"]["anyOf"].is_array(), "{fgsm}");
        // A nested type of a component resolves from the root under its prefixed name.
        let loss = fgsm["properties"]["loss"].to_string();
        let name = loss
            .split("#/$defs/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(d[name].is_object(), "{name} in {loss}");
        assert!(d["model_mlp"]["properties"]["hidden"].is_object());
        assert!(d["dataset_synthetic"]["properties"]["train_per_class"].is_object());
        assert_eq!(
            s["properties"]["defaults"]["$ref"],
            "#/$defs/PartialExperimentConfig"
        );
        // Every `$ref` resolves.
        let text = s.to_string();
        for r in text.split("\"$ref\":\"#/$defs/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(d[name].is_object(), "dangling $ref {name}");
        }
        let one = component("regularizer", "manifold_mixup").unwrap();
        assert!(one["properties"]["layers"].is_object(), "{one}");
        assert!(component("widget", "x").is_err());
    }
}
