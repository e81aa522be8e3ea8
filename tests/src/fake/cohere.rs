//! The fake provider speaking Cohere API v2: `POST /v2/chat` (JSON, or an SSE stream of
//! `event: <type>` / `data: <json>` blocks when `stream` is true) and `POST /v2/embed`, with the
//! behaviour every fake format shares (tests/src/fake/README.md).
//!
//! Formats from https://docs.cohere.com/reference/chat, https://docs.cohere.com/reference/chat-stream
//! and https://docs.cohere.com/reference/embed:
//! - chat answer: `{"id", "message": {"role": "assistant", "content": [{"type": "text", "text"}]},
//!   "finish_reason": "COMPLETE", "usage": {"billed_units": {...}, "tokens": {...}}}`; a tool call
//!   is `message.tool_plan` + `message.tool_calls: [{id, type: "function", function: {name,
//!   arguments}}]` with `finish_reason: "TOOL_CALL"`;
//! - stream: `message-start`, `content-start`, one `content-delta` per word, `content-end`,
//!   `message-end` (finish reason and usage); tool calls stream as `tool-plan-delta`,
//!   `tool-call-start` (id, name, empty arguments), `tool-call-delta` (argument pieces),
//!   `tool-call-end`, `message-end` with `TOOL_CALL`;
//! - errors: the status and `{"id", "message"}` (https://docs.cohere.com/reference/errors);
//!   `FAIL 429` answers 429 with `retry-after: 1`;
//! - `FAIL STREAM` sends two content deltas, then `message-end` whose `delta` carries `error` and
//!   `finish_reason: "ERROR"`: Cohere's way to report an error after the stream has started
//!   (`ChatMessageEndEvent.delta.error`, "An error message if an error occurred during the
//!   generation").
//!
//! Like the real API it refuses a request without `model`, a chat message with another role than
//! system / user / assistant / tool, a tool message without `tool_call_id`, and an embed request
//! without `input_type` or `embedding_types`: a translator that sends OpenAI's shape fails here.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_provider::{count_tokens, fake_vector, words, Received, Reply};

const ID: &str = "c0here00-0000-4000-8000-00000000demo";

pub fn reply(req: &Received) -> Reply {
    let path = req.path.split('?').next().unwrap_or_default();
    let Ok(request) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            400,
            "invalid json syntax: the fake Cohere could not parse the body",
        );
    };
    if request["model"].as_str().is_none_or(str::is_empty) {
        return error(400, "model is required");
    }
    if path.ends_with("/v2/embed") {
        embed(&request)
    } else if path.ends_with("/v2/chat") {
        chat(&request)
    } else {
        error(404, &format!("fake cohere: no route {}", req.path))
    }
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"id": ID, "message": message}))
}

/// The text of a Cohere message's content: a string, or its text blocks joined by a space.
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

fn usage(input: u64, output: u64) -> Value {
    json!({"billed_units": {"input_tokens": input, "output_tokens": output},
           "tokens": {"input_tokens": input, "output_tokens": output}})
}

fn sse(event: &Value) -> String {
    format!(
        "event: {}\ndata: {event}\n\n",
        event["type"].as_str().unwrap_or_default()
    )
}

enum Answer {
    Text(String),
    ToolCall { name: String, arguments: String },
}

fn chat(request: &Value) -> Reply {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["system", "user", "assistant", "tool"].contains(&role) {
            return error(
                400,
                &format!("invalid request: invalid role '{role}' in messages at index {i}"),
            );
        }
        if role == "tool" && !m["tool_call_id"].is_string() {
            return error(
                400,
                &format!("invalid request: messages[{i}]: tool_call_id is required"),
            );
        }
    }
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    if last_user.trim() == "FAIL 429" {
        let mut r = error(
            429,
            "You are past the per minute request limit, please wait and try again later.",
        );
        r.headers.push(("retry-after".into(), "1".into()));
        return r;
    }
    // Tool calls and tool results are not counted.
    let prompt: u64 = messages
        .iter()
        .filter(|m| m["role"] != "tool")
        .map(|m| count_tokens(&text_of(&m["content"])))
        .sum();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let first_tool = request["tools"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t["function"]["name"].as_str())
        .map(str::to_string);
    let answer = match (last["role"].as_str(), first_tool) {
        (Some("tool"), _) => Answer::Text(format!("Tool said: {}", text_of(&last["content"]))),
        (Some("user"), Some(name)) => Answer::ToolCall {
            name,
            arguments: json!({"text": last_user}).to_string(),
        },
        _ => Answer::Text(format!(
            "Hello from the demo provider! You said: {last_user}"
        )),
    };
    let stream = request["stream"] == true;
    match answer {
        Answer::Text(text) if stream && last_user.trim() == "FAIL STREAM" => failing_stream(&text),
        Answer::Text(text) => {
            let output = count_tokens(&text);
            if stream {
                text_stream(&text, usage(prompt, output))
            } else {
                Reply::json(
                    200,
                    &json!({"id": ID, "finish_reason": "COMPLETE",
                        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
                        "usage": usage(prompt, output)}),
                )
            }
        }
        Answer::ToolCall { name, arguments } => {
            let id = format!("{name}_0fake0call01");
            let plan = format!("I will call {name}.");
            let output = count_tokens(&plan) + count_tokens(&arguments);
            if stream {
                tool_stream(&id, &name, &arguments, &plan, usage(prompt, output))
            } else {
                Reply::json(
                    200,
                    &json!({"id": ID, "finish_reason": "TOOL_CALL",
                        "message": {"role": "assistant", "tool_plan": plan,
                            "tool_calls": [{"id": id, "type": "function",
                                "function": {"name": name, "arguments": arguments}}]},
                        "usage": usage(prompt, output)}),
                )
            }
        }
    }
}

fn message_start() -> String {
    sse(
        &json!({"id": ID, "type": "message-start", "delta": {"message": {
        "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
    )
}

fn content_start() -> String {
    sse(&json!({"type": "content-start", "index": 0,
        "delta": {"message": {"content": {"type": "text", "text": ""}}}}))
}

fn content_delta(text: &str) -> String {
    sse(&json!({"type": "content-delta", "index": 0,
        "delta": {"message": {"content": {"text": text}}}}))
}

fn text_stream(text: &str, usage: Value) -> Reply {
    let mut events = vec![message_start(), content_start()];
    events.extend(words(text).iter().map(|w| content_delta(w)));
    events.push(sse(&json!({"type": "content-end", "index": 0})));
    events.push(sse(&json!({"type": "message-end",
        "delta": {"finish_reason": "COMPLETE", "usage": usage}})));
    Reply::sse(&events, Duration::from_millis(5))
}

fn failing_stream(text: &str) -> Reply {
    let mut events = vec![message_start(), content_start()];
    events.extend(words(text).iter().take(2).map(|w| content_delta(w)));
    events.push(sse(&json!({"type": "message-end", "delta": {
        "error": "internal server error, this has been reported to our developers",
        "finish_reason": "ERROR"}})));
    Reply::sse(&events, Duration::from_millis(5))
}

fn tool_stream(id: &str, name: &str, arguments: &str, plan: &str, usage: Value) -> Reply {
    let mut events = vec![message_start()];
    events.extend(
        words(plan).iter().map(|w| {
            sse(&json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": w}}}))
        }),
    );
    events.push(sse(&json!({"type": "tool-call-start", "index": 0, "delta": {"message": {
        "tool_calls": {"id": id, "type": "function", "function": {"name": name, "arguments": ""}}}}})));
    // The arguments in pieces of up to 8 characters, as a model emits them token by token.
    let chars: Vec<char> = arguments.chars().collect();
    for piece in chars.chunks(8) {
        let piece: String = piece.iter().collect();
        events.push(sse(
            &json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {
            "tool_calls": {"function": {"arguments": piece}}}}}),
        ));
    }
    events.push(sse(&json!({"type": "tool-call-end", "index": 0})));
    events.push(sse(&json!({"type": "message-end",
        "delta": {"finish_reason": "TOOL_CALL", "usage": usage}})));
    Reply::sse(&events, Duration::from_millis(5))
}

fn embed(request: &Value) -> Reply {
    if !request["embedding_types"].is_array() {
        return error(400, "embedding_types parameter is required");
    }
    if !request["input_type"].is_string() {
        return error(
            400,
            "invalid request: valid input_type must be provided with the provided model",
        );
    }
    let Some(texts) = request["texts"].as_array() else {
        return error(400, "invalid request: texts must be an array of strings");
    };
    let texts: Vec<String> = texts
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();
    let tokens: u64 = texts.iter().map(|t| count_tokens(t)).sum();
    let vectors: Vec<Vec<f64>> = texts.iter().map(|t| fake_vector(t)).collect();
    Reply::json(
        200,
        &json!({"id": ID, "texts": texts, "embeddings": {"float": vectors},
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            "response_type": "embeddings_by_type"}),
    )
}
