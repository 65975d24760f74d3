//! Deep merge of JSON values: objects merge key by key, everything else is replaced, and a
//! `null` value removes the key (so `preprocessing: null` in a profile restores the default,
//! as in JSON Merge Patch, RFC 7386). An absent or null override as a whole changes nothing.
//!
//! A block that names a different `name` or `arch` than the one it overrides replaces it whole,
//! so switching the dataset or regularizer never leaves the old one's parameters behind.

use serde_json::Value;

/// Merges `over` into `base`.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(bv) if replaces(bv, v) => *bv = v.clone(),
                    Some(bv) => deep_merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, Value::Null) => {
            let _ = b;
        }
        (b, o) => *b = o.clone(),
    }
}

fn replaces(base: &Value, over: &Value) -> bool {
    ["name", "arch"]
        .iter()
        .any(|k| match (base.get(k), over.get(k)) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_nested_and_replaces_renamed_blocks() {
        let mut b = json!({"optimizer": {"lr": 0.1, "momentum": 0.9}, "regularizer": {"name": "manifold_mixup", "alpha": 2.0}, "seeds": [1, 2]});
        deep_merge(
            &mut b,
            &json!({"optimizer": {"lr": 0.05}, "regularizer": {"name": "none"}, "seeds": [3]}),
        );
        assert_eq!(
            b,
            json!({"optimizer": {"lr": 0.05, "momentum": 0.9}, "regularizer": {"name": "none"}, "seeds": [3]})
        );
        deep_merge(&mut b, &json!({"regularizer": {"name": "none", "x": 1}}));
        assert_eq!(b["regularizer"], json!({"name": "none", "x": 1}));
    }

    #[test]
    fn null_removes_keys_and_nested_blocks_merge_deeply() {
        let mut b = json!({"model": {"arch": "wrn28_10", "width": 0.5}, "schedule": {"milestones": [4], "gammas": [0.1]}, "epochs": 5});
        deep_merge(
            &mut b,
            &json!({"model": {"width": null}, "schedule": null, "epochs": 6}),
        );
        assert_eq!(b, json!({"model": {"arch": "wrn28_10"}, "epochs": 6}));
        // Switching the architecture drops the old block's parameters.
        let mut b = json!({"model": {"arch": "preactresnet18", "width": 0.125}});
        deep_merge(&mut b, &json!({"model": {"arch": "preactresnet34"}}));
        assert_eq!(b, json!({"model": {"arch": "preactresnet34"}}));
        // Three levels deep: only the named leaf changes.
        let mut b = json!({"a": {"b": {"c": 1, "d": 2}, "e": 3}});
        deep_merge(&mut b, &json!({"a": {"b": {"d": 9}}}));
        assert_eq!(b, json!({"a": {"b": {"c": 1, "d": 9}, "e": 3}}));
        // A null override as a whole is no override.
        let before = b.clone();
        deep_merge(&mut b, &serde_json::Value::Null);
        assert_eq!(b, before);
    }
}
