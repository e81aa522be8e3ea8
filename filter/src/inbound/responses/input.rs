//! `input` → chat `messages`: a string is one user message; a list holds messages (roles user,
//! assistant, system, developer; `input_text`/`input_image`/`input_file` parts, the assistant's
//! own `output_text`/`refusal`), `function_call` items (→ an assistant message's `tool_calls`,
//! consecutive calls in one message, as chat wants parallel calls) and `function_call_output`
//! items (→ `tool` messages). `reasoning` items of an earlier turn are left out: a chat request
//! has no place for them. Anything that needs a stored item or file is refused.
//!
//! Reference: the openai-python SDK's `types/responses/response_input_param.py`,
//! `easy_input_message_param.py`, `response_input_text_param.py`,
//! `response_input_image_param.py`, `response_input_file_param.py`.

use serde_json::{json, Map, Value};

use super::request::get;
use crate::chat::{missing, wrong_type};
use crate::error::{invalid, GatewayError};

type Object = Map<String, Value>;

pub(super) fn messages_of(input: &Value) -> Result<Vec<Value>, GatewayError> {
    let items = match input {
        Value::String(text) => return Ok(vec![json!({"role": "user", "content": text})]),
        Value::Array(items) => items,
        other => return Err(wrong_type("input", "a string or an array", other)),
    };
    let mut messages: Vec<Value> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        let Some(item) = item.as_object() else {
            return Err(wrong_type(&param, "an object", item));
        };
        let kind = match get(item, "type") {
            Some(Value::String(t)) => t.as_str(),
            // `type` may be left out of a message (EasyInputMessage).
            None if item.contains_key("role") => "message",
            None => return Err(missing(&format!("{param}.type"))),
            Some(other) => return Err(wrong_type(&format!("{param}.type"), "a string", other)),
        };
        match kind {
            "message" => messages.push(message(item, &param)?),
            "function_call" => add_tool_call(&mut messages, item, &param)?,
            "function_call_output" => messages.push(tool_result(item, &param)?),
            "reasoning" => {}
            "item_reference" => {
                return Err(invalid(
                    format!("{param}.type"),
                    "Item references need a response store, and this gateway has none configured: send the item itself.",
                ))
            }
            other => {
                return Err(invalid(
                    format!("{param}.type"),
                    format!("Input items of type '{other}' are not supported by this gateway: only messages, function_call and function_call_output items can be translated."),
                ))
            }
        }
    }
    Ok(messages)
}

fn message(item: &Object, param: &str) -> Result<Value, GatewayError> {
    let role = match get(item, "role") {
        Some(Value::String(r)) => r.as_str(),
        None => return Err(missing(&format!("{param}.role"))),
        Some(other) => return Err(wrong_type(&format!("{param}.role"), "a string", other)),
    };
    let content_param = format!("{param}.content");
    let content = match get(item, "content") {
        Some(content) => content,
        None => return Err(missing(&content_param)),
    };
    match role {
        "user" => Ok(json!({"role": "user", "content": user_content(content, &content_param)?})),
        "system" | "developer" => Ok(json!({
            "role": role,
            "content": text_content(content, &content_param, &["input_text"])?,
        })),
        "assistant" => assistant(content, &content_param),
        other => Err(invalid(
            format!("{param}.role"),
            format!("Invalid value for '{param}.role': expected 'user', 'assistant', 'system' or 'developer', but got '{other}'."),
        )),
    }
}

/// User content: text, images by URL (http(s) or `data:`), files given inline.
fn user_content(content: &Value, param: &str) -> Result<Value, GatewayError> {
    let parts = match content {
        Value::String(_) => return Ok(content.clone()),
        Value::Array(parts) if parts.is_empty() => return Err(empty(param)),
        Value::Array(parts) => parts,
        other => return Err(wrong_type(param, "a string or an array", other)),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let part_param = format!("{param}[{i}]");
        let (kind, part) = part_of(part, &part_param)?;
        out.push(match kind {
            "input_text" => json!({"type": "text", "text": text_of(part, &part_param)?}),
            "input_image" => image(part, &part_param)?,
            "input_file" => file(part, &part_param)?,
            other => {
                return Err(bad_part(
                    &part_param,
                    other,
                    &["input_text", "input_image", "input_file"],
                ))
            }
        });
    }
    Ok(Value::Array(out))
}

fn image(part: &Object, param: &str) -> Result<Value, GatewayError> {
    if get(part, "file_id").is_some() {
        return Err(no_file_store(&format!("{param}.file_id")));
    }
    let url = match get(part, "image_url") {
        Some(Value::String(url)) if is_image_url(url) => url,
        Some(Value::String(_)) => {
            return Err(invalid(
                format!("{param}.image_url"),
                format!("Invalid '{param}.image_url': expected an http(s) URL or a base64-encoded data URL."),
            ))
        }
        None => return Err(missing(&format!("{param}.image_url"))),
        Some(other) => return Err(wrong_type(&format!("{param}.image_url"), "a string", other)),
    };
    let mut image_url = Map::new();
    image_url.insert("url".into(), Value::from(url.as_str()));
    // Chat knows three levels; other values (`original`) are left to the provider's default.
    if let Some(detail @ Value::String(d)) = get(part, "detail") {
        if matches!(d.as_str(), "auto" | "low" | "high") {
            image_url.insert("detail".into(), detail.clone());
        }
    }
    Ok(json!({"type": "image_url", "image_url": image_url}))
}

/// An image is a link or inline data: `http(s)://` or a `data:` URL (as chat requires).
fn is_image_url(url: &str) -> bool {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("http" | "https" | "data"))
}

fn file(part: &Object, param: &str) -> Result<Value, GatewayError> {
    if get(part, "file_id").is_some() {
        return Err(no_file_store(&format!("{param}.file_id")));
    }
    let data = match get(part, "file_data") {
        Some(Value::String(data)) => data,
        Some(other) => return Err(wrong_type(&format!("{param}.file_data"), "a string", other)),
        None => {
            return Err(invalid(
                format!("{param}.file_data"),
                format!("'{param}' must carry the file inline in 'file_data' (a base64 data URL): files by id or URL are not supported by this gateway."),
            ))
        }
    };
    let mut file = Map::new();
    file.insert("file_data".into(), Value::from(data.as_str()));
    if let Some(name @ Value::String(_)) = get(part, "filename") {
        file.insert("filename".into(), name.clone());
    }
    Ok(json!({"type": "file", "file": file}))
}

/// Content of text parts only (system, developer, tool output): a string stays a string, the
/// parts become chat `text` parts.
fn text_content(content: &Value, param: &str, kinds: &[&str]) -> Result<Value, GatewayError> {
    let parts = match content {
        Value::String(_) => return Ok(content.clone()),
        Value::Array(parts) if parts.is_empty() => return Err(empty(param)),
        Value::Array(parts) => parts,
        other => return Err(wrong_type(param, "a string or an array", other)),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let part_param = format!("{param}[{i}]");
        let (kind, part) = part_of(part, &part_param)?;
        if !kinds.contains(&kind) {
            return Err(bad_part(&part_param, kind, kinds));
        }
        out.push(json!({"type": "text", "text": text_of(part, &part_param)?}));
    }
    Ok(Value::Array(out))
}

/// An assistant message of an earlier turn: its text parts joined (as the SDK's `output_text`
/// joins them), a refusal as chat's `refusal`.
fn assistant(content: &Value, param: &str) -> Result<Value, GatewayError> {
    let parts = match content {
        Value::String(_) => return Ok(json!({"role": "assistant", "content": content})),
        Value::Array(parts) => parts,
        other => return Err(wrong_type(param, "a string or an array", other)),
    };
    let mut text = String::new();
    let mut refusal: Option<String> = None;
    for (i, part) in parts.iter().enumerate() {
        let part_param = format!("{param}[{i}]");
        let (kind, part) = part_of(part, &part_param)?;
        match kind {
            "output_text" | "input_text" => text.push_str(text_of(part, &part_param)?),
            "refusal" => match get(part, "refusal") {
                Some(Value::String(r)) => refusal.get_or_insert_with(String::new).push_str(r),
                None => return Err(missing(&format!("{part_param}.refusal"))),
                Some(other) => {
                    return Err(wrong_type(
                        &format!("{part_param}.refusal"),
                        "a string",
                        other,
                    ))
                }
            },
            other => return Err(bad_part(&part_param, other, &["output_text", "refusal"])),
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if let (Some(refusal), Some(obj)) = (refusal, message.as_object_mut()) {
        if text.is_empty() {
            obj.insert("content".into(), Value::Null);
        }
        obj.insert("refusal".into(), Value::from(refusal));
    }
    Ok(message)
}

/// A `function_call` item joins the assistant message just before it (its text, or the calls
/// before it), or starts one.
fn add_tool_call(
    messages: &mut Vec<Value>,
    item: &Object,
    param: &str,
) -> Result<(), GatewayError> {
    let field = |key: &str| -> Result<&str, GatewayError> {
        match get(item, key) {
            Some(Value::String(s)) => Ok(s),
            None => Err(missing(&format!("{param}.{key}"))),
            Some(other) => Err(wrong_type(&format!("{param}.{key}"), "a string", other)),
        }
    };
    let call = json!({
        "id": field("call_id")?,
        "type": "function",
        "function": {"name": field("name")?, "arguments": field("arguments")?},
    });
    let last_assistant = messages
        .last_mut()
        .and_then(Value::as_object_mut)
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    match last_assistant {
        Some(last) => match last.get_mut("tool_calls") {
            Some(Value::Array(calls)) => calls.push(call),
            _ => {
                last.insert("tool_calls".into(), Value::Array(vec![call]));
            }
        },
        None => messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
    }
    Ok(())
}

/// A `function_call_output` item → a `tool` message; its output is a string or text parts
/// (chat tool messages carry text only).
fn tool_result(item: &Object, param: &str) -> Result<Value, GatewayError> {
    let call_id = match get(item, "call_id") {
        Some(Value::String(id)) => id,
        None => return Err(missing(&format!("{param}.call_id"))),
        Some(other) => return Err(wrong_type(&format!("{param}.call_id"), "a string", other)),
    };
    let output_param = format!("{param}.output");
    let output = match get(item, "output") {
        Some(output) => text_content(output, &output_param, &["input_text"])?,
        None => return Err(missing(&output_param)),
    };
    Ok(json!({"role": "tool", "tool_call_id": call_id, "content": output}))
}

fn part_of<'a>(part: &'a Value, param: &str) -> Result<(&'a str, &'a Object), GatewayError> {
    let Some(part) = part.as_object() else {
        return Err(wrong_type(param, "an object", part));
    };
    match get(part, "type") {
        Some(Value::String(kind)) => Ok((kind, part)),
        None => Err(missing(&format!("{param}.type"))),
        Some(other) => Err(wrong_type(&format!("{param}.type"), "a string", other)),
    }
}

fn text_of<'a>(part: &'a Object, param: &str) -> Result<&'a str, GatewayError> {
    match get(part, "text") {
        Some(Value::String(text)) => Ok(text),
        None => Err(missing(&format!("{param}.text"))),
        Some(other) => Err(wrong_type(&format!("{param}.text"), "a string", other)),
    }
}

fn bad_part(param: &str, kind: &str, allowed: &[&str]) -> GatewayError {
    invalid(
        format!("{param}.type"),
        format!(
            "Content parts of type '{kind}' are not supported here by this gateway; expected one of: {}.",
            allowed.join(", ")
        ),
    )
}

fn no_file_store(param: &str) -> GatewayError {
    invalid(
        param,
        "Files by id are stored at OpenAI, which this gateway cannot read for other providers: send the image as a URL or a base64 data URL, the file inline in 'file_data'.",
    )
}

fn empty(param: &str) -> GatewayError {
    invalid(
        param,
        format!("Invalid '{param}': empty array. Expected at least one content part."),
    )
}
