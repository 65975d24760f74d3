//! Typed component parameters: every regularizer, model, dataset and evaluator declares a
//! `Params` type (`Deserialize + JsonSchema`) and parses its block here, so a bad value comes
//! back as [`Error::Param`] with its field path (for the suite's line:column) and the same type
//! describes the block in `mixbench schema`.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Parses a component's parameters (its block without the naming key) into `P`; `what` names
/// the component in messages (``regularizer `cutmix` ``).
pub fn parse<P: DeserializeOwned>(what: &str, params: &Map<String, Value>) -> Result<P> {
    parse_value(what, &Value::Object(params.clone()))
}

/// [`parse`] for a JSON value; `null` counts as no parameters.
pub fn parse_value<P: DeserializeOwned>(what: &str, params: &Value) -> Result<P> {
    let v = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params.clone()
    };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let inner = e.into_inner().to_string();
        let at = if path.is_empty() {
            String::new()
        } else {
            format!("`{path}`: ")
        };
        Error::param(path, format!("{what}: {at}{inner}"))
    })
}

/// The JSON Schema of `P` (a component's parameters), for `mixbench schema`.
pub fn schema<P: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(P)).expect("a schema serializes")
}

/// The schema of a component registered without a `Params` type: any mapping.
pub fn any_params() -> Value {
    serde_json::json!({"type": "object", "description": "parameters (no schema registered)"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        alpha: f64,
        #[serde(default)]
        layers: Vec<usize>,
    }

    fn path_of(v: Value) -> String {
        match parse::<P>("thing", v.as_object().unwrap()) {
            Err(Error::Param { path, .. }) => path,
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn errors_carry_the_field_path() {
        use serde_json::json;
        assert_eq!(path_of(json!({"alpha": "x"})), "alpha");
        assert_eq!(path_of(json!({"alpha": 1, "layers": [0, -1]})), "layers[1]");
        assert_eq!(path_of(json!({"alpha": 1, "beta": 2})), "beta");
        assert_eq!(path_of(json!({})), "");
        let s = schema::<P>();
        assert_eq!(s["properties"]["alpha"]["type"], "number", "{s}");
    }
}
