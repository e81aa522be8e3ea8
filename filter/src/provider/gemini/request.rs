//! The client's OpenAI chat and embeddings bodies → Gemini's `GenerateContentRequest` and
//! `BatchEmbedContentsRequest` (the mapping is in the module documentation of `gemini.rs`).
//! The bodies are written straight from the client's parsed body: typed members that borrow
//! its strings ([`contents`](super::contents) for the conversation), serialized once, no
//! second JSON tree built. Tool and response schemas are the exception: [`gemini_schema`]
//! rewrites them member by member into a `Value`.
//!
//! Members are declared in alphabetical order, the order a `serde_json::Map` writes keys in:
//! the bytes sent are those of the JSON tree these types replaced.

use serde::Serialize;
use serde_json::{Map, Value};

use super::contents::{convert_messages, function_name, Part, Turn};
use super::gemini_schema;
use crate::error::{invalid, GatewayError};

/// A `GenerateContentRequest` (https://ai.google.dev/api/generate-content#request-body);
/// members the request does not use are left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentBody<'a> {
    contents: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    /// One `Tool` holding every function declaration.
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<[Tool<'a>; 1]>,
}

/// The system instruction: a `Content` without a role.
#[derive(Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<Part<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
struct FunctionDeclaration<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    name: &'a str,
    /// The client's schema cut down to Gemini's `Schema`; none for an object without properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<&'a str>,
    mode: CallingMode,
}

#[derive(Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum CallingMode {
    Any,
    Auto,
    None,
}

/// `generationConfig`; the client's sampling values pass through as they are (Gemini checks
/// them).
#[derive(Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<&'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Value>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
}

/// A `batchEmbedContents` body
/// (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents).
#[derive(Serialize)]
struct BatchEmbedBody<'a> {
    requests: Vec<EmbedRequest<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedRequest<'a> {
    content: EmbedContent<'a>,
    /// `models/{model}`.
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<&'a Value>,
}

#[derive(Serialize)]
struct EmbedContent<'a> {
    parts: [Part<'a>; 1],
}

fn serialize(body: &impl Serialize) -> Result<Vec<u8>, GatewayError> {
    serde_json::to_vec(body).map_err(|e| GatewayError::Misconfigured(e.to_string()))
}

fn present<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
}

// ---------------------------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------------------------

/// The `generateContent` body for the client's OpenAI chat body, serialized.
pub(super) fn generate_content_request(req: &Map<String, Value>) -> Result<Vec<u8>, GatewayError> {
    serialize(&generate_content_body(req)?)
}

fn generate_content_body(
    req: &Map<String, Value>,
) -> Result<GenerateContentBody<'_>, GatewayError> {
    refuse_unsupported(req)?;
    let messages = match req.get("messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(GatewayError::MissingParameter("messages")),
    };
    let (system, contents) = convert_messages(messages)?;
    let declarations = function_declarations(req.get("tools"))?;
    let tool_config = tool_config(req.get("tool_choice"), &declarations)?;
    Ok(GenerateContentBody {
        contents,
        generation_config: generation_config(req)?,
        system_instruction: (!system.is_empty()).then_some(SystemInstruction { parts: system }),
        tool_config,
        tools: (!declarations.is_empty()).then_some([Tool {
            function_declarations: declarations,
        }]),
    })
}

/// Parameters whose meaning Gemini cannot honour: a clear 400 rather than a different answer.
fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), GatewayError> {
    if present(req, "logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(invalid(
            "logprobs",
            "The Gemini translation of this gateway does not return log probabilities; remove 'logprobs'.",
        ));
    }
    if present(req, "top_logprobs").is_some() {
        return Err(invalid(
            "top_logprobs",
            "The Gemini translation of this gateway does not return log probabilities; remove 'top_logprobs'.",
        ));
    }
    if present(req, "logit_bias")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(invalid(
            "logit_bias",
            "Gemini has no token bias; remove 'logit_bias'.",
        ));
    }
    let wants_audio = present(req, "modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x == "audio"));
    if wants_audio || present(req, "audio").is_some() {
        return Err(invalid(
            "modalities",
            "Audio output is not available through the Gemini translation of this gateway.",
        ));
    }
    if present(req, "web_search_options").is_some() {
        return Err(invalid(
            "web_search_options",
            "Web search is not available through the Gemini translation of this gateway.",
        ));
    }
    for legacy in ["functions", "function_call"] {
        if present(req, legacy).is_some() {
            return Err(invalid(
                legacy,
                "The deprecated 'functions' and 'function_call' parameters are not supported; use 'tools' and 'tool_choice'.",
            ));
        }
    }
    Ok(())
}

fn function_declarations(
    tools: Option<&Value>,
) -> Result<Vec<FunctionDeclaration<'_>>, GatewayError> {
    let Some(Value::Array(tools)) = tools else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let kind = tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            return Err(invalid(
                format!("tools[{i}].type"),
                format!("Tool type '{kind}' is not supported by the Gemini translation; only 'function' is."),
            ));
        }
        let function = tool.get("function");
        let name = function_name(function, || format!("tools[{i}].function"))?;
        let parameters = match function
            .and_then(|f| f.get("parameters"))
            .filter(|p| !p.is_null())
        {
            Some(schema) => gemini_schema(schema)
                .map_err(|m| invalid(format!("tools[{i}].function.parameters"), m))?,
            None => None,
        };
        out.push(FunctionDeclaration {
            description: function
                .and_then(|f| f.get("description"))
                .and_then(Value::as_str),
            name,
            parameters,
        });
    }
    Ok(out)
}

fn tool_config<'a>(
    choice: Option<&'a Value>,
    declared: &[FunctionDeclaration<'_>],
) -> Result<Option<ToolConfig<'a>>, GatewayError> {
    let (mode, names): (CallingMode, Vec<&str>) = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => (CallingMode::Auto, vec![]),
            "none" => (CallingMode::None, vec![]),
            "required" => (CallingMode::Any, vec![]),
            other => {
                return Err(invalid(
                    "tool_choice",
                    format!(
                        "Invalid value: '{other}'. Supported values are: none, auto, required."
                    ),
                ))
            }
        },
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = function_name(o.get("function"), || "tool_choice.function".into())?;
                (CallingMode::Any, vec![name])
            }
            Some("allowed_tools") => {
                let allowed = o.get("allowed_tools");
                let mode = allowed.and_then(|a| a.get("mode")).and_then(Value::as_str);
                if mode != Some("required") {
                    return Err(invalid(
                        "tool_choice.allowed_tools.mode",
                        "Gemini can limit the callable functions only when a call is required; use mode 'required'.",
                    ));
                }
                let names = allowed
                    .and_then(|a| a.get("tools"))
                    .and_then(Value::as_array)
                    .map(|tools| {
                        tools
                            .iter()
                            .filter_map(|t| t.get("function")?.get("name")?.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                (CallingMode::Any, names)
            }
            _ => {
                return Err(invalid(
                    "tool_choice.type",
                    "Supported tool_choice types are 'function' and 'allowed_tools'.",
                ))
            }
        },
        Some(_) => {
            return Err(invalid(
                "tool_choice",
                "'tool_choice' must be a string or an object.",
            ))
        }
    };
    if declared.is_empty() {
        if mode == CallingMode::Any {
            return Err(invalid(
                "tool_choice",
                "'tool_choice' asks for a tool call, but no tools are declared.",
            ));
        }
        return Ok(None);
    }
    if let Some(unknown) = names
        .iter()
        .find(|n| !declared.iter().any(|d| d.name == **n))
    {
        return Err(invalid(
            "tool_choice",
            format!("'tool_choice' names the function '{unknown}', which is not among the declared tools."),
        ));
    }
    Ok(Some(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            allowed_function_names: names,
            mode,
        },
    }))
}

fn generation_config(req: &Map<String, Value>) -> Result<GenerationConfig<'_>, GatewayError> {
    let non_empty = |s: &&str| !s.is_empty();
    let stop_sequences = match present(req, "stop") {
        Some(Value::Array(stops)) => stops
            .iter()
            .filter_map(Value::as_str)
            .filter(non_empty)
            .collect(),
        Some(one) => one.as_str().filter(non_empty).into_iter().collect(),
        None => Vec::new(),
    };
    let mut config = GenerationConfig {
        candidate_count: present(req, "n"),
        frequency_penalty: present(req, "frequency_penalty"),
        max_output_tokens: present(req, "max_completion_tokens")
            .or_else(|| present(req, "max_tokens")),
        presence_penalty: present(req, "presence_penalty"),
        seed: present(req, "seed"),
        stop_sequences,
        temperature: present(req, "temperature"),
        top_p: present(req, "top_p"),
        ..GenerationConfig::default()
    };
    if let Some(format) = present(req, "response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => config.response_mime_type = Some("application/json"),
            Some("json_schema") => {
                config.response_mime_type = Some("application/json");
                let schema = format
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .filter(|s| !s.is_null());
                if let Some(schema) = schema {
                    config.response_schema = gemini_schema(schema)
                        .map_err(|m| invalid("response_format.json_schema.schema", m))?;
                }
            }
            other => {
                return Err(invalid(
                    "response_format.type",
                    format!(
                    "Invalid value: '{}'. Supported values are: text, json_object, json_schema.",
                    other.unwrap_or("(none)")
                ),
                ))
            }
        }
    }
    if let Some(effort) = present(req, "reasoning_effort") {
        let thinking_budget = match effort.as_str() {
            Some("none") => 0,
            Some("minimal" | "low") => 1024,
            Some("medium") => 8192,
            Some("high") => 24576,
            _ => {
                return Err(invalid(
                    "reasoning_effort",
                    "Invalid value. Supported values are: none, minimal, low, medium, high.",
                ))
            }
        };
        config.thinking_config = Some(ThinkingConfig { thinking_budget });
    }
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------------------------

/// The `batchEmbedContents` body for the client's OpenAI embeddings body, serialized: one
/// request per input string.
pub(super) fn embeddings_request(
    req: &Map<String, Value>,
    model: &str,
) -> Result<Vec<u8>, GatewayError> {
    let resource = format!("models/{model}");
    let output_dimensionality = present(req, "dimensions");
    let embed = |text| EmbedRequest {
        content: EmbedContent {
            parts: [Part::text(text)],
        },
        model: &resource,
        output_dimensionality,
    };
    let token_arrays = || {
        invalid(
            "input",
            "Gemini embeds text only; token arrays are not supported. Send strings.",
        )
    };
    let requests = match req.get("input") {
        Some(Value::String(s)) => vec![embed(s)],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(embed).ok_or_else(token_arrays))
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("input")),
        Some(_) => return Err(token_arrays()),
    };
    serialize(&BatchEmbedBody { requests })
}
