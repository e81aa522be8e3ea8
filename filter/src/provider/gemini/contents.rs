//! The client's OpenAI `messages` → Gemini's `contents` and the parts of its system
//! instruction (the mapping is in the module documentation of `gemini.rs`): typed parts that
//! borrow the client's strings, members in alphabetical order as in [`super::request`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::FOREIGN_SIGNATURE;
use crate::error::{invalid, GatewayError};

/// A `Content` of the conversation.
#[derive(Serialize)]
pub(super) struct Turn<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

/// A `Part`: one kind of data, and the signature Gemini 3 wants on a model turn's first call.
#[derive(Serialize)]
pub(super) struct Part<'a> {
    #[serde(flatten)]
    data: PartData<'a>,
    #[serde(rename = "thoughtSignature", skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum PartData<'a> {
    FileData(FileData<'a>),
    FunctionCall(FunctionCall<'a>),
    FunctionResponse(FunctionResponse<'a>),
    InlineData(Blob<'a>),
    Text(&'a str),
}

impl<'a> Part<'a> {
    fn new(data: PartData<'a>) -> Self {
        Self {
            data,
            thought_signature: None,
        }
    }

    pub(super) fn text(text: &'a str) -> Self {
        Self::new(PartData::Text(text))
    }

    fn inline(mime_type: &'a str, data: &'a str) -> Self {
        Self::new(PartData::InlineData(Blob { data, mime_type }))
    }
}

/// Base64 data sent inline.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    data: &'a str,
    mime_type: &'a str,
}

/// A file Gemini fetches itself.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    file_uri: &'a str,
    mime_type: &'static str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    /// The client's arguments string, parsed (Gemini takes a JSON object).
    args: Value,
    name: &'a str,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: ToolOutput<'a>,
}

/// `{"content": ...}`: a tool's result, as the JSON its text holds or else as the text.
#[derive(Serialize)]
struct ToolOutput<'a> {
    content: ToolOutputContent<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolOutputContent<'a> {
    Json(Value),
    Text(Cow<'a, str>),
}

/// `messages[i]`, spelled out only when an error names it.
#[derive(Clone, Copy)]
struct MessageAt(usize);

impl MessageAt {
    fn part(self, j: usize) -> PartAt {
        PartAt(self, j)
    }
}

impl fmt::Display for MessageAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "messages[{}]", self.0)
    }
}

/// `messages[i].content[j]`, likewise.
#[derive(Clone, Copy)]
struct PartAt(MessageAt, usize);

impl fmt::Display for PartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.content[{}]", self.0, self.1)
    }
}

/// The system parts and the `contents` of a conversation.
pub(super) fn convert_messages(
    messages: &[Value],
) -> Result<(Vec<Part<'_>>, Vec<Turn<'_>>), GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    // Tool-call id → function name, from the assistant messages seen so far.
    let mut call_names: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, message) in messages.iter().enumerate() {
        let at = MessageAt(i);
        let content = message.get("content");
        match message.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => system_parts(content, at, &mut system)?,
            "user" => push_turn(&mut turns, "user", user_parts(content, at)?),
            "assistant" => {
                let parts = assistant_parts(message, at, &mut call_names)?;
                push_turn(&mut turns, "model", parts);
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let name = call_names.get(id).copied().ok_or_else(|| {
                    invalid(
                        format!("{at}.tool_call_id"),
                        format!(
                            "No earlier assistant message has a tool call with id '{id}'; Gemini needs the function's name for each tool result."
                        ),
                    )
                })?;
                let part = function_response(name, content, at)?;
                push_turn(&mut turns, "user", vec![part]);
            }
            "function" => {
                let name = message
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        invalid(
                            format!("{at}.name"),
                            format!("Missing required parameter: '{at}.name'."),
                        )
                    })?;
                let part = function_response(name, content, at)?;
                push_turn(&mut turns, "user", vec![part]);
            }
            other => {
                return Err(invalid(
                    format!("{at}.role"),
                    format!("Invalid value: '{other}'."),
                ))
            }
        }
    }
    // Merged turns first: the placeholder signature goes on the first call of each model turn.
    for turn in turns.iter_mut().filter(|t| t.role == "model") {
        let first_call = turn
            .parts
            .iter_mut()
            .find(|p| matches!(p.data, PartData::FunctionCall(_)));
        if let Some(first_call) = first_call {
            first_call.thought_signature = Some(FOREIGN_SIGNATURE);
        }
    }
    Ok((system, turns))
}

/// Appends parts to the conversation, merging them into the last turn when it has the same role.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, mut parts: Vec<Part<'a>>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.parts.append(&mut parts),
        _ => turns.push(Turn { parts, role }),
    }
}

/// A text part, unless the text is empty (Gemini refuses empty texts).
fn push_text<'a>(parts: &mut Vec<Part<'a>>, text: &'a str) {
    if !text.is_empty() {
        parts.push(Part::text(text));
    }
}

/// The text of a content that is not a list of parts ("" when absent or null).
fn string_content(content: Option<&Value>, at: MessageAt) -> Result<&str, GatewayError> {
    match content {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(
            format!("{at}.content"),
            "The content must be a string or an array of content parts.",
        )),
    }
}

/// The text of a tool result made of text parts only: borrowed unless parts are joined.
fn content_text(content: Option<&Value>, at: MessageAt) -> Result<Cow<'_, str>, GatewayError> {
    let Some(Value::Array(parts)) = content else {
        return string_content(content, at).map(Cow::Borrowed);
    };
    let mut text = Cow::Borrowed("");
    for (j, part) in parts.iter().enumerate() {
        let piece = match part.get("type").and_then(Value::as_str) {
            Some("text") => part.get("text").and_then(Value::as_str).unwrap_or(""),
            other => {
                return Err(invalid(
                    format!("{}.type", at.part(j)),
                    format!(
                        "Content part type '{}' is not allowed here; only text is.",
                        other.unwrap_or("(none)")
                    ),
                ))
            }
        };
        if text.is_empty() {
            text = Cow::Borrowed(piece);
        } else {
            text.to_mut().push_str(piece);
        }
    }
    Ok(text)
}

/// System and developer messages: text parts, one per OpenAI part.
fn system_parts<'a>(
    content: Option<&'a Value>,
    at: MessageAt,
    system: &mut Vec<Part<'a>>,
) -> Result<(), GatewayError> {
    let Some(Value::Array(parts)) = content else {
        push_text(system, string_content(content, at)?);
        return Ok(());
    };
    for (j, part) in parts.iter().enumerate() {
        if part.get("type").and_then(Value::as_str) != Some("text") {
            return Err(invalid(
                format!("{}.type", at.part(j)),
                "System and developer messages may hold only text parts.",
            ));
        }
        push_text(
            system,
            part.get("text").and_then(Value::as_str).unwrap_or(""),
        );
    }
    Ok(())
}

fn user_parts(content: Option<&Value>, at: MessageAt) -> Result<Vec<Part<'_>>, GatewayError> {
    let Some(Value::Array(parts)) = content else {
        let mut out = Vec::with_capacity(1);
        push_text(&mut out, string_content(content, at)?);
        return Ok(out);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = at.part(j);
        match part.get("type").and_then(Value::as_str) {
            Some("text") => push_text(
                &mut out,
                part.get("text").and_then(Value::as_str).unwrap_or(""),
            ),
            Some("image_url") => {
                let url = match part.get("image_url") {
                    Some(Value::String(url)) => url,
                    _ => required_str(part, "image_url", "url", at)?,
                };
                out.push(image_part(url, at)?);
            }
            Some("input_audio") => {
                let data = required_str(part, "input_audio", "data", at)?;
                let mime_type = match required_str(part, "input_audio", "format", at)? {
                    "wav" => "audio/wav",
                    "mp3" => "audio/mp3",
                    other => {
                        return Err(invalid(
                            format!("{at}.input_audio.format"),
                            format!("Audio format '{other}' is not supported; use wav or mp3."),
                        ))
                    }
                };
                out.push(Part::inline(mime_type, data));
            }
            Some("file") => {
                let file_data = part
                    .get("file")
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(
                            format!("{at}.file"),
                            "Gemini cannot read OpenAI file ids; send the file inline as 'file_data' (a base64 data: URL).",
                        )
                    })?;
                let (mime_type, data) =
                    parse_data_url(file_data, || format!("{at}.file.file_data"))?;
                out.push(Part::inline(mime_type, data));
            }
            other => {
                return Err(invalid(
                    format!("{at}.type"),
                    format!(
                        "Content part type '{}' is not supported by the Gemini translation.",
                        other.unwrap_or("(none)")
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// `part.<key>.<field>`, a string the part must have.
fn required_str<'a>(
    part: &'a Value,
    key: &str,
    field: &str,
    at: PartAt,
) -> Result<&'a str, GatewayError> {
    part.get(key)
        .and_then(|v| v.get(field))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            let param = format!("{at}.{key}.{field}");
            invalid(&param, format!("Missing required parameter: '{param}'."))
        })
}

/// `data:<mime>[;params];base64,<data>` → (mime, data); `param` names the URL when it is not one.
fn parse_data_url(url: &str, param: impl FnOnce() -> String) -> Result<(&str, &str), GatewayError> {
    let parsed = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)))
        .map(|(meta, data)| (meta.split(';').next().unwrap_or(""), data))
        .filter(|(mime, data)| mime.contains('/') && !data.is_empty());
    parsed.ok_or_else(|| {
        invalid(
            param(),
            "Expected a base64 data URL: data:<media type>;base64,<data>.",
        )
    })
}

/// The image types Gemini reads, by the extension of a URL's path.
const IMAGE_EXTENSIONS: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("webp", "image/webp"),
    ("heic", "image/heic"),
    ("heif", "image/heif"),
];

fn image_part(url: &str, at: PartAt) -> Result<Part<'_>, GatewayError> {
    let param = || format!("{at}.image_url.url");
    if url.starts_with("data:") {
        let (mime_type, data) = parse_data_url(url, param)?;
        return Ok(Part::inline(mime_type, data));
    }
    let has_scheme = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    };
    if !(has_scheme("https://") || has_scheme("http://")) {
        return Err(invalid(
            param(),
            "An image must be a base64 data: URL or an http(s) URL.",
        ));
    }
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let mime_type = IMAGE_EXTENSIONS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(extension))
        .map(|(_, mime_type)| *mime_type)
        .ok_or_else(|| {
            invalid(
                param(),
                "Gemini needs the type of an image given by URL, and this URL does not end in .png, .jpg, .jpeg, .webp, .heic or .heif; send the image as a base64 data: URL instead.",
            )
        })?;
    Ok(Part::new(PartData::FileData(FileData {
        file_uri: url,
        mime_type,
    })))
}

fn assistant_parts<'a>(
    message: &'a Value,
    at: MessageAt,
    call_names: &mut BTreeMap<&'a str, &'a str>,
) -> Result<Vec<Part<'a>>, GatewayError> {
    let mut out = Vec::new();
    match message.get("content") {
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let text = match part.get("type").and_then(Value::as_str) {
                    Some("text") => part.get("text"),
                    Some("refusal") => part.get("refusal"),
                    other => {
                        return Err(invalid(
                            format!("{}.type", at.part(j)),
                            format!(
                                "Content part type '{}' is not allowed in an assistant message.",
                                other.unwrap_or("(none)")
                            ),
                        ))
                    }
                };
                push_text(&mut out, text.and_then(Value::as_str).unwrap_or(""));
            }
        }
        other => push_text(&mut out, string_content(other, at)?),
    }
    if let Some(Value::Array(calls)) = message.get("tool_calls") {
        for (k, call) in calls.iter().enumerate() {
            if let Some(kind) = call.get("type").and_then(Value::as_str) {
                if kind != "function" {
                    return Err(invalid(
                        format!("{at}.tool_calls[{k}].type"),
                        format!("Tool call type '{kind}' is not supported; only 'function' is."),
                    ));
                }
            }
            let function = call.get("function");
            let name = function_name(function, || format!("{at}.tool_calls[{k}].function"))?;
            let args = function_args(function, || {
                format!("{at}.tool_calls[{k}].function.arguments")
            })?;
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                call_names.insert(id, name);
            }
            out.push(Part::new(PartData::FunctionCall(FunctionCall {
                args,
                name,
            })));
        }
    }
    if let Some(function) = message.get("function_call").filter(|f| !f.is_null()) {
        let name = function_name(Some(function), || format!("{at}.function_call"))?;
        let args = function_args(Some(function), || format!("{at}.function_call.arguments"))?;
        out.push(Part::new(PartData::FunctionCall(FunctionCall {
            args,
            name,
        })));
    }
    Ok(out)
}

/// The name of a function (`function` is at the path `at` gives).
pub(super) fn function_name(
    function: Option<&Value>,
    at: impl FnOnce() -> String,
) -> Result<&str, GatewayError> {
    function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            let param = format!("{}.name", at());
            invalid(&param, format!("Missing required parameter: '{param}'."))
        })
}

/// The arguments string of a call, parsed: Gemini takes them as a JSON object.
fn function_args(
    function: Option<&Value>,
    param: impl FnOnce() -> String,
) -> Result<Value, GatewayError> {
    let arguments = match function.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => return Ok(Value::Object(Map::new())),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Value::Object(Map::new())),
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid(param(), "The arguments must be a string of JSON.")),
    };
    match serde_json::from_str::<Value>(arguments) {
        Ok(args @ Value::Object(_)) => Ok(args),
        Ok(_) => Err(invalid(
            param(),
            "Gemini needs the arguments of a function call to be a JSON object.",
        )),
        Err(e) => Err(invalid(
            param(),
            format!("The arguments of this function call are not valid JSON: {e}."),
        )),
    }
}

fn function_response<'a>(
    name: &'a str,
    content: Option<&'a Value>,
    at: MessageAt,
) -> Result<Part<'a>, GatewayError> {
    let text = content_text(content, at)?;
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(json) => ToolOutputContent::Json(json),
        Err(_) => ToolOutputContent::Text(text),
    };
    Ok(Part::new(PartData::FunctionResponse(FunctionResponse {
        name,
        response: ToolOutput { content },
    })))
}
