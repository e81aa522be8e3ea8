//! A Messages request body -> an OpenAI chat body (see the parent module for the mapping).

use serde_json::{json, Map, Value};

use super::Context;
use crate::chat::MAX_OUTPUT_TOKENS;
use crate::error::{invalid, parse_object, GatewayError};

type Object = Map<String, Value>;

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

/// Collects what cannot be said in the chat form (the first thing found is reported).
#[derive(Default)]
struct Converter {
    untranslatable: Option<String>,
}

impl Converter {
    fn cannot(&mut self, what: &str) {
        self.untranslatable.get_or_insert_with(|| {
            format!("This Messages request has {what}, which only an Anthropic model can take; the model's provider speaks another API.")
        });
    }

    /// One turn -> its chat messages (a user turn's tool results go first, as `tool` messages).
    fn turn(
        &mut self,
        turn: &Value,
        param: &str,
        out: &mut Vec<Value>,
    ) -> Result<(), GatewayError> {
        let turn = turn
            .as_object()
            .ok_or_else(|| wrong(param, "an object", turn))?;
        let role = required_str(turn, "role", param)?;
        let content_param = format!("{param}.content");
        match role {
            "user" | "assistant" => {}
            // Claude Code sends system turns among the messages (instructions that arrive
            // mid-conversation); their text becomes a chat system message where it stands.
            "system" => {
                let content = turn.get("content").unwrap_or(&Value::Null);
                let text = system_text(content).map_err(|e| match e {
                    GatewayError::InvalidParameter { message, .. } => {
                        invalid(content_param.clone(), message)
                    }
                    other => other,
                })?;
                out.push(json!({"role": "system", "content": text}));
                return Ok(());
            }
            _ => {
                return Err(invalid(
                    format!("{param}.role"),
                    format!("Invalid value: '{role}'. Supported values are: 'user', 'assistant' and 'system'."),
                ))
            }
        }
        let blocks = match turn.get("content") {
            None | Some(Value::Null) => return Err(missing(&content_param)),
            Some(Value::String(s)) => {
                out.push(json!({"role": role, "content": s}));
                return Ok(());
            }
            Some(Value::Array(blocks)) => blocks,
            Some(other) => {
                return Err(wrong(
                    &content_param,
                    "a string or an array of content blocks",
                    other,
                ))
            }
        };
        if role == "user" {
            self.user_blocks(blocks, &content_param, out)
        } else {
            self.assistant_blocks(blocks, &content_param, out)
        }
    }

    fn user_blocks(
        &mut self,
        blocks: &[Value],
        param: &str,
        out: &mut Vec<Value>,
    ) -> Result<(), GatewayError> {
        let mut parts = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let param = format!("{param}[{j}]");
            let (kind, block) = block_type(block, &param)?;
            match kind {
                "text" => parts.push(text_part(required_str(block, "text", &param)?)),
                "image" => {
                    if let Some(part) = self.image(block, &param)? {
                        parts.push(part);
                    }
                }
                "document" => {
                    if let Some(part) = self.document(block, &param)? {
                        parts.push(part);
                    }
                }
                "tool_result" => out.push(self.tool_result(block, &param)?),
                other => self.cannot(&format!("a '{other}' content block")),
            }
        }
        if !parts.is_empty() {
            out.push(json!({"role": "user", "content": parts}));
        }
        Ok(())
    }

    fn assistant_blocks(
        &mut self,
        blocks: &[Value],
        param: &str,
        out: &mut Vec<Value>,
    ) -> Result<(), GatewayError> {
        let mut text = String::new();
        let mut calls = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let param = format!("{param}[{j}]");
            let (kind, block) = block_type(block, &param)?;
            match kind {
                "text" => text.push_str(required_str(block, "text", &param)?),
                "tool_use" => {
                    let id = required_str(block, "id", &param)?;
                    let name = required_str(block, "name", &param)?;
                    let input = match block.get("input") {
                        Some(v @ Value::Object(_)) => v.to_string(),
                        Some(other) => {
                            return Err(wrong(&format!("{param}.input"), "an object", other))
                        }
                        None => return Err(missing(&format!("{param}.input"))),
                    };
                    calls.push(json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": input}}));
                }
                // Signed reasoning of a Claude model: nothing another model can use.
                "thinking" | "redacted_thinking" => {}
                other => self.cannot(&format!("a '{other}' content block")),
            }
        }
        if text.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let mut message = Object::new();
        message.insert("role".into(), "assistant".into());
        let content = if text.is_empty() {
            Value::Null
        } else {
            text.into()
        };
        message.insert("content".into(), content);
        if !calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        out.push(Value::Object(message));
        Ok(())
    }

    fn image(&mut self, block: &Object, param: &str) -> Result<Option<Value>, GatewayError> {
        let (kind, source, sp) = source(block, param)?;
        let url = match kind {
            "base64" => format!(
                "data:{};base64,{}",
                required_str(source, "media_type", &sp)?,
                required_str(source, "data", &sp)?
            ),
            "url" => required_str(source, "url", &sp)?.to_string(),
            other => {
                self.cannot(&format!("an image with a '{other}' source"));
                return Ok(None);
            }
        };
        Ok(Some(
            json!({"type": "image_url", "image_url": {"url": url}}),
        ))
    }

    fn document(&mut self, block: &Object, param: &str) -> Result<Option<Value>, GatewayError> {
        let (kind, source, sp) = source(block, param)?;
        match kind {
            "base64" => {
                let media = required_str(source, "media_type", &sp)?;
                let data = required_str(source, "data", &sp)?;
                if media != "application/pdf" {
                    self.cannot(&format!("a '{media}' document"));
                    return Ok(None);
                }
                let name = block
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("document.pdf");
                Ok(Some(json!({"type": "file", "file": {
                    "filename": name,
                    "file_data": format!("data:application/pdf;base64,{data}")}})))
            }
            "text" => Ok(Some(text_part(required_str(source, "data", &sp)?))),
            other => {
                self.cannot(&format!("a document with a '{other}' source"));
                Ok(None)
            }
        }
    }

    fn tool_result(&mut self, block: &Object, param: &str) -> Result<Value, GatewayError> {
        let id = required_str(block, "tool_use_id", param)?;
        let mut text = String::new();
        match block.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => text.push_str(s),
            Some(Value::Array(items)) => {
                for (k, item) in items.iter().enumerate() {
                    let ip = format!("{param}.content[{k}]");
                    let (kind, item) = block_type(item, &ip)?;
                    match kind {
                        "text" => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(required_str(item, "text", &ip)?);
                        }
                        other => self.cannot(&format!("a '{other}' block in a tool result")),
                    }
                }
            }
            Some(other) => {
                return Err(wrong(
                    &format!("{param}.content"),
                    "a string or an array of content blocks",
                    other,
                ))
            }
        }
        match block.get("is_error") {
            None | Some(Value::Null | Value::Bool(false)) => {}
            Some(Value::Bool(true)) => text.insert_str(0, "Error: "),
            Some(other) => return Err(wrong(&format!("{param}.is_error"), "a boolean", other)),
        }
        Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
    }

    fn tools(&mut self, v: &Value) -> Result<Vec<Value>, GatewayError> {
        let items = v
            .as_array()
            .ok_or_else(|| wrong("tools", "an array of tools", v))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, tool) in items.iter().enumerate() {
            let param = format!("tools[{i}]");
            let tool = tool
                .as_object()
                .ok_or_else(|| wrong(&param, "an object", tool))?;
            let name = required_str(tool, "name", &param)?;
            match tool.get("type").and_then(Value::as_str) {
                None | Some("custom") => {}
                Some(server) => {
                    // Anthropic's server and client tools (web search, bash, text editor, ...).
                    self.cannot(&format!("the '{server}' tool"));
                    continue;
                }
            }
            let schema = match tool.get("input_schema") {
                Some(v @ Value::Object(_)) => v.clone(),
                Some(other) => {
                    return Err(wrong(&format!("{param}.input_schema"), "an object", other))
                }
                None => return Err(missing(&format!("{param}.input_schema"))),
            };
            let mut function = Object::new();
            function.insert("name".into(), name.into());
            if let Some(d) = tool.get("description").and_then(Value::as_str) {
                function.insert("description".into(), d.into());
            }
            function.insert("parameters".into(), schema);
            out.push(json!({"type": "function", "function": function}));
        }
        Ok(out)
    }
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
fn system_text(system: &Value) -> Result<String, GatewayError> {
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
fn block_type<'a>(block: &'a Value, param: &str) -> Result<(&'a str, &'a Object), GatewayError> {
    let obj = block
        .as_object()
        .ok_or_else(|| wrong(param, "a content block object", block))?;
    Ok((required_str(obj, "type", param)?, obj))
}

/// A block's `source`: its type, the object, and its parameter path.
fn source<'a>(
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

fn text_part(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

fn present<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn required_str<'a>(obj: &'a Object, key: &str, prefix: &str) -> Result<&'a str, GatewayError> {
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

fn missing(param: &str) -> GatewayError {
    invalid(param, format!("Missing required parameter: '{param}'."))
}

fn wrong(param: &str, expected: &str, got: &Value) -> GatewayError {
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
