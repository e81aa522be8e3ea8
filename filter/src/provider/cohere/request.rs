//! The client's OpenAI chat and embeddings bodies → Cohere v2 `chat` and `embed` bodies (the
//! mapping is in the module documentation of `cohere.rs`). The body is written straight from
//! the client's parsed body: typed members that borrow its strings and values, serialized once,
//! no second JSON tree built.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{invalid, GatewayError};
use crate::provider::Attempt;

static NULL: Value = Value::Null;

/// The content of a message sent without any.
static EMPTY_TEXT: Value = Value::String(String::new());

/// `v.a.b.c`, or `null` when any step is missing.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .unwrap_or(&NULL)
}

/// A parameter that is present and not `null`.
fn param<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A Cohere v2 chat body (https://docs.cohere.com/reference/chat); members the request does not
/// use are left out. Numbers the client sent are passed as it wrote them.
#[derive(Serialize)]
pub(super) struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    strict_tools: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    stream: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum Message<'a> {
    System {
        content: Content<'a>,
    },
    User {
        content: Content<'a>,
    },
    Assistant {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<Content<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall<'a>>,
    },
    Tool {
        /// As the client sent it (Cohere refuses a missing one with its own message).
        tool_call_id: &'a Value,
        content: Content<'a>,
    },
}

/// A message's content: Cohere v2 takes a string or content parts, as OpenAI does.
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    /// A string, or any other value but a list, as the client sent it.
    AsSent(&'a Value),
    Parts(Vec<Part<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: &'a Value },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// An assistant's tool call, in the same shape in both APIs.
#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CalledFunction<'a>,
}

#[derive(Serialize)]
struct CalledFunction<'a> {
    name: &'a str,
    arguments: Cow<'a, str>,
}

/// A Cohere v2 `ToolV2`: the OpenAI tool's shape, `parameters` required.
#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDefinition<'a>,
}

#[derive(Serialize)]
struct FunctionDefinition<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: Parameters<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Parameters<'a> {
    Schema(&'a Value),
    /// `{"type": "object", "properties": {}}`, for a tool the client declared without any.
    NoParameters {
        #[serde(rename = "type")]
        kind: &'static str,
        properties: NoProperties,
    },
}

/// Serializes as `{}`.
#[derive(Serialize)]
struct NoProperties {}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<&'a Value>,
}

/// The Cohere chat body for the client's OpenAI chat body.
pub(super) fn chat_body<'a>(
    attempt: &Attempt<'a>,
    req: &'a Map<String, Value>,
) -> Result<ChatBody<'a>, GatewayError> {
    for legacy in ["functions", "function_call"] {
        if param(req, legacy).is_some() {
            return Err(invalid(
                legacy,
                format!("'{legacy}' is deprecated and not supported by Cohere; use 'tools'."),
            ));
        }
    }
    let asks_audio = param(req, "modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x == "audio"));
    if asks_audio || param(req, "audio").is_some() {
        return Err(invalid(
            if asks_audio { "modalities" } else { "audio" },
            "Cohere does not produce audio; ask for text only.",
        ));
    }

    let messages = param(req, "messages")
        .and_then(Value::as_array)
        .ok_or(GatewayError::MissingParameter("messages"))?
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;

    let mut strict = false;
    let mut tools = match param(req, "tools") {
        Some(Value::Array(tools)) => tools
            .iter()
            .enumerate()
            .map(|(i, t)| tool(i, t, &mut strict))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let tool_choice = match param(req, "tool_choice") {
        None => None,
        Some(Value::String(c)) if c == "auto" || (c == "none" && tools.is_empty()) => None,
        Some(Value::String(c)) if c == "none" => Some("NONE"),
        Some(Value::String(c)) if c == "required" => Some("REQUIRED"),
        Some(choice @ Value::Object(_)) if at(choice, &["type"]) == "function" => {
            let name = at(choice, &["function", "name"]).as_str().unwrap_or_default();
            tools.retain(|t| t.function.name == name);
            if tools.is_empty() {
                return Err(invalid(
                    "tool_choice",
                    format!("'tool_choice' names the function '{name}', which is not in 'tools'."),
                ));
            }
            Some("REQUIRED")
        }
        Some(other) => {
            return Err(invalid(
                "tool_choice",
                format!(
                    "Cohere supports 'tool_choice' \"auto\", \"none\", \"required\" or a named function, not {other}."
                ),
            ))
        }
    };

    let temperature = param(req, "temperature");
    if let Some(t) = temperature.filter(|t| t.as_f64().is_some_and(|t| t > 1.0)) {
        return Err(invalid(
            "temperature",
            format!("Cohere accepts a 'temperature' between 0 and 1, not {t}."),
        ));
    }
    let seed = param(req, "seed");
    if seed.and_then(Value::as_i64).is_some_and(|s| s < 0) {
        return Err(invalid(
            "seed",
            "Cohere accepts only a non-negative 'seed'.",
        ));
    }
    let stop_sequences = match param(req, "stop") {
        Some(s @ Value::String(_)) => vec![s],
        Some(Value::Array(s)) => s.iter().collect(),
        _ => Vec::new(),
    };
    Ok(ChatBody {
        model: attempt.upstream_model,
        messages,
        strict_tools: strict && !tools.is_empty(),
        tools,
        tool_choice,
        max_tokens: param(req, "max_completion_tokens").or(param(req, "max_tokens")),
        temperature,
        p: param(req, "top_p")
            .and_then(Value::as_f64)
            .map(|p| p.clamp(0.01, 0.99)),
        stop_sequences,
        seed,
        frequency_penalty: penalty(req, "frequency_penalty")?,
        presence_penalty: penalty(req, "presence_penalty")?,
        response_format: response_format(req)?,
        stream: attempt.stream,
    })
}

/// A penalty, refused outside Cohere's range [0, 1].
fn penalty<'a>(
    req: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a Value>, GatewayError> {
    match param(req, key) {
        Some(v) if !v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) => Err(invalid(
            key,
            format!("Cohere accepts a '{key}' between 0 and 1, not {v}."),
        )),
        v => Ok(v),
    }
}

fn response_format(req: &Map<String, Value>) -> Result<Option<ResponseFormat<'_>>, GatewayError> {
    let Some(format) = param(req, "response_format") else {
        return Ok(None);
    };
    let json_schema = match at(format, &["type"]).as_str() {
        Some("text") => return Ok(None),
        Some("json_object") => None,
        Some("json_schema") => {
            Some(at(format, &["json_schema", "schema"])).filter(|s| s.is_object())
        }
        _ => {
            return Err(invalid(
                "response_format.type",
                "Cohere supports 'response_format' types text, json_object and json_schema.",
            ))
        }
    };
    Ok(Some(ResponseFormat {
        kind: "json_object",
        json_schema,
    }))
}

/// The `i`th message. Error paths (`messages[i]...`) are written only for an error.
fn message(i: usize, m: &Value) -> Result<Message<'_>, GatewayError> {
    let content = at(m, &["content"]);
    match at(m, &["role"]).as_str().unwrap_or_default() {
        "system" | "developer" => Ok(Message::System {
            content: text_content(content, i, false)?,
        }),
        "user" => Ok(Message::User {
            content: user_content(content, i)?,
        }),
        "assistant" => assistant_message(m, i),
        "tool" => Ok(Message::Tool {
            tool_call_id: at(m, &["tool_call_id"]),
            content: text_content(content, i, false)?,
        }),
        "function" => Err(invalid(
            format!("messages[{i}].role"),
            "The deprecated 'function' role is not supported by Cohere; use 'tool' messages.",
        )),
        other => Err(invalid(
            format!("messages[{i}].role"),
            format!("Cohere does not support the role '{other}'."),
        )),
    }
}

/// Content that may only hold text: a string stays a string, parts become Cohere text parts.
/// `refusal` parts (assistant messages) are text the assistant said.
fn text_content(content: &Value, i: usize, refusals: bool) -> Result<Content<'_>, GatewayError> {
    match content {
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match at(part, &["type"]).as_str() {
                Some("text") => Ok(Part::Text {
                    text: at(part, &["text"]),
                }),
                Some("refusal") if refusals => Ok(Part::Text {
                    text: at(part, &["refusal"]),
                }),
                other => Err(unsupported_part(i, j, other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Content::Parts),
        Value::Null => Ok(Content::AsSent(&EMPTY_TEXT)),
        other => Ok(Content::AsSent(other)),
    }
}

fn user_content(content: &Value, i: usize) -> Result<Content<'_>, GatewayError> {
    let Value::Array(parts) = content else {
        return text_content(content, i, false);
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| match at(part, &["type"]).as_str() {
            Some("text") => Ok(Part::Text {
                text: at(part, &["text"]),
            }),
            Some("image_url") => {
                let image = at(part, &["image_url"]);
                let url = match image {
                    Value::String(url) => Some(url.as_str()),
                    _ => at(image, &["url"]).as_str(),
                };
                let Some(url) = url else {
                    return Err(invalid(
                        format!("messages[{i}].content[{j}].image_url.url"),
                        "An image part needs 'image_url.url'.",
                    ));
                };
                Ok(Part::ImageUrl {
                    image_url: ImageUrl {
                        url,
                        detail: at(image, &["detail"]).as_str(),
                    },
                })
            }
            other => Err(unsupported_part(i, j, other)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Content::Parts)
}

fn unsupported_part(i: usize, j: usize, kind: Option<&str>) -> GatewayError {
    invalid(
        format!("messages[{i}].content[{j}].type"),
        format!(
            "Cohere does not accept a content part of type '{}' here.",
            kind.unwrap_or("(none)")
        ),
    )
}

fn assistant_message(m: &Value, i: usize) -> Result<Message<'_>, GatewayError> {
    let content = at(m, &["content"]);
    let has_content = match content {
        Value::String(s) => !s.is_empty(),
        Value::Array(parts) => !parts.is_empty(),
        _ => false,
    };
    let content = if has_content {
        Some(text_content(content, i, true)?)
    } else {
        None
    };
    let tool_calls = match at(m, &["tool_calls"]) {
        Value::Array(calls) => calls
            .iter()
            .enumerate()
            .map(|(k, call)| tool_call(call, i, k))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok(Message::Assistant {
        content,
        tool_calls,
    })
}

/// The `k`th tool call of the `i`th message; arguments that are not a string are sent as their
/// JSON text, missing ones as `{}`.
fn tool_call(call: &Value, i: usize, k: usize) -> Result<ToolCall<'_>, GatewayError> {
    let id = at(call, &["id"]).as_str();
    let name = at(call, &["function", "name"]).as_str();
    let (Some(id), Some(name), "function") =
        (id, name, at(call, &["type"]).as_str().unwrap_or("function"))
    else {
        return Err(invalid(
            format!("messages[{i}].tool_calls[{k}]"),
            "A tool call needs an 'id' and a function 'name'; Cohere takes function calls only.",
        ));
    };
    let arguments = match at(call, &["function", "arguments"]) {
        Value::String(a) => Cow::Borrowed(a.as_str()),
        Value::Null => Cow::Borrowed("{}"),
        other => Cow::Owned(other.to_string()),
    };
    Ok(ToolCall {
        id,
        kind: "function",
        function: CalledFunction { name, arguments },
    })
}

/// One OpenAI tool → Cohere v2 `ToolV2`; `strict` is set when the tool asks for strict mode.
fn tool<'a>(i: usize, t: &'a Value, strict: &mut bool) -> Result<Tool<'a>, GatewayError> {
    if at(t, &["type"]) != "function" {
        return Err(invalid(
            format!("tools[{i}].type"),
            "Cohere supports tools of type 'function' only.",
        ));
    }
    let f = at(t, &["function"]);
    let Some(name) = at(f, &["name"]).as_str() else {
        return Err(GatewayError::InvalidParameter {
            param: format!("tools[{i}].function.name"),
            message: format!("Missing required parameter: 'tools[{i}].function.name'."),
        });
    };
    let parameters = match at(f, &["parameters"]) {
        p @ Value::Object(_) => Parameters::Schema(p),
        _ => Parameters::NoParameters {
            kind: "object",
            properties: NoProperties {},
        },
    };
    if at(f, &["strict"]) == true {
        *strict = true;
    }
    Ok(Tool {
        kind: "function",
        function: FunctionDefinition {
            name,
            description: at(f, &["description"]).as_str(),
            parameters,
        },
    })
}

/// A Cohere v2 embed body (https://docs.cohere.com/reference/embed).
#[derive(Serialize)]
pub(super) struct EmbedBody<'a> {
    model: &'a str,
    texts: Vec<&'a str>,
    input_type: &'static str,
    embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<&'a Value>,
}

/// The Cohere embed body for the client's OpenAI embeddings body.
pub(super) fn embed_body<'a>(
    attempt: &Attempt<'a>,
    req: &'a Map<String, Value>,
) -> Result<EmbedBody<'a>, GatewayError> {
    let token_arrays = || {
        invalid(
            "input",
            "Cohere embeds text only: send 'input' as a string or an array of strings, not tokens.",
        )
    };
    let texts = match param(req, "input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(token_arrays)?,
        Some(_) => return Err(token_arrays()),
        None => return Err(GatewayError::MissingParameter("input")),
    };
    Ok(EmbedBody {
        model: attempt.upstream_model,
        texts,
        input_type: "search_document",
        embedding_types: ["float"],
        output_dimension: param(req, "dimensions"),
    })
}
