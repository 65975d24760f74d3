//! YAML text to values and back, with one set of rules for every YAML the tool reads: suites,
//! `compare --with` blocks and emitted manifests.
//!
//! The rules are YAML 1.2's core schema as serde_yaml 0.9 applied it, so suites written for it
//! mean the same: `yes`/`no`/`on`/`off` stay strings, `017` and `1_000` stay strings, `0x10` and
//! `0o17` are integers. What used to pass silently is refused with its line and column: a key
//! given twice in one mapping, a `<<` merge key, a custom tag. Alias expansion, nesting depth and
//! node count are bounded, so an alias bomb is refused instead of filling memory.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy, Options};

/// A YAML error: where, at which field, and what is wrong, in words for the suite's author.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// Line and column (1-based) of the offending node, when the parser knows it.
    pub at: Option<(usize, usize)>,
    /// The field path (`experiments[1].overrides`); `.` for the top level.
    pub field: String,
    /// What is wrong, without position or field.
    pub message: String,
    /// The offending scalar when the error is a NaN or infinite number (`.nan`, `1e999`).
    pub non_finite: Option<String>,
}

/// The options every read uses.
fn options() -> Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        reject_unsupported_tags: true,
        non_finite_float_policy: NonFiniteFloatPolicy::Reject,
        with_snippet: false,
    }
}

/// Reads one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let mut field = String::from(".");
    let r = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    });
    r.map_err(|e| to_error(e, field))
}

/// Writes `value` as block YAML that `from_str` reads back to the same value.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    // Long strings stay on one line: a folded block would be the same value, but not what a
    // person expects to read in a manifest.
    let opts = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, opts).map_err(|e| e.to_string())
}

fn to_error(e: serde_saphyr::Error, field: String) -> YamlError {
    let at = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line() as usize, l.column() as usize));
    let inner = e.without_snippet();
    let non_finite = match inner {
        serde_saphyr::Error::NonFiniteFloat { value, .. } => Some(value.clone()),
        _ => None,
    };
    // The position is reported apart, and alias notes ("defined at ...") with it.
    let text = inner.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    YamlError {
        at,
        message: reword(text),
        field: field_path(&field),
        non_finite,
    }
}

/// serde_path_to_error writes `?` for a key it could not name (inside a map being built); the
/// path up to there is what the author can find.
fn field_path(raw: &str) -> String {
    let kept: Vec<&str> = raw
        .split('.')
        .filter(|s| *s != "?" && !s.is_empty())
        .collect();
    if kept.is_empty() {
        ".".into()
    } else {
        kept.join(".")
    }
}

/// The parser's words for a few common mistakes, said for a suite's author instead of a
/// Rust programmer (no "use Option<String>" or "set DuplicateKeyPolicy").
fn reword(msg: &str) -> String {
    if let Some(key) = msg
        .strip_prefix("duplicate mapping key: ")
        .and_then(|m| m.split(", set DuplicateKeyPolicy").next())
    {
        return format!("duplicate key `{key}`: a key may appear only once in a mapping");
    }
    let plain = [
        (
            "expected sequence start",
            "invalid type: expected a sequence such as [0, 1]",
        ),
        (
            "expected mapping start",
            "invalid type: expected a mapping such as {key: value}",
        ),
        ("expected string scalar", "invalid type: expected a string"),
        ("invalid u64", "invalid type: expected a whole number >= 0"),
        (
            "invalid usize",
            "invalid type: expected a whole number >= 0",
        ),
        ("invalid u32", "invalid type: expected a whole number >= 0"),
        ("invalid i64", "invalid type: expected a whole number"),
        ("invalid f64", "invalid type: expected a number"),
        ("invalid bool", "invalid type: expected true or false"),
        (
            "cannot deserialize null into string; use Option<String>",
            "invalid type: an empty value, expected a string",
        ),
        (
            "YAML merge keys are not allowed by configured policy",
            "merge keys (`<<`) are not supported; write the settings out, or use an alias (`*name`) for a whole block",
        ),
    ];
    plain
        .iter()
        .find(|(from, _)| msg == *from)
        .map(|(_, to)| to.to_string())
        .unwrap_or_else(|| msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn value(text: &str) -> Value {
        from_str(text).unwrap()
    }

    fn err(text: &str) -> YamlError {
        from_str::<Value>(text).unwrap_err()
    }

    #[test]
    fn scalars_read_as_serde_yaml_0_9_read_them() {
        // YAML 1.2 booleans only: the YAML 1.1 spellings are strings.
        assert_eq!(
            value("[yes, no, on, off, y, n, Yes, NO, true, false, True, FALSE, tRue]"),
            json!([
                "yes", "no", "on", "off", "y", "n", "Yes", "NO", true, false, true, false, "tRue"
            ])
        );
        let nums = value("[1, -1, 1.0, 1e-3, 1E3, 1.5e+2, 0x10, 0o17, 017, +5, .5, 5., 1_000]");
        assert_eq!(
            nums,
            json!([
                1, -1, 1.0, 0.001, 1000.0, 150.0, 16, 15, "017", 5, 0.5, 5.0, "1_000"
            ])
        );
        // Integers stay integers (a config hash tells 1 from 1.0).
        assert!(nums[0].is_u64() && nums[1].is_i64() && nums[2].is_f64());
        assert_eq!(
            value("[~, null, Null, NULL, '', \"\", '1', .nan-ish, 2026-01-01]"),
            json!([
                null,
                null,
                null,
                null,
                "",
                "",
                "1",
                ".nan-ish",
                "2026-01-01"
            ])
        );
        assert_eq!(value("{a: , b: ~}"), json!({"a": null, "b": null}));
    }

    #[test]
    fn anchors_and_aliases_repeat_the_anchored_value() {
        assert_eq!(
            value("{a: &x {p: 1, q: [1, 2]}, b: *x, c: [*x]}"),
            json!({"a": {"p": 1, "q": [1, 2]}, "b": {"p": 1, "q": [1, 2]}, "c": [{"p": 1, "q": [1, 2]}]})
        );
        // Key order is kept (the suite's JSON follows the file).
        let v = value("{z: 1, a: 2, m: 3}");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn non_finite_numbers_are_refused_with_their_text_and_place() {
        for (text, bad, col) in [
            ("{lr: .nan}", ".nan", 6),
            ("[1, -.inf]", "-.inf", 5),
            ("[1e999]", "1e999", 2),
        ] {
            let e = err(text);
            assert_eq!(e.non_finite.as_deref(), Some(bad), "{text}: {e:?}");
            assert_eq!(e.at, Some((1, col)), "{text}: {e:?}");
        }
        assert_eq!(err("{lr: .inf}").field, "lr");
        // As a string it is only text.
        assert_eq!(value("'.nan'"), json!(".nan"));
    }

    #[test]
    fn hostile_and_ambiguous_input_is_refused_with_line_and_column() {
        let e = err("a: 1\nb: 2\na: 3\n");
        assert_eq!((e.at, e.field.as_str()), (Some((3, 1)), "."), "{e:?}");
        assert_eq!(err("opt: {lr: 1, lr: 2}").field, "opt");
        assert_eq!(
            e.message,
            "duplicate key `a`: a key may appear only once in a mapping"
        );
        let e = err("base: &b {p: 1}\nrow: {<<: *b, q: 2}\n");
        assert_eq!(e.at.map(|a| a.0), Some(2), "{e:?}");
        assert!(
            e.message.starts_with("merge keys (`<<`) are not supported"),
            "{e:?}"
        );
        let e = err("v: !custom {a: 1}\n");
        assert!(e.message.contains("unsupported tag `!custom`"), "{e:?}");
        assert_eq!(e.at.map(|a| a.0), Some(1));
        // A billion laughs: nine levels of ten aliases each.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for w in ["a", "b", "c", "d", "e", "f", "g", "h", "i"].windows(2) {
            bomb += &format!(
                "{}: &{} [{}]\n",
                w[1],
                w[1],
                vec![format!("*{}", w[0]); 10].join(", ")
            );
        }
        assert!(err(&bomb).message.contains("budget"), "{:?}", err(&bomb));
        // Nesting deeper than any suite needs.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(err(&deep).message.contains("budget"), "{:?}", err(&deep));
        assert!(
            err("id: x\n---\nid: y\n")
                .message
                .contains("multiple YAML documents")
        );
        assert_eq!(err("a: [1, 2\nb: 3\n").at.map(|a| a.0), Some(2));
    }

    #[test]
    fn type_errors_name_the_field_and_say_what_was_expected() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            seeds: Vec<u64>,
            #[serde(default)]
            id: String,
        }
        let e = from_str::<S>("seeds: zero\n").unwrap_err();
        assert_eq!((e.field.as_str(), e.at), ("seeds", Some((1, 8))));
        assert_eq!(
            e.message,
            "invalid type: expected a sequence such as [0, 1]"
        );
        let e = from_str::<S>("seeds: [0, -1]\n").unwrap_err();
        assert_eq!((e.field.as_str(), e.at), ("seeds[1]", Some((1, 12))));
        assert_eq!(e.message, "invalid type: expected a whole number >= 0");
        let e = from_str::<S>("seeds: []\nid:\n").unwrap_err();
        assert_eq!(e.message, "invalid type: an empty value, expected a string");
        assert_eq!(e.field, "id");
    }

    #[test]
    fn written_yaml_reads_back_as_the_same_value() {
        let v = json!({
            "name": "a", "n": 3, "x": 2.5, "flag": true, "none": null,
            "looks_like": ["yes", "1", "0x10", "true", "~", "", "a: b", "-1"],
            "long": "x".repeat(120),
            "nested": [{"k": "v", "list": [1, 2]}]
        });
        let text = to_string(&v).unwrap();
        assert_eq!(value(&text), v, "{text}");
        // One line per long string, no folded block.
        assert!(
            text.contains(&format!("long: {}\n", "x".repeat(120))),
            "{text}"
        );
    }
}
