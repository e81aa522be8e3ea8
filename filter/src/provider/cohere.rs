//! Cohere API v2: chat (`POST {prefix}/chat`, JSON or SSE) and embed (`POST {prefix}/embed`),
//! with `authorization: Bearer <key>`.
//!
//! References:
//! - Chat: https://docs.cohere.com/reference/chat (request body, `ChatResponseV2`,
//!   `ChatFinishReason`, `Usage`) and the stream events
//!   https://docs.cohere.com/reference/chat-stream, https://docs.cohere.com/v2/docs/streaming,
//!   https://docs.cohere.com/docs/tool-use-streaming.
//! - Tools: https://docs.cohere.com/v2/docs/tool-use-overview; images:
//!   https://docs.cohere.com/docs/image-inputs; JSON mode:
//!   https://docs.cohere.com/v2/docs/structured-outputs.
//! - Embed: https://docs.cohere.com/reference/embed (`V2EmbedRequest`, `EmbedByTypeResponse`).
//! - Errors: every error status carries `{"message": "..."}`
//!   (https://docs.cohere.com/reference/errors).
//! - OpenAI side: https://platform.openai.com/docs/api-reference/chat/create,
//!   https://platform.openai.com/docs/api-reference/chat/streaming,
//!   https://platform.openai.com/docs/api-reference/embeddings/create.
//!
//! Chat request, mapped: `model` (the provider's name); messages `system` and `developer` →
//! `system`, `user` (text and `image_url` parts, the same shape in Cohere v2, `detail` kept),
//! `assistant` (text and refusal parts as text, `tool_calls` with their ids), `tool`
//! (`tool_call_id`, text content); `tools` (function tools; a tool without `parameters` gets an
//! empty object schema; `strict: true` on any tool → `strict_tools: true`); `tool_choice`
//! `auto` → omitted, `none` → `NONE`, `required` → `REQUIRED`, a named function → only that tool
//! is sent, with `REQUIRED` (Cohere cannot name a tool; with one tool left, "use at least one
//! tool" means "use this one"); `max_completion_tokens` / `max_tokens` → `max_tokens`;
//! `temperature`; `top_p` → `p`, clamped to Cohere's [0.01, 0.99]; `stop` → `stop_sequences`;
//! `seed`; `frequency_penalty`, `presence_penalty`; `response_format` `json_object` →
//! `{"type":"json_object"}`, `json_schema` → `{"type":"json_object","json_schema":<schema>}`,
//! `text` → omitted; `stream`.
//!
//! Dropped (no Cohere equivalent; the answer keeps its meaning): `user`, `name` on messages,
//! `parallel_tool_calls`, `stream_options` (Cohere always reports usage at `message-end`),
//! `logprobs` / `top_logprobs` (answers carry `logprobs: null`), `logit_bias`, `metadata`,
//! `store`, `service_tier`, `reasoning_effort`, `prediction`, `prompt_cache_key`,
//! `safety_identifier`, `web_search_options`.
//!
//! Refused with a 400 naming the parameter: `n > 1`; `temperature > 1` and
//! `frequency_penalty` / `presence_penalty` outside [0, 1] (Cohere's ranges); a negative `seed`;
//! the legacy `functions` / `function_call` and `function` role; audio (`modalities` with
//! `audio`, `audio`, `input_audio` parts) and `file` parts; non-text parts in system, assistant
//! or tool messages; non-function tools; a named `tool_choice` whose tool is not declared, or any
//! other `tool_choice` form; an unknown `response_format` type.
//!
//! Embeddings: `input` (a string or strings) → `texts`, with `input_type: "search_document"`
//! and `embedding_types: ["float"]`; `dimensions` → `output_dimension`; `user` dropped; token
//! arrays refused (400, Cohere embeds text only). The answer is the OpenAI list, in base64 when
//! the client asked `encoding_format: "base64"`, with usage from `meta.billed_units`.
//!
//! Chat answer: text content parts are joined into `content` (`null` when there is none and
//! there are tool calls); `thinking` parts and `tool_plan` are the model's reasoning, not its
//! answer, and are dropped; `citations` are dropped; `tool_calls` keep their ids. Finish
//! reasons: `COMPLETE`, `STOP_SEQUENCE` → `stop`; `MAX_TOKENS` → `length`; `TOOL_CALL` →
//! `tool_calls`; `TIMEOUT` → `length` (cut short by a limit). `ERROR` in a JSON answer → `length`
//! too: the status line (200) is already sent when the body is read, so an error body would be
//! taken for a success by the SDKs; the partial answer is kept and marked as cut short. In a
//! stream, `ERROR` (or a `message-end` carrying `error`) ends the stream with an OpenAI error
//! event and `[DONE]`, which the SDKs raise on. Usage: `usage.tokens` (what the model processed)
//! is preferred, each field falling back to `usage.billed_units` (billed tokens exclude the
//! prompt scaffolding and are smaller); `cached_tokens` → `prompt_tokens_details.cached_tokens`.
//! The answer's `id` is Cohere's, its `model` the provider's model name, `created` the time of
//! the attempt.
//!
//! Stream: `message-start` → a role chunk; `content-delta` text → content chunks;
//! `tool-call-start` → a `tool_calls` delta (index, id, type, name, arguments so far);
//! `tool-call-delta` → arguments deltas; `message-end` → the finish chunk, the usage chunk
//! (always; the gateway drops it when the client did not ask) and `[DONE]`. Ignored:
//! `content-start` / `content-end` (text they might carry is still emitted), `thinking` deltas,
//! `tool-plan-delta`, `tool-call-end`, `citation-start` / `citation-end`, `debug`, a `[DONE]`
//! data line. A stream that ends without `message-end` gets an error event and `[DONE]`.
//! Any non-2xx answer becomes `{"error": {...}}` with Cohere's `message` and the same status.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config::ApiKeyEnv;
use super::openai::refuse_multiple_choices;
use super::openai_format::{self, AssistantMessage, CompletionId, ContentDelta};
use super::{Attempt, Operation, ResponseShape, ResponseTranslator, Translator, UpstreamRequest};
use crate::error::{invalid, parse_object, GatewayError};
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

pub struct Cohere;

static NULL: Value = Value::Null;

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

impl Translator for Cohere {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let req = parse_object(body)?;
        let (endpoint, out) = match attempt.operation {
            Operation::Chat => {
                refuse_multiple_choices(attempt, req.get("n").and_then(Value::as_u64))?;
                ("chat", chat_body(attempt, &req)?)
            }
            Operation::Embeddings => ("embed", embed_body(attempt, &req)?.0),
        };
        let mut headers = Vec::with_capacity(2);
        if let Some(key) = attempt.api_key() {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        headers.push(("content-type", "application/json".to_string()));
        let body =
            serde_json::to_vec(&out).map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
        Ok(UpstreamRequest {
            path: format!("{}/{endpoint}", attempt.provider.path_prefix),
            headers,
            body: Some(body),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        let base64 = attempt.operation == Operation::Embeddings && attempt.embeddings_base64;
        Some(Box::new(CohereResponse::new(attempt, base64)))
    }
}

// ---------------------------------------------------------------------------------------------
// Chat request

fn chat_body(attempt: &Attempt, req: &Map<String, Value>) -> Result<Value, GatewayError> {
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

    let mut out = Map::new();
    out.insert("model".into(), attempt.upstream_model.into());
    let messages = param(req, "messages")
        .and_then(Value::as_array)
        .ok_or(GatewayError::MissingParameter("messages"))?;
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    out.insert("messages".into(), Value::Array(messages));

    let mut strict = false;
    let mut tools = match param(req, "tools") {
        Some(Value::Array(tools)) => tools
            .iter()
            .enumerate()
            .map(|(i, t)| tool(i, t, &mut strict))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    match param(req, "tool_choice") {
        None => {}
        Some(Value::String(c)) if c == "auto" || (c == "none" && tools.is_empty()) => {}
        Some(Value::String(c)) if c == "none" => {
            out.insert("tool_choice".into(), "NONE".into());
        }
        Some(Value::String(c)) if c == "required" => {
            out.insert("tool_choice".into(), "REQUIRED".into());
        }
        Some(choice @ Value::Object(_)) if at(choice, &["type"]) == "function" => {
            let name = at(choice, &["function", "name"]).as_str().unwrap_or_default();
            tools.retain(|t| at(t, &["function", "name"]) == name);
            if tools.is_empty() {
                return Err(invalid(
                    "tool_choice",
                    format!("'tool_choice' names the function '{name}', which is not in 'tools'."),
                ));
            }
            out.insert("tool_choice".into(), "REQUIRED".into());
        }
        Some(other) => {
            return Err(invalid(
                "tool_choice",
                format!(
                    "Cohere supports 'tool_choice' \"auto\", \"none\", \"required\" or a named function, not {other}."
                ),
            ))
        }
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if strict {
            out.insert("strict_tools".into(), true.into());
        }
    }

    if let Some(max) = param(req, "max_completion_tokens").or(param(req, "max_tokens")) {
        out.insert("max_tokens".into(), max.clone());
    }
    if let Some(t) = param(req, "temperature") {
        if t.as_f64().is_some_and(|t| t > 1.0) {
            return Err(invalid(
                "temperature",
                format!("Cohere accepts a 'temperature' between 0 and 1, not {t}."),
            ));
        }
        out.insert("temperature".into(), t.clone());
    }
    if let Some(p) = param(req, "top_p").and_then(Value::as_f64) {
        out.insert("p".into(), json!(p.clamp(0.01, 0.99)));
    }
    match param(req, "stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(s)) if !s.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(s.clone()));
        }
        _ => {}
    }
    if let Some(seed) = param(req, "seed") {
        if seed.as_i64().is_some_and(|s| s < 0) {
            return Err(invalid(
                "seed",
                "Cohere accepts only a non-negative 'seed'.",
            ));
        }
        out.insert("seed".into(), seed.clone());
    }
    for key in ["frequency_penalty", "presence_penalty"] {
        if let Some(v) = param(req, key) {
            if !v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) {
                return Err(invalid(
                    key,
                    format!("Cohere accepts a '{key}' between 0 and 1, not {v}."),
                ));
            }
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(format) = param(req, "response_format") {
        match at(format, &["type"]).as_str() {
            Some("text") => {}
            Some("json_object") => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let schema = at(format, &["json_schema", "schema"]);
                let f = if schema.is_object() {
                    json!({"type": "json_object", "json_schema": schema})
                } else {
                    json!({"type": "json_object"})
                };
                out.insert("response_format".into(), f);
            }
            _ => {
                return Err(invalid(
                    "response_format.type",
                    "Cohere supports 'response_format' types text, json_object and json_schema.",
                ))
            }
        }
    }
    out.insert("stream".into(), attempt.stream.into());
    Ok(Value::Object(out))
}

fn message(i: usize, m: &Value) -> Result<Value, GatewayError> {
    let at_msg = format!("messages[{i}]");
    let content = at(m, &["content"]);
    match at(m, &["role"]).as_str().unwrap_or_default() {
        "system" | "developer" => Ok(json!({
            "role": "system",
            "content": text_content(content, &at_msg, false)?,
        })),
        "user" => Ok(json!({"role": "user", "content": user_content(content, &at_msg)?})),
        "assistant" => assistant_message(m, &at_msg),
        "tool" => Ok(json!({
            "role": "tool",
            "tool_call_id": at(m, &["tool_call_id"]),
            "content": text_content(content, &at_msg, false)?,
        })),
        "function" => Err(invalid(
            format!("{at_msg}.role"),
            "The deprecated 'function' role is not supported by Cohere; use 'tool' messages.",
        )),
        other => Err(invalid(
            format!("{at_msg}.role"),
            format!("Cohere does not support the role '{other}'."),
        )),
    }
}

/// Content that may only hold text: a string stays a string, parts become Cohere text parts.
/// `refusal` parts (assistant messages) are text the assistant said.
fn text_content(content: &Value, at_msg: &str, refusals: bool) -> Result<Value, GatewayError> {
    match content {
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match at(part, &["type"]).as_str() {
                Some("text") => Ok(json!({"type": "text", "text": at(part, &["text"])})),
                Some("refusal") if refusals => {
                    Ok(json!({"type": "text", "text": at(part, &["refusal"])}))
                }
                other => Err(unsupported_part(at_msg, j, other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Null => Ok(Value::String(String::new())),
        other => Ok(other.clone()),
    }
}

fn user_content(content: &Value, at_msg: &str) -> Result<Value, GatewayError> {
    let Value::Array(parts) = content else {
        return text_content(content, at_msg, false);
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| match at(part, &["type"]).as_str() {
            Some("text") => Ok(json!({"type": "text", "text": at(part, &["text"])})),
            Some("image_url") => {
                let image = at(part, &["image_url"]);
                let mut out = Map::new();
                let url = match image {
                    Value::String(url) => Some(url.as_str()),
                    _ => at(image, &["url"]).as_str(),
                };
                let Some(url) = url else {
                    return Err(invalid(
                        format!("{at_msg}.content[{j}].image_url.url"),
                        "An image part needs 'image_url.url'.",
                    ));
                };
                out.insert("url".into(), url.into());
                if let Some(detail) = image.get("detail").filter(|d| d.is_string()) {
                    out.insert("detail".into(), detail.clone());
                }
                Ok(json!({"type": "image_url", "image_url": out}))
            }
            other => Err(unsupported_part(at_msg, j, other)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn unsupported_part(at_msg: &str, j: usize, kind: Option<&str>) -> GatewayError {
    invalid(
        format!("{at_msg}.content[{j}].type"),
        format!(
            "Cohere does not accept a content part of type '{}' here.",
            kind.unwrap_or("(none)")
        ),
    )
}

fn assistant_message(m: &Value, at_msg: &str) -> Result<Value, GatewayError> {
    let mut out = Map::new();
    out.insert("role".into(), "assistant".into());
    let content = at(m, &["content"]);
    let has_content = match content {
        Value::String(s) => !s.is_empty(),
        Value::Array(parts) => !parts.is_empty(),
        _ => false,
    };
    if has_content {
        out.insert("content".into(), text_content(content, at_msg, true)?);
    }
    if let Some(calls) = at(m, &["tool_calls"]).as_array().filter(|c| !c.is_empty()) {
        let calls = calls
            .iter()
            .enumerate()
            .map(|(k, call)| {
                let id = at(call, &["id"]).as_str();
                let name = at(call, &["function", "name"]).as_str();
                let (Some(id), Some(name), "function") =
                    (id, name, at(call, &["type"]).as_str().unwrap_or("function"))
                else {
                    return Err(invalid(
                        format!("{at_msg}.tool_calls[{k}]"),
                        "A tool call needs an 'id' and a function 'name'; Cohere takes function calls only.",
                    ));
                };
                let arguments = match at(call, &["function", "arguments"]) {
                    Value::String(a) => a.clone(),
                    Value::Null => "{}".to_string(),
                    other => other.to_string(),
                };
                Ok(openai_format::tool_call(None, id, name, &arguments))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(out))
}

/// One OpenAI tool → Cohere v2 `ToolV2` (the same `{type, function: {name, description,
/// parameters}}` shape; `parameters` is required by Cohere).
fn tool(i: usize, t: &Value, strict: &mut bool) -> Result<Value, GatewayError> {
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
    let mut function = Map::new();
    function.insert("name".into(), name.into());
    if let Some(d) = f.get("description").filter(|d| d.is_string()) {
        function.insert("description".into(), d.clone());
    }
    let parameters = match at(f, &["parameters"]) {
        p @ Value::Object(_) => p.clone(),
        _ => json!({"type": "object", "properties": {}}),
    };
    function.insert("parameters".into(), parameters);
    if at(f, &["strict"]) == true {
        *strict = true;
    }
    Ok(json!({"type": "function", "function": function}))
}

// ---------------------------------------------------------------------------------------------
// Embed request

fn embed_body(attempt: &Attempt, req: &Map<String, Value>) -> Result<(Value, bool), GatewayError> {
    let token_arrays = || {
        invalid(
            "input",
            "Cohere embeds text only: send 'input' as a string or an array of strings, not tokens.",
        )
    };
    let texts: Vec<Value> = match param(req, "input") {
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(Value::Array(_)) => return Err(token_arrays()),
        Some(_) => return Err(token_arrays()),
        None => return Err(GatewayError::MissingParameter("input")),
    };
    let base64 = param(req, "encoding_format").is_some_and(|f| f == "base64");
    let mut out = Map::new();
    out.insert("model".into(), attempt.upstream_model.into());
    out.insert("texts".into(), Value::Array(texts));
    out.insert("input_type".into(), "search_document".into());
    out.insert("embedding_types".into(), json!(["float"]));
    if let Some(d) = param(req, "dimensions") {
        out.insert("output_dimension".into(), d.clone());
    }
    Ok((Value::Object(out), base64))
}

// ---------------------------------------------------------------------------------------------
// Responses

struct CohereResponse {
    operation: Operation,
    base64: bool,
    id: CompletionId,
    status: u32,
    /// The body so far when it is translated whole.
    buffer: Vec<u8>,
    /// Set when the answer is an event stream.
    stream: Option<StreamState>,
}

#[derive(Default)]
struct StreamState {
    parser: SseParser,
    /// The role chunk was sent.
    started: bool,
    /// `[DONE]` was sent: nothing more goes out.
    done: bool,
    /// Cohere's tool-call `index` → the OpenAI `index`, in order of `tool-call-start`.
    tools: Vec<(Option<u64>, usize)>,
}

impl CohereResponse {
    fn new(attempt: &Attempt, base64: bool) -> Self {
        Self {
            operation: attempt.operation,
            base64,
            id: CompletionId {
                id: String::new(),
                created: attempt.now_unix,
                model: attempt.upstream_model.to_string(),
            },
            status: 0,
            buffer: Vec::new(),
            stream: None,
        }
    }

    fn whole(&self) -> Vec<u8> {
        let body: Value = serde_json::from_slice(&self.buffer).unwrap_or(Value::Null);
        if !(200..300).contains(&self.status) {
            return openai_format::error_body(
                self.status,
                &error_message(&body, &self.buffer, self.status),
            );
        }
        if !body.is_object() {
            return openai_format::error_body(502, "Cohere answered with a body that is not JSON.");
        }
        match self.operation {
            Operation::Chat => self.chat(&body),
            Operation::Embeddings => self.embeddings(&body),
        }
    }

    fn chat(&self, body: &Value) -> Vec<u8> {
        let id = CompletionId {
            id: at(body, &["id"]).as_str().unwrap_or_default().to_string(),
            ..self.id.clone()
        };
        let message = at(body, &["message"]);
        let text: String = match at(message, &["content"]) {
            Value::Array(parts) => parts
                .iter()
                .filter(|p| at(p, &["type"]) == "text")
                .filter_map(|p| at(p, &["text"]).as_str())
                .collect(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        let calls: Vec<Value> = at(message, &["tool_calls"])
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        openai_format::tool_call(
                            None,
                            at(c, &["id"]).as_str().unwrap_or_default(),
                            at(c, &["function", "name"]).as_str().unwrap_or_default(),
                            &arguments(at(c, &["function", "arguments"])),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let reason = finish_reason(at(body, &["finish_reason"]).as_str());
        let message = AssistantMessage::new(&text, calls);
        openai_format::completion(&id, message, reason, &usage(at(body, &["usage"])))
    }

    fn embeddings(&self, body: &Value) -> Vec<u8> {
        let embeddings = at(body, &["embeddings"]);
        // `embeddings_by_type` (v2) holds `{"float": [...]}`; `embeddings_floats` the list itself.
        let list = match embeddings {
            Value::Array(_) => embeddings,
            _ => at(embeddings, &["float"]),
        };
        let vectors: Vec<Vec<f64>> = list
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|v| {
                        v.as_array()
                            .map(|v| v.iter().filter_map(Value::as_f64).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let prompt = number(at(body, &["meta", "billed_units", "input_tokens"])).unwrap_or(0);
        let u = Usage {
            prompt,
            total: prompt,
            ..Default::default()
        };
        openai_format::embeddings(&self.id.model, &vectors, self.base64, &u)
    }
}

impl ResponseTranslator for CohereResponse {
    fn start(&mut self, status: u32, content_type: Option<&str>) -> ResponseShape {
        self.status = status;
        let sse = content_type.is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        });
        if (200..300).contains(&status) && sse && self.operation == Operation::Chat {
            self.stream = Some(StreamState {
                parser: SseParser::fields_only(),
                ..StreamState::default()
            });
            ResponseShape::SSE
        } else {
            ResponseShape::JSON
        }
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let Some(stream) = self.stream.as_mut() else {
            self.buffer.extend_from_slice(chunk);
            return if end { self.whole() } else { Vec::new() };
        };
        let mut events = Vec::new();
        stream.parser.feed(chunk, &mut events);
        if end {
            stream.parser.finish(&mut events);
        }
        let mut out = Vec::new();
        for event in &events {
            stream.event(&mut self.id, event, &mut out);
        }
        if stream.parser.overflowed() && !stream.done {
            out.extend(openai_format::stream_failure(
                &openai_format::event_too_large(),
            ));
            stream.done = true;
        }
        if end && !stream.done {
            out.extend(openai_format::error_event(
                "The Cohere stream ended before its message-end event.",
                "upstream_error",
                Some("upstream_error"),
            ));
            out.extend_from_slice(openai_format::DONE);
            stream.done = true;
        }
        out
    }
}

impl StreamState {
    fn event(&mut self, id: &mut CompletionId, event: &SseEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Some(data) = event.data.as_deref() else {
            return;
        };
        if data.trim() == "[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let kind = at(&v, &["type"])
            .as_str()
            .or(event.event.as_deref())
            .unwrap_or_default();
        let delta = at(&v, &["delta", "message"]);
        match kind {
            "message-start" => {
                if let Some(i) = at(&v, &["id"]).as_str() {
                    id.id = i.to_string();
                }
                self.start(id, out);
            }
            "content-start" | "content-delta" => {
                if let Some(text) = at(delta, &["content", "text"]).as_str() {
                    if !text.is_empty() {
                        self.start(id, out);
                        out.extend(openai_format::chunk_event(
                            id,
                            ContentDelta { content: text },
                            None,
                        ));
                    }
                }
            }
            "tool-call-start" => {
                let call = at(delta, &["tool_calls"]);
                let index = self.tools.len();
                self.tools.push((at(&v, &["index"]).as_u64(), index));
                self.start(id, out);
                let tool = openai_format::tool_call(
                    Some(index),
                    at(call, &["id"]).as_str().unwrap_or_default(),
                    at(call, &["function", "name"]).as_str().unwrap_or_default(),
                    &arguments(at(call, &["function", "arguments"])),
                );
                out.extend(openai_format::chunk_event(
                    id,
                    json!({"tool_calls": [tool]}),
                    None,
                ));
            }
            "tool-call-delta" => {
                let args = arguments(at(delta, &["tool_calls", "function", "arguments"]));
                let cohere_index = at(&v, &["index"]).as_u64();
                let index = self
                    .tools
                    .iter()
                    .rev()
                    .find(|(c, _)| *c == cohere_index)
                    .or(self.tools.last())
                    .map(|(_, i)| *i);
                if let (Some(index), false) = (index, args.is_empty()) {
                    out.extend(openai_format::chunk_event(
                        id,
                        json!({"tool_calls": [{"index": index, "function": {"arguments": args}}]}),
                        None,
                    ));
                }
            }
            "message-end" => {
                let end = at(&v, &["delta"]);
                let reason = at(end, &["finish_reason"]).as_str();
                let error = at(end, &["error"]).as_str().filter(|e| !e.is_empty());
                if error.is_some() || reason == Some("ERROR") {
                    out.extend(openai_format::error_event(
                        error.unwrap_or("Cohere reported an error during generation."),
                        "upstream_error",
                        Some("upstream_error"),
                    ));
                } else {
                    self.start(id, out);
                    out.extend(openai_format::chunk_event(
                        id,
                        json!({}),
                        Some(finish_reason(reason)),
                    ));
                    out.extend(openai_format::usage_event(id, &usage(at(end, &["usage"]))));
                }
                out.extend_from_slice(openai_format::DONE);
                self.done = true;
            }
            "" if v.get("message").is_some_and(Value::is_string) => {
                // An error object instead of an event.
                out.extend(openai_format::error_event(
                    at(&v, &["message"]).as_str().unwrap_or_default(),
                    "upstream_error",
                    Some("upstream_error"),
                ));
                out.extend_from_slice(openai_format::DONE);
                self.done = true;
            }
            // content-end, tool-plan-delta, tool-call-end, citation-*, debug: nothing to say.
            _ => {}
        }
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self, id: &CompletionId, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            out.extend(openai_format::chunk_event(
                id,
                json!({"role": "assistant", "content": ""}),
                None,
            ));
        }
    }
}

fn arguments(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("MAX_TOKENS" | "TIMEOUT" | "ERROR") => "length",
        Some("TOOL_CALL") => "tool_calls",
        _ => "stop",
    }
}

/// A token count: Cohere types them as numbers, so `5.0` is read too.
fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
}

/// Cohere `Usage` → OpenAI usage: `tokens` first, `billed_units` when a field is missing.
fn usage(u: &Value) -> Usage {
    let pick = |field: &str| {
        number(at(u, &["tokens", field]))
            .or_else(|| number(at(u, &["billed_units", field])))
            .unwrap_or(0)
    };
    let prompt = pick("input_tokens");
    let completion = pick("output_tokens");
    Usage {
        prompt,
        completion,
        total: prompt.saturating_add(completion),
        cached_prompt: number(at(u, &["cached_tokens"])).unwrap_or(0),
        ..Default::default()
    }
}

fn error_message(body: &Value, raw: &[u8], status: u32) -> String {
    let message = at(body, &["message"])
        .as_str()
        .or_else(|| at(body, &["error", "message"]).as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(raw);
            text.trim().chars().take(500).collect()
        });
    if message.is_empty() {
        format!("Cohere answered with HTTP status {status}.")
    } else {
        message
    }
}

/// The settings of a Cohere provider (`providers.<id>`, besides the common keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohereSettings {
    pub api_key_env: Option<ApiKeyEnv>,
}

#[cfg(test)]
mod tests;
