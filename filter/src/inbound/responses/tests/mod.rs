//! Tests of the Responses API translation. Expected files in `filter/testdata/openai_responses/`
//! were written by hand from the references its README cites, not copied from the output.

mod golden;
mod refusals;
mod stream;

use serde_json::{json, Value};

use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/openai_responses");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_json(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The context of one of the request files.
fn context_of(request: &str) -> Context {
    to_chat(&read(request))
        .unwrap_or_else(|e| panic!("{request}: {e}"))
        .1
}

/// JSON equality by meaning: numbers by value (1 == 1.0), and strings that both hold JSON
/// objects or arrays (tool call arguments) by their parsed value.
fn same(a: &Value, b: &Value) -> bool {
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

fn assert_same(actual: &Value, expected: &Value, what: &str) {
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

/// A Responses SSE stream → its events' data, checking each block is `event: <type>` then
/// `data: <json>` with that same `type`.
fn events_of(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).expect("the stream is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "unterminated: {text}"
    );
    text.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block
                .strip_prefix("event: ")
                .and_then(|b| b.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not an event block: {block}"));
            let data: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
            assert_eq!(data["type"], event, "{block}");
            data
        })
        .collect()
}

/// Feeds a stream in the given pieces and ends it.
fn run_stream(ctx: &Context, pieces: &[&[u8]]) -> Vec<u8> {
    let mut s = StreamFromChat::new(ctx);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(s.push(piece, false));
    }
    out.extend(s.push(b"", true));
    out
}
