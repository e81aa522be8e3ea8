//! Test-only: JSON compared by meaning, for the golden files of the translators and the inbound
//! APIs.

use serde_json::{json, Value};

/// JSON equality by meaning: numbers by value (1 == 1.0), and strings that both hold JSON
/// (tool call arguments, json_schema answers) by their parsed value.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => {
            x == y
                || matches!(
                    (serde_json::from_str::<Value>(x), serde_json::from_str::<Value>(y)),
                    (Ok(px), Ok(py)) if (px.is_object() || px.is_array()) && same(&px, &py)
                )
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

pub fn assert_same(actual: &Value, expected: &Value, what: &str) {
    assert!(
        same(actual, expected),
        "{what}\n--- actual:\n{}\n--- expected:\n{}",
        serde_json::to_string_pretty(actual).unwrap(),
        serde_json::to_string_pretty(expected).unwrap()
    );
}

#[test]
fn semantic_comparison_can_fail() {
    assert!(same(
        &json!({"a": 1, "s": "{\"x\": 1}"}),
        &json!({"s": "{\"x\":1.0}", "a": 1.0})
    ));
    assert!(!same(&json!({"a": 1}), &json!({"a": 2})));
    assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": null})));
    assert!(!same(&json!("{\"x\": 1}"), &json!("{\"x\": 2}")));
    assert!(!same(&json!(["a", "b"]), &json!(["b", "a"])));
}
