//! The hand-written golden files: requests, answers, streams (whole and split at every byte),
//! errors.

use serde_json::Value;

use super::*;
use crate::chat::parse_chat_request;

#[test]
fn golden_requests() {
    for name in ["request_text", "request_items", "request_tools"] {
        let (chat, ctx) = to_chat(&read(&format!("{name}.responses.json")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let actual: Value = serde_json::from_slice(&chat).unwrap();
        assert_same(&actual, &read_json(&format!("{name}.chat.json")), name);
        // What comes out is a valid chat request, as the gateway's own chat checks see it.
        let checked = parse_chat_request(&chat).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(checked.stream, ctx.stream, "{name}");
        assert_eq!(
            checked.include_usage, ctx.stream,
            "{name}: usage asked when streaming"
        );
        assert_eq!(ctx.model, "gpt-4.1", "{name}");
    }
}

#[test]
fn golden_answers() {
    for (name, request) in [
        ("answer_text", "request_text.responses.json"),
        ("answer_tool_calls", "request_tools.responses.json"),
        ("answer_length", "request_minimal.responses.json"),
    ] {
        let ctx = context_of(request);
        let answer = answer_from_chat(&read(&format!("{name}.chat.json")), &ctx);
        let actual: Value = serde_json::from_slice(&answer).unwrap();
        assert_same(&actual, &read_json(&format!("{name}.response.json")), name);
    }
}

/// Compares a stream's events with an expected file; with `"response_fields": "listed"` the
/// `response` objects are compared on the keys the file lists (the echoed request fields are
/// checked in full by `stream_text` and the answer files).
fn assert_stream(actual: &[Value], expected_file: &str) {
    let expected = read_json(expected_file);
    let listed = expected["response_fields"] == "listed";
    let expected = expected["events"].as_array().unwrap();
    let kinds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        kinds(actual),
        kinds(expected),
        "{expected_file}: event sequence"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let mut a = a.clone();
        if listed {
            if let (Some(response), Some(wanted)) =
                (a.get_mut("response"), e["response"].as_object())
            {
                let kept = response
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| wanted.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                *response = Value::Object(kept);
            }
        }
        assert_same(&a, e, &format!("{expected_file} event {i}"));
    }
}

#[test]
fn golden_streams_whole_and_split_at_every_byte() {
    let ctx = context_of("request_minimal.responses.json");
    for name in [
        "stream_text",
        "stream_tools",
        "stream_error",
        "stream_truncated",
    ] {
        let input = read(&format!("{name}.chat.sse"));
        let whole = run_stream(&ctx, &[&input]);
        assert_stream(&events_of(&whole), &format!("{name}.responses.json"));
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(run_stream(&ctx, &[a, b]), whole, "{name}: split at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run_stream(&ctx, &bytes), whole, "{name}: byte by byte");
    }
}

#[test]
fn golden_errors() {
    let body = error_from_chat(429, &read("error_429.chat.json"));
    let actual: Value = serde_json::from_slice(&body).unwrap();
    assert_same(&actual, &read_json("error_429.responses.json"), "error_429");
}
