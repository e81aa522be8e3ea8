//! The client's OpenAI chat body → a Converse body (the mapping is in the module documentation
//! of `bedrock.rs`). The body is written straight from the client's parsed body: typed blocks
//! that borrow its strings, serialized once, no second JSON tree built.
//!
//! Members are declared in alphabetical order: the bytes are then those a JSON tree with sorted
//! keys gives, which the signing goldens (computed by an independent implementation) pin.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{invalid, parse_object, GatewayError};
use crate::provider::cache_marks;

/// A Converse request body
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html);
/// members the request does not use are left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseBody<'a> {
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
}

#[derive(Serialize)]
struct Turn<'a> {
    content: Vec<Block<'a>>,
    role: &'static str,
}

/// A content block (`ContentBlock` / `SystemContentBlock`: exactly one member set).
#[derive(Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    CachePoint(CachePoint),
    Image(Image<'a>),
    Text(&'a str),
    ToolResult(ToolResult<'a>),
    ToolUse(ToolUse<'a>),
}

/// `{"type": "default"}`, the only kind of cache checkpoint.
#[derive(Serialize, PartialEq)]
struct CachePoint {
    r#type: &'static str,
}

const CACHE_POINT: Block<'static> = Block::CachePoint(CachePoint { r#type: "default" });

#[derive(Serialize, PartialEq)]
struct Image<'a> {
    format: &'static str,
    source: ImageSource<'a>,
}

#[derive(Serialize, PartialEq)]
struct ImageSource<'a> {
    bytes: &'a str,
}

#[derive(Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    content: Vec<Block<'a>>,
    tool_use_id: Cow<'a, str>,
}

#[derive(Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    input: Value,
    name: &'a str,
    tool_use_id: Cow<'a, str>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<StopSequences<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Value>,
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.stop_sequences.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
    }
}

/// `stop`: one string (sent as a list of one) or the client's list as it is.
#[derive(Serialize)]
#[serde(untagged)]
enum StopSequences<'a> {
    One([&'a str; 1]),
    List(&'a [Value]),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoice<'a>>,
    tools: Vec<Tool<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolChoice<'a> {
    Any(Empty),
    Auto(Empty),
    Tool(NamedTool<'a>),
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct NamedTool<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Tool<'a> {
    CachePoint(CachePoint),
    ToolSpec(ToolSpec<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
    name: &'a str,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: Cow<'a, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputConfig<'a> {
    text_format: TextFormat<'a>,
}

#[derive(Serialize)]
struct TextFormat<'a> {
    structure: Structure<'a>,
    r#type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Structure<'a> {
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    name: &'a str,
    /// The schema as a string, as Converse takes it.
    schema: String,
}

/// The Converse request body for the client's OpenAI chat body, serialized.
pub fn converse_request(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let req = parse_object(body)?;
    let body = converse_body(&req)?;
    serde_json::to_vec(&body).map_err(|e| GatewayError::Misconfigured(e.to_string()))
}

fn converse_body(req: &Map<String, Value>) -> Result<ConverseBody<'_>, GatewayError> {
    if req.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(invalid(
            "n",
            "Bedrock returns one choice per request; send n=1 or choose another model.",
        ));
    }
    let (system, messages) = convert_messages(req.get("messages"))?;
    Ok(ConverseBody {
        inference_config: inference_config(req),
        messages,
        output_config: output_config(req)?,
        system,
        tool_config: tool_config(req)?,
    })
}

type Conversation<'a> = (Vec<Block<'a>>, Vec<Turn<'a>>);

fn convert_messages(messages: Option<&Value>) -> Result<Conversation<'_>, GatewayError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or(GatewayError::MissingParameter("messages"))?;
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let at = MessageAt(i);
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {
                let mut blocks = Vec::new();
                text_blocks(content, at, &mut blocks)?;
                point_at_end(&mut blocks, message, at)?;
                system.append(&mut blocks);
            }
            "user" => {
                let mut blocks = Vec::new();
                user_blocks(content, at, &mut blocks)?;
                point_at_end(&mut blocks, message, at)?;
                push_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                assistant_blocks(message, at, &mut blocks)?;
                point_at_end(&mut blocks, message, at)?;
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let mut blocks = vec![tool_result(message, at)?];
                point_at_end(&mut blocks, message, at)?;
                push_turn(&mut turns, "user", blocks);
            }
            other => {
                return Err(invalid(
                    format!("{at}.role"),
                    format!(
                        "Role '{other}' cannot be sent to Bedrock; send tool results as 'tool' messages."
                    ),
                ))
            }
        }
    }
    Ok((system, turns))
}

/// `messages[i]`, spelled out only when an error or a cache marker names it.
#[derive(Clone, Copy)]
struct MessageAt(usize);

impl std::fmt::Display for MessageAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "messages[{}]", self.0)
    }
}

/// Whether `item` carries a valid cache marker; `at` names it when the marker is checked.
fn marked(item: &Value, at: impl FnOnce() -> String) -> Result<bool, GatewayError> {
    match item.get("cache_control") {
        None | Some(Value::Null) => Ok(false),
        Some(_) => cache_marks::is_marked(item, &at()),
    }
}

/// Appends blocks to the conversation, merging them into the last turn when it has the role.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, mut blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.append(&mut blocks),
        _ => turns.push(Turn {
            content: blocks,
            role,
        }),
    }
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// A block, followed by a `cachePoint` when its part carried a cache marker.
fn push_block<'a>(blocks: &mut Vec<Block<'a>>, block: Block<'a>, marked: bool) {
    blocks.push(block);
    if marked {
        blocks.push(CACHE_POINT);
    }
}

/// A marker on the whole message (`messages[i].cache_control`) → a `cachePoint` after its
/// blocks (unless a part's marker already put one there).
fn point_at_end(
    blocks: &mut Vec<Block<'_>>,
    message: &Value,
    at: MessageAt,
) -> Result<(), GatewayError> {
    if marked(message, || at.to_string())? && blocks.last().is_some_and(|b| *b != CACHE_POINT) {
        blocks.push(CACHE_POINT);
    }
    Ok(())
}

/// The texts of a system, developer, assistant or tool message (a string or text parts) as
/// text blocks, each followed by a `cachePoint` when its part carries a cache marker.
fn text_blocks<'a>(
    content: &'a Value,
    at: MessageAt,
    blocks: &mut Vec<Block<'a>>,
) -> Result<(), GatewayError> {
    match content {
        Value::String(s) if !is_blank(s) => blocks.push(Block::Text(s)),
        Value::Array(parts) => {
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                let marked = marked(part, || format!("{at}.content[{j}]"))?;
                let text = match (kind, part.get("text").and_then(Value::as_str)) {
                    ("text" | "refusal" | "", Some(text)) => Some(text),
                    ("refusal", None) => part.get("refusal").and_then(Value::as_str),
                    _ => {
                        return Err(invalid(
                            format!("{at}.content[{j}]"),
                            format!("Bedrock takes only text here, not a '{kind}' part."),
                        ))
                    }
                };
                if let Some(text) = text.filter(|t| !is_blank(t)) {
                    push_block(blocks, Block::Text(text), marked);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn user_blocks<'a>(
    content: &'a Value,
    at: MessageAt,
    blocks: &mut Vec<Block<'a>>,
) -> Result<(), GatewayError> {
    let Value::Array(parts) = content else {
        return text_blocks(content, at, blocks);
    };
    blocks.reserve(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let part_at = || format!("{at}.content[{j}]");
        let marked = marked(part, part_at)?;
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let text = part.get("text").and_then(Value::as_str).unwrap_or("");
                if !is_blank(text) {
                    push_block(blocks, Block::Text(text), marked);
                }
            }
            "image_url" => push_block(blocks, image_block(part, &part_at())?, marked),
            other => {
                return Err(invalid(
                    format!("{}.type", part_at()),
                    format!("Content parts of type '{other}' cannot be sent to Bedrock; send text or images."),
                ))
            }
        }
    }
    Ok(())
}

fn image_block<'a>(part: &'a Value, at: &str) -> Result<Block<'a>, GatewayError> {
    let param = format!("{at}.image_url.url");
    let image = part.get("image_url");
    let url = image
        .and_then(|i| i.get("url"))
        .or(image)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&param, format!("Missing required parameter: '{param}'.")))?;
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(invalid(
            &param,
            "Bedrock takes images as bytes, not links: send the image as a base64 data URL (data:image/png;base64,...).",
        ));
    }
    let (meta, data) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .ok_or_else(|| {
            invalid(
                &param,
                "Images must be base64 data URLs (data:image/png;base64,...).",
            )
        })?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| invalid(&param, "Image data URLs must be base64-encoded."))?;
    let format = match mime.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(invalid(
                &param,
                format!("Bedrock takes png, jpeg, gif and webp images, not '{other}'."),
            ))
        }
    };
    Ok(Block::Image(Image {
        format,
        source: ImageSource { bytes: data },
    }))
}

/// A tool-call id as Converse accepts it (`[a-zA-Z0-9_-]+`, at most 64 characters).
fn tool_use_id(id: &str) -> Cow<'_, str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.len() <= 64 && id.chars().all(allowed) {
        return Cow::Borrowed(id);
    }
    let id: String = id
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .take(64)
        .collect();
    Cow::Owned(if id.is_empty() { "call".into() } else { id })
}

fn assistant_blocks<'a>(
    message: &'a Value,
    at: MessageAt,
    blocks: &mut Vec<Block<'a>>,
) -> Result<(), GatewayError> {
    let content = message.get("content").unwrap_or(&Value::Null);
    text_blocks(content, at, blocks)?;
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (j, call) in calls.iter().enumerate() {
        let missing = |field: &str| {
            let param = format!("{at}.tool_calls[{j}].{field}");
            invalid(&param, format!("Missing required parameter: '{param}'."))
        };
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("id"))?;
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| missing("function.name"))?;
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let input: Value = if is_blank(arguments) {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                invalid(
                    format!("{at}.tool_calls[{j}].function.arguments"),
                    format!("Tool-call arguments must be JSON for Bedrock: {e}."),
                )
            })?
        };
        blocks.push(Block::ToolUse(ToolUse {
            input,
            name,
            tool_use_id: tool_use_id(id),
        }));
    }
    Ok(())
}

fn tool_result(message: &Value, at: MessageAt) -> Result<Block<'_>, GatewayError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut content = Vec::new();
    match message.get("content").unwrap_or(&Value::Null) {
        // A string result goes as it is, even blank: the call must get its result.
        Value::String(s) => content.push(Block::Text(s)),
        other => {
            text_blocks(other, at, &mut content)?;
            // Tool results carry no cache checkpoints inside them.
            content.retain(|b| *b != CACHE_POINT);
        }
    }
    Ok(Block::ToolResult(ToolResult {
        content,
        tool_use_id: tool_use_id(id),
    }))
}

fn inference_config(req: &Map<String, Value>) -> InferenceConfig<'_> {
    let stop_sequences = match req.get("stop") {
        Some(Value::String(s)) => Some(StopSequences::One([s])),
        Some(Value::Array(stops)) if !stops.is_empty() => Some(StopSequences::List(stops)),
        _ => None,
    };
    InferenceConfig {
        max_tokens: ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| req.get(*k).and_then(Value::as_u64)),
        stop_sequences,
        temperature: req.get("temperature").filter(|v| v.is_number()),
        top_p: req.get("top_p").filter(|v| v.is_number()),
    }
}

fn tool_config(req: &Map<String, Value>) -> Result<Option<ToolConfig<'_>>, GatewayError> {
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok(None),
            "auto" => Some(ToolChoice::Auto(Empty {})),
            "required" => Some(ToolChoice::Any(Empty {})),
            other => {
                return Err(invalid(
                    "tool_choice",
                    format!(
                        "Invalid 'tool_choice': '{other}'; use none, auto, required or a function."
                    ),
                ))
            }
        },
        Some(choice) => {
            let name = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| choice.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| {
                    invalid(
                        "tool_choice",
                        "Bedrock takes a tool_choice of none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}.",
                    )
                })?;
            Some(ToolChoice::Tool(NamedTool { name }))
        }
    };
    let tools = req
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty());
    let Some(tools) = tools else {
        if choice
            .as_ref()
            .is_some_and(|c| !matches!(c, ToolChoice::Auto(_)))
        {
            return Err(invalid(
                "tool_choice",
                "'tool_choice' requires 'tools' to choose from.",
            ));
        }
        return Ok(None);
    };
    let mut specs = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        specs.push(Tool::ToolSpec(tool_spec(tool, i)?));
        if marked(tool, || format!("tools[{i}]"))? {
            specs.push(Tool::CachePoint(CachePoint { r#type: "default" }));
        }
    }
    Ok(Some(ToolConfig {
        tool_choice: choice,
        tools: specs,
    }))
}

fn tool_spec(tool: &Value, i: usize) -> Result<ToolSpec<'_>, GatewayError> {
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "function" {
        return Err(invalid(
            format!("tools[{i}].type"),
            format!("Bedrock supports function tools only, not '{kind}'."),
        ));
    }
    let function = tool.get("function").and_then(Value::as_object);
    let name = function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            let param = format!("tools[{i}].function.name");
            invalid(&param, format!("Missing required parameter: '{param}'."))
        })?;
    let schema = match function
        .and_then(|f| f.get("parameters"))
        .filter(|p| p.is_object())
    {
        Some(schema) => Cow::Borrowed(schema),
        None => Cow::Owned(serde_json::json!({"type": "object", "properties": {}})),
    };
    Ok(ToolSpec {
        description: function
            .and_then(|f| f.get("description"))
            .and_then(Value::as_str)
            .filter(|d| !is_blank(d)),
        input_schema: InputSchema { json: schema },
        name,
    })
}

fn output_config(req: &Map<String, Value>) -> Result<Option<OutputConfig<'_>>, GatewayError> {
    let Some(format) = req.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    invalid(
                        "response_format.json_schema",
                        "Missing required parameter: 'response_format.json_schema'.",
                    )
                })?;
            let schema = match spec.get("schema") {
                Some(schema) => schema.to_string(),
                None => r#"{"type":"object"}"#.to_string(),
            };
            Ok(Some(OutputConfig {
                text_format: TextFormat {
                    structure: Structure {
                        json_schema: JsonSchema {
                            description: spec.get("description").and_then(Value::as_str),
                            name: spec
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("response"),
                            schema,
                        },
                    },
                    r#type: "json_schema",
                },
            }))
        }
        Some("json_object") => Err(invalid(
            "response_format",
            "Bedrock has no JSON mode without a schema: send response_format {\"type\": \"json_schema\", \"json_schema\": {...}}.",
        )),
        other => Err(invalid(
            "response_format.type",
            format!(
                "Invalid 'response_format.type': {}; use text or json_schema.",
                other.unwrap_or("(none)")
            ),
        )),
    }
}
