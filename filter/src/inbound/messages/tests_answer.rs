//! The answer side (chat -> Messages: JSON, errors, streams) and the native observer. Reference
//! payloads as in `tests`: Anthropic's Messages API reference, streaming guide and errors page;
//! OpenAI's chat completion object and chunk references.

use serde_json::{json, Value};

use super::*;

fn ctx(model: &str) -> Context {
    Context {
        model: model.into(),
        stream: true,
        untranslatable: None,
    }
}

#[test]
fn answer_from_a_completion() {
    // OpenAI's chat completion object (reference example), with a tool call and cached tokens.
    let chat = json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Let me check.",
            "tool_calls": [{"id": "call_abc", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0}}
    });
    let answer: Value = serde_json::from_slice(&answer_from_chat(
        chat.to_string().as_bytes(),
        &ctx("my-claude"),
    ))
    .unwrap();
    // The Messages reference's `message` object.
    assert_eq!(
        answer,
        json!({
            "id": "msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "type": "message",
            "role": "assistant",
            "model": "my-claude",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"location": "Paris"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 1017, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 100, "output_tokens": 46}
        })
    );
}

#[test]
fn stop_reasons_follow_the_reference() {
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ] {
        let chat = json!({"id": "chatcmpl-1", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}]});
        let answer: Value =
            serde_json::from_slice(&answer_from_chat(chat.to_string().as_bytes(), &ctx("m")))
                .unwrap();
        assert_eq!(answer["stop_reason"], stop, "{finish}");
    }
}

#[test]
fn errors_take_anthropic_types_and_keep_the_message() {
    // Anthropic's errors page: status -> type.
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
        (502, "api_error"),
        (405, "invalid_request_error"),
    ] {
        let openai = json!({"error": {"message": "boom", "type": "x", "param": null, "code": "y"}});
        let body: Value =
            serde_json::from_slice(&error_from_chat(status, openai.to_string().as_bytes()))
                .unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": kind, "message": "boom"}}),
            "{status}"
        );
    }
    // The OpenAI `param` leads the message, as Anthropic's own messages name the field.
    let with_param = json!({"error": {"message": "Invalid value: 'robot'.", "type": "invalid_request_error",
        "param": "messages[0].role", "code": "invalid_parameter"}});
    let body: Value =
        serde_json::from_slice(&error_from_chat(400, with_param.to_string().as_bytes())).unwrap();
    assert_eq!(
        body["error"]["message"],
        "messages[0].role: Invalid value: 'robot'."
    );
    // Anthropic's own error (the reference example) is kept as it is.
    let native = br#"{"type":"error","error":{"type":"not_found_error","message":"The requested resource could not be found."}}"#;
    assert_eq!(error_from_chat(404, native), native.to_vec());
    // Envoy's text reply.
    let text: Value =
        serde_json::from_slice(&error_from_chat(503, b"no healthy upstream")).unwrap();
    assert_eq!(
        text,
        json!({"type": "error", "error": {"type": "api_error", "message": "no healthy upstream"}})
    );
}

/// Parses Anthropic SSE output into (event name, data) pairs, checking each event's name
/// matches its data's `type`.
fn events(out: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(out).unwrap();
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data: Value =
                serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(data["type"], name, "{block}");
            (name.to_string(), data)
        })
        .collect()
}

/// OpenAI chunk stream of a text answer then a tool call, with the usage chunk (the streaming
/// reference's shapes).
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"location\\\":\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\" \\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":15,\"total_tokens\":40}}\n\n",
    "data: [DONE]\n\n",
);

/// The Anthropic events for OPENAI_STREAM, as the streaming guide sequences them.
fn expected_events() -> Vec<(String, Value)> {
    let e = |v: Value| (v["type"].as_str().unwrap().to_string(), v);
    vec![
        e(
            json!({"type": "message_start", "message": {"id": "msg_123", "type": "message", "role": "assistant",
            "model": "my-claude", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ),
        e(json!({"type": "ping"})),
        e(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        e(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        e(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}),
        ),
        e(json!({"type": "content_block_stop", "index": 0})),
        e(
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use",
            "id": "call_1", "name": "get_weather", "input": {}}}),
        ),
        e(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"location\":"}}),
        ),
        e(
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " \"Paris\"}"}}),
        ),
        e(json!({"type": "content_block_stop", "index": 1})),
        e(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 15}}),
        ),
        e(json!({"type": "message_stop"})),
    ]
}

#[test]
fn stream_whole() {
    let mut s = StreamFromChat::new(&ctx("my-claude"));
    let out = s.push(OPENAI_STREAM.as_bytes(), true);
    assert_eq!(events(&out), expected_events());
}

#[test]
fn stream_split_at_every_offset() {
    let bytes = OPENAI_STREAM.as_bytes();
    for cut in 0..=bytes.len() {
        let mut s = StreamFromChat::new(&ctx("my-claude"));
        let mut out = s.push(&bytes[..cut], false);
        out.extend(s.push(&bytes[cut..], true));
        assert_eq!(events(&out), expected_events(), "cut at {cut}");
    }
}

#[test]
fn stream_errors_end_the_stream() {
    // An OpenAI error event (what the gateway and provider translators emit) mid-stream.
    let mut s = StreamFromChat::new(&ctx("m"));
    let first = concat!(
        "data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"code\":\"upstream_error\"}}\n\n",
        "data: [DONE]\n\n"
    );
    let ev = events(&s.push(first.as_bytes(), true));
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        ev.last().unwrap().1,
        json!({"type": "error", "error": {"type": "api_error", "message": "Overloaded"}})
    );
    // A stream cut before [DONE].
    let mut s = StreamFromChat::new(&ctx("m"));
    let mut out = s.push(
        b"data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        false,
    );
    out.extend(s.push(b"", true));
    let ev = events(&out);
    assert_eq!(ev.last().unwrap().0, "error");
    assert!(s.push(b"data: [DONE]\n\n", true).is_empty());
}

/// The streaming guide's basic text stream, as Anthropic sends it.
const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-3-5-sonnet-20240620\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n\n",
    "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\n",
    "event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n\n",
    "event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n",
);

#[test]
fn native_stream_usage_and_breaks() {
    let bytes = ANTHROPIC_STREAM.as_bytes();
    for cut in 0..=bytes.len() {
        let mut s = NativeStream::default();
        assert_eq!(s.push(&bytes[..cut], false), None);
        assert_eq!(s.push(&bytes[cut..], true), None, "cut at {cut}");
        let u = s.usage().unwrap();
        assert_eq!((u.prompt, u.completion, u.total), (25, 15, 40));
        assert!(!s.error);
    }
    // Cut before message_stop: an error event follows.
    let cut = ANTHROPIC_STREAM.find("event: message_delta").unwrap();
    let mut s = NativeStream::default();
    let ending = s.push(&bytes[..cut], true).unwrap();
    let ev = events(&ending);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].1["error"]["type"], "api_error");
    assert_eq!(s.failure, Some("upstream_stream_reset"));
    // The provider's own error event is a clean end.
    let mut s = NativeStream::default();
    let overloaded = b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    assert_eq!(s.push(overloaded, true), None);
    assert!(s.error);
}

#[test]
fn native_json_usage_counts_cache_apart() {
    // The reference's usage object with prompt-caching counters.
    let u = native_usage(
        &json!({"input_tokens": 50, "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 100, "output_tokens": 503}),
    )
    .unwrap();
    assert_eq!(
        (u.prompt, u.cached_prompt, u.cache_write, u.completion),
        (170, 100, 20, 503)
    );
    assert_eq!(native_usage(&Value::Null), None);
}
