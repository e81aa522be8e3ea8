//! The turns of a Messages request and their content blocks -> chat messages, and `tools` ->
//! function tools; what has no chat equivalent is noted (`Converter::untranslatable`).

use serde_json::{json, Value};

use super::request::{
    block_type, missing, required_str, source, system_text, text_part, wrong, Object,
};
use crate::error::{invalid, GatewayError};

/// Collects what cannot be said in the chat form (the first thing found is reported).
#[derive(Default)]
pub(super) struct Converter {
    pub(super) untranslatable: Option<String>,
}

impl Converter {
    pub(super) fn cannot(&mut self, what: &str) {
        self.untranslatable.get_or_insert_with(|| {
            format!("This Messages request has {what}, which only an Anthropic model can take; the model's provider speaks another API.")
        });
    }

    /// One turn -> its chat messages (a user turn's tool results go first, as `tool` messages).
    pub(super) fn turn(
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

    pub(super) fn tools(&mut self, v: &Value) -> Result<Vec<Value>, GatewayError> {
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
