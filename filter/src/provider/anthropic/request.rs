//! The client's OpenAI chat body → an Anthropic Messages body (the mapping is in the module
//! documentation of `anthropic.rs`). The body is written straight from the client's parsed
//! body: typed blocks that borrow its strings, serialized once, no second JSON tree built.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{
    default_max_tokens, field, structured, JSON_OBJECT_INSTRUCTION, MAX_TOOL_NAME,
    SCHEMA_TOOL_PREFIX,
};
use crate::error::{invalid, GatewayError};
use crate::provider::cache_marks;
use crate::provider::config::ProviderSettings;
use crate::provider::Attempt;

/// A Messages API request body (https://docs.anthropic.com/en/api/messages); members the
/// request does not use are left out.
#[derive(Serialize)]
pub(super) struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System<'a>>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
}

impl MessagesBody<'_> {
    /// Blocks and tools that carry `cache_control` (Anthropic's breakpoints).
    fn breakpoints(&self) -> usize {
        let system = match &self.system {
            Some(System::Blocks(blocks)) => marked(blocks),
            _ => 0,
        };
        let tools = self
            .tools
            .iter()
            .filter(|t| t.get("cache_control").is_some())
            .count();
        self.messages
            .iter()
            .map(|turn| marked(&turn.content))
            .fold(system.saturating_add(tools), usize::saturating_add)
    }
}

fn marked(blocks: &[Block<'_>]) -> usize {
    blocks.iter().filter(|b| b.cache_control.is_some()).count()
}

/// A system text and the client's cache marker on it, if any.
type SystemText<'a> = (Cow<'a, str>, Option<Value>);

/// `system`: one string, or text blocks when one of them carries a cache marker.
#[derive(Serialize)]
#[serde(untagged)]
enum System<'a> {
    Text(String),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// A content block, with the client's cache marker when it has one.
#[derive(Serialize)]
struct Block<'a> {
    #[serde(flatten)]
    kind: BlockKind<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<Value>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockKind<'a> {
    Text {
        text: Cow<'a, str>,
    },
    Image {
        source: Source<'a>,
    },
    Document {
        source: Source<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: ToolResultContent<'a>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Source<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

impl<'a> Block<'a> {
    fn new(kind: BlockKind<'a>) -> Self {
        Self {
            kind,
            cache_control: None,
        }
    }

    fn text(text: impl Into<Cow<'a, str>>) -> Self {
        Self::new(BlockKind::Text { text: text.into() })
    }
}

/// The Anthropic Messages body for the client's OpenAI chat body.
pub(super) fn messages_body<'a>(
    attempt: &Attempt<'a>,
    req: &'a Map<String, Value>,
) -> Result<MessagesBody<'a>, GatewayError> {
    for legacy in ["functions", "function_call"] {
        if req.get(legacy).is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                legacy,
                format!("'{legacy}' is deprecated and not translated for Anthropic; use 'tools' and 'tool_choice'."),
            ));
        }
    }

    // System texts, each with the client's cache marker if it has one.
    let mut system: Vec<SystemText<'a>> = Vec::new();
    let mut turns: Vec<Turn<'a>> = Vec::new();
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(GatewayError::MissingParameter("messages"))?;
    let mut param = String::new();
    for (i, m) in messages.iter().enumerate() {
        param.clear();
        let _ = write!(param, "messages[{i}]");
        let param = param.as_str();
        match field(m, "role").as_str().unwrap_or_default() {
            "system" | "developer" => system.extend(system_entries(m, param)?),
            "user" => {
                let blocks = user_blocks(field(m, "content"), param)?;
                push_turn(&mut turns, "user", mark_last(blocks, m, param)?);
            }
            "assistant" => {
                let blocks = assistant_blocks(m, param)?;
                push_turn(&mut turns, "assistant", mark_last(blocks, m, param)?);
            }
            "tool" => {
                let blocks = vec![tool_result(m, param)?];
                push_turn(&mut turns, "user", mark_last(blocks, m, param)?);
            }
            other => {
                return Err(invalid(
                    format!("{param}.role"),
                    format!("Role '{other}' is not translated for Anthropic; use 'tool' messages with 'tool_call_id'."),
                ))
            }
        }
    }

    let max_tokens = [req.get("max_completion_tokens"), req.get("max_tokens")]
        .into_iter()
        .flatten()
        .find_map(Value::as_u64)
        .unwrap_or(match &attempt.provider.settings {
            ProviderSettings::Anthropic(settings) => settings.default_max_tokens,
            _ => default_max_tokens(),
        });

    // Tools, and the schema tool of `response_format: json_schema`.
    let mut tools = client_tools(req.get("tools"))?;
    let client_has_tools = !tools.is_empty();
    let mut tool_choice = client_tool_choice(req.get("tool_choice"))?;
    let mut output_config = None;
    match req.get("response_format") {
        None | Some(Value::Null) => {}
        Some(format) => {
            match field(format, "type").as_str() {
                Some("text") => {}
                Some("json_object") => system.push((JSON_OBJECT_INSTRUCTION.into(), None)),
                Some("json_schema") => {
                    let spec = field(format, "json_schema");
                    match structured::output_config(attempt.upstream_model, spec) {
                        // Claude's own structured output: its text answer is the JSON.
                        Some(config) => output_config = Some(config),
                        None => {
                            let (tool, name) = schema_tool(spec)?;
                            tools.push(tool);
                            tool_choice = schema_tool_choice(tool_choice, client_has_tools, name);
                        }
                    }
                }
                _ => return Err(invalid(
                    "response_format",
                    "Invalid 'response_format.type': use 'text', 'json_object' or 'json_schema'.",
                )),
            }
        }
    }
    if req.get("parallel_tool_calls") == Some(&Value::Bool(false)) && !tools.is_empty() {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice.get("type") != Some(&json!("none")) {
            if let Some(c) = choice.as_object_mut() {
                c.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
    }
    if tools.is_empty() {
        tool_choice = None;
    }

    system.retain(|(s, _)| !s.is_empty());
    let system = if system.iter().any(|(_, mark)| mark.is_some()) {
        // A marker needs system blocks; without one the joined string stays, as before.
        let blocks = system
            .into_iter()
            .map(|(text, mark)| Block {
                cache_control: mark,
                ..Block::text(text)
            })
            .collect();
        Some(System::Blocks(blocks))
    } else if !system.is_empty() {
        let texts: Vec<Cow<'a, str>> = system.into_iter().map(|(text, _)| text).collect();
        Some(System::Text(texts.join("\n")))
    } else {
        None
    };
    let temperature = req.get("temperature").filter(|v| v.is_number()).map(|t| {
        if t.as_f64().is_some_and(|x| x > 1.0) {
            json!(1.0)
        } else {
            t.clone()
        }
    });
    let stop_sequences = match req.get("stop") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.trim().is_empty())
    .collect();
    let body = MessagesBody {
        model: attempt.upstream_model,
        max_tokens,
        system,
        messages: turns,
        tools,
        tool_choice,
        output_config,
        temperature,
        top_p: req.get("top_p").filter(|v| v.is_number()),
        stop_sequences,
        stream: attempt.stream,
        metadata: req
            .get("user")
            .and_then(Value::as_str)
            .map(|user_id| Metadata { user_id }),
    };
    cache_marks::check_anthropic_count(body.breakpoints())?;
    Ok(body)
}

/// Appends blocks to the conversation, merging them into the last turn when it has the same role.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => turns.push(Turn {
            role,
            content: blocks,
        }),
    }
}

/// A system or developer message as system texts: one joined text, or one per part when a part
/// carries a cache marker (the marker must stay on its own block); a marker on the message
/// itself goes on its last text.
fn system_entries<'a>(
    message: &'a Value,
    param: &str,
) -> Result<Vec<SystemText<'a>>, GatewayError> {
    let content = field(message, "content");
    let mut entries = match content {
        Value::Array(parts) if parts.iter().any(|p| !field(p, "cache_control").is_null()) => {
            let mut entries = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let at = format!("{param}.content[{j}]");
                let (Some("text"), Some(text)) =
                    (field(part, "type").as_str(), field(part, "text").as_str())
                else {
                    return Err(invalid(
                        at,
                        "System and developer messages may hold only text parts.",
                    ));
                };
                entries.push((text.into(), cache_marks::marker(part, &at)?));
            }
            entries
        }
        _ => vec![(system_text(content, param)?, None)],
    };
    if let Some(mark) = cache_marks::marker(message, param)? {
        if let Some(last) = entries.last_mut() {
            last.1 = Some(mark);
        }
    }
    Ok(entries)
}

/// Puts a marker set on the whole message (`messages[i].cache_control`) on its last block.
fn mark_last<'a>(
    mut blocks: Vec<Block<'a>>,
    message: &Value,
    param: &str,
) -> Result<Vec<Block<'a>>, GatewayError> {
    if let Some(mark) = cache_marks::marker(message, param)? {
        if let Some(last) = blocks.last_mut() {
            last.cache_control = Some(mark);
        }
    }
    Ok(blocks)
}

/// The text of a system or developer message (string or text parts).
fn system_text<'a>(content: &'a Value, param: &str) -> Result<Cow<'a, str>, GatewayError> {
    match content {
        Value::String(s) => Ok(s.as_str().into()),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(
                |(j, part)| match (field(part, "type").as_str(), field(part, "text").as_str()) {
                    (Some("text"), Some(text)) => Ok(text),
                    _ => Err(invalid(
                        format!("{param}.content[{j}]"),
                        "System and developer messages may hold only text parts.",
                    )),
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join("\n").into()),
        _ => Ok(Cow::Borrowed("")),
    }
}

fn user_blocks<'a>(content: &'a Value, param: &str) -> Result<Vec<Block<'a>>, GatewayError> {
    match content {
        Value::String(s) => Ok(vec![Block::text(s.as_str())]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| {
                let at = format!("{param}.content[{j}]");
                let mut block = user_part(part, &at)?;
                block.cache_control = cache_marks::marker(part, &at)?;
                Ok(block)
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

fn user_part<'a>(part: &'a Value, param: &str) -> Result<Block<'a>, GatewayError> {
    match field(part, "type").as_str() {
        Some("text") => match field(part, "text").as_str() {
            Some(text) => Ok(Block::text(text)),
            None => Err(invalid(
                format!("{param}.text"),
                "A text part needs a string 'text'.",
            )),
        },
        Some("image_url") => {
            let url = field(part, "image_url");
            let url = url.as_str().or_else(|| field(url, "url").as_str());
            match url {
                Some(url) => image_block(url, &format!("{param}.image_url.url")),
                None => Err(invalid(
                    format!("{param}.image_url.url"),
                    "An image_url part needs 'image_url.url'.",
                )),
            }
        }
        Some("file") => {
            let file = field(part, "file");
            match field(file, "file_data").as_str().map(parse_data_url) {
                Some(Some(("application/pdf", data))) => Ok(Block::new(BlockKind::Document {
                    source: Source::Base64 {
                        media_type: "application/pdf",
                        data,
                    },
                })),
                _ => Err(invalid(
                    format!("{param}.file"),
                    "Anthropic takes files only as PDF 'file_data' (a data:application/pdf;base64 URL); file ids are not translated.",
                )),
            }
        }
        other => Err(invalid(
            format!("{param}.type"),
            format!(
                "Content part type '{}' is not supported by Anthropic.",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

/// `data:<media type>[;params];base64,<data>` → (media type, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (header, data) = url.strip_prefix("data:")?.split_once(',')?;
    let params = header.strip_suffix(";base64")?;
    let media_type = params.split(';').next().unwrap_or_default();
    (!media_type.is_empty()).then_some((media_type, data))
}

fn image_block<'a>(url: &'a str, param: &str) -> Result<Block<'a>, GatewayError> {
    if url.starts_with("data:") {
        return match parse_data_url(url) {
            Some((media_type, data)) => Ok(Block::new(BlockKind::Image {
                source: Source::Base64 { media_type, data },
            })),
            None => Err(invalid(
                param,
                "Image data URLs must be base64: data:<media type>;base64,<data>.",
            )),
        };
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(Block::new(BlockKind::Image {
            source: Source::Url { url },
        }));
    }
    Err(invalid(
        param,
        "Image URLs must be http(s) or base64 data URLs.",
    ))
}

fn assistant_blocks<'a>(message: &'a Value, param: &str) -> Result<Vec<Block<'a>>, GatewayError> {
    let mut blocks = Vec::new();
    let mut push_text = |text: &'a str| {
        // Anthropic refuses empty text blocks; an assistant turn of only tool calls often has "".
        if !text.is_empty() {
            blocks.push(Block::text(text));
        }
    };
    match field(message, "content") {
        Value::String(s) => push_text(s),
        Value::Array(parts) => {
            for (j, part) in parts.iter().enumerate() {
                match field(part, "type").as_str() {
                    Some("text") => push_text(field(part, "text").as_str().unwrap_or_default()),
                    Some("refusal") => {
                        push_text(field(part, "refusal").as_str().unwrap_or_default())
                    }
                    _ => {
                        return Err(invalid(
                            format!("{param}.content[{j}]"),
                            "Assistant messages may hold only text and refusal parts.",
                        ))
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(calls) = field(message, "tool_calls").as_array() {
        for (j, call) in calls.iter().enumerate() {
            blocks.push(tool_use_block(call, &format!("{param}.tool_calls[{j}]"))?);
        }
    }
    Ok(blocks)
}

fn tool_use_block<'a>(call: &'a Value, param: &str) -> Result<Block<'a>, GatewayError> {
    let function = field(call, "function");
    let (Some(id), Some(name)) = (field(call, "id").as_str(), field(function, "name").as_str())
    else {
        return Err(invalid(
            param,
            "A tool call needs 'id' and 'function.name'.",
        ));
    };
    let arguments = field(function, "arguments").as_str().unwrap_or_default();
    let input = if arguments.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str::<Value>(arguments) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(invalid(
                    format!("{param}.function.arguments"),
                    "Tool call arguments must be a JSON object for Anthropic.",
                ))
            }
            Err(e) => {
                return Err(invalid(
                    format!("{param}.function.arguments"),
                    format!("Tool call arguments are not valid JSON: {e}."),
                ))
            }
        }
    };
    Ok(Block::new(BlockKind::ToolUse { id, name, input }))
}

fn tool_result<'a>(message: &'a Value, param: &str) -> Result<Block<'a>, GatewayError> {
    let tool_use_id = field(message, "tool_call_id").as_str().unwrap_or_default();
    let content = match field(message, "content") {
        Value::String(s) => ToolResultContent::Text(s),
        Value::Array(parts) => ToolResultContent::Blocks(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| {
                    match (field(part, "type").as_str(), field(part, "text").as_str()) {
                        (Some("text"), Some(text)) => Ok(Block::text(text)),
                        _ => Err(invalid(
                            format!("{param}.content[{j}]"),
                            "Tool messages may hold only text parts.",
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => ToolResultContent::Text(""),
    };
    Ok(Block::new(BlockKind::ToolResult {
        tool_use_id,
        content,
    }))
}

fn client_tools(tools: Option<&Value>) -> Result<Vec<Value>, GatewayError> {
    let Some(tools) = tools.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let param = format!("tools[{i}]");
            if field(tool, "type").as_str().unwrap_or("function") != "function" {
                return Err(invalid(
                    format!("{param}.type"),
                    "Only 'function' tools are translated for Anthropic.",
                ));
            }
            let function = field(tool, "function");
            let Some(name) = field(function, "name").as_str() else {
                return Err(invalid(
                    format!("{param}.function.name"),
                    "A tool needs 'function.name'.",
                ));
            };
            if name.starts_with(SCHEMA_TOOL_PREFIX) {
                return Err(invalid(
                    format!("{param}.function.name"),
                    format!("Tool names starting with '{SCHEMA_TOOL_PREFIX}' are reserved by the gateway."),
                ));
            }
            let mut out = Map::new();
            out.insert("name".into(), name.into());
            if let Some(d) = field(function, "description").as_str() {
                out.insert("description".into(), d.into());
            }
            let schema = match field(function, "parameters") {
                Value::Null => json!({"type": "object", "properties": {}}),
                p => p.clone(),
            };
            out.insert("input_schema".into(), schema);
            if let Some(mark) = cache_marks::marker(tool, &param)? {
                out.insert("cache_control".into(), mark);
            }
            Ok(Value::Object(out))
        })
        .collect()
}

fn client_tool_choice(choice: Option<&Value>) -> Result<Option<Value>, GatewayError> {
    let bad = || {
        invalid(
            "tool_choice",
            "Invalid 'tool_choice' for Anthropic: use 'auto', 'required', 'none' or {\"type\": \"function\", \"function\": {\"name\": ...}}.",
        )
    };
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(Some(json!({"type": "auto"}))),
            "required" => Ok(Some(json!({"type": "any"}))),
            "none" => Ok(Some(json!({"type": "none"}))),
            _ => Err(bad()),
        },
        Some(obj) => match (
            field(obj, "type").as_str(),
            field(field(obj, "function"), "name").as_str(),
        ) {
            (Some("function"), Some(name)) => Ok(Some(json!({"type": "tool", "name": name}))),
            _ => Err(bad()),
        },
    }
}

/// How the model is made to call the schema tool `name`: the client's forced tool stays; with
/// the client's own tools there, any tool (one of them, or the schema tool); else the schema
/// tool.
fn schema_tool_choice(
    choice: Option<Value>,
    client_has_tools: bool,
    name: String,
) -> Option<Value> {
    match choice {
        Some(choice) if choice.get("type") == Some(&json!("tool")) => Some(choice),
        Some(choice) if client_has_tools && choice.get("type") != Some(&json!("none")) => {
            Some(json!({"type": "any"}))
        }
        None if client_has_tools => Some(json!({"type": "any"})),
        _ => Some(json!({"type": "tool", "name": name})),
    }
}

/// The tool that carries a `json_schema` answer, and its name.
fn schema_tool(spec: &Value) -> Result<(Value, String), GatewayError> {
    let Some(schema_name) = field(spec, "name").as_str() else {
        return Err(invalid(
            "response_format.json_schema.name",
            "Missing required parameter: 'response_format.json_schema.name'.",
        ));
    };
    let mut name = format!("{SCHEMA_TOOL_PREFIX}{schema_name}");
    // Names are ASCII in both APIs; cut on a character boundary all the same.
    while name.len() > MAX_TOOL_NAME {
        name.pop();
    }
    let description = match field(spec, "description").as_str() {
        Some(d) => format!("Respond to the user with JSON that follows this schema. {d}"),
        None => "Respond to the user with JSON that follows this schema.".to_string(),
    };
    let schema = match field(spec, "schema") {
        Value::Null => json!({"type": "object"}),
        s => s.clone(),
    };
    Ok((
        json!({"name": name, "description": description, "input_schema": schema}),
        name,
    ))
}
