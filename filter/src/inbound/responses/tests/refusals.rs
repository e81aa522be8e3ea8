//! Requests that cannot be honoured by translation: a 400 naming the parameter, the client's
//! fault.

use serde_json::{json, Value};

use super::*;
use crate::error::GatewayError;

fn refused(body: &Value) -> GatewayError {
    match to_chat(body.to_string().as_bytes()) {
        Ok((chat, _)) => panic!("accepted {body}: {}", String::from_utf8_lossy(&chat)),
        Err(e) => e,
    }
}

fn with(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4.1", "input": "Hi"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn message_with(part: Value) -> Value {
    with(json!({"input": [{"role": "user", "content": [part]}]}))
}

#[test]
fn what_needs_a_store_or_openai_is_refused_naming_the_parameter() {
    let cases = [
        (
            with(json!({"previous_response_id": "resp_1"})),
            "previous_response_id",
            "no response store",
        ),
        (
            with(json!({"conversation": "conv_1"})),
            "conversation",
            "no conversation store",
        ),
        (
            with(json!({"background": true})),
            "background",
            "response store",
        ),
        (
            with(json!({"prompt": {"id": "pmpt_1"}})),
            "prompt",
            "reusable prompt",
        ),
        (
            with(json!({"input": [{"type": "item_reference", "id": "msg_1"}]})),
            "input[0].type",
            "response store",
        ),
        (
            message_with(json!({"type": "input_image", "file_id": "file-1"})),
            "input[0].content[0].file_id",
            "stored at OpenAI",
        ),
        (
            message_with(json!({"type": "input_file", "file_url": "https://example.com/a.pdf"})),
            "input[0].content[0].file_data",
            "inline",
        ),
        (
            message_with(json!({"type": "input_audio", "input_audio": {}})),
            "input[0].content[0].type",
            "'input_audio'",
        ),
    ];
    for (body, param, says) in cases {
        let e = refused(&body);
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{body}: {e}");
        assert_eq!(e.fault(), "client");
        assert!(e.to_string().contains(says), "{body}: {e}");
    }
}

/// What only OpenAI's own Responses API can take is no refusal: it is left out of the chat form
/// and the context says why, so that only a provider of that API gets the request.
#[test]
fn what_only_openai_serves_is_set_aside_with_the_reason_naming_the_parameter() {
    let cases = [
        (with(json!({"truncation": "auto"})), "'truncation'"),
        (
            with(json!({"tools": [{"type": "web_search"}]})),
            "'web_search' ('tools[0].type')",
        ),
        (
            with(
                json!({"tools": [{"type": "function", "name": "f"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            ),
            "'file_search' ('tools[1].type')",
        ),
        (
            with(
                json!({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "web_search_preview"}}),
            ),
            "'web_search_preview' ('tool_choice.type')",
        ),
        (
            with(
                json!({"input": [{"role": "user", "content": "Hi"}, {"type": "web_search_call", "id": "ws_1"}]}),
            ),
            "'web_search_call' ('input[1].type')",
        ),
    ];
    for (body, says) in cases {
        let (chat, ctx) =
            to_chat(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let reason = ctx
            .untranslatable
            .unwrap_or_else(|| panic!("no reason for {body}"));
        assert!(reason.contains(says), "{body}: {reason}");
        let chat: Value = serde_json::from_slice(&chat).unwrap();
        assert_eq!(
            chat["messages"],
            json!([{"role": "user", "content": "Hi"}]),
            "{body}"
        );
        assert!(
            chat.get("truncation").is_none() && chat.get("tool_choice").is_none(),
            "{chat}"
        );
    }
    let (_, ctx) = to_chat(
        with(json!({"truncation": "disabled"}))
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(ctx.untranslatable, None);
}

#[test]
fn malformed_requests_name_the_parameter() {
    let cases = [
        (json!({"input": "Hi"}), "model"),
        (json!({"model": "gpt-4.1"}), "input"),
        (with(json!({"input": 3})), "input"),
        (with(json!({"input": []})), "input"),
        (with(json!({"input": ["Hi"]})), "input[0]"),
        (
            with(json!({"input": [{"content": "no role, no type"}]})),
            "input[0].type",
        ),
        (
            with(json!({"input": [{"role": "tool", "content": "x"}]})),
            "input[0].role",
        ),
        (
            with(json!({"input": [{"role": "user"}]})),
            "input[0].content",
        ),
        (
            with(
                json!({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]}),
            ),
            "input[0].content[0].type",
        ),
        (
            message_with(json!({"type": "input_text"})),
            "input[0].content[0].text",
        ),
        (
            message_with(json!({"type": "input_image"})),
            "input[0].content[0].image_url",
        ),
        (
            with(json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})),
            "input[0].call_id",
        ),
        (
            with(json!({"input": [{"type": "function_call_output", "call_id": "c"}]})),
            "input[0].output",
        ),
        (with(json!({"instructions": ["a"]})), "instructions"),
        (with(json!({"max_output_tokens": 0})), "max_output_tokens"),
        (
            with(json!({"max_output_tokens": "10"})),
            "max_output_tokens",
        ),
        (with(json!({"temperature": 3})), "temperature"),
        (with(json!({"top_p": -0.5})), "top_p"),
        (with(json!({"stream": "yes"})), "stream"),
        (with(json!({"store": "no"})), "store"),
        (with(json!({"tools": {"type": "function"}})), "tools"),
        (
            with(json!({"tools": [{"type": "function"}]})),
            "tools[0].name",
        ),
        (
            with(json!({"tools": [{"type": "function", "name": "f", "parameters": "{}"}]})),
            "tools[0].parameters",
        ),
        (with(json!({"tool_choice": "sometimes"})), "tool_choice"),
        (
            with(json!({"tool_choice": {"type": "function"}})),
            "tool_choice.name",
        ),
        (
            with(json!({"text": {"format": {"type": "yaml"}}})),
            "text.format.type",
        ),
        (
            with(json!({"text": {"format": {"type": "json_schema", "schema": {}}}})),
            "text.format.name",
        ),
        (
            with(json!({"text": {"format": {"type": "json_schema", "name": "x"}}})),
            "text.format.schema",
        ),
        (
            with(json!({"text": {"verbosity": "loud"}})),
            "text.verbosity",
        ),
        (
            with(json!({"reasoning": {"effort": 3}})),
            "reasoning.effort",
        ),
        (with(json!({"metadata": "x"})), "metadata"),
        (with(json!({"user": 7})), "user"),
        // What the chat checks would refuse under a chat name, refused under the client's.
        (
            with(json!({"tools": [{"type": "function", "name": "get weather"}]})),
            "tools[0].name",
        ),
        (with(json!({"tool_choice": "required"})), "tool_choice"),
        (
            with(json!({"reasoning": {"effort": "extreme"}})),
            "reasoning.effort",
        ),
        (
            with(
                json!({"text": {"format": {"type": "json_schema", "name": "a", "schema": {}, "strict": "yes"}}}),
            ),
            "text.format.strict",
        ),
        (
            with(json!({"tools": [], "tool_choice": {"type": "function", "name": "f"}})),
            "tool_choice",
        ),
        (
            with(json!({"text": {"format": {"type": "json_schema", "name": "a b", "schema": {}}}})),
            "text.format.name",
        ),
        (
            message_with(json!({"type": "input_image", "image_url": "file:///etc/passwd"})),
            "input[0].content[0].image_url",
        ),
        (
            with(json!({"input": [{"role": "user", "content": []}]})),
            "input[0].content",
        ),
        (
            with(
                json!({"input": [{"type": "function_call_output", "call_id": "c", "output": []}]}),
            ),
            "input[0].output",
        ),
    ];
    for (body, param) in cases {
        let e = refused(&body);
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{body}: {e}");
    }
    let e = refused_bytes(b"{not json");
    assert_eq!((e.status(), e.code()), (400, "invalid_json"));
    let e = refused_bytes(b"[1]");
    assert_eq!((e.status(), e.code()), (400, "invalid_json"));
}

fn refused_bytes(body: &[u8]) -> GatewayError {
    to_chat(body).expect_err("refused")
}

#[test]
fn store_is_accepted_and_the_answer_says_false() {
    let (chat, ctx) = to_chat(
        with(json!({"store": true, "background": false}))
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let chat: Value = serde_json::from_slice(&chat).unwrap();
    assert!(chat.get("store").is_none(), "{chat}");
    let answer: Value =
        serde_json::from_slice(&answer_from_chat(&read("answer_text.chat.json"), &ctx)).unwrap();
    assert_eq!(answer["store"], false);
    assert_eq!(answer["previous_response_id"], Value::Null);
}

#[test]
fn a_function_call_without_an_assistant_message_before_it_starts_one() {
    let body = with(json!({"input": [
        {"role": "user", "content": "Hi"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    ]}));
    let (chat, _) = to_chat(body.to_string().as_bytes()).unwrap();
    let chat: Value = serde_json::from_slice(&chat).unwrap();
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "assistant", "content": null, "refusal": "No."},
        ])
    );
    crate::chat::parse_chat_request(&serde_json::to_vec(&chat).unwrap()).unwrap();
}
