//! `messages`: the shape of each message by role and of each content part (OpenAI API
//! reference, `ChatCompletionRequestMessage` and its six variants; see
//! `filter/testdata/openai/README.md`).

use std::fmt::Write as _;

use crate::json::Json;

use super::check::{
    as_object, check_fields, join, missing, non_empty, not_one_of, present, required,
    required_object, required_one_of, required_str, wrong_type, Object, Rule,
};
use crate::error::{invalid, GatewayError};

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Content part types each role may send.
pub const TEXT_PARTS: &[&str] = &["text"];
const USER_PARTS: &[&str] = &["text", "image_url", "input_audio", "file"];
const ASSISTANT_PARTS: &[&str] = &["text", "refusal"];

pub fn check_messages(messages: Option<&Json>) -> Result<(), GatewayError> {
    let messages = match messages {
        None | Some(Json::Null) => return Err(GatewayError::MissingParameter("messages")),
        Some(Json::Array(m)) => m,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "'messages' must contain at least one message.",
        ));
    }
    // One buffer for every message's path (`messages[7]`), not an allocation each.
    let mut param = String::with_capacity(16);
    for (i, message) in messages.iter().enumerate() {
        param.clear();
        let _ = write!(param, "messages[{i}]");
        check_message(message, &param)?;
    }
    Ok(())
}

fn check_message(message: &Json, param: &str) -> Result<(), GatewayError> {
    let m = as_object(message, param)?;
    let role = required_one_of(m, "role", param, ROLES)?;
    check_fields(m, param, &[("name", Rule::Str)])?;
    match role {
        "system" | "developer" => check_content(required(m, "content", param)?, param, TEXT_PARTS),
        "user" => check_content(required(m, "content", param)?, param, USER_PARTS),
        "tool" => {
            required_str(m, "tool_call_id", param)?;
            check_content(required(m, "content", param)?, param, TEXT_PARTS)
        }
        // Deprecated, still accepted by OpenAI: a function's result, content may be null.
        "function" => {
            required_str(m, "name", param)?;
            match required(m, "content", param)? {
                Json::String(_) | Json::Null => Ok(()),
                other => Err(wrong_type(
                    &join(param, "content"),
                    "a string or null",
                    other,
                )),
            }
        }
        _ => check_assistant(m, param),
    }
}

/// An assistant turn of the history: text, a refusal, tool calls, or a previous audio answer.
fn check_assistant(m: &Object, param: &str) -> Result<(), GatewayError> {
    if let Some(content) = present(m, "content") {
        check_content(content, param, ASSISTANT_PARTS)?;
    }
    check_fields(m, param, &[("refusal", Rule::Str)])?;
    if let Some(audio) = present(m, "audio") {
        let audio_param = join(param, "audio");
        required_str(as_object(audio, &audio_param)?, "id", &audio_param)?;
    }
    if let Some(call) = present(m, "function_call") {
        let call_param = join(param, "function_call");
        let call = as_object(call, &call_param)?;
        required_str(call, "name", &call_param)?;
        required_str(call, "arguments", &call_param)?;
    }
    if let Some(calls) = present(m, "tool_calls") {
        let calls_param = join(param, "tool_calls");
        let calls = match calls {
            Json::Array(calls) => non_empty(calls, &calls_param)?,
            other => return Err(wrong_type(&calls_param, "an array", other)),
        };
        for (j, call) in calls.iter().enumerate() {
            check_tool_call(call, &format!("{calls_param}[{j}]"))?;
        }
    }
    let has_any = ["content", "tool_calls", "function_call", "audio", "refusal"]
        .iter()
        .any(|k| present(m, k).is_some());
    if has_any {
        Ok(())
    } else {
        Err(missing(&join(param, "content")))
    }
}

/// `{id, type: "function", function: {name, arguments}}` or `{id, type: "custom", custom:
/// {name, input}}`; `arguments` is a JSON text in a string, not an object.
fn check_tool_call(call: &Json, param: &str) -> Result<(), GatewayError> {
    let call = as_object(call, param)?;
    required_str(call, "id", param)?;
    let kind = required_one_of(call, "type", param, &["function", "custom"])?;
    let body_param = join(param, kind);
    let body = required_object(call, kind, param)?;
    required_str(body, "name", &body_param)?;
    let payload = if kind == "function" {
        "arguments"
    } else {
        "input"
    };
    required_str(body, payload, &body_param)?;
    Ok(())
}

/// A message's `content`: a string, or a non-empty array of the parts the role may send.
fn check_content(content: &Json, message: &str, allowed: &[&str]) -> Result<(), GatewayError> {
    let param = join(message, "content");
    match content {
        Json::String(_) => Ok(()),
        Json::Array(parts) => {
            for (j, part) in non_empty(parts, &param)?.iter().enumerate() {
                check_part(part, &format!("{param}[{j}]"), allowed)?;
            }
            Ok(())
        }
        other => Err(wrong_type(
            &param,
            "a string or an array of content parts",
            other,
        )),
    }
}

/// One content part; also used for `prediction.content`.
pub fn check_part(part: &Json, param: &str, allowed: &[&str]) -> Result<(), GatewayError> {
    let p = as_object(part, param)?;
    let kind = required_str(p, "type", param)?;
    if !allowed.contains(&kind) {
        return Err(not_one_of(&join(param, "type"), kind, allowed));
    }
    match kind {
        "text" | "refusal" => {
            required_str(p, kind, param)?;
        }
        "image_url" => {
            let image_param = join(param, "image_url");
            let image = required_object(p, "image_url", param)?;
            check_image_url(
                required_str(image, "url", &image_param)?,
                &join(&image_param, "url"),
            )?;
            check_fields(
                image,
                &image_param,
                &[("detail", Rule::OneOf(&["auto", "low", "high"]))],
            )?;
        }
        "input_audio" => {
            let audio_param = join(param, "input_audio");
            let audio = required_object(p, "input_audio", param)?;
            required_str(audio, "data", &audio_param)?;
            required_one_of(audio, "format", &audio_param, &["wav", "mp3"])?;
        }
        _ => {
            let file_param = join(param, "file");
            let file = required_object(p, "file", param)?;
            check_fields(
                file,
                &file_param,
                &[
                    ("file_data", Rule::Str),
                    ("file_id", Rule::Str),
                    ("filename", Rule::Str),
                ],
            )?;
            // A file is sent inline or by id: one of the two must be there.
            if present(file, "file_data").is_none() && present(file, "file_id").is_none() {
                return Err(missing(&join(&file_param, "file_data")));
            }
        }
    }
    Ok(())
}

/// An image is a link or inline data: `http(s)://` or a `data:` URL.
fn check_image_url(url: &str, param: &str) -> Result<(), GatewayError> {
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(scheme.as_str(), "http" | "https" | "data") {
        Ok(())
    } else {
        Err(invalid(
            param,
            format!("Invalid '{param}': expected an http(s) URL or a base64-encoded data URL."),
        ))
    }
}
