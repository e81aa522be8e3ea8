//! Anthropic Messages API: the client's OpenAI chat body becomes `POST {prefix}/messages`, and
//! Anthropic's message (JSON) or event stream (SSE) becomes an OpenAI chat completion or chunk
//! stream again.
//!
//! References:
//! - Messages API: https://docs.anthropic.com/en/api/messages
//! - Streaming: https://docs.anthropic.com/en/docs/build-with-claude/streaming
//! - Errors: https://docs.anthropic.com/en/api/errors
//! - Tool use: https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use
//! - Vision: https://docs.anthropic.com/en/docs/build-with-claude/vision
//! - Prompt caching usage: https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
//! - Stop reasons: https://docs.anthropic.com/en/api/handling-stop-reasons
//! - Anthropic's own OpenAI mapping (followed where it applies):
//!   https://docs.anthropic.com/en/api/openai-sdk
//! - OpenAI side: https://platform.openai.com/docs/api-reference/chat
//!
//! Request mapping:
//! - headers `x-api-key` (when the provider has a key), `anthropic-version: 2023-06-01`,
//!   `content-type: application/json`; `model` is the provider's model name.
//! - `system` and `developer` messages, wherever they are, are joined with "\n" into the
//!   top-level `system` (as Anthropic's OpenAI layer does).
//! - `user`/`assistant` content (string or parts) becomes content blocks: `text`; `image_url`
//!   with a `data:` URL → `image` with a base64 source, with an http(s) URL → `image` with a url
//!   source; `file` with PDF `file_data` → `document` with a base64 source.
//! - assistant `tool_calls` → `tool_use` blocks (`input` = the parsed `arguments`; an empty
//!   string counts as `{}`); `tool` messages → `tool_result` blocks in a user turn.
//!   Consecutive turns of one role (tool results, then user text) are merged into one turn, since
//!   Anthropic wants user and assistant turns to alternate.
//! - `tools` → `{name, description, input_schema}` (no `parameters` → an empty object schema);
//!   `tool_choice` auto/required/none/named → `{"type": "auto"|"any"|"none"|"tool"}`;
//!   `parallel_tool_calls: false` → `disable_parallel_tool_use: true`.
//! - `max_completion_tokens`, else `max_tokens`, else the provider's `default_max_tokens` →
//!   `max_tokens` (Anthropic requires it).
//! - `temperature`: Anthropic takes 0..1; values above 1 are capped at 1 (as Anthropic's OpenAI
//!   layer does). `top_p` as is (some recent models refuse `temperature` and `top_p` together:
//!   that 400 comes from Anthropic). `stop` → `stop_sequences` (whitespace-only sequences are
//!   left out: Anthropic refuses them). `stream`. `user` → `metadata.user_id`.
//! - `response_format`: `json_schema` with `strict: true` to a model that has Anthropic's
//!   structured outputs → `output_config.format` (`structured.rs`: the models and reference);
//!   otherwise `json_schema` → an extra tool named `json_response__<schema name>`
//!   (`input_schema` = the schema) that the model is made to call: `tool_choice` names it, or is
//!   `any` when the client's own tools are there too (the model then calls one of them or
//!   answers through the schema tool). Its `input` comes back as the message content (a JSON
//!   string) with finish reason "stop", in JSON and in streams. The prefix lets the response side
//!   know the tool without seeing the request; client tools may not use it. `json_object` → a
//!   system instruction asking for one JSON object and nothing else (Anthropic has no JSON mode).
//!   `text` → nothing.
//! - `cache_control` markers ([`cache_marks`]) on content parts, system parts, whole messages
//!   (their last block) and `tools[i]` → `cache_control` on the same blocks and tools (`ttl`
//!   kept). A system prompt with a marker is sent as text blocks, one per marked part, since a
//!   marker needs its own block; without markers it stays one joined string. More than 4
//!   markers → a 400 naming `cache_control` (Anthropic's limit, checked before it is asked).
//!
//! Dropped (no Anthropic equivalent, or no effect on the answer's meaning): `frequency_penalty`,
//! `presence_penalty`, `logit_bias`, `logprobs`, `top_logprobs`, `seed`, `service_tier`, `store`,
//! `metadata`, `modalities`, `audio`, `prediction`, `reasoning_effort`, `verbosity`,
//! `web_search_options`, `stream_options` (Anthropic always reports usage), `prompt_cache_key`,
//! `safety_identifier`, `tools[].function.strict`, `messages[].name`, `image_url.detail`.
//!
//! Refused with a 400: `n` > 1; the legacy `functions`/`function_call` and `function` role;
//! `input_audio` parts, `file` parts without PDF `file_data`, image URLs that are neither `data:`
//! (base64) nor http(s); tool call `arguments` that are not a JSON object; non-function tools and
//! `tool_choice` forms other than the four above; a `response_format` other than text,
//! json_object, json_schema. Embeddings: Anthropic has none (`ProviderKind::supports`).
//!
//! Response mapping: text blocks joined → `content`; `tool_use` → `tool_calls` (`arguments` =
//! the input as a JSON string); thinking and other blocks are left out. `stop_reason`
//! end_turn/stop_sequence/pause_turn → "stop", max_tokens/model_context_window_exceeded →
//! "length", tool_use → "tool_calls", refusal → "content_filter". Usage: prompt =
//! `input_tokens` + `cache_read_input_tokens` + `cache_creation_input_tokens`, cached =
//! cache reads, cache_write = cache creation, completion = `output_tokens`. Errors (any non-2xx)
//! → the OpenAI error shape with Anthropic's status and message. Streams are translated event by
//! event; a stream that ends without `message_stop` ends with an OpenAI error event and `[DONE]`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::config::ApiKeyEnv;
use super::openai_format::{self, AssistantMessage, CompletionId, ContentDelta};
use super::{Attempt, Operation, ResponseShape, ResponseTranslator, Translator, UpstreamRequest};
use crate::config_error::{err, ConfigError};
use crate::error::{invalid, parse_object, GatewayError};
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

pub struct Anthropic;

/// The `anthropic-version` header value.
pub const API_VERSION: &str = "2023-06-01";

/// Names the tool that carries a `json_schema` answer; the response side recognizes it by this.
pub const SCHEMA_TOOL_PREFIX: &str = "json_response__";

/// Anthropic's limit on tool names (`^[a-zA-Z0-9_-]{1,64}$` in the Messages API reference).
const MAX_TOOL_NAME: usize = 64;

/// Added to `system` for `response_format: {"type": "json_object"}`.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object only, with no text before or after it.";

static NULL: Value = Value::Null;

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&NULL)
}

impl Translator for Anthropic {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        if attempt.operation != Operation::Chat {
            return Err(invalid(
                "model",
                format!(
                    "Provider '{}' (anthropic) does not serve {}.",
                    attempt.provider.id,
                    attempt.operation.name()
                ),
            ));
        }
        let req = parse_object(body)?;
        super::openai::refuse_multiple_choices(attempt, req.get("n").and_then(Value::as_u64))?;
        let out = request::messages_body(attempt, &req)?;
        let mut headers = Vec::with_capacity(3);
        if let Some(key) = attempt.api_key() {
            headers.push(("x-api-key", key.to_string()));
        }
        headers.push(("anthropic-version", API_VERSION.to_string()));
        headers.push(("content-type", "application/json".to_string()));
        Ok(UpstreamRequest {
            path: format!("{}/messages", attempt.provider.path_prefix),
            headers,
            body: Some(
                serde_json::to_vec(&out).map_err(|e| GatewayError::Misconfigured(e.to_string()))?,
            ),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        Some(Box::new(AnthropicResponse::new(attempt.now_unix)))
    }
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// A Messages request from a client of the Messages API (`inbound::messages`): its body goes
/// as sent, every field kept (`system` blocks, `cache_control`, `thinking`, tools, images,
/// documents, `metadata`), but for `model`, which becomes the provider's name for it. The
/// client's `anthropic-beta` header stays (`headers::client_chosen`). `count_tokens` sends it
/// to the token-counting endpoint instead.
pub fn native_request(
    attempt: &Attempt,
    body: &[u8],
    count_tokens: bool,
) -> Result<UpstreamRequest, GatewayError> {
    let mut req = parse_object(body)?;
    req.insert("model".into(), attempt.upstream_model.into());
    let mut headers = Vec::with_capacity(3);
    if let Some(key) = attempt.api_key() {
        headers.push(("x-api-key", key.to_string()));
    }
    headers.push(("anthropic-version", API_VERSION.to_string()));
    headers.push(("content-type", "application/json".to_string()));
    Ok(UpstreamRequest {
        path: format!(
            "{}/messages{}",
            attempt.provider.path_prefix,
            if count_tokens { "/count_tokens" } else { "" }
        ),
        headers,
        body: Some(
            serde_json::to_vec(&req).map_err(|e| GatewayError::Misconfigured(e.to_string()))?,
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

fn is_schema_tool(name: &str) -> bool {
    name.starts_with(SCHEMA_TOOL_PREFIX)
}

fn finish_reason(stop_reason: Option<&str>, real_tool_calls: bool) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") if real_tool_calls => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn, a tool_use that only answered through the schema
        // tool, and anything newer.
        _ => "stop",
    }
}

/// Anthropic's usage counters as they arrive (message_start, then message_delta updates).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RawUsage {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

/// Anthropic's `usage` counters (null and absent alike: not reported).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MessageUsage {
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    output_tokens: Option<u64>,
}

impl RawUsage {
    /// Takes every counter present in an Anthropic `usage` object.
    pub(crate) fn update(&mut self, usage: &Value) {
        if let Ok(counts) = MessageUsage::deserialize(usage) {
            self.take(&counts);
        }
    }

    /// Takes every counter the usage reports (a stream's `message_delta` repeats only some).
    fn take(&mut self, counts: &MessageUsage) {
        let slots = [
            (counts.input_tokens, &mut self.input),
            (counts.cache_read_input_tokens, &mut self.cache_read),
            (counts.cache_creation_input_tokens, &mut self.cache_write),
            (counts.output_tokens, &mut self.output),
        ];
        for (count, slot) in slots {
            if let Some(n) = count {
                *slot = n;
            }
        }
    }

    pub(crate) fn normalized(self) -> Usage {
        let prompt = self
            .input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write);
        Usage {
            prompt,
            completion: self.output,
            total: prompt.saturating_add(self.output),
            cached_prompt: self.cache_read,
            cache_write: self.cache_write,
            reasoning: 0,
        }
    }
}

/// The OpenAI error `type` and `code` for an Anthropic error type (Anthropic's errors page lists
/// each type with its HTTP status; the status picks the OpenAI type as for any upstream error).
fn error_kind(anthropic_type: &str, message: &str) -> (&'static str, &'static str) {
    let status = match anthropic_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 503,
        _ => 500, // api_error and unknown types
    };
    let e = GatewayError::Upstream {
        status,
        message: message.to_string(),
    };
    (e.error_type(), e.code())
}

/// The message of an Anthropic error body, or a readable stand-in.
fn error_message(body: &[u8], status: u32) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(m) = field(field(&v, "error"), "message").as_str() {
            return m.to_string();
        }
    }
    format!("Anthropic answered HTTP {status}: {}", snippet(body))
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut cut = text.len().min(1024);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.get(..cut).unwrap_or_default().to_string()
}

/// An Anthropic message as the Messages API answers it (the Message object of
/// https://docs.anthropic.com/en/api/messages), read without a JSON tree: the members the
/// OpenAI answer needs, strings borrowed from the body unless they hold escapes; other members
/// and other block types' members are skipped.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Vec<ContentBlock<'a>>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<MessageUsage>,
}

#[derive(Default, Deserialize)]
struct ContentBlock<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<Value>,
}

/// A whole Anthropic message → an OpenAI chat completion.
fn completion_from_message(message: &Message<'_>, created: u64) -> Vec<u8> {
    let id = CompletionId {
        id: message.id.to_string(),
        created,
        model: message.model.to_string(),
    };
    let mut text = String::new();
    let mut schema_answer: Option<String> = None;
    let mut calls = Vec::new();
    for block in message.content.iter().flatten() {
        match block.kind.as_ref() {
            "text" => text.push_str(block.text.as_deref().unwrap_or_default()),
            "tool_use" => {
                let name = block.name.as_deref().unwrap_or_default();
                let arguments = match &block.input {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                };
                if is_schema_tool(name) {
                    schema_answer.get_or_insert(arguments);
                } else {
                    calls.push(openai_format::tool_call(
                        None,
                        block.id.as_deref().unwrap_or_default(),
                        name,
                        &arguments,
                    ));
                }
            }
            _ => {} // thinking, redacted_thinking, server tool blocks: not part of the OpenAI answer
        }
    }
    // A schema answer is the whole content: text around it would break the client's JSON parse.
    let answer = match &schema_answer {
        Some(json_text) => AssistantMessage::with_content(Some(json_text), calls),
        None => AssistantMessage::new(&text, calls),
    };
    let real_tool_calls = !answer.tool_calls.is_empty();
    let mut usage = RawUsage::default();
    if let Some(counts) = &message.usage {
        usage.take(counts);
    }
    openai_format::completion(
        &id,
        answer,
        finish_reason(message.stop_reason.as_deref(), real_tool_calls),
        &usage.normalized(),
    )
}

/// What an Anthropic content block (by its stream index) turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// A client tool call, with its OpenAI `tool_calls` index.
    Tool(usize),
    /// The `json_schema` answer tool: its input is the message content.
    SchemaAnswer,
    /// Thinking and other blocks that the OpenAI answer leaves out.
    Other,
}

#[derive(Debug, Default)]
struct StreamState {
    parser: SseParser,
    events: Vec<SseEvent>,
    id: CompletionId,
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    usage: RawUsage,
    stop_reason: Option<String>,
    /// `message_stop` or an error ended the OpenAI stream; later bytes are ignored.
    finished: bool,
}

impl StreamState {
    fn block(&self, index: u64) -> Option<Block> {
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn chunk(&self, delta: impl serde::Serialize, out: &mut Vec<u8>) {
        out.extend(openai_format::chunk_event(&self.id, delta, None));
    }

    /// A text delta, when there is text.
    fn text(&self, text: &str, out: &mut Vec<u8>) {
        if !text.is_empty() {
            self.chunk(ContentDelta { content: text }, out);
        }
    }

    fn fail(&mut self, message: &str, error_type: &str, code: &str, out: &mut Vec<u8>) {
        out.extend(openai_format::error_event(message, error_type, Some(code)));
        out.extend_from_slice(openai_format::DONE);
        self.finished = true;
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        let Some(data) = event.data.as_deref() else {
            return; // a comment-only block
        };
        let parsed = serde_json::from_str::<StreamEvent>(data).ok();
        let unreadable = parsed.is_none();
        let v = parsed.unwrap_or_default();
        let kind = v
            .kind
            .as_deref()
            .or(event.event.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => {
                if let Some(message) = &v.message {
                    self.id.id = message.id.to_string();
                    self.id.model = message.model.to_string();
                    if let Some(counts) = &message.usage {
                        self.usage.take(counts);
                    }
                }
                self.chunk(json!({"role": "assistant", "content": ""}), out);
            }
            "content_block_start" => {
                let index = v.index.unwrap_or_default();
                let block = v.content_block.unwrap_or_default();
                let kind = match block.kind.as_ref() {
                    "text" => {
                        self.text(block.text.as_deref().unwrap_or_default(), out);
                        Block::Text
                    }
                    "tool_use" => {
                        let name = block.name.as_deref().unwrap_or_default();
                        if is_schema_tool(name) {
                            Block::SchemaAnswer
                        } else {
                            let n = self.tool_calls;
                            self.tool_calls += 1;
                            let id = block.id.as_deref().unwrap_or_default();
                            let call = openai_format::tool_call(Some(n), id, name, "");
                            self.chunk(json!({"tool_calls": [call]}), out);
                            Block::Tool(n)
                        }
                    }
                    _ => Block::Other,
                };
                self.blocks.push((index, kind));
            }
            "content_block_delta" => {
                let index = v.index.unwrap_or_default();
                let delta = v.delta.unwrap_or_default();
                match (delta.kind.as_deref(), self.block(index)) {
                    (Some("text_delta"), Some(Block::Text) | None) => {
                        self.text(delta.text.as_deref().unwrap_or_default(), out);
                    }
                    (Some("input_json_delta"), Some(block)) => {
                        let part = delta.partial_json.as_deref().unwrap_or_default();
                        if part.is_empty() {
                            return;
                        }
                        match block {
                            Block::Tool(n) => self.chunk(
                                json!({"tool_calls": [{"index": n, "function": {"arguments": part}}]}),
                                out,
                            ),
                            Block::SchemaAnswer => self.text(part, out),
                            Block::Text | Block::Other => {}
                        }
                    }
                    _ => {} // thinking, signature and citation deltas
                }
            }
            "message_delta" => {
                if let Some(reason) = v.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason.into_owned());
                }
                if let Some(counts) = &v.usage {
                    self.usage.take(counts);
                }
            }
            "message_stop" => {
                let finish = finish_reason(self.stop_reason.as_deref(), self.tool_calls > 0);
                out.extend(openai_format::chunk_event(
                    &self.id,
                    json!({}),
                    Some(finish),
                ));
                out.extend(openai_format::usage_event(
                    &self.id,
                    &self.usage.normalized(),
                ));
                out.extend_from_slice(openai_format::DONE);
                self.finished = true;
            }
            "error" => {
                let error = v.error.unwrap_or_default();
                let message = match error.message {
                    Some(m) => m.into_owned(),
                    None if unreadable => format!("Anthropic stream error: {data}"),
                    None => "Anthropic reported an error in the stream.".to_string(),
                };
                let (error_type, code) =
                    error_kind(error.kind.as_deref().unwrap_or_default(), &message);
                self.fail(&message, error_type, code, out);
            }
            _ => {} // ping, content_block_stop, and event types added later
        }
    }
}

/// One event of an Anthropic stream (the event types of
/// https://docs.anthropic.com/en/docs/build-with-claude/streaming), read without a JSON tree:
/// the members the OpenAI chunks need; any other member is skipped.
#[derive(Default, Deserialize)]
struct StreamEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    content_block: Option<ContentBlock<'a>>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    usage: Option<MessageUsage>,
    #[serde(borrow, default)]
    error: Option<ErrorObject<'a>>,
}

/// A `content_block_delta`'s or `message_delta`'s `delta`.
#[derive(Default, Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Default, Deserialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

enum Mode {
    /// Buffered whole, translated at the end (a message, or an error of any status).
    Json {
        status: u32,
        body: Vec<u8>,
    },
    Stream(Box<StreamState>),
}

/// Translates one Anthropic answer to the OpenAI format.
pub struct AnthropicResponse {
    created: u64,
    mode: Mode,
}

impl AnthropicResponse {
    pub fn new(created: u64) -> Self {
        Self {
            created,
            mode: Mode::Json {
                status: 200,
                body: Vec::new(),
            },
        }
    }
}

impl ResponseTranslator for AnthropicResponse {
    fn start(&mut self, status: u32, content_type: Option<&str>) -> ResponseShape {
        let sse = content_type
            .unwrap_or_default()
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream");
        if (200..300).contains(&status) && sse {
            let state = StreamState {
                parser: SseParser::fields_only(),
                id: CompletionId {
                    created: self.created,
                    ..Default::default()
                },
                ..Default::default()
            };
            self.mode = Mode::Stream(Box::new(state));
            ResponseShape::SSE
        } else {
            self.mode = Mode::Json {
                status,
                body: Vec::new(),
            };
            ResponseShape::JSON
        }
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        match &mut self.mode {
            Mode::Json { status, body } => {
                body.extend_from_slice(chunk);
                if !end {
                    return Vec::new();
                }
                let body = std::mem::take(body);
                let status = *status;
                if !(200..300).contains(&status) {
                    return openai_format::error_body(status, &error_message(&body, status));
                }
                match serde_json::from_slice::<Message>(&body) {
                    Ok(m) if m.kind.as_deref() == Some("message") => {
                        completion_from_message(&m, self.created)
                    }
                    Ok(m) if m.kind.as_deref() == Some("error") => {
                        openai_format::error_body(502, &error_message(&body, status))
                    }
                    _ => openai_format::error_body(
                        502,
                        &format!("Anthropic's answer is not a message: {}", snippet(&body)),
                    ),
                }
            }
            Mode::Stream(state) => {
                let mut out = Vec::new();
                state.parser.feed(chunk, &mut state.events);
                if end {
                    state.parser.finish(&mut state.events);
                }
                for event in std::mem::take(&mut state.events) {
                    state.handle(&event, &mut out);
                }
                if state.parser.overflowed() && !state.finished {
                    out.extend(openai_format::stream_failure(
                        &openai_format::event_too_large(),
                    ));
                    state.finished = true;
                }
                if end && !state.finished {
                    let message = "Anthropic's stream ended before the message was complete.";
                    let (error_type, code) = {
                        let e = GatewayError::Upstream {
                            status: 502,
                            message: message.to_string(),
                        };
                        (e.error_type(), e.code())
                    };
                    state.fail(message, error_type, code, &mut out);
                }
                out
            }
        }
    }
}

/// The settings of an Anthropic provider (`providers.<id>`, besides the common keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicSettings {
    pub api_key_env: Option<ApiKeyEnv>,
    /// `max_tokens` sent when the client set none: the Messages API requires it.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u64,
}

fn default_max_tokens() -> u64 {
    4096
}

impl AnthropicSettings {
    /// Refuses values serde lets through; `here` is the provider's field path.
    pub fn check(&self, here: &str) -> Result<(), ConfigError> {
        if self.default_max_tokens == 0 {
            return Err(err(
                format!("{here}.default_max_tokens"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

mod request;
mod structured;
#[cfg(test)]
mod tests;
