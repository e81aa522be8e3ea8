//! The fake provider speaking the Anthropic Messages API (`POST /v1/messages`): JSON messages
//! and `message_start` … `message_stop` event streams, tool use, and Anthropic's error shape.
//! Behaviour as in tests/src/fake/README.md: the request is read back into the OpenAI shape and
//! answered by `fake_provider::demo_reply`, so every format answers alike.
//! References: https://docs.anthropic.com/en/api/messages,
//! https://docs.anthropic.com/en/docs/build-with-claude/streaming,
//! https://docs.anthropic.com/en/api/errors

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_provider::{demo_reply, last_user_text, words, DemoAnswer, Received, Reply};

const MESSAGE_ID: &str = "msg_demo_01";
const TOOL_USE_ID: &str = "toolu_demo_01";

fn error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_demo_01"}),
    )
}

/// The text of an Anthropic `content` (a string or blocks); only text blocks count.
fn blocks_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The Anthropic request read back as an OpenAI chat body (messages and tool names), so that
/// `demo_reply` gives the same answer as to the OpenAI request the gateway translated.
fn as_openai(request: &Value) -> Value {
    let mut messages = Vec::new();
    let system = blocks_text(&request["system"]);
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in request["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or_default();
        // A user turn may hold tool results (OpenAI `tool` messages) before the user's own text.
        let results: Vec<&Value> = m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "tool_result")
            .collect();
        for result in &results {
            messages.push(
                json!({"role": "tool", "tool_call_id": result["tool_use_id"],
                "content": blocks_text(&result["content"])}),
            );
        }
        let only_results = !results.is_empty()
            && m["content"]
                .as_array()
                .is_some_and(|b| b.len() == results.len());
        if !only_results {
            messages.push(json!({"role": role, "content": blocks_text(&m["content"])}));
        }
    }
    let tools: Vec<Value> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| json!({"type": "function", "function": {"name": t["name"]}}))
        .collect();
    let mut openai = json!({"messages": messages});
    if !tools.is_empty() {
        openai["tools"] = Value::Array(tools);
    }
    openai
}

fn usage(input: u64, output: u64) -> Value {
    json!({"input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
        "output_tokens": output})
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn message_start(model: &str, input: u64) -> String {
    event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": MESSAGE_ID, "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(input, 1)}}),
    )
}

fn text_delta(text: &str) -> String {
    event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
    )
}

/// `message_delta` with the stop reason and the final output count, then `message_stop`.
fn stream_end(stop_reason: &str, output: u64) -> Vec<String> {
    vec![
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output}}),
        ),
        event("message_stop", &json!({"type": "message_stop"})),
    ]
}

fn text_start() -> String {
    event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    )
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, N counted as the demo counts input
/// tokens (https://docs.anthropic.com/en/api/messages-count-tokens).
pub fn count_tokens(req: &Received) -> Reply {
    let Ok(request) = serde_json::from_slice::<Value>(&req.body) else {
        return error(400, "invalid_request_error", "the body is not JSON");
    };
    if request.get("max_tokens").is_some() {
        // Anthropic's counting endpoint takes no max_tokens.
        return error(
            400,
            "invalid_request_error",
            "max_tokens: Extra inputs are not permitted",
        );
    }
    let (_, prompt, _) = demo_reply(&as_openai(&request));
    Reply::json(200, &json!({"input_tokens": prompt}))
}

pub fn reply(req: &Received) -> Reply {
    if req.method != "POST"
        || !req
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .ends_with("/messages")
    {
        return error(
            404,
            "not_found_error",
            &format!("Not found: {} {}", req.method, req.path),
        );
    }
    if req.header("anthropic-version").is_none() {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            400,
            "invalid_request_error",
            "The request body is not valid JSON.",
        );
    };
    if !request["max_tokens"].is_u64() {
        return error(400, "invalid_request_error", "max_tokens: Field required");
    }
    if request["messages"].as_array().is_none_or(|m| m.is_empty()) {
        return error(
            400,
            "invalid_request_error",
            "messages: at least one message is required",
        );
    }
    let model = request["model"].as_str().unwrap_or("unknown").to_string();
    let stream = request["stream"] == true;
    let openai = as_openai(&request);
    match last_user_text(&openai).as_str() {
        "FAIL 429" => {
            let mut r = error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            );
            r.headers.push(("retry-after".into(), "1".into()));
            return r;
        }
        "FAIL STREAM" if stream => {
            let mut events = vec![message_start(&model, 2), text_start()];
            events.extend(["partial ", "answer"].map(text_delta));
            events.push(event(
                "error",
                &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ));
            return Reply::sse(&events, Duration::from_millis(5));
        }
        _ => {}
    }
    let (answer, prompt, completion) = match demo_reply(&openai) {
        // Structured output (`output_config.format` json_schema): the text answer is the JSON
        // `{"text": <last user text>}`, as the schema tool's input would be.
        (DemoAnswer::Text(_), prompt, _)
            if request["output_config"]["format"]["type"] == "json_schema" =>
        {
            let json = json!({"text": last_user_text(&openai)}).to_string();
            let completion = crate::fake_provider::count_tokens(&json);
            (DemoAnswer::Text(json), prompt, completion)
        }
        other => other,
    };
    match (answer, stream) {
        (DemoAnswer::Text(text), false) => Reply::json(
            200,
            &json!({"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": null, "usage": usage(prompt, completion)}),
        ),
        (DemoAnswer::ToolCall { name, arguments }, false) => {
            let input: Value = serde_json::from_str(&arguments).unwrap_or(Value::Null);
            Reply::json(
                200,
                &json!({"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": input}],
                    "stop_reason": "tool_use", "stop_sequence": null, "usage": usage(prompt, completion)}),
            )
        }
        (DemoAnswer::Text(text), true) => {
            let mut events = vec![message_start(&model, prompt), text_start()];
            events.push(event("ping", &json!({"type": "ping"})));
            events.extend(words(&text).iter().map(|w| text_delta(w)));
            events.extend(stream_end("end_turn", completion));
            Reply::sse(&events, Duration::from_millis(5))
        }
        (DemoAnswer::ToolCall { name, arguments }, true) => {
            let mut events = vec![
                message_start(&model, prompt),
                event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block":
                        {"type": "tool_use", "id": TOOL_USE_ID, "name": name, "input": {}}}),
                ),
            ];
            // The input JSON in pieces, as Anthropic sends it: an empty one first, then halves.
            let mut mid = arguments.len() / 2;
            while !arguments.is_char_boundary(mid) {
                mid -= 1;
            }
            let (a, b) = arguments.split_at(mid);
            for part in ["", a, b] {
                events.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": part}}),
                ));
            }
            events.extend(stream_end("tool_use", completion));
            Reply::sse(&events, Duration::from_millis(5))
        }
    }
}
