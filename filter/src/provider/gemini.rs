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

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config::ApiKeyEnv;
use super::openai_format::{self, CompletionId};
use super::{
    percent_encode, Attempt, Operation, ResponseShape, ResponseTranslator, Translator,
    UpstreamRequest,
};
use crate::error::{invalid, parse_object, GatewayError};
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

impl Translator for Gemini {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let req = parse_object(body)?;
        let model = model_id(attempt.upstream_model);
        let (method, out) = match attempt.operation {
            Operation::Chat => {
                super::openai::refuse_multiple_choices(
                    attempt,
                    req.get("n").and_then(Value::as_u64),
                )?;
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
        if let Some(key) = attempt.api_key() {
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

/// The settings of a Gemini provider (`providers.<id>`, besides the common keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiSettings {
    pub api_key_env: Option<ApiKeyEnv>,
}

mod response;
mod schema;
#[cfg(test)]
mod tests;

use response::*;
use schema::*;
