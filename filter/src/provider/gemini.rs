//! Google Gemini API (generativelanguage.googleapis.com, `v1beta`): OpenAI chat completions go to
//! `models/{model}:generateContent` (streamed: `:streamGenerateContent?alt=sse`) and embeddings to
//! `models/{model}:batchEmbedContents`; the answers come back in the OpenAI format.
//!
//! References (Gemini): https://ai.google.dev/api/generate-content (request, response,
//! `UsageMetadata`, `FinishReason`, `streamGenerateContent`), https://ai.google.dev/api/caching
//! (`Content`, `Part`, `FunctionCall`, `FunctionResponse`, `Tool`, `ToolConfig`, `Schema`),
//! https://ai.google.dev/gemini-api/docs/function-calling,
//! https://ai.google.dev/gemini-api/docs/thought-signatures,
//! https://ai.google.dev/gemini-api/docs/structured-output,
//! https://ai.google.dev/gemini-api/docs/file-input-methods,
//! https://ai.google.dev/gemini-api/docs/openai (reasoning_effort budgets),
//! https://ai.google.dev/api/embeddings#method:-models.batchembedcontents,
//! https://ai.google.dev/gemini-api/docs/troubleshooting (error bodies).
//! OpenAI: https://platform.openai.com/docs/api-reference/chat/create and
//! https://platform.openai.com/docs/api-reference/embeddings/create.
//!
//! **Mapped.** `system` and `developer` messages → `systemInstruction` (all of them, in order,
//! wherever they stand); `user` → role `user`, `assistant` → role `model`, consecutive turns of
//! one role merged. Text parts → `text` (empty texts left out: Gemini refuses them); images:
//! base64 `data:` URLs → `inlineData`, `http(s)` URLs → `fileData {mimeType, fileUri}` with the
//! type taken from the URL's extension (png, jpg/jpeg, webp, heic, heif: the image types Gemini
//! reads; Gemini fetches public and signed URLs itself); `input_audio` (wav, mp3) and `file`
//! parts with a base64 `file_data` → `inlineData`. Assistant `tool_calls` (and the legacy
//! `function_call`) → `functionCall {name, args}`; the first call of each model turn carries the
//! documented placeholder `thoughtSignature` `skip_thought_signature_validator`, because the
//! OpenAI format cannot carry Gemini's real signatures back and Gemini 3 refuses a call turn
//! without one. `tool` messages (and legacy `function` messages) → `functionResponse {name,
//! response: {"content": <the text, or the JSON it holds>}}` in a `user` turn, the name found from
//! the earlier assistant call with that id. `tools` → one `{functionDeclarations: [...]}`, each
//! schema cut down to Gemini's `Schema` subset: `$ref` into `$defs`/`definitions` inlined,
//! `allOf` merged, `oneOf` → `anyOf`, `type: [T, "null"]` and `anyOf: [.., {type: null}]` →
//! `nullable`, `const` → one-value `enum`; kept: type, format (only those Gemini knows: enum and
//! date-time for strings, float/double, int32/int64), title, description, nullable, string
//! enum, properties, required, items, anyOf, min/max (Items, Length, Properties, imum), pattern,
//! example, default, propertyOrdering; dropped: every other keyword (`$schema`,
//! `additionalProperties`, `strict`, `examples`, `multipleOf`, ...). A function without
//! properties is declared without `parameters`. `tool_choice` → `toolConfig.
//! functionCallingConfig`: auto → AUTO, none → NONE, required → ANY, a named function → ANY +
//! `allowedFunctionNames`, `allowed_tools` in mode required → ANY + those names.
//! `generationConfig`: temperature, top_p → topP, max_completion_tokens (else max_tokens) →
//! maxOutputTokens, stop → stopSequences, n (1) → candidateCount, seed, presence_penalty,
//! frequency_penalty, response_format json_object → responseMimeType application/json and
//! json_schema → the same + `responseSchema` (the subset above; `responseSchema` rather than
//! `responseJsonSchema`, which older models lack), reasoning_effort → thinkingConfig.
//! thinkingBudget (none 0, minimal and low 1024, medium 8192, high 24576, as Gemini's own
//! OpenAI endpoint does).
//! Answers: text parts → `content` (thought parts are not content), `functionCall` →
//! `tool_calls` with ids `call_<n>` (n counts the calls of one response) and the args as a JSON
//! string; finishReason STOP → stop, MAX_TOKENS → length, SAFETY, RECITATION, BLOCKLIST,
//! PROHIBITED_CONTENT, SPII and the IMAGE_ variants → content_filter, `tool_calls` whenever calls
//! are present (unless length or content_filter), anything else → stop; a prompt blocked by
//! `promptFeedback.blockReason` → an empty answer with finish_reason content_filter. Usage:
//! prompt = promptTokenCount + toolUsePromptTokenCount, cached = cachedContentTokenCount,
//! completion = candidatesTokenCount + thoughtsTokenCount, reasoning = thoughtsTokenCount,
//! total = totalTokenCount (else the sum); in a stream the last `usageMetadata` counts. Errors
//! (`{"error": {code, message, status}}`, or any non-2xx body) → the OpenAI error shape with the
//! provider's status; an invalid key (Gemini answers 400 `API_KEY_INVALID`) gets the gateway's
//! "provider refused the gateway's credentials" message instead of Gemini's; an error inside a
//! stream → an OpenAI error event and `[DONE]`. The id is `chatcmpl-<responseId>`, the model
//! Gemini's `modelVersion` (else the configured model). Embeddings: input strings → one
//! `requests[]` entry each, dimensions → outputDimensionality; the vectors come back as floats
//! or, when the client asked `encoding_format: "base64"`, base64. Gemini reports no embedding
//! usage: 0 unless a `usageMetadata.promptTokenCount` is present.
//!
//! **Dropped** (no effect on the answer's meaning, or nothing to map to): user, metadata, store,
//! service_tier, parallel_tool_calls, prediction, stream_options (usage is always sent),
//! prompt_cache_key, safety_identifier, image `detail`, message `name`, the order of schema
//! properties (Gemini orders by `propertyOrdering` only), answer parts other than text and
//! function calls (executable code, inline images), and any other parameter not named here.
//!
//! **Refused (400)**: n > 1, logprobs / top_logprobs, logit_bias, audio output, web_search_options,
//! the legacy `functions` parameter, non-base64 data URLs, image URLs of an unknown type, OpenAI
//! file ids, tool-call arguments that are not a JSON object, a tool message whose
//! tool_call_id matches no earlier call, unresolvable or self-referring `$ref`s and schemas
//! deeper than 32 levels or larger than 10,000 nodes once `$ref`s are inlined, tool_choice
//! naming an undeclared function or asking for a call without tools, `allowed_tools` in mode
//! auto, token-array embedding inputs.
//!
//! The embeddings answer needs the client's `encoding_format`, which only `request()` sees: it is
//! handed to `response()` of the same attempt through a thread-local (the two are called one
//! after the other, on one thread, by the upstream filter).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::openai_format::{self, CompletionId};
use super::{
    percent_encode, Attempt, Operation, ResponseShape, ResponseTranslator, Translator,
    UpstreamRequest,
};
use crate::error::GatewayError;
use crate::sse::SseParser;
use crate::usage::Usage;

pub struct Gemini;

/// Gemini's documented signature for function calls it did not produce in this conversation
/// (https://ai.google.dev/gemini-api/docs/thought-signatures, FAQ).
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";
/// How deep a tool or response schema may nest (`$ref`s followed included).
const MAX_SCHEMA_DEPTH: usize = 32;
/// How many schema nodes one conversion may produce (shared `$ref`s are copied out each time).
const MAX_SCHEMA_NODES: usize = 10_000;
/// Largest piece of a non-JSON error body quoted in the error message.
const MAX_ERROR_TEXT: usize = 512;

/// The upstream model without a leading `models/`, which the path adds itself.
fn model_id(upstream: &str) -> &str {
    upstream.strip_prefix("models/").unwrap_or(upstream)
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> GatewayError {
    GatewayError::InvalidParameter {
        param: param.into(),
        message: message.into(),
    }
}

impl Translator for Gemini {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
        let Value::Object(req) = value else {
            return Err(GatewayError::InvalidJson(
                "the body must be a JSON object".into(),
            ));
        };
        let model = model_id(attempt.upstream_model);
        let (method, out) = match attempt.operation {
            Operation::Chat => {
                super::openai::refuse_multiple_choices(attempt, body)?;
                let method = if attempt.stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                (method, chat_request(&req)?)
            }
            Operation::Embeddings => {
                let (out, _) = embeddings_request(&req, model)?;
                ("batchEmbedContents", out)
            }
        };
        let mut headers = Vec::with_capacity(2);
        if let Some(key) = attempt.provider.api_key() {
            headers.push(("x-goog-api-key", key.to_string()));
        }
        headers.push(("content-type", "application/json".to_string()));
        let body =
            serde_json::to_vec(&out).map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
        Ok(UpstreamRequest {
            path: format!(
                "{}/models/{}:{method}",
                attempt.provider.path_prefix,
                percent_encode(model)
            ),
            headers,
            body: Some(body),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        let provider_auth = GatewayError::ProviderAuth {
            provider: attempt.provider.id.clone(),
            status: 400,
        }
        .to_string();
        let model = model_id(attempt.upstream_model).to_string();
        match attempt.operation {
            Operation::Chat => Some(Box::new(ChatResponse::new(
                attempt.stream,
                model,
                attempt.now_unix,
                provider_auth,
            ))),
            Operation::Embeddings => {
                let base64 = attempt.embeddings_base64;
                Some(Box::new(EmbeddingsResponse {
                    status: 0,
                    body: Vec::new(),
                    model,
                    base64,
                    provider_auth,
                }))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chat request
// ---------------------------------------------------------------------------------------------

fn chat_request(req: &Map<String, Value>) -> Result<Value, GatewayError> {
    refuse_unsupported(req)?;
    let messages = match req.get("messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(GatewayError::MissingParameter("messages")),
    };
    let (system, contents) = convert_messages(messages)?;
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let declarations = function_declarations(req.get("tools"))?;
    let names: Vec<&str> = declarations
        .iter()
        .filter_map(|d| d.get("name").and_then(Value::as_str))
        .collect();
    if let Some(config) = tool_config(req.get("tool_choice"), &names)? {
        out.insert("toolConfig".into(), config);
    }
    if !declarations.is_empty() {
        out.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }
    let generation = generation_config(req)?;
    if !generation.is_empty() {
        out.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(Value::Object(out))
}

fn present<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
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

/// One Gemini turn being built.
struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

/// The system parts and the `contents` of a conversation.
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>), GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    // Tool-call id → function name, from the assistant messages seen so far.
    let mut call_names: BTreeMap<String, String> = BTreeMap::new();
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match role {
            "system" | "developer" => {
                system.extend(text_only_parts(message.get("content"), &param)?);
            }
            "user" => push_turn(
                &mut turns,
                "user",
                user_parts(message.get("content"), &param)?,
            ),
            "assistant" => {
                let parts = assistant_parts(message, &param, &mut call_names)?;
                push_turn(&mut turns, "model", parts);
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = call_names.get(id).ok_or_else(|| {
                    invalid(
                        format!("{param}.tool_call_id"),
                        format!(
                            "No earlier assistant message has a tool call with id '{id}'; Gemini needs the function's name for each tool result."
                        ),
                    )
                })?;
                let part = function_response(name, message.get("content"), &param)?;
                push_turn(&mut turns, "user", vec![part]);
            }
            "function" => {
                let name = message
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        invalid(
                            format!("{param}.name"),
                            format!("Missing required parameter: '{param}.name'."),
                        )
                    })?;
                let part = function_response(name, message.get("content"), &param)?;
                push_turn(&mut turns, "user", vec![part]);
            }
            other => {
                return Err(invalid(
                    format!("{param}.role"),
                    format!("Invalid value: '{other}'."),
                ))
            }
        }
    }
    let contents = turns
        .into_iter()
        .map(|mut turn| {
            if turn.role == "model" {
                if let Some(Value::Object(first_call)) = turn
                    .parts
                    .iter_mut()
                    .find(|p| p.get("functionCall").is_some())
                {
                    first_call.insert("thoughtSignature".into(), FOREIGN_SIGNATURE.into());
                }
            }
            json!({"role": turn.role, "parts": turn.parts})
        })
        .collect();
    Ok((system, contents))
}

/// Appends parts to the conversation, merging them into the last turn when it has the same role.
fn push_turn(turns: &mut Vec<Turn>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => turns.push(Turn { role, parts }),
    }
}

fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// The text of a content made of text parts only (system and tool messages).
fn content_text(content: Option<&Value>, param: &str) -> Result<String, GatewayError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default())
                    }
                    other => {
                        return Err(invalid(
                            format!("{param}.content[{j}].type"),
                            format!(
                                "Content part type '{}' is not allowed here; only text is.",
                                other.unwrap_or("(none)")
                            ),
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(invalid(
            format!("{param}.content"),
            "The content must be a string or an array of content parts.",
        )),
    }
}

/// System and developer messages: text parts, one per OpenAI part.
fn text_only_parts(content: Option<&Value>, param: &str) -> Result<Vec<Value>, GatewayError> {
    match content {
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let one = Value::Array(vec![part.clone()]);
                let text = content_text(Some(&one), param).map_err(|_| {
                    invalid(
                        format!("{param}.content[{j}].type"),
                        "System and developer messages may hold only text parts.",
                    )
                })?;
                out.extend(text_part(&text));
            }
            Ok(out)
        }
        other => Ok(text_part(&content_text(other, param)?)
            .into_iter()
            .collect()),
    }
}

fn user_parts(content: Option<&Value>, param: &str) -> Result<Vec<Value>, GatewayError> {
    let parts = match content {
        Some(Value::Array(parts)) => parts,
        other => {
            return Ok(text_part(&content_text(other, param)?)
                .into_iter()
                .collect())
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        let str_at = |key: &str, field: &str| -> Result<String, GatewayError> {
            part.get(key)
                .and_then(|v| v.get(field))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    invalid(
                        format!("{at}.{key}.{field}"),
                        format!("Missing required parameter: '{at}.{key}.{field}'."),
                    )
                })
        };
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                out.extend(text_part(
                    part.get("text").and_then(Value::as_str).unwrap_or_default(),
                ));
            }
            Some("image_url") => {
                let url = match part.get("image_url") {
                    Some(Value::String(url)) => url.clone(),
                    _ => str_at("image_url", "url")?,
                };
                out.push(image_part(&url, &format!("{at}.image_url.url"))?);
            }
            Some("input_audio") => {
                let data = str_at("input_audio", "data")?;
                let format = str_at("input_audio", "format")?;
                let mime = match format.as_str() {
                    "wav" => "audio/wav",
                    "mp3" => "audio/mp3",
                    other => {
                        return Err(invalid(
                            format!("{at}.input_audio.format"),
                            format!("Audio format '{other}' is not supported; use wav or mp3."),
                        ))
                    }
                };
                out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
            }
            Some("file") => {
                let file = part.get("file");
                if let Some(data) = file
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                {
                    let (mime, data) = parse_data_url(data, &format!("{at}.file.file_data"))?;
                    out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                } else {
                    return Err(invalid(
                        format!("{at}.file"),
                        "Gemini cannot read OpenAI file ids; send the file inline as 'file_data' (a base64 data: URL).",
                    ));
                }
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

/// `data:<mime>[;params];base64,<data>` → (mime, data).
fn parse_data_url<'a>(url: &'a str, param: &str) -> Result<(&'a str, &'a str), GatewayError> {
    let bad = || {
        invalid(
            param,
            "Expected a base64 data URL: data:<media type>;base64,<data>.",
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(bad)?;
    let (meta, data) = rest.split_once(',').ok_or_else(bad)?;
    let meta = meta.strip_suffix(";base64").ok_or_else(bad)?;
    let mime = meta.split(';').next().unwrap_or_default();
    if mime.is_empty() || !mime.contains('/') || data.is_empty() {
        return Err(bad());
    }
    Ok((mime, data))
}

fn image_part(url: &str, param: &str) -> Result<Value, GatewayError> {
    if url.starts_with("data:") {
        let (mime, data) = parse_data_url(url, param)?;
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(invalid(
            param,
            "An image must be a base64 data: URL or an http(s) URL.",
        ));
    }
    let path = lower
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    let mime = match extension {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => {
            return Err(invalid(
                param,
                "Gemini needs the type of an image given by URL, and this URL does not end in .png, .jpg, .jpeg, .webp, .heic or .heif; send the image as a base64 data: URL instead.",
            ))
        }
    };
    Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}}))
}

fn assistant_parts(
    message: &Value,
    param: &str,
    call_names: &mut BTreeMap<String, String>,
) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    match message.get("content") {
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let text = match part.get("type").and_then(Value::as_str) {
                    Some("text") => part.get("text"),
                    Some("refusal") => part.get("refusal"),
                    other => {
                        return Err(invalid(
                            format!("{param}.content[{j}].type"),
                            format!(
                                "Content part type '{}' is not allowed in an assistant message.",
                                other.unwrap_or("(none)")
                            ),
                        ))
                    }
                };
                out.extend(text_part(text.and_then(Value::as_str).unwrap_or_default()));
            }
        }
        other => out.extend(text_part(&content_text(other, param)?)),
    }
    if let Some(Value::Array(calls)) = message.get("tool_calls") {
        for (k, call) in calls.iter().enumerate() {
            let at = format!("{param}.tool_calls[{k}]");
            if let Some(kind) = call.get("type").and_then(Value::as_str) {
                if kind != "function" {
                    return Err(invalid(
                        format!("{at}.type"),
                        format!("Tool call type '{kind}' is not supported; only 'function' is."),
                    ));
                }
            }
            let function = call.get("function");
            let name = function_name(function, &format!("{at}.function"))?;
            let args = function_args(function, &format!("{at}.function.arguments"))?;
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                call_names.insert(id.to_string(), name.to_string());
            }
            out.push(json!({"functionCall": {"name": name, "args": args}}));
        }
    }
    if let Some(function) = message.get("function_call").filter(|f| !f.is_null()) {
        let at = format!("{param}.function_call");
        let name = function_name(Some(function), &at)?;
        let args = function_args(Some(function), &format!("{at}.arguments"))?;
        out.push(json!({"functionCall": {"name": name, "args": args}}));
    }
    Ok(out)
}

fn function_name<'a>(function: Option<&'a Value>, param: &str) -> Result<&'a str, GatewayError> {
    function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            invalid(
                format!("{param}.name"),
                format!("Missing required parameter: '{param}.name'."),
            )
        })
}

/// The arguments string of a call, parsed: Gemini takes them as a JSON object.
fn function_args(function: Option<&Value>, param: &str) -> Result<Value, GatewayError> {
    let arguments = match function.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => return Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(json!({})),
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid(param, "The arguments must be a string of JSON.")),
    };
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(invalid(
            param,
            "Gemini needs the arguments of a function call to be a JSON object.",
        )),
        Err(e) => Err(invalid(
            param,
            format!("The arguments of this function call are not valid JSON: {e}."),
        )),
    }
}

fn function_response(
    name: &str,
    content: Option<&Value>,
    param: &str,
) -> Result<Value, GatewayError> {
    let text = content_text(content, param)?;
    let value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    Ok(json!({"functionResponse": {"name": name, "response": {"content": value}}}))
}

fn function_declarations(tools: Option<&Value>) -> Result<Vec<Value>, GatewayError> {
    let Some(Value::Array(tools)) = tools else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let kind = tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            return Err(invalid(
                format!("{at}.type"),
                format!("Tool type '{kind}' is not supported by the Gemini translation; only 'function' is."),
            ));
        }
        let function = tool.get("function");
        let name = function_name(function, &format!("{at}.function"))?;
        let mut declaration = Map::new();
        declaration.insert("name".into(), name.into());
        if let Some(description) = function
            .and_then(|f| f.get("description"))
            .and_then(Value::as_str)
        {
            declaration.insert("description".into(), description.into());
        }
        if let Some(parameters) = function
            .and_then(|f| f.get("parameters"))
            .filter(|p| !p.is_null())
        {
            let schema = gemini_schema(parameters)
                .map_err(|m| invalid(format!("{at}.function.parameters"), m))?;
            if let Some(schema) = schema {
                declaration.insert("parameters".into(), schema);
            }
        }
        out.push(Value::Object(declaration));
    }
    Ok(out)
}

fn tool_config(choice: Option<&Value>, declared: &[&str]) -> Result<Option<Value>, GatewayError> {
    let (mode, names): (&str, Vec<String>) = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ("AUTO", vec![]),
            "none" => ("NONE", vec![]),
            "required" => ("ANY", vec![]),
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
                let name = function_name(o.get("function"), "tool_choice.function")?;
                ("ANY", vec![name.to_string()])
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
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                ("ANY", names)
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
        if mode == "ANY" {
            return Err(invalid(
                "tool_choice",
                "'tool_choice' asks for a tool call, but no tools are declared.",
            ));
        }
        return Ok(None);
    }
    if let Some(unknown) = names.iter().find(|n| !declared.contains(&n.as_str())) {
        return Err(invalid(
            "tool_choice",
            format!("'tool_choice' names the function '{unknown}', which is not among the declared tools."),
        ));
    }
    let mut config = Map::new();
    config.insert("mode".into(), mode.into());
    if !names.is_empty() {
        config.insert("allowedFunctionNames".into(), json!(names));
    }
    Ok(Some(json!({ "functionCallingConfig": config })))
}

fn generation_config(req: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let mut out = Map::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ] {
        if let Some(v) = present(req, from) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(max) = present(req, "max_completion_tokens").or_else(|| present(req, "max_tokens"))
    {
        out.insert("maxOutputTokens".into(), max.clone());
    }
    let stops: Vec<&Value> = match present(req, "stop") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => vec![],
    };
    let stops: Vec<&Value> = stops
        .into_iter()
        .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    if !stops.is_empty() {
        out.insert("stopSequences".into(), json!(stops));
    }
    if let Some(format) = present(req, "response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                out.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                out.insert("responseMimeType".into(), "application/json".into());
                let schema = format
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .filter(|s| !s.is_null());
                if let Some(schema) = schema {
                    let converted = gemini_schema(schema)
                        .map_err(|m| invalid("response_format.json_schema.schema", m))?;
                    if let Some(converted) = converted {
                        out.insert("responseSchema".into(), converted);
                    }
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
        let budget = match effort.as_str() {
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
        out.insert("thinkingConfig".into(), json!({ "thinkingBudget": budget }));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// JSON schema → Gemini `Schema`
// ---------------------------------------------------------------------------------------------

/// Keywords copied as they are (their values are not schemas).
const PLAIN_SCHEMA_KEYS: &[&str] = &[
    "title",
    "description",
    "default",
    "example",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "pattern",
    "propertyOrdering",
];

/// A JSON schema cut down to Gemini's `Schema` (see the module comment); `None` for an object
/// schema without properties, which Gemini refuses and which says nothing anyway.
fn gemini_schema(root: &Value) -> Result<Option<Value>, String> {
    let mut cx = SchemaCx {
        root,
        active_refs: Vec::new(),
        nodes: 0,
    };
    let schema = convert_schema(root, &mut cx, 0)?;
    let is_object = schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("object"));
    let no_properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if is_object && no_properties && schema.get("anyOf").is_none() {
        return Ok(None);
    }
    Ok(Some(schema))
}

fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(root, |node, segment| {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        node.get(segment.as_str())
    })
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// The state of one schema conversion.
struct SchemaCx<'a> {
    root: &'a Value,
    /// The `$ref`s being expanded around the current node: one seen again is a recursion.
    active_refs: Vec<String>,
    nodes: usize,
}

fn convert_schema(schema: &Value, cx: &mut SchemaCx, depth: usize) -> Result<Value, String> {
    cx.nodes += 1;
    if depth > MAX_SCHEMA_DEPTH || cx.nodes > MAX_SCHEMA_NODES {
        return Err("The schema nests too deeply or is too large for Gemini.".into());
    }
    let Some(src) = schema.as_object() else {
        // Boolean schemas (`true`): anything goes.
        return Ok(json!({}));
    };
    if let Some(reference) = src.get("$ref") {
        let reference = reference.as_str().unwrap_or_default();
        if cx.active_refs.iter().any(|r| r == reference) {
            return Err(format!(
                "The schema refers to itself through '{reference}', which Gemini cannot express."
            ));
        }
        let target = resolve_ref(cx.root, reference)
            .ok_or_else(|| format!("The schema reference '{reference}' cannot be resolved."))?;
        let mut merged = target.as_object().cloned().unwrap_or_default();
        for (k, v) in src {
            if k != "$ref" {
                merged.insert(k.clone(), v.clone());
            }
        }
        cx.active_refs.push(reference.to_string());
        let converted = convert_schema(&Value::Object(merged), cx, depth + 1);
        cx.active_refs.pop();
        return converted;
    }

    let mut out = Map::new();
    let mut nullable = src.get("nullable").and_then(Value::as_bool) == Some(true);
    let mut type_options = Vec::new();
    match src.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), t.as_str().into());
        }
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable |= named.contains(&"null");
            let rest: Vec<&str> = named.into_iter().filter(|t| *t != "null").collect();
            match rest.as_slice() {
                [one] => {
                    out.insert("type".into(), (*one).into());
                }
                many => type_options = many.iter().map(|t| json!({ "type": t })).collect(),
            }
        }
        _ => {}
    }
    let ty = out
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    for key in PLAIN_SCHEMA_KEYS {
        if let Some(v) = src.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    if let Some(Value::String(format)) = src.get("format") {
        let known = match ty.as_deref() {
            Some("string") => matches!(format.as_str(), "enum" | "date-time"),
            Some("number") => matches!(format.as_str(), "float" | "double"),
            Some("integer") => matches!(format.as_str(), "int32" | "int64"),
            _ => false,
        };
        if known {
            out.insert("format".into(), format.as_str().into());
        }
    }
    let enum_values = match (src.get("enum"), src.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = enum_values {
        nullable |= values.iter().any(Value::is_null);
        let strings: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        // Gemini's enum holds strings only.
        if !strings.is_empty() && strings.iter().all(Value::is_string) {
            out.insert("enum".into(), Value::Array(strings));
            out.entry("type").or_insert_with(|| "string".into());
        }
    }
    if let Some(Value::Object(properties)) = src.get("properties") {
        let mut converted = Map::new();
        for (name, property) in properties {
            converted.insert(name.clone(), convert_schema(property, cx, depth + 1)?);
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if let Some(Value::Array(required)) = src.get("required") {
        let names: Vec<Value> = required.iter().filter(|r| r.is_string()).cloned().collect();
        if !names.is_empty() {
            out.insert("required".into(), Value::Array(names));
        }
    }
    if let Some(items) = src.get("items").filter(|i| i.is_object()) {
        out.insert("items".into(), convert_schema(items, cx, depth + 1)?);
    }
    let any_of = src
        .get("anyOf")
        .or_else(|| src.get("oneOf"))
        .and_then(Value::as_array);
    let mut options = Vec::new();
    for option in any_of.into_iter().flatten() {
        if is_null_schema(option) {
            nullable = true;
        } else {
            options.push(convert_schema(option, cx, depth + 1)?);
        }
    }
    if options.is_empty() {
        options = type_options;
    }
    match options.len() {
        0 => {}
        1 if !out.contains_key("type") => {
            if let Some(Value::Object(only)) = options.pop() {
                merge_schema(&mut out, only);
            }
        }
        _ => {
            out.insert("anyOf".into(), Value::Array(options));
        }
    }
    if let Some(Value::Array(all)) = src.get("allOf") {
        for part in all {
            if let Value::Object(part) = convert_schema(part, cx, depth + 1)? {
                merge_schema(&mut out, part);
            }
        }
    }
    if nullable {
        out.insert("nullable".into(), true.into());
    }
    Ok(Value::Object(out))
}

/// Adds what `other` says and `out` does not: properties and required names are united, other
/// keywords of `out` win.
fn merge_schema(out: &mut Map<String, Value>, other: Map<String, Value>) {
    for (key, value) in other {
        match (out.get_mut(&key), value) {
            (Some(Value::Object(mine)), Value::Object(theirs)) if key == "properties" => {
                for (k, v) in theirs {
                    mine.entry(k).or_insert(v);
                }
            }
            (Some(Value::Array(mine)), Value::Array(theirs)) if key == "required" => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (Some(_), _) => {}
            (None, value) => {
                out.insert(key, value);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings request
// ---------------------------------------------------------------------------------------------

/// The `batchEmbedContents` body, and whether the client wants base64 vectors.
fn embeddings_request(
    req: &Map<String, Value>,
    model: &str,
) -> Result<(Value, bool), GatewayError> {
    let token_arrays = || {
        invalid(
            "input",
            "Gemini embeds text only; token arrays are not supported. Send strings.",
        )
    };
    let inputs: Vec<&str> = match req.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(token_arrays))
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("input")),
        Some(_) => return Err(token_arrays()),
    };
    let dimensions = present(req, "dimensions").cloned();
    let resource = format!("models/{model}");
    let requests: Vec<Value> = inputs
        .iter()
        .map(|text| {
            let mut r = json!({"model": resource, "content": {"parts": [{"text": text}]}});
            if let (Some(d), Value::Object(o)) = (&dimensions, &mut r) {
                o.insert("outputDimensionality".into(), d.clone());
            }
            r
        })
        .collect();
    let base64 = present(req, "encoding_format").and_then(Value::as_str) == Some("base64");
    Ok((json!({ "requests": requests }), base64))
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn is_success(status: u32) -> bool {
    (200..300).contains(&status)
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Gemini `usageMetadata` → normalized usage.
fn usage_from(metadata: &Value) -> Usage {
    let prompt = count(metadata, "promptTokenCount") + count(metadata, "toolUsePromptTokenCount");
    let thoughts = count(metadata, "thoughtsTokenCount");
    let completion = count(metadata, "candidatesTokenCount") + thoughts;
    Usage {
        prompt,
        completion,
        total: metadata
            .get("totalTokenCount")
            .and_then(Value::as_u64)
            .unwrap_or(prompt + completion),
        cached_prompt: count(metadata, "cachedContentTokenCount"),
        cache_write: 0,
        reasoning: thoughts,
    }
}

/// What one `GenerateContentResponse` (a whole answer or one stream event) says.
#[derive(Default)]
struct Piece {
    texts: Vec<String>,
    /// (name, arguments as a JSON string)
    calls: Vec<(String, String)>,
    finish: Option<String>,
    blocked: bool,
    usage: Option<Usage>,
}

fn read_piece(v: &Value) -> Piece {
    let mut piece = Piece::default();
    let candidate = v
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    if let Some(candidate) = candidate {
        let parts = candidate
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                piece.texts.push(text.to_string());
            }
            if let Some(call) = part.get("functionCall") {
                let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
                let args = call
                    .get("args")
                    .filter(|a| !a.is_null())
                    .map_or_else(|| "{}".to_string(), Value::to_string);
                piece.calls.push((name.to_string(), args));
            }
        }
        piece.finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    piece.blocked = v
        .get("promptFeedback")
        .and_then(|f| f.get("blockReason"))
        .is_some_and(|r| !r.is_null());
    piece.usage = v.get("usageMetadata").map(usage_from);
    piece
}

fn finish_reason(raw: Option<&str>, blocked: bool, has_calls: bool) -> &'static str {
    if blocked {
        return "content_filter";
    }
    match raw {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => "content_filter",
        _ if has_calls => "tool_calls",
        _ => "stop",
    }
}

fn call_id(n: usize) -> String {
    format!("call_{n}")
}

/// The message of a Gemini error object, or `None` when it is none.
fn error_object(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items.first().and_then(error_object),
        other => other.get("error").filter(|e| e.is_object()),
    }
}

fn is_key_rejection(error: &Value) -> bool {
    error
        .get("details")
        .and_then(Value::as_array)
        .is_some_and(|details| {
            details
                .iter()
                .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
        })
}

/// An OpenAI error body for a Gemini error answer (any non-2xx, or an error object).
fn error_answer(status: u32, body: &[u8], provider_auth: &str) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(error_object);
    let message = match error {
        Some(e) if is_key_rejection(e) => provider_auth.to_string(),
        Some(e) => {
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            let code = e.get("status").and_then(Value::as_str).unwrap_or_default();
            match (message.is_empty(), code.is_empty()) {
                (false, _) => message.to_string(),
                (true, false) => format!("Gemini answered {code} (HTTP {status})."),
                (true, true) => format!("Gemini answered HTTP {status}."),
            }
        }
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("Gemini answered HTTP {status}.")
            } else {
                let cut: String = text.chars().take(MAX_ERROR_TEXT).collect();
                format!("Gemini answered HTTP {status}: {cut}")
            }
        }
    };
    openai_format::error_body(status, &message)
}

/// A status for an error object found in a 2xx body or a stream: its `code`, else 502.
fn error_status(error: &Value) -> u32 {
    error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(502)
}

static FALLBACK_IDS: AtomicU64 = AtomicU64::new(0);

fn completion_id(v: Option<&Value>, fallback_model: &str, created: u64) -> CompletionId {
    let field = |key: &str| {
        v.and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let id = match field("responseId") {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!(
            "chatcmpl-gemini-{created}-{}",
            FALLBACK_IDS.fetch_add(1, Ordering::Relaxed)
        ),
    };
    CompletionId {
        id,
        created,
        model: field("modelVersion").unwrap_or(fallback_model).to_string(),
    }
}

/// Translates a chat answer: a whole `GenerateContentResponse`, or its SSE stream.
struct ChatResponse {
    stream: bool,
    status: u32,
    sse: bool,
    body: Vec<u8>,
    parser: SseParser,
    fallback_model: String,
    created: u64,
    provider_auth: String,
    /// Set by the first event; the role chunk has been sent.
    id: Option<CompletionId>,
    calls: usize,
    finish: Option<String>,
    blocked: bool,
    usage: Usage,
    /// `[DONE]` has been sent; nothing follows.
    done: bool,
}

impl ChatResponse {
    fn new(stream: bool, fallback_model: String, created: u64, provider_auth: String) -> Self {
        Self {
            stream,
            status: 0,
            sse: false,
            body: Vec::new(),
            parser: SseParser::new(),
            fallback_model,
            created,
            provider_auth,
            id: None,
            calls: 0,
            finish: None,
            blocked: false,
            usage: Usage::default(),
            done: false,
        }
    }

    fn whole(&mut self) -> Vec<u8> {
        let body = std::mem::take(&mut self.body);
        if !is_success(self.status) {
            return error_answer(self.status, &body, &self.provider_auth);
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return openai_format::error_body(502, "Gemini answered with a body that is not JSON.");
        };
        if let Some(error) = error_object(&v) {
            return error_answer(error_status(error), &body, &self.provider_auth);
        }
        let piece = read_piece(&v);
        let id = completion_id(Some(&v), &self.fallback_model, self.created);
        let content = if piece.texts.is_empty() {
            Value::Null
        } else {
            Value::String(piece.texts.concat())
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !piece.calls.is_empty() {
            let calls: Vec<Value> = piece
                .calls
                .iter()
                .enumerate()
                .map(|(n, (name, args))| openai_format::tool_call(None, &call_id(n), name, args))
                .collect();
            if let Value::Object(m) = &mut message {
                m.insert("tool_calls".into(), Value::Array(calls));
            }
        }
        let finish = finish_reason(
            piece.finish.as_deref(),
            piece.blocked,
            !piece.calls.is_empty(),
        );
        openai_format::completion(&id, message, finish, &piece.usage.unwrap_or_default())
    }

    /// The stream's identity, sending the role chunk first when this is the first event.
    fn started(&mut self, v: Option<&Value>, out: &mut Vec<u8>) -> CompletionId {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let id = completion_id(v, &self.fallback_model, self.created);
        out.extend(openai_format::chunk_event(
            &id,
            json!({"role": "assistant", "content": ""}),
            None,
        ));
        self.id = Some(id.clone());
        id
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return; // not a GenerateContentResponse: nothing to translate
        };
        if let Some(error) = error_object(&v) {
            let e = GatewayError::Upstream {
                status: error_status(error),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                    .unwrap_or("Gemini reported an error in the stream.")
                    .to_string(),
            };
            out.extend(openai_format::error_event(
                &e.to_string(),
                e.error_type(),
                Some(e.code()),
            ));
            out.extend_from_slice(openai_format::DONE);
            self.done = true;
            return;
        }
        let id = self.started(Some(&v), out);
        let piece = read_piece(&v);
        for text in piece.texts.iter().filter(|t| !t.is_empty()) {
            out.extend(openai_format::chunk_event(
                &id,
                json!({ "content": text }),
                None,
            ));
        }
        for (name, args) in &piece.calls {
            let n = self.calls;
            self.calls += 1;
            let call = openai_format::tool_call(Some(n), &call_id(n), name, args);
            out.extend(openai_format::chunk_event(
                &id,
                json!({ "tool_calls": [call] }),
                None,
            ));
        }
        if piece.finish.is_some() {
            self.finish = piece.finish;
        }
        self.blocked |= piece.blocked;
        if let Some(usage) = piece.usage {
            self.usage = usage;
        }
    }

    /// The end of the stream: the finish chunk, the usage chunk and `[DONE]`, whatever came.
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let id = self.started(None, out);
        let finish = finish_reason(self.finish.as_deref(), self.blocked, self.calls > 0);
        out.extend(openai_format::chunk_event(&id, json!({}), Some(finish)));
        out.extend(openai_format::usage_event(&id, &self.usage));
        out.extend_from_slice(openai_format::DONE);
        self.done = true;
    }
}

impl ResponseTranslator for ChatResponse {
    fn start(&mut self, status: u32, _content_type: Option<&str>) -> ResponseShape {
        self.status = status;
        self.sse = self.stream && is_success(status);
        if self.sse {
            ResponseShape::SSE
        } else {
            ResponseShape::JSON
        }
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        if !self.sse {
            self.body.extend_from_slice(chunk);
            return if end { self.whole() } else { Vec::new() };
        }
        let mut events = Vec::new();
        self.parser.feed(chunk, &mut events);
        if end {
            self.parser.finish(&mut events);
        }
        let mut out = Vec::new();
        for event in events {
            if let Some(data) = event.data {
                self.on_event(&data, &mut out);
            }
        }
        if end {
            self.close(&mut out);
        }
        out
    }
}

/// Translates a `batchEmbedContents` answer.
struct EmbeddingsResponse {
    status: u32,
    body: Vec<u8>,
    model: String,
    base64: bool,
    provider_auth: String,
}

impl EmbeddingsResponse {
    fn whole(&mut self) -> Vec<u8> {
        let body = std::mem::take(&mut self.body);
        if !is_success(self.status) {
            return error_answer(self.status, &body, &self.provider_auth);
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return openai_format::error_body(502, "Gemini answered with a body that is not JSON.");
        };
        if let Some(error) = error_object(&v) {
            return error_answer(error_status(error), &body, &self.provider_auth);
        }
        let vectors: Vec<Vec<f64>> = v
            .get("embeddings")
            .and_then(Value::as_array)
            .map(|embeddings| {
                embeddings
                    .iter()
                    .map(|e| {
                        e.get("values")
                            .and_then(Value::as_array)
                            .map(|values| values.iter().filter_map(Value::as_f64).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let prompt = v
            .get("usageMetadata")
            .map(|u| count(u, "promptTokenCount"))
            .unwrap_or(0);
        let usage = Usage {
            prompt,
            total: prompt,
            ..Usage::default()
        };
        openai_format::embeddings(&self.model, &vectors, self.base64, &usage)
    }
}

impl ResponseTranslator for EmbeddingsResponse {
    fn start(&mut self, status: u32, _content_type: Option<&str>) -> ResponseShape {
        self.status = status;
        ResponseShape::JSON
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        self.body.extend_from_slice(chunk);
        if end {
            self.whole()
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const NOW: u64 = 1_700_000_000;

    fn config() -> Config {
        let json = r#"{"providers": {
                "google": {"type": "gemini", "api_key_env": "GEMINI_API_KEY"},
                "keyless": {"type": "gemini", "path_prefix": "/proxy/v1beta"}},
            "models": {
                "gem": {"provider": "google", "model": "gemini-2.0-flash"},
                "prefixed": {"provider": "google", "model": "models/gemini-2.5-pro"},
                "odd": {"provider": "google", "model": "my model/v1:x"},
                "embed": {"provider": "google", "model": "text-embedding-004"},
                "local": {"provider": "keyless", "model": "gemini-local"}}}"#;
        Config::from_json(json.as_bytes(), &|_| Some("g-key-123".into())).unwrap()
    }

    fn attempt<'a>(
        c: &'a Config,
        model: &'a str,
        operation: Operation,
        stream: bool,
    ) -> Attempt<'a> {
        let m = &c.models[model];
        Attempt {
            provider: c.provider_of(m).unwrap(),
            operation,
            client_model: model,
            upstream_model: &m.upstream_model,
            stream,
            client_asked_usage: false,
            embeddings_base64: false,
            now_unix: NOW,
        }
    }

    fn testdata(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/gemini/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn testdata_json(name: &str) -> Value {
        serde_json::from_slice(&testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Compares JSON semantically; `arguments` strings (tool-call arguments, JSON in a string)
    /// are compared as the JSON they hold.
    fn normalize(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v) {
                            ("arguments", Value::String(s)) => {
                                serde_json::from_str(s).unwrap_or_else(|_| v.clone())
                            }
                            _ => normalize(v),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
            other => other.clone(),
        }
    }

    fn assert_json_eq(got: &Value, want: &Value, what: &str) {
        assert_eq!(
            normalize(got),
            normalize(want),
            "{what}\n got: {}\nwant: {}",
            serde_json::to_string_pretty(got).unwrap(),
            serde_json::to_string_pretty(want).unwrap()
        );
    }

    fn request(
        model: &str,
        operation: Operation,
        stream: bool,
        body: &[u8],
    ) -> Result<UpstreamRequest, GatewayError> {
        let c = config();
        Gemini.request(&attempt(&c, model, operation, stream), body)
    }

    fn chat_body(body: Value) -> Result<Value, GatewayError> {
        let r = request("gem", Operation::Chat, false, body.to_string().as_bytes())?;
        Ok(serde_json::from_slice(&r.body.unwrap()).unwrap())
    }

    // --- request golden files --------------------------------------------------------------

    #[test]
    fn request_golden_files() {
        let cases = [
            (
                "request_chat",
                Operation::Chat,
                false,
                "/v1beta/models/gemini-2.0-flash:generateContent",
            ),
            (
                "request_image",
                Operation::Chat,
                false,
                "/v1beta/models/gemini-2.5-pro:generateContent",
            ),
            (
                "request_tools",
                Operation::Chat,
                false,
                "/v1beta/models/gemini-2.0-flash:generateContent",
            ),
            (
                "request_json_schema",
                Operation::Chat,
                true,
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            ),
            (
                "request_embeddings",
                Operation::Embeddings,
                false,
                "/v1beta/models/text-embedding-004:batchEmbedContents",
            ),
        ];
        for (name, operation, stream, path) in cases {
            let input = testdata(&format!("{name}.openai.json"));
            let model = serde_json::from_slice::<Value>(&input).unwrap()["model"]
                .as_str()
                .unwrap()
                .to_string();
            let r = request(&model, operation, stream, &input)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.path, path, "{name}");
            assert_eq!(
                r.headers,
                vec![
                    ("x-goog-api-key", "g-key-123".to_string()),
                    ("content-type", "application/json".to_string())
                ],
                "{name}"
            );
            let got: Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
            assert_json_eq(&got, &testdata_json(&format!("{name}.gemini.json")), name);
        }
    }

    #[test]
    fn path_prefix_key_and_model_segment() {
        let local = request(
            "local",
            Operation::Chat,
            true,
            br#"{"model":"local","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(
            local.path,
            "/proxy/v1beta/models/gemini-local:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            local.headers,
            vec![("content-type", "application/json".to_string())],
            "no key configured: no x-goog-api-key"
        );
        let odd = request(
            "odd",
            Operation::Chat,
            false,
            br#"{"model":"odd","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(
            odd.path,
            "/v1beta/models/my%20model%2Fv1%3Ax:generateContent"
        );
    }

    // --- request refusals ------------------------------------------------------------------

    fn refused(body: Value) -> (u32, String) {
        let e = chat_body(body.clone()).expect_err(&body.to_string());
        (e.status(), e.param().unwrap_or_default().to_string())
    }

    #[test]
    fn requests_gemini_cannot_honour_are_refused_naming_the_parameter() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let call = |args: &str| {
            json!({"model": "gem", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}]}]})
        };
        let cases = [
            (json!({"model": "gem", "messages": user, "n": 2}), "n"),
            (
                json!({"model": "gem", "messages": user, "logprobs": true}),
                "logprobs",
            ),
            (
                json!({"model": "gem", "messages": user, "logit_bias": {"50256": -100}}),
                "logit_bias",
            ),
            (
                call("{not json"),
                "messages[1].tool_calls[0].function.arguments",
            ),
            (
                call("[1, 2]"),
                "messages[1].tool_calls[0].function.arguments",
            ),
            (
                json!({"model": "gem", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "42"}]}),
                "messages[0].tool_call_id",
            ),
            (
                json!({"model": "gem", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/pic"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!({"model": "gem", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!({"model": "gem", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}),
                "messages[0].content[0].file",
            ),
            (
                json!({"model": "gem", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, {"role": "user", "content": "hi"}]}),
                "messages[0].content[0].type",
            ),
            (
                json!({"model": "gem", "messages": user, "tool_choice": "required"}),
                "tool_choice",
            ),
            (
                json!({"model": "gem", "messages": user, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}),
                "tool_choice",
            ),
            (
                json!({"model": "gem", "messages": user, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}}}]}),
                "tools[0].function.parameters",
            ),
            (
                json!({"model": "gem", "messages": user, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}}}]}),
                "tools[0].function.parameters",
            ),
            (
                json!({"model": "gem", "messages": user, "tools": [{"type": "custom", "custom": {"name": "f"}}]}),
                "tools[0].type",
            ),
            (
                json!({"model": "gem", "messages": user, "response_format": {"type": "yaml"}}),
                "response_format.type",
            ),
        ];
        for (body, param) in cases {
            assert_eq!(refused(body.clone()), (400, param.to_string()), "{body}");
        }
    }

    #[test]
    fn embeddings_refuse_token_arrays() {
        for input in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
            let body = json!({"model": "embed", "input": input}).to_string();
            let e = request("embed", Operation::Embeddings, false, body.as_bytes()).unwrap_err();
            assert_eq!((e.status(), e.param()), (400, Some("input")));
        }
    }

    #[test]
    fn tool_results_use_the_latest_call_of_that_id_and_legacy_functions_map() {
        let out = chat_body(json!({"model": "gem", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "first", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": [{"type": "text", "text": "true"}]},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "second", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "plain"},
            {"role": "assistant", "content": null, "function_call": {"name": "legacy", "arguments": "{\"a\":1}"}},
            {"role": "function", "name": "legacy", "content": "done"}]}))
        .unwrap();
        let want = json!([
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "first", "args": {}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "first", "response": {"content": true}}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "second", "args": {}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "second", "response": {"content": "plain"}}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "legacy", "args": {"a": 1}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "legacy", "response": {"content": "done"}}}]},
        ]);
        assert_json_eq(&out["contents"], &want, "contents");
    }

    #[test]
    fn tool_choice_modes_and_audio_and_json_mode() {
        let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}},
                           {"type": "function", "function": {"name": "g"}}]);
        for (choice, want) in [
            (json!("auto"), json!({"mode": "AUTO"})),
            (json!("none"), json!({"mode": "NONE"})),
            (json!("required"), json!({"mode": "ANY"})),
            (
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "g"}}]}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["g"]}),
            ),
        ] {
            let out = chat_body(json!({"model": "gem", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice})).unwrap();
            assert_eq!(out["toolConfig"]["functionCallingConfig"], want, "{choice}");
        }
        let out = chat_body(json!({"model": "gem", "response_format": {"type": "json_object"}, "max_tokens": 9, "stop": ["a", "b"],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "listen"},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]}))
        .unwrap();
        assert_eq!(
            out["generationConfig"],
            json!({"responseMimeType": "application/json", "maxOutputTokens": 9, "stopSequences": ["a", "b"]})
        );
        assert_eq!(
            out["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}})
        );
        assert!(out.get("toolConfig").is_none() && out.get("tools").is_none());
    }

    #[test]
    fn schema_conversion_inlines_all_of_and_type_unions() {
        let schema = json!({
            "definitions": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
            "allOf": [{"$ref": "#/definitions/Base"}],
            "properties": {"kind": {"const": "cat"}, "size": {"type": ["integer", "string"]},
                           "v": {"oneOf": [{"type": "number", "format": "float"}, {"type": "boolean"}]}},
            "required": ["kind"],
            "additionalProperties": false
        });
        let want = json!({
            "type": "object",
            "properties": {"id": {"type": "integer"}, "kind": {"type": "string", "enum": ["cat"]},
                           "size": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                           "v": {"anyOf": [{"type": "number", "format": "float"}, {"type": "boolean"}]}},
            "required": ["kind", "id"]
        });
        assert_eq!(gemini_schema(&schema).unwrap(), Some(want));
        assert_eq!(gemini_schema(&json!({"type": "object"})).unwrap(), None);
    }

    #[test]
    fn self_referring_and_exploding_schemas_are_refused_quickly() {
        let tree = json!({"$defs": {"Node": {"type": "object", "properties": {
                "left": {"$ref": "#/$defs/Node"}, "right": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node"});
        let e = gemini_schema(&tree).unwrap_err();
        assert!(e.contains("refers to itself"), "{e}");
        // Not recursive, but each level doubles: 2^30 copies if nothing stopped it.
        let mut defs = Map::new();
        for level in 0..30 {
            defs.insert(
                format!("L{level}"),
                json!({"type": "object", "properties": {
                "a": {"$ref": format!("#/$defs/L{}", level + 1)},
                "b": {"$ref": format!("#/$defs/L{}", level + 1)}}}),
            );
        }
        defs.insert("L30".into(), json!({"type": "string"}));
        let started = std::time::Instant::now();
        let e = gemini_schema(&json!({"$defs": defs, "$ref": "#/$defs/L0"})).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    // --- response golden files -------------------------------------------------------------

    fn translate(
        model: &str,
        operation: Operation,
        stream: bool,
        status: u32,
        content_type: &str,
        pieces: &[&[u8]],
    ) -> (ResponseShape, Vec<u8>) {
        let c = config();
        let mut t = Gemini
            .response(&attempt(&c, model, operation, stream))
            .unwrap();
        let shape = t.start(status, Some(content_type));
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            out.extend(t.body(piece, i + 1 == pieces.len()));
        }
        (shape, out)
    }

    #[test]
    fn response_golden_files() {
        for name in [
            "response_text",
            "response_function_call",
            "response_usage",
            "response_blocked",
        ] {
            let body = testdata(&format!("{name}.gemini.json"));
            let (shape, out) = translate(
                "gem",
                Operation::Chat,
                false,
                200,
                "application/json",
                &[&body],
            );
            assert_eq!(shape, ResponseShape::JSON);
            let got: Value = serde_json::from_slice(&out).unwrap();
            assert_json_eq(&got, &testdata_json(&format!("{name}.openai.json")), name);
        }
    }

    #[test]
    fn error_golden_file_keeps_the_status() {
        let body = testdata("error_429.gemini.json");
        for stream in [false, true] {
            let (shape, out) = translate(
                "gem",
                Operation::Chat,
                stream,
                429,
                "application/json",
                &[&body],
            );
            assert_eq!(
                shape,
                ResponseShape::JSON,
                "errors are JSON even for streams"
            );
            let got: Value = serde_json::from_slice(&out).unwrap();
            assert_json_eq(&got, &testdata_json("error_429.openai.json"), "error_429");
        }
    }

    #[test]
    fn invalid_key_and_unreadable_errors() {
        let key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
        let (_, out) = translate(
            "gem",
            Operation::Chat,
            false,
            400,
            "application/json",
            &[key.to_string().as_bytes()],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("'google' refused the gateway's credentials"),
            "{message}"
        );
        let (_, out) = translate(
            "gem",
            Operation::Chat,
            false,
            503,
            "text/html",
            &[b"<h1>upstream ", b"overloaded</h1>"],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["error"]["message"],
            "Gemini answered HTTP 503: <h1>upstream overloaded</h1>"
        );
        assert_eq!(v["error"]["code"], "upstream_unavailable");
        let (_, out) = translate(
            "gem",
            Operation::Chat,
            false,
            200,
            "application/json",
            &[b"{\"candid"],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["type"], "upstream_error");
    }

    #[test]
    fn finish_reasons() {
        let cases = [
            (Some("STOP"), false, false, "stop"),
            (Some("STOP"), false, true, "tool_calls"),
            (None, false, true, "tool_calls"),
            (Some("MAX_TOKENS"), false, true, "length"),
            (Some("SAFETY"), false, false, "content_filter"),
            (Some("RECITATION"), false, false, "content_filter"),
            (Some("BLOCKLIST"), false, false, "content_filter"),
            (Some("PROHIBITED_CONTENT"), false, false, "content_filter"),
            (Some("SPII"), false, false, "content_filter"),
            (Some("MALFORMED_FUNCTION_CALL"), false, false, "stop"),
            (None, true, false, "content_filter"),
        ];
        for (raw, blocked, calls, want) in cases {
            assert_eq!(
                finish_reason(raw, blocked, calls),
                want,
                "{raw:?} {blocked} {calls}"
            );
        }
    }

    #[test]
    fn embeddings_answer_in_floats_or_base64_as_asked() {
        let c = config();
        let body = testdata("response_embeddings.gemini.json");
        for (format, expected) in [
            ("float", "response_embeddings.openai.json"),
            ("base64", "response_embeddings_base64.openai.json"),
        ] {
            let mut a = attempt(&c, "embed", Operation::Embeddings, false);
            let req = json!({"model": "embed", "input": ["a", "b"], "encoding_format": format})
                .to_string();
            a.embeddings_base64 = crate::chat::embeddings_base64(req.as_bytes());
            Gemini.request(&a, req.as_bytes()).unwrap();
            let mut t = Gemini.response(&a).unwrap();
            assert_eq!(t.start(200, Some("application/json")), ResponseShape::JSON);
            let got: Value = serde_json::from_slice(&t.body(&body, true)).unwrap();
            assert_json_eq(&got, &testdata_json(expected), expected);
        }
        // No request seen for this attempt: floats.
        let (_, out) = translate(
            "embed",
            Operation::Embeddings,
            false,
            200,
            "application/json",
            &[&body],
        );
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_json_eq(
            &got,
            &testdata_json("response_embeddings.openai.json"),
            "default",
        );
    }

    // --- streams ---------------------------------------------------------------------------

    /// The translated stream fed whole, and fed in two pieces cut at every byte offset.
    fn run_stream_all_splits(stream: &[u8]) -> Vec<u8> {
        let (shape, whole) = translate(
            "gem",
            Operation::Chat,
            true,
            200,
            "text/event-stream",
            &[stream],
        );
        assert_eq!(shape, ResponseShape::SSE);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let (_, split) = translate(
                "gem",
                Operation::Chat,
                true,
                200,
                "text/event-stream",
                &[a, b],
            );
            assert_eq!(
                String::from_utf8_lossy(&split),
                String::from_utf8_lossy(&whole),
                "split at {cut}"
            );
        }
        let (_, bytewise) = {
            let pieces: Vec<&[u8]> = stream.chunks(1).chain(std::iter::once(&[][..])).collect();
            translate(
                "gem",
                Operation::Chat,
                true,
                200,
                "text/event-stream",
                &pieces,
            )
        };
        assert_eq!(bytewise, whole, "one byte at a time");
        whole
    }

    /// An OpenAI SSE stream as its events' JSON (`[DONE]` as a string); every block must be one
    /// `data:` line followed by a blank line.
    fn sse_events(bytes: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with("\n\n"), "{text:?}");
        text.split_terminator("\n\n")
            .map(|block| {
                let data = block
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("{block:?}"));
                if data == "[DONE]" {
                    Value::String(data.into())
                } else {
                    serde_json::from_str(data).unwrap_or_else(|e| panic!("{data}: {e}"))
                }
            })
            .collect()
    }

    #[test]
    fn stream_golden_files_whole_and_split_everywhere() {
        for name in ["stream_text_and_call", "stream_error"] {
            let out = run_stream_all_splits(&testdata(&format!("{name}.gemini.sse")));
            let got = Value::Array(sse_events(&out));
            let want = Value::Array(sse_events(&testdata(&format!("{name}.openai.sse"))));
            assert_json_eq(&got, &want, name);
        }
    }

    #[test]
    fn a_stream_without_finish_reason_or_events_still_ends() {
        let cut_short = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}]}}], \"responseId\": \"r\"}\r\n\r\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}]}}]}";
        let events = sse_events(&run_stream_all_splits(cut_short));
        let content: String = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "Hello", "the unterminated last event is delivered");
        let n = events.len();
        assert_eq!(events[n - 3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(events[n - 2]["choices"], json!([]));
        assert_eq!(events[n - 2]["usage"]["total_tokens"], 0);
        assert_eq!(events[n - 1], "[DONE]");

        let (_, empty) = translate(
            "gem",
            Operation::Chat,
            true,
            200,
            "text/event-stream",
            &[b""],
        );
        let events = sse_events(&empty);
        assert_eq!(events.len(), 4, "role, finish, usage, [DONE]: {events:?}");
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(
            events[1]["model"], "gemini-2.0-flash",
            "the configured model when Gemini names none"
        );
    }

    #[test]
    fn a_blocked_prompt_in_a_stream_ends_with_content_filter() {
        let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, \"usageMetadata\": {\"promptTokenCount\": 3, \"totalTokenCount\": 3}, \"responseId\": \"b\"}\n\n";
        let events = sse_events(&run_stream_all_splits(blocked));
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[1]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(events[2]["usage"]["prompt_tokens"], 3);
    }
}
