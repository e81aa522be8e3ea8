//! An OpenAI chat completion -> an Anthropic `message`; an OpenAI error -> Anthropic's error
//! shape `{"type":"error","error":{"type","message"}}`.

use serde_json::{json, Value};

use super::Context;

/// Longest message kept from an error body that is not JSON.
const MAX_ERROR_MESSAGE: usize = 1024;

/// A non-streamed OpenAI chat completion -> the Anthropic `message` body.
pub fn answer_from_chat(chat: &[u8], ctx: &Context) -> Vec<u8> {
    let Ok(v) = serde_json::from_slice::<Value>(chat) else {
        return error_body(
            "api_error",
            "The provider's answer could not be read as a chat completion.",
        );
    };
    let choice = v.get("choices").and_then(|c| c.get(0));
    let message = choice.and_then(|c| c.get("message"));
    let mut content = Vec::new();
    let text = match message.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        // Some providers answer with content parts.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    let calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array);
    for (i, call) in calls.into_iter().flatten().enumerate() {
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").and_then(Value::as_str).map_or_else(|| tool_id(i as u64), str::to_string),
            "name": name,
            "input": tool_input(arguments),
        }));
    }
    let stop = stop_reason(
        choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str),
    );
    json!({
        "id": message_id(v.get("id").and_then(Value::as_str)),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(v.get("usage")),
    })
    .to_string()
    .into_bytes()
}

/// An OpenAI-shaped error body (or any error text: Envoy's own replies) and its status ->
/// Anthropic's error body. A body in Anthropic's shape already (an Anthropic provider's own
/// error, or one converted before) is kept.
pub fn error_from_chat(status: u32, openai_error: &[u8]) -> Vec<u8> {
    let parsed = serde_json::from_slice::<Value>(openai_error).ok();
    if let Some(v) = &parsed {
        let anthropic = v.get("type").and_then(Value::as_str) == Some("error")
            && v.get("error")
                .and_then(|e| e.get("type"))
                .is_some_and(Value::is_string);
        if anthropic {
            return openai_error.to_vec();
        }
    }
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let param = error
        .and_then(|e| e.get("param"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        // Anthropic has no `param`: its messages start with the field, as Anthropic's own do.
        .map(|m| match param {
            Some(p) if !m.contains(p) => format!("{p}: {m}"),
            _ => m.to_string(),
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(openai_error);
            let mut text = text.trim().to_string();
            let mut cut = text.len().min(MAX_ERROR_MESSAGE);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            if text.is_empty() {
                format!("The request failed with status {status}.")
            } else {
                text
            }
        });
    error_body(error_type_for_status(status), &message)
}

/// Anthropic's error `type` for an HTTP status (its errors reference: 400, 401, 403, 404, 413,
/// 429, 500, 529; "other 4XX" are `invalid_request_error`).
pub fn error_type_for_status(status: u32) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

pub(super) fn error_body(error_type: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
        .to_string()
        .into_bytes()
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`.
pub(super) fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI usage -> Anthropic's counters (absent usage counts zero).
pub(super) fn usage(openai: Option<&Value>) -> Value {
    let u = openai
        .and_then(crate::usage::Usage::from_openai)
        .unwrap_or_default();
    let input = u
        .prompt
        .saturating_sub(u.cached_prompt)
        .saturating_sub(u.cache_write);
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cached_prompt,
        "output_tokens": u.completion,
    })
}

/// A message id from the completion's (`chatcmpl-abc` -> `msg_abc`).
pub(super) fn message_id(chat_id: Option<&str>) -> String {
    let id = chat_id.unwrap_or_default();
    let id = id.strip_prefix("chatcmpl-").unwrap_or(id);
    if id.is_empty() {
        "msg_gateway".into()
    } else {
        format!("msg_{id}")
    }
}

/// A tool-use id for a call the provider gave none.
pub(super) fn tool_id(index: u64) -> String {
    format!("toolu_gateway_{index}")
}

/// A tool call's `arguments` (JSON text) -> the `input` object; empty counts as `{}`, text that
/// is not a JSON object is kept under `arguments`.
pub(super) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"arguments": arguments}),
    }
}
