//! The hand-written golden files: requests, answers, streams (whole and split at every byte),
//! errors.

use serde_json::{json, Value};

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

/// A real second turn of the Codex CLI (0.171.0, `codex exec` with `-c web_search=disabled
/// --disable multi_agent`, captured after it ran the tool calls of `stream_tools`): developer
/// instructions as parts, `client_metadata`, `include`, `prompt_cache_key`, reasoning without an
/// effort, and its own echo of the streamed items (message, two calls, two outputs).
#[test]
fn a_codex_cli_turn_translates() {
    let body = read("request_codex_turn2.responses.json");
    let (chat, ctx) = to_chat(&body).unwrap();
    parse_chat_request(&chat).unwrap();
    let chat: Value = serde_json::from_slice(&chat).unwrap();
    assert_eq!((ctx.model.as_str(), ctx.stream), ("demo", true));
    let messages = chat["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "developer",
            "developer",
            "user",
            "user",
            "assistant",
            "tool",
            "tool"
        ]
    );
    assert_eq!(
        messages[3]["content"],
        json!([{"type": "text", "text": "Say hello"}])
    );
    assert_eq!(
        messages[4],
        json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
        ]})
    );
    assert_eq!(
        messages[5],
        json!({"role": "tool", "tool_call_id": "call_a", "content": "unsupported call: get_weather"})
    );
    let tools: Vec<&str> = chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "exec_command",
            "write_stdin",
            "request_user_input",
            "view_image",
            "get_goal",
            "create_goal",
            "update_goal"
        ]
    );
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    assert!(chat.get("reasoning_effort").is_none() && chat.get("client_metadata").is_none());

    assert_eq!(
        context_of("request_codex_turn2.responses.json").untranslatable,
        None
    );

    // By default Codex also offers its hosted web search: left out of the chat form, so the
    // request can go only to a provider of the Responses API, which gets it as sent.
    let mut with_hosted: Value = serde_json::from_slice(&body).unwrap();
    with_hosted["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "web_search", "external_web_access": false}));
    let (hosted_chat, ctx) = to_chat(with_hosted.to_string().as_bytes()).unwrap();
    let hosted_chat: Value = serde_json::from_slice(&hosted_chat).unwrap();
    assert_eq!(hosted_chat["tools"], chat["tools"]);
    let reason = ctx.untranslatable.expect("a reason");
    assert!(
        reason.contains("'web_search' ('tools[7].type')"),
        "{reason}"
    );
}
