//! A Messages request body -> an OpenAI chat body (see the parent module for the mapping).

pub(super) use crate::chat::missing;
use serde_json::{json, Map, Value};

use super::blocks::Converter;
use super::Context;
use crate::chat::MAX_OUTPUT_TOKENS;
use crate::error::{invalid, parse_object, GatewayError};

pub(super) type Object = Map<String, Value>;

/// The client's Messages body -> the OpenAI chat body and the answer's context, or a 400 naming
/// the field.
pub fn to_chat(body: &[u8]) -> Result<(Vec<u8>, Context), GatewayError> {
    let req = parse_object(body)?;
    let mut cx = Converter::default();
    let model = match req.get("model") {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("model")),
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(other) => return Err(wrong("model", "a non-empty string", other)),
    };
    let max_tokens = match req.get("max_tokens") {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("max_tokens")),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_OUTPUT_TOKENS).contains(&n) => n,
            _ => {
                return Err(wrong(
                    "max_tokens",
                    &format!("an integer from 1 to {MAX_OUTPUT_TOKENS}"),
                    v,
                ))
            }
        },
    };
    let stream = match req.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong("stream", "a boolean", other)),
    };
    let mut out = Object::new();
    out.insert("model".into(), model.clone().into());
    out.insert("max_tokens".into(), max_tokens.into());
    if stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let mut messages = Vec::new();
    if let Some(system) = present(&req, "system") {
        messages.push(json!({"role": "system", "content": system_text(system)?}));
    }
    let turns = match req.get("messages") {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("messages")),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(other) => return Err(wrong("messages", "a non-empty array of messages", other)),
    };
    for (i, turn) in turns.iter().enumerate() {
        cx.turn(turn, &format!("messages[{i}]"), &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));
    for (key, max) in [("temperature", 1.0), ("top_p", 1.0)] {
        if let Some(v) = present(&req, key) {
            match v.as_f64() {
                Some(x) if (0.0..=max).contains(&x) => {
                    out.insert(key.into(), v.clone());
                }
                _ => return Err(wrong(key, &format!("a number from 0 to {max}"), v)),
            }
        }
    }
    if let Some(v) = present(&req, "top_k") {
        if v.as_u64().is_none() {
            return Err(wrong("top_k", "a non-negative integer", v));
        }
    }
    if let Some(v) = present(&req, "stop_sequences") {
        let items = v
            .as_array()
            .ok_or_else(|| wrong("stop_sequences", "an array of strings", v))?;
        for (i, s) in items.iter().enumerate() {
            if !s.is_string() {
                return Err(wrong(&format!("stop_sequences[{i}]"), "a string", s));
            }
        }
        if items.len() > 4 {
            // OpenAI-format providers take at most four.
            cx.cannot("more than 4 stop_sequences");
        } else if !items.is_empty() {
            out.insert("stop".into(), v.clone());
        }
    }
    if let Some(v) = present(&req, "metadata") {
        let meta = v
            .as_object()
            .ok_or_else(|| wrong("metadata", "an object", v))?;
        match present(meta, "user_id") {
            None => {}
            Some(Value::String(id)) => {
                out.insert("user".into(), id.clone().into());
            }
            Some(other) => return Err(wrong("metadata.user_id", "a string", other)),
        }
    }
    if let Some(v) = present(&req, "thinking") {
        let thinking = v
            .as_object()
            .ok_or_else(|| wrong("thinking", "an object", v))?;
        required_str(thinking, "type", "thinking")?;
    }
    let tools = match present(&req, "tools") {
        Some(v) => cx.tools(v)?,
        None => Vec::new(),
    };
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(v) = present(&req, "tool_choice") {
        let (choice, parallel) = tool_choice(v)?;
        if has_tools {
            out.insert("tool_choice".into(), choice);
            if parallel == Some(false) {
                out.insert("parallel_tool_calls".into(), false.into());
            }
        }
    }
    let chat = serde_json::to_vec(&Value::Object(out))
        .map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
    Ok((
        chat,
        Context {
            model,
            stream,
            untranslatable: cx.untranslatable,
        },
    ))
}

/// A `count_tokens` body (a Messages body without `max_tokens`) -> the chat body whose prompt
/// the gateway estimates.
pub fn count_tokens_to_chat(body: &[u8]) -> Result<(Vec<u8>, Context), GatewayError> {
    let mut req = parse_object(body)?;
    req.entry("max_tokens").or_insert(Value::from(1));
    let body = serde_json::to_vec(&req).map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
    to_chat(&body)
}

/// `tool_choice` -> the chat `tool_choice` and `parallel_tool_calls` (when the client said).
fn tool_choice(v: &Value) -> Result<(Value, Option<bool>), GatewayError> {
    let choice = v
        .as_object()
        .ok_or_else(|| wrong("tool_choice", "an object", v))?;
    let kind = required_str(choice, "type", "tool_choice")?;
    let chat = match kind {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            json!({"type": "function", "function": {"name": required_str(choice, "name", "tool_choice")?}})
        }
        other => {
            return Err(invalid(
                "tool_choice.type",
                format!(
                "Invalid value: '{other}'. Supported values are: 'auto', 'any', 'tool' and 'none'."
            ),
            ))
        }
    };
    let parallel = match choice.get("disable_parallel_tool_use") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(disable)) => Some(!disable),
        Some(other) => {
            return Err(wrong(
                "tool_choice.disable_parallel_tool_use",
                "a boolean",
                other,
            ))
        }
    };
    Ok((chat, parallel))
}

/// `system`: a string or an array of text blocks -> one text.
pub(super) fn system_text(system: &Value) -> Result<String, GatewayError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (i, block) in blocks.iter().enumerate() {
                let param = format!("system[{i}]");
                let (kind, block) = block_type(block, &param)?;
                if kind != "text" {
                    return Err(invalid(
                        format!("{param}.type"),
                        format!("Invalid value: '{kind}'. System blocks are 'text' blocks."),
                    ));
                }
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(required_str(block, "text", &param)?);
            }
            Ok(text)
        }
        other => Err(wrong(
            "system",
            "a string or an array of text blocks",
            other,
        )),
    }
}

/// A block's `type` (required) and the block as an object.
pub(super) fn block_type<'a>(
    block: &'a Value,
    param: &str,
) -> Result<(&'a str, &'a Object), GatewayError> {
    let obj = block
        .as_object()
        .ok_or_else(|| wrong(param, "a content block object", block))?;
    Ok((required_str(obj, "type", param)?, obj))
}

/// A block's `source`: its type, the object, and its parameter path.
pub(super) fn source<'a>(
    block: &'a Object,
    param: &str,
) -> Result<(&'a str, &'a Object, String), GatewayError> {
    let sp = format!("{param}.source");
    let source = match block.get("source") {
        Some(Value::Object(s)) => s,
        Some(other) => return Err(wrong(&sp, "an object", other)),
        None => return Err(missing(&sp)),
    };
    Ok((required_str(source, "type", &sp)?, source, sp))
}

pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

pub(super) fn present<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(super) fn required_str<'a>(
    obj: &'a Object,
    key: &str,
    prefix: &str,
) -> Result<&'a str, GatewayError> {
    let param = if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    };
    match obj.get(key) {
        None | Some(Value::Null) => Err(missing(&param)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong(&param, "a string", other)),
    }
}

pub(super) fn wrong(param: &str, expected: &str, got: &Value) -> GatewayError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    invalid(
        param,
        format!("Invalid value for '{param}': expected {expected}, got {kind}."),
    )
}
