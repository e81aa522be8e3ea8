//! OpenAI's Responses API (`POST /v1/responses`; Azure's `/openai/v1/responses`), answered with
//! the fake's usual behaviour (tests/src/fake/README.md): the request is read as the chat
//! messages it stands for (instructions first, then the input items) and the demo answer comes
//! back as a `response` object or the Responses event sequence.
//!
//! Shapes from OpenAI's published reference (see filter/testdata/openai_responses/README.md):
//! the response object (https://platform.openai.com/docs/api-reference/responses/object: `id`
//! `resp_...`, `object: "response"`, `created_at`, `status`, `output` items `message` with
//! `output_text` parts and `function_call` with `call_id`/`name`/`arguments`, `usage` with
//! `input_tokens`, `input_tokens_details.cached_tokens`, `output_tokens`,
//! `output_tokens_details.reasoning_tokens`, `total_tokens`, and the request's fields echoed,
//! `store` among them) and the streaming events
//! (https://platform.openai.com/docs/api-reference/responses-streaming: `event:` lines named
//! as the `type`, `sequence_number` from 0, `response.created`, `response.in_progress`,
//! `response.output_item.added`, `response.content_part.added`, `response.output_text.delta`,
//! `.done`, `response.content_part.done`, `response.function_call_arguments.delta`, `.done`,
//! `response.output_item.done`, `response.completed`; on failure `error` and
//! `response.failed`). No `[DONE]`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_provider::{demo_reply, last_user_text, words, DemoAnswer, Received, Reply};

const CREATED: u64 = 1_700_000_000;

/// A fresh `resp_` id per answer, 48 hex digits as OpenAI's are (unique, not guessable from the
/// last one).
fn response_id() -> String {
    use sha2::Digest;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = sha2::Sha256::digest(format!("{n}-{nanos}-{}", std::process::id()));
    let hex: String = digest.iter().take(24).map(|b| format!("{b:02x}")).collect();
    format!("resp_{hex}")
}

/// The text of a Responses content (a string, or parts with `text`).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The chat request a Responses request stands for, as far as the demo answer reads it:
/// messages (roles, texts, tool results) and the function tools (hosted tools ignored).
pub fn as_chat(request: &Value) -> Value {
    let mut messages = Vec::new();
    if let Some(instructions) = request["instructions"].as_str() {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match &request["input"] {
        Value::String(s) => messages.push(json!({"role": "user", "content": s})),
        Value::Array(items) => {
            for item in items {
                match item["type"].as_str().unwrap_or("message") {
                    "message" => messages
                        .push(json!({"role": item["role"], "content": text_of(&item["content"])})),
                    "function_call" => messages.push(json!({"role": "assistant", "content": null,
                        "tool_calls": [{"id": item["call_id"], "type": "function",
                            "function": {"name": item["name"], "arguments": item["arguments"]}}]})),
                    "function_call_output" => messages.push(json!({"role": "tool",
                        "tool_call_id": item["call_id"], "content": text_of(&item["output"])})),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let tools: Vec<Value> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "function")
        .map(|t| json!({"type": "function", "function": {"name": t["name"]}}))
        .collect();
    json!({"messages": messages, "tools": tools})
}

fn error_reply(status: u16, message: &str, kind: &str, code: Value) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

pub fn reply(req: &Received) -> Reply {
    let Ok(request) = serde_json::from_slice::<Value>(&req.body) else {
        return error_reply(
            400,
            "fake provider: body is not JSON",
            "invalid_request_error",
            Value::Null,
        );
    };
    let chat = as_chat(&request);
    let stream = request["stream"] == true;
    let id = response_id();
    let response = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": CREATED, "status": status,
            "error": null, "incomplete_details": null, "instructions": request["instructions"],
            "max_output_tokens": request["max_output_tokens"], "model": request["model"],
            "output": output, "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "store": request.get("store").cloned().unwrap_or(json!(true)),
            "temperature": 1.0, "text": request.get("text").cloned().unwrap_or(json!({"format": {"type": "text"}})),
            "tool_choice": request.get("tool_choice").cloned().unwrap_or(json!("auto")),
            "tools": request.get("tools").cloned().unwrap_or(json!([])),
            "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": null, "metadata": {},
        })
    };
    match last_user_text(&chat).as_str() {
        "FAIL 429" => {
            let mut r = error_reply(
                429,
                "Rate limit reached for requests",
                "requests",
                json!("rate_limit_exceeded"),
            );
            r.headers.push(("retry-after".into(), "1".into()));
            return r;
        }
        "FAIL STREAM" if stream => {
            let mut events = Events::default();
            let started = response("in_progress", vec![], Value::Null);
            events.push(json!({"type": "response.created", "response": started}));
            let message = json!({"id": "msg_demo", "type": "message", "status": "in_progress",
                "role": "assistant", "content": []});
            events.push(
                json!({"type": "response.output_item.added", "output_index": 0, "item": message}),
            );
            events.push(
                json!({"type": "response.output_text.delta", "item_id": "msg_demo",
                "output_index": 0, "content_index": 0, "delta": "partial ", "logprobs": []}),
            );
            events.push(json!({"type": "error", "code": "server_error",
                "message": "The server had an error while processing your request.", "param": null}));
            let mut failed = response("failed", vec![], Value::Null);
            failed["error"] = json!({"code": "server_error",
                "message": "The server had an error while processing your request."});
            events.push(json!({"type": "response.failed", "response": failed}));
            return Reply::sse(&events.0, Duration::from_millis(5));
        }
        _ => {}
    }
    let (answer, input, output) = demo_reply(&chat);
    let usage = json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output});
    let item = |status: &str, answer: &DemoAnswer| match answer {
        DemoAnswer::Text(text) => json!({"id": "msg_demo", "type": "message", "status": status,
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}),
        DemoAnswer::ToolCall { name, arguments } => {
            json!({"id": "fc_demo", "type": "function_call",
            "status": status, "call_id": "call_demo_0", "name": name, "arguments": arguments})
        }
    };
    if !stream {
        return Reply::json(
            200,
            &response("completed", vec![item("completed", &answer)], usage),
        );
    }
    let mut events = Events::default();
    let started = response("in_progress", vec![], Value::Null);
    events.push(json!({"type": "response.created", "response": started}));
    events.push(json!({"type": "response.in_progress", "response": started}));
    match &answer {
        DemoAnswer::Text(text) => {
            let mut added = item("in_progress", &answer);
            added["content"] = json!([]);
            events.push(
                json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
            );
            let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
            let at = json!({"item_id": "msg_demo", "output_index": 0, "content_index": 0});
            let with = |mut event: Value| {
                for (k, v) in at.as_object().into_iter().flatten() {
                    event[k] = v.clone();
                }
                event
            };
            events.push(with(
                json!({"type": "response.content_part.added", "part": part("")}),
            ));
            for word in words(text) {
                events.push(with(
                    json!({"type": "response.output_text.delta", "delta": word, "logprobs": []}),
                ));
            }
            events.push(with(
                json!({"type": "response.output_text.done", "text": text, "logprobs": []}),
            ));
            events.push(with(
                json!({"type": "response.content_part.done", "part": part(text)}),
            ));
        }
        DemoAnswer::ToolCall { name, arguments } => {
            let mut added = item("in_progress", &answer);
            added["arguments"] = json!("");
            events.push(
                json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
            );
            events.push(
                json!({"type": "response.function_call_arguments.delta", "item_id": "fc_demo",
                "output_index": 0, "delta": arguments}),
            );
            events.push(
                json!({"type": "response.function_call_arguments.done", "item_id": "fc_demo",
                "output_index": 0, "name": name, "arguments": arguments}),
            );
        }
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item("completed", &answer)}));
    let done = response("completed", vec![item("completed", &answer)], usage);
    events.push(json!({"type": "response.completed", "response": done}));
    Reply::sse(&events.0, Duration::from_millis(5))
}

/// Framed events, numbered as they are added.
#[derive(Default)]
struct Events(Vec<String>);

impl Events {
    fn push(&mut self, mut event: Value) {
        event["sequence_number"] = json!(self.0.len());
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        self.0.push(format!("event: {kind}\ndata: {event}\n\n"));
    }
}
