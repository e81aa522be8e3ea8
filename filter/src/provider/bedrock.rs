//! AWS Bedrock: chat through the Converse and ConverseStream APIs, embeddings through
//! InvokeModel (Amazon Titan text embeddings, Cohere Embed), every request signed with AWS
//! Signature Version 4 inside the filter ([`sigv4`]); streamed answers arrive in the binary
//! `application/vnd.amazon.eventstream` framing ([`eventstream`]) and leave as OpenAI SSE.
//!
//! References:
//! - Converse: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
//! - ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
//!   and https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
//! - Token usage: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html
//!   and prompt caching: https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html
//! - Structured output: https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html
//! - Titan embeddings: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
//! - Cohere Embed: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html
//! - SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
//!
//! Requests go to `bedrock-runtime.{region}.amazonaws.com` (set as `:authority` and signed as
//! `host`): `POST {path_prefix}/model/{modelId}/converse` (or `/converse-stream` when streaming,
//! `/invoke` for embeddings), the model id percent-encoded in the path (and encoded once more in
//! the SigV4 canonical URI, as for every service but S3). Signed headers: `content-type`,
//! `host`, `x-amz-content-sha256`, `x-amz-date`, and `x-amz-security-token` with a session token.
//!
//! Chat, mapped:
//! - `messages`: `system`/`developer` → `system: [{text}]`; `user` text and `image_url` data URLs
//!   (png, jpeg, gif, webp) → `text` / `image {format, source: {bytes}}` blocks; `assistant`
//!   text and `tool_calls` → `text` / `toolUse {toolUseId, name, input}` (arguments parsed as
//!   JSON); `tool` → `toolResult {toolUseId, content: [{text}]}` in a user turn (always `text`:
//!   every Converse model takes it, not every one takes `json`). Consecutive turns of one role
//!   are merged, as Converse wants roles to alternate. Blank text parts are left out (Converse
//!   refuses blank text). Tool-call ids are kept, characters outside `[A-Za-z0-9_-]` becoming
//!   `_` (Converse's `toolUseId` pattern), the same way in calls and results.
//! - `max_completion_tokens` / `max_tokens` → `inferenceConfig.maxTokens`; `temperature`,
//!   `top_p` → `topP`, `stop` → `stopSequences` (Bedrock checks the ranges per model).
//! - `tools` (function tools) → `toolConfig.tools[].toolSpec {name, description,
//!   inputSchema: {json}}`; `tool_choice` `auto` → `{auto}`, `required` → `{any}`, a named
//!   function → `{tool: {name}}`; `none` → no `toolConfig` at all (Converse has no "none";
//!   Bedrock then refuses a history holding tool calls, with its own 400).
//! - `response_format` `json_schema` → `outputConfig.textFormat {type: json_schema,
//!   structure: {jsonSchema: {schema (as a string), name, description}}}`; `text` → nothing.
//! - `cache_control` markers ([`cache_marks`]) on content parts, system parts, whole messages
//!   and `tools[i]` → a `cachePoint {type: default}` block right after the marked block (in
//!   `system`, the message's `content`, `toolConfig.tools`); a marker's `ttl` is dropped.
//!   Bedrock checks the per-model limits itself (models without caching answer with their 400).
//!
//! Chat, refused with a 400 (the answer would not be what was asked): `n > 1`; image links
//! (`http(s)://`: Bedrock takes image bytes only); other image types; content parts other than
//! text and images (audio, files); non-function tools; `response_format` `json_object` (no
//! schema-less JSON mode); `tool_choice` `required` or a named tool without `tools`; the
//! deprecated `function` role; tool-call arguments that are not JSON.
//!
//! Chat, dropped (no Converse equivalent; OpenAI treats them as hints or metadata):
//! `frequency_penalty`, `presence_penalty`, `seed`, `logit_bias`, `logprobs`, `top_logprobs`,
//! `user`, `parallel_tool_calls`, `store`, `metadata`, `service_tier`, `reasoning_effort`,
//! `prediction`, `modalities`, `audio`, `web_search_options`, `stream_options` (usage always
//! comes), message `name`s, image `detail`, tool `strict`. Reasoning blocks in answers are
//! dropped too (the OpenAI chat format has no field for them).
//!
//! Answers: `output.message.content` text → `content`, `toolUse` → `tool_calls` (arguments =
//! the input as a JSON string); `stopReason` `end_turn`/`stop_sequence` → `stop`, `max_tokens`
//! and `model_context_window_exceeded` → `length`, `tool_use` → `tool_calls`,
//! `guardrail_intervened`/`content_filtered` → `content_filter`. Usage: Bedrock's
//! `inputTokens` counts only the input that was neither read from nor written to the cache
//! (as Anthropic counts it; cache tokens come apart in `cacheReadInputTokens` and
//! `cacheWriteInputTokens`), so the normalized `prompt` is their sum, `cached_prompt` the
//! cache reads and `cache_write` the writes; `total` = prompt + completion.
//! Errors (non-2xx, `{"message": ...}`) → the OpenAI error shape with Bedrock's status.
//!
//! Streams (ConverseStream events): `messageStart` → the role chunk; `contentBlockStart` with
//! `toolUse` → a `tool_calls` chunk (id, name, empty arguments) with its OpenAI index;
//! `contentBlockDelta` → `content` or `tool_calls[].function.arguments` chunks; `messageStop` →
//! the finish chunk; `metadata` → the usage chunk (always: the gateway strips it when unwanted)
//! and `[DONE]`. An exception message (`throttlingException`, ...), an error message, a CRC
//! failure or a stream cut inside the answer → an OpenAI error event and `[DONE]`.
//!
//! Embeddings (`POST /model/{modelId}/invoke`): `amazon.titan-embed-*` → `{"inputText",
//! "dimensions"?}` → `{"embedding", "inputTextTokenCount"}`, one input per request (more →
//! 400); `cohere.embed-*` → `{"texts", "input_type": "search_document", "output_dimension"?}`
//! → `{"embeddings": [[...]]}` (or `{"embeddings": {"float": [[...]]}}`); Cohere's answer body
//! carries no token count, so its usage is 0. Token-array inputs → 400 (Bedrock takes text);
//! other model families → 400. `encoding_format: base64` is honoured.

mod eventstream;
mod settings;
mod sigv4;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::cache_marks;
use super::openai_format::{self, AssistantMessage, CompletionId, ContentDelta};
use super::{
    percent_encode, Attempt, Operation, ResponseShape, ResponseTranslator, Translator,
    UpstreamRequest,
};
pub use settings::BedrockSettings;

use super::config::{Credentials, ProviderSettings};
use crate::error::{invalid, parse_object, GatewayError};
use crate::usage::Usage;

pub struct Bedrock;

/// Bedrock runtime's signing name in the SigV4 credential scope.
const SERVICE: &str = "bedrock";
const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";

impl Translator for Bedrock {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let (action, payload) = match attempt.operation {
            Operation::Chat => {
                let action = if attempt.stream {
                    "converse-stream"
                } else {
                    "converse"
                };
                (action, converse_request(body)?)
            }
            Operation::Embeddings => {
                let (payload, _) = embeddings_request(attempt.upstream_model, body)?;
                ("invoke", payload)
            }
        };
        let payload =
            serde_json::to_vec(&payload).map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
        let path = format!(
            "{}/model/{}/{action}",
            attempt.provider.path_prefix,
            percent_encode(attempt.upstream_model)
        );
        let headers = signed_headers(attempt, &path, &payload)?;
        Ok(UpstreamRequest {
            path,
            headers,
            body: Some(payload),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        let id = completion_id(attempt);
        Some(match attempt.operation {
            Operation::Chat => Box::new(ChatResponse::new(id)),
            Operation::Embeddings => {
                Box::new(EmbeddingsResponse::new(id.model, attempt.embeddings_base64))
            }
        })
    }
}

fn completion_id(attempt: &Attempt) -> CompletionId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff;
    CompletionId {
        id: format!("chatcmpl-bedrock-{:x}{n:04x}", attempt.now_unix),
        created: attempt.now_unix,
        model: attempt.client_model.to_string(),
    }
}

/// The headers of a signed request to `path` with `payload`, `:authority` included.
fn signed_headers(
    attempt: &Attempt,
    path: &str,
    payload: &[u8],
) -> Result<Vec<(&'static str, String)>, GatewayError> {
    signed_post(attempt.provider, path, payload, attempt.now_unix)
}

/// The headers of a `POST` to Bedrock runtime's `path` with `payload`, signed with `provider`'s
/// AWS credentials at `now_unix` (`:authority` included): the provider's attempts and the
/// guardrail callouts (`ApplyGuardrail`) alike.
pub fn signed_post(
    provider: &super::Provider,
    path: &str,
    payload: &[u8],
    now_unix: u64,
) -> Result<Vec<(&'static str, String)>, GatewayError> {
    let Credentials::Aws {
        access_key_id,
        secret_access_key,
        session_token,
    } = &provider.credentials
    else {
        return Err(GatewayError::Misconfigured(format!(
            "provider '{}' has no AWS credentials to sign with",
            provider.id
        )));
    };
    let ProviderSettings::Bedrock(settings) = &provider.settings else {
        return Err(GatewayError::Misconfigured(format!(
            "provider '{}' has no Bedrock settings",
            provider.id
        )));
    };
    let region = settings.region.as_str();
    let host = format!("bedrock-runtime.{region}.amazonaws.com");
    let amz_date = sigv4::amz_date(now_unix);
    let payload_hash = sigv4::payload_hash(payload);
    let mut signed: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("host", &host),
        ("x-amz-content-sha256", &payload_hash),
        ("x-amz-date", &amz_date),
    ];
    if let Some(token) = session_token {
        signed.push(("x-amz-security-token", token.expose()));
    }
    let authorization = sigv4::authorization(
        &sigv4::Request {
            method: "POST",
            path,
            query: &[],
            headers: &signed,
            payload_hash: &payload_hash,
        },
        &sigv4::Key {
            access_key_id: access_key_id.expose(),
            secret_access_key: secret_access_key.expose(),
            region,
            service: SERVICE,
        },
        &amz_date,
    );
    let mut headers = vec![
        (":authority", host.clone()),
        ("content-type", "application/json".to_string()),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-content-sha256", payload_hash.clone()),
    ];
    if let Some(token) = session_token {
        headers.push(("x-amz-security-token", token.expose().to_string()));
    }
    headers.push(("authorization", authorization));
    Ok(headers)
}

// ---------------------------------------------------------------------------------------------
// Chat request: OpenAI body → Converse body.

/// The Converse request body for the client's OpenAI chat body.
pub fn converse_request(body: &[u8]) -> Result<Value, GatewayError> {
    let req = parse_object(body)?;
    if req.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(invalid(
            "n",
            "Bedrock returns one choice per request; send n=1 or choose another model.",
        ));
    }
    let (system, messages) = convert_messages(req.get("messages"))?;
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let inference = inference_config(&req);
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tools) = tool_config(&req)? {
        out.insert("toolConfig".into(), tools);
    }
    if let Some(output) = output_config(&req)? {
        out.insert("outputConfig".into(), output);
    }
    Ok(Value::Object(out))
}

fn convert_messages(messages: Option<&Value>) -> Result<(Vec<Value>, Vec<Value>), GatewayError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or(GatewayError::MissingParameter("messages"))?;
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {
                let blocks = with_cache_points(marked_text_parts(content, &at)?);
                system.extend(point_at_end(blocks, message, &at)?);
            }
            "user" => {
                let blocks = user_blocks(content, &at)?;
                push_turn(&mut turns, "user", point_at_end(blocks, message, &at)?);
            }
            "assistant" => {
                let blocks = assistant_blocks(message, &at)?;
                push_turn(&mut turns, "assistant", point_at_end(blocks, message, &at)?);
            }
            "tool" => {
                let blocks = vec![tool_result(message, &at)?];
                push_turn(&mut turns, "user", point_at_end(blocks, message, &at)?);
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
    let messages = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages))
}

/// Appends blocks to the conversation, merging them into the last turn when it has the role.
fn push_turn(turns: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last, content)) if *last == role => content.extend(blocks),
        _ => turns.push((role, blocks)),
    }
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Text blocks, each followed by a `cachePoint` when its part carried a cache marker.
fn with_cache_points(texts: Vec<(&str, bool)>) -> Vec<Value> {
    let mut blocks = Vec::with_capacity(texts.len());
    for (text, marked) in texts {
        blocks.push(json!({ "text": text }));
        if marked {
            blocks.push(cache_marks::cache_point());
        }
    }
    blocks
}

/// A marker on the whole message (`messages[i].cache_control`) → a `cachePoint` after its
/// blocks (unless a part's marker already put one there).
fn point_at_end(
    mut blocks: Vec<Value>,
    message: &Value,
    at: &str,
) -> Result<Vec<Value>, GatewayError> {
    let point = cache_marks::cache_point();
    if cache_marks::is_marked(message, at)? && blocks.last().is_some_and(|b| *b != point) {
        blocks.push(point);
    }
    Ok(blocks)
}

/// The texts of a system, developer or tool message: a string or text parts.
fn text_parts<'a>(content: &'a Value, at: &str) -> Result<Vec<&'a str>, GatewayError> {
    Ok(marked_text_parts(content, at)?
        .into_iter()
        .map(|(text, _)| text)
        .collect())
}

/// The texts of a message, each with whether its part carries a cache marker.
fn marked_text_parts<'a>(
    content: &'a Value,
    at: &str,
) -> Result<Vec<(&'a str, bool)>, GatewayError> {
    match content {
        Value::String(s) => Ok(if is_blank(s) {
            vec![]
        } else {
            vec![(s.as_str(), false)]
        }),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                let marked = cache_marks::is_marked(part, &format!("{at}.content[{j}]"))?;
                match (kind, part.get("text").and_then(Value::as_str)) {
                    ("text" | "refusal" | "", Some(text)) => {
                        if !is_blank(text) {
                            texts.push((text, marked));
                        }
                    }
                    ("refusal", None) => {
                        if let Some(text) = part.get("refusal").and_then(Value::as_str) {
                            if !is_blank(text) {
                                texts.push((text, marked));
                            }
                        }
                    }
                    _ => {
                        return Err(invalid(
                            format!("{at}.content[{j}]"),
                            format!("Bedrock takes only text here, not a '{kind}' part."),
                        ))
                    }
                }
            }
            Ok(texts)
        }
        _ => Ok(vec![]),
    }
}

fn user_blocks(content: &Value, at: &str) -> Result<Vec<Value>, GatewayError> {
    let Value::Array(parts) = content else {
        return Ok(text_parts(content, at)?
            .into_iter()
            .map(|t| json!({ "text": t }))
            .collect());
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let marked = cache_marks::is_marked(part, &at)?;
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let text = part.get("text").and_then(Value::as_str).unwrap_or("");
                if !is_blank(text) {
                    blocks.push(json!({ "text": text }));
                    if marked {
                        blocks.push(cache_marks::cache_point());
                    }
                }
            }
            "image_url" => {
                blocks.push(image_block(part, &at)?);
                if marked {
                    blocks.push(cache_marks::cache_point());
                }
            }
            other => {
                return Err(invalid(
                    format!("{at}.type"),
                    format!("Content parts of type '{other}' cannot be sent to Bedrock; send text or images."),
                ))
            }
        }
    }
    Ok(blocks)
}

fn image_block(part: &Value, at: &str) -> Result<Value, GatewayError> {
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
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// A tool-call id as Converse accepts it (`[a-zA-Z0-9_-]+`, at most 64 characters).
fn tool_use_id(id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "call".into()
    } else {
        id
    }
}

fn assistant_blocks(message: &Value, at: &str) -> Result<Vec<Value>, GatewayError> {
    let content = message.get("content").unwrap_or(&Value::Null);
    let mut blocks = with_cache_points(marked_text_parts(content, at)?);
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (j, call) in calls.iter().enumerate() {
        let at = format!("{at}.tool_calls[{j}]");
        let id = call.get("id").and_then(Value::as_str).ok_or_else(|| {
            invalid(
                format!("{at}.id"),
                format!("Missing required parameter: '{at}.id'."),
            )
        })?;
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(
                    format!("{at}.function.name"),
                    format!("Missing required parameter: '{at}.function.name'."),
                )
            })?;
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let input: Value = if is_blank(arguments) {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                invalid(
                    format!("{at}.function.arguments"),
                    format!("Tool-call arguments must be JSON for Bedrock: {e}."),
                )
            })?
        };
        blocks
            .push(json!({"toolUse": {"toolUseId": tool_use_id(id), "name": name, "input": input}}));
    }
    Ok(blocks)
}

fn tool_result(message: &Value, at: &str) -> Result<Value, GatewayError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let content = message.get("content").unwrap_or(&Value::Null);
    let content: Vec<Value> = match content {
        Value::String(s) => vec![json!({ "text": s })],
        _ => text_parts(content, at)?
            .into_iter()
            .map(|t| json!({ "text": t }))
            .collect(),
    };
    Ok(json!({"toolResult": {"toolUseId": tool_use_id(id), "content": content}}))
}

fn inference_config(req: &Map<String, Value>) -> Map<String, Value> {
    let mut config = Map::new();
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| req.get(*k).and_then(Value::as_u64));
    if let Some(n) = max_tokens {
        config.insert("maxTokens".into(), n.into());
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = req.get(from).filter(|v| v.is_number()) {
            config.insert(to.into(), v.clone());
        }
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(stops)) if !stops.is_empty() => {
            config.insert("stopSequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    config
}

fn tool_config(req: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok(None),
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
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
            Some(json!({"tool": {"name": name}}))
        }
    };
    let tools = req
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty());
    let Some(tools) = tools else {
        if choice.as_ref().is_some_and(|c| c.get("auto").is_none()) {
            return Err(invalid(
                "tool_choice",
                "'tool_choice' requires 'tools' to choose from.",
            ));
        }
        return Ok(None);
    };
    let mut specs = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        specs.push(tool_spec(tool, i)?);
        if cache_marks::is_marked(tool, &format!("tools[{i}]"))? {
            specs.push(cache_marks::cache_point());
        }
    }
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

fn tool_spec(tool: &Value, i: usize) -> Result<Value, GatewayError> {
    let at = format!("tools[{i}]");
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "function" {
        return Err(invalid(
            format!("{at}.type"),
            format!("Bedrock supports function tools only, not '{kind}'."),
        ));
    }
    let function = tool.get("function").and_then(Value::as_object);
    let name = function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                format!("{at}.function.name"),
                format!("Missing required parameter: '{at}.function.name'."),
            )
        })?;
    let schema = function
        .and_then(|f| f.get("parameters"))
        .filter(|p| p.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let mut spec = Map::new();
    spec.insert("name".into(), name.into());
    if let Some(description) = function
        .and_then(|f| f.get("description"))
        .and_then(Value::as_str)
        .filter(|d| !is_blank(d))
    {
        spec.insert("description".into(), description.into());
    }
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    Ok(json!({ "toolSpec": spec }))
}

fn output_config(req: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
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
            let schema = spec
                .get("schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            let mut definition = Map::new();
            definition.insert("schema".into(), schema.to_string().into());
            definition.insert(
                "name".into(),
                spec.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .into(),
            );
            if let Some(d) = spec.get("description").and_then(Value::as_str) {
                definition.insert("description".into(), d.into());
            }
            Ok(Some(json!({"textFormat": {
                "type": "json_schema",
                "structure": {"jsonSchema": definition},
            }})))
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

// ---------------------------------------------------------------------------------------------
// Embeddings request.

/// The InvokeModel body for an OpenAI embeddings body, and whether base64 was asked for.
pub fn embeddings_request(model: &str, body: &[u8]) -> Result<(Value, bool), GatewayError> {
    let req = parse_object(body)?;
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let texts: Vec<&str> = match req.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    "input",
                    "Bedrock embedding models take text; token arrays are not supported.",
                )
            })?,
        _ => return Err(GatewayError::MissingParameter("input")),
    };
    let dimensions = req.get("dimensions").and_then(Value::as_u64);
    let body = if model.contains("titan-embed") {
        let [text] = texts.as_slice() else {
            return Err(invalid(
                "input",
                format!(
                    "Titan embedding models embed one text per request; send one input, not {}.",
                    texts.len()
                ),
            ));
        };
        let mut body = Map::new();
        body.insert("inputText".into(), (*text).into());
        if let Some(d) = dimensions {
            body.insert("dimensions".into(), d.into());
        }
        body
    } else if model.contains("cohere.embed") {
        let mut body = Map::new();
        body.insert("texts".into(), texts.into());
        body.insert("input_type".into(), "search_document".into());
        if let Some(d) = dimensions {
            body.insert("output_dimension".into(), d.into());
        }
        body
    } else {
        return Err(invalid(
            "model",
            format!(
                "Bedrock embeddings are served for Titan (amazon.titan-embed-*) and Cohere (cohere.embed-*) models, not '{model}'."
            ),
        ));
    };
    Ok((Value::Object(body), base64))
}

// ---------------------------------------------------------------------------------------------
// Answers.

fn is_success(status: u32) -> bool {
    (200..300).contains(&status)
}

/// The `message` of a Bedrock error body (`{"message": ...}`).
fn json_message(body: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    ["message", "Message"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
}

/// Bedrock's error message, or the body's text.
fn error_message(status: u32, body: &[u8]) -> String {
    json_message(body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            format!("Bedrock answered with HTTP {status}.")
        } else {
            text.chars().take(1000).collect()
        }
    })
}

fn unreadable(what: &str) -> Vec<u8> {
    openai_format::error_body(502, &format!("Bedrock answered with {what}."))
}

/// Bedrock usage → normalized usage (see the module comment: `inputTokens` excludes cache).
pub fn usage_from_bedrock(usage: &Value) -> Usage {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached_prompt = n("cacheReadInputTokens");
    let cache_write = n("cacheWriteInputTokens");
    let prompt = n("inputTokens")
        .saturating_add(cached_prompt)
        .saturating_add(cache_write);
    let completion = n("outputTokens");
    Usage {
        prompt,
        completion,
        total: prompt.saturating_add(completion),
        cached_prompt,
        cache_write,
        reasoning: 0,
    }
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason.unwrap_or("") {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// A whole Converse answer → an OpenAI chat completion.
fn completion(id: &CompletionId, body: &[u8]) -> Vec<u8> {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return unreadable("a body that is not JSON");
    };
    let Some(blocks) = answer
        .pointer("/output/message/content")
        .and_then(Value::as_array)
    else {
        return unreadable("no output.message.content");
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let field = |k: &str| tool.get(k).and_then(Value::as_str).unwrap_or("");
            let arguments = tool
                .get("input")
                .map_or_else(|| "{}".to_string(), Value::to_string);
            tool_calls.push(openai_format::tool_call(
                None,
                field("toolUseId"),
                field("name"),
                &arguments,
            ));
        }
    }
    let usage = answer
        .get("usage")
        .map(usage_from_bedrock)
        .unwrap_or_default();
    openai_format::completion(
        id,
        AssistantMessage::new(&text, tool_calls),
        finish_reason(answer.get("stopReason").and_then(Value::as_str)),
        &usage,
    )
}

enum Body {
    /// A JSON answer or an error, translated once whole.
    Whole {
        status: u32,
        buf: Vec<u8>,
    },
    Stream(Stream),
}

/// Translates one chat answer: Converse JSON, an error, or a ConverseStream event stream.
pub struct ChatResponse {
    id: CompletionId,
    body: Body,
}

impl ChatResponse {
    pub fn new(id: CompletionId) -> Self {
        Self {
            id,
            body: Body::Whole {
                status: 0,
                buf: Vec::new(),
            },
        }
    }
}

impl ResponseTranslator for ChatResponse {
    fn start(&mut self, status: u32, content_type: Option<&str>) -> ResponseShape {
        let stream =
            is_success(status) && content_type.is_some_and(|ct| ct.trim().starts_with(EVENTSTREAM));
        if stream {
            self.body = Body::Stream(Stream::default());
            ResponseShape::SSE
        } else {
            self.body = Body::Whole {
                status,
                buf: Vec::new(),
            };
            ResponseShape::JSON
        }
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        match &mut self.body {
            Body::Stream(stream) => stream.feed(&self.id, chunk, end),
            Body::Whole { status, buf } => {
                buf.extend_from_slice(chunk);
                if !end {
                    return Vec::new();
                }
                let buf = std::mem::take(buf);
                if is_success(*status) {
                    completion(&self.id, &buf)
                } else {
                    openai_format::error_body(*status, &error_message(*status, &buf))
                }
            }
        }
    }
}

/// ConverseStream state between pieces of the body.
#[derive(Default)]
struct Stream {
    decoder: eventstream::Decoder,
    role_sent: bool,
    /// Bedrock content-block index → OpenAI `tool_calls` index.
    tools: Vec<(u64, usize)>,
    /// `messageStop` seen: the answer is complete.
    finished: bool,
    /// `[DONE]` sent: nothing more goes out.
    done: bool,
}

/// The status an in-stream exception would have had as an HTTP answer (ConverseStream
/// "Errors" in the API reference).
fn exception_status(kind: &str) -> u32 {
    match kind.to_ascii_lowercase().as_str() {
        "throttlingexception" => 429,
        "validationexception" => 400,
        "servicequotaexceededexception" => 400,
        "accessdeniedexception" => 403,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 408,
        "modelstreamerrorexception" => 424,
        "serviceunavailableexception" => 503,
        _ => 500,
    }
}

impl Stream {
    fn feed(&mut self, id: &CompletionId, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.decoder.push(chunk);
        while let Some(next) = self.decoder.next_message() {
            match next {
                Ok(message) => self.event(id, &message, &mut out),
                Err(e) => self.fail(
                    &mut out,
                    502,
                    &format!("Bedrock's event stream is corrupted: {}.", e.describe()),
                ),
            }
            if self.done {
                return out;
            }
        }
        if end {
            if self.finished && self.decoder.pending() == 0 {
                out.extend_from_slice(openai_format::DONE);
                self.done = true;
            } else {
                self.fail(
                    &mut out,
                    502,
                    "Bedrock's event stream ended before the answer was complete.",
                );
            }
        }
        out
    }

    fn fail(&mut self, out: &mut Vec<u8>, status: u32, message: &str) {
        let e = GatewayError::Upstream {
            status,
            message: message.to_string(),
        };
        out.extend(openai_format::error_event(
            message,
            e.error_type(),
            Some(e.code()),
        ));
        out.extend_from_slice(openai_format::DONE);
        self.done = true;
    }

    fn role(&mut self, id: &CompletionId, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            out.extend(openai_format::chunk_event(
                id,
                json!({"role": "assistant", "content": ""}),
                None,
            ));
        }
    }

    fn tool_index(&mut self, block: u64) -> usize {
        if let Some((_, index)) = self.tools.iter().find(|(b, _)| *b == block) {
            return *index;
        }
        let index = self.tools.len();
        self.tools.push((block, index));
        index
    }

    fn event(&mut self, id: &CompletionId, message: &eventstream::Message, out: &mut Vec<u8>) {
        match message.header(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = message.header(":exception-type").unwrap_or("exception");
                let text = json_message(&message.payload)
                    .unwrap_or_else(|| format!("Bedrock stream failed: {kind}."));
                self.fail(out, exception_status(kind), &text);
                return;
            }
            Some("error") => {
                let code = message.header(":error-code").unwrap_or("error");
                let text = message.header(":error-message").unwrap_or("");
                self.fail(out, 500, &format!("Bedrock stream failed: {code}: {text}"));
                return;
            }
            _ => return,
        }
        let payload: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
        let block = payload
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match message.header(":event-type").unwrap_or("") {
            "messageStart" => self.role(id, out),
            "contentBlockStart" => {
                if let Some(tool) = payload.pointer("/start/toolUse") {
                    self.role(id, out);
                    let index = self.tool_index(block);
                    let field = |k: &str| tool.get(k).and_then(Value::as_str).unwrap_or("");
                    let call = openai_format::tool_call(
                        Some(index),
                        field("toolUseId"),
                        field("name"),
                        "",
                    );
                    out.extend(openai_format::chunk_event(
                        id,
                        json!({ "tool_calls": [call] }),
                        None,
                    ));
                }
            }
            "contentBlockDelta" => {
                let delta = payload.get("delta");
                if let Some(text) = delta.and_then(|d| d.get("text")).and_then(Value::as_str) {
                    self.role(id, out);
                    out.extend(openai_format::chunk_event(
                        id,
                        ContentDelta { content: text },
                        None,
                    ));
                } else if let Some(input) = delta
                    .and_then(|d| d.pointer("/toolUse/input"))
                    .and_then(Value::as_str)
                {
                    self.role(id, out);
                    let index = self.tool_index(block);
                    out.extend(openai_format::chunk_event(
                        id,
                        json!({"tool_calls": [{"index": index, "function": {"arguments": input}}]}),
                        None,
                    ));
                }
            }
            "messageStop" => {
                self.role(id, out);
                let reason = finish_reason(payload.get("stopReason").and_then(Value::as_str));
                out.extend(openai_format::chunk_event(id, json!({}), Some(reason)));
                self.finished = true;
            }
            "metadata" => {
                if let Some(usage) = payload.get("usage") {
                    out.extend(openai_format::usage_event(id, &usage_from_bedrock(usage)));
                }
                out.extend_from_slice(openai_format::DONE);
                self.done = true;
            }
            _ => {}
        }
    }
}

/// Translates an InvokeModel embeddings answer (Titan or Cohere) to the OpenAI list.
pub struct EmbeddingsResponse {
    model: String,
    base64: bool,
    status: u32,
    buf: Vec<u8>,
}

impl EmbeddingsResponse {
    pub fn new(model: String, base64: bool) -> Self {
        Self {
            model,
            base64,
            status: 0,
            buf: Vec::new(),
        }
    }

    fn translate(&self) -> Vec<u8> {
        if !is_success(self.status) {
            return openai_format::error_body(self.status, &error_message(self.status, &self.buf));
        }
        let Ok(answer) = serde_json::from_slice::<Value>(&self.buf) else {
            return unreadable("a body that is not JSON");
        };
        let floats =
            |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(Value::as_f64).collect() };
        let (vectors, tokens) = if let Some(vector) = answer.get("embedding").and_then(floats) {
            let tokens = answer
                .get("inputTextTokenCount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            (vec![vector], tokens)
        } else {
            let list = answer
                .get("embeddings")
                .map(|e| e.get("float").unwrap_or(e));
            match list
                .and_then(Value::as_array)
                .and_then(|l| l.iter().map(floats).collect::<Option<Vec<_>>>())
            {
                Some(vectors) => (vectors, 0),
                None => return unreadable("no embedding in its answer"),
            }
        };
        let usage = Usage {
            prompt: tokens,
            total: tokens,
            ..Usage::default()
        };
        openai_format::embeddings(&self.model, &vectors, self.base64, &usage)
    }
}

impl ResponseTranslator for EmbeddingsResponse {
    fn start(&mut self, status: u32, _: Option<&str>) -> ResponseShape {
        self.status = status;
        ResponseShape::JSON
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        self.buf.extend_from_slice(chunk);
        if !end {
            return Vec::new();
        }
        let out = self.translate();
        self.buf.clear();
        out
    }
}
