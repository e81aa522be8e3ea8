//! Gemini answers (JSON, SSE stream, errors, embeddings) back to the OpenAI format. See the
//! parent module for the mapping.

use std::borrow::Cow;

use super::*;
use crate::provider::openai_format::{AssistantMessage, ContentDelta};

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

pub(super) fn is_success(status: u32) -> bool {
    (200..300).contains(&status)
}

pub(super) fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Gemini's `usageMetadata` counters (absent or null: not reported).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    prompt_token_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    tool_use_prompt_token_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    thoughts_token_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    candidates_token_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    total_token_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    cached_content_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Normalized usage: the prompt counts tool-use prompt tokens, the completion thoughts.
    fn usage(&self) -> Usage {
        let prompt = self
            .prompt_token_count
            .unwrap_or(0)
            .saturating_add(self.tool_use_prompt_token_count.unwrap_or(0));
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        let completion = self
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(thoughts);
        Usage {
            prompt,
            completion,
            total: self
                .total_token_count
                .unwrap_or(prompt.saturating_add(completion)),
            cached_prompt: self.cached_content_token_count.unwrap_or(0),
            cache_write: 0,
            reasoning: thoughts,
        }
    }
}

/// A `GenerateContentResponse` (a whole answer or one stream event,
/// https://ai.google.dev/api/generate-content#generatecontentresponse), read without a JSON
/// tree: the members the OpenAI answer needs, strings borrowed; other members skipped.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContent<'a> {
    #[serde(borrow, default)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(borrow, default)]
    response_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model_version: Option<Cow<'a, str>>,
    /// An error object in a 2xx body or a stream event.
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<CandidateContent<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Default, Deserialize)]
struct CandidateContent<'a> {
    #[serde(borrow, default)]
    parts: Option<Vec<Part<'a>>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(borrow, default)]
    function_call: Option<FunctionCall<'a>>,
}

#[derive(Default, Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    /// Any value but null blocks (Gemini names the reason).
    #[serde(default)]
    block_reason: Option<Value>,
}

impl GenerateContent<'_> {
    /// The error object it carries, if any (Gemini may answer a 2xx with one).
    fn error(&self) -> Option<&Value> {
        self.error.as_ref().filter(|e| e.is_object())
    }
}

/// What one `GenerateContentResponse` (a whole answer or one stream event) says.
/// The texts and names borrow from the parsed answer.
#[derive(Default)]
pub(super) struct Piece<'a> {
    texts: Vec<&'a str>,
    /// (name, arguments as a JSON string)
    calls: Vec<(&'a str, String)>,
    finish: Option<&'a str>,
    blocked: bool,
    usage: Option<Usage>,
}

pub(super) fn read_piece<'a>(answer: &'a GenerateContent<'a>) -> Piece<'a> {
    let mut piece = Piece::default();
    let candidate = answer.candidates.as_ref().and_then(|c| c.first());
    if let Some(candidate) = candidate {
        let parts = candidate.content.as_ref().and_then(|c| c.parts.as_ref());
        for part in parts.into_iter().flatten() {
            if part.thought == Some(true) {
                continue;
            }
            if let Some(text) = &part.text {
                piece.texts.push(text);
            }
            if let Some(call) = &part.function_call {
                let name = call.name.as_deref().unwrap_or_default();
                let args = match &call.args {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(args) => args.to_string(),
                };
                piece.calls.push((name, args));
            }
        }
        piece.finish = candidate.finish_reason.as_deref();
    }
    piece.blocked = answer
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some());
    piece.usage = answer.usage_metadata.as_ref().map(UsageMetadata::usage);
    piece
}

pub(super) fn finish_reason(raw: Option<&str>, blocked: bool, has_calls: bool) -> &'static str {
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

pub(super) fn call_id(n: usize) -> String {
    format!("call_{n}")
}

/// The message of a Gemini error object, or `None` when it is none.
pub(super) fn error_object(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items.first().and_then(error_object),
        other => other.get("error").filter(|e| e.is_object()),
    }
}

pub(super) fn is_key_rejection(error: &Value) -> bool {
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
pub(super) fn error_answer(status: u32, body: &[u8], provider_auth: &str) -> Vec<u8> {
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
pub(super) fn error_status(error: &Value) -> u32 {
    error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(502)
}

pub(super) static FALLBACK_IDS: AtomicU64 = AtomicU64::new(0);

pub(super) fn completion_id(
    answer: Option<&GenerateContent<'_>>,
    fallback_model: &str,
    created: u64,
) -> CompletionId {
    let present =
        |s: &Option<Cow<'_, str>>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let id = match answer.and_then(|a| present(&a.response_id)) {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!(
            "chatcmpl-gemini-{created}-{}",
            FALLBACK_IDS.fetch_add(1, Ordering::Relaxed)
        ),
    };
    CompletionId {
        id,
        created,
        model: answer
            .and_then(|a| present(&a.model_version))
            .unwrap_or_else(|| fallback_model.to_string()),
    }
}

/// Translates a chat answer: a whole `GenerateContentResponse`, or its SSE stream.
pub(super) struct ChatResponse {
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
    pub(super) fn new(
        stream: bool,
        fallback_model: String,
        created: u64,
        provider_auth: String,
    ) -> Self {
        Self {
            stream,
            status: 0,
            sse: false,
            body: Vec::new(),
            parser: SseParser::fields_only(),
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
        let answer = match serde_json::from_slice::<GenerateContent>(&body) {
            Ok(answer) => answer,
            // Not the answer's shape: an error in another form (a list), or no answer at all.
            Err(_) => {
                return match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => match error_object(&v) {
                        Some(error) => {
                            error_answer(error_status(error), &body, &self.provider_auth)
                        }
                        None => openai_format::error_body(
                            502,
                            "Gemini answered with a body that is not a GenerateContentResponse.",
                        ),
                    },
                    Err(_) => openai_format::error_body(
                        502,
                        "Gemini answered with a body that is not JSON.",
                    ),
                };
            }
        };
        if let Some(error) = answer.error() {
            return error_answer(error_status(error), &body, &self.provider_auth);
        }
        let piece = read_piece(&answer);
        let id = completion_id(Some(&answer), &self.fallback_model, self.created);
        let text = piece.texts.concat();
        let calls: Vec<Value> = piece
            .calls
            .iter()
            .enumerate()
            .map(|(n, (name, args))| openai_format::tool_call(None, &call_id(n), name, args))
            .collect();
        // Gemini's answer without text has `content: null`, tool calls or not.
        let message =
            AssistantMessage::with_content((!piece.texts.is_empty()).then_some(&text), calls);
        let finish = finish_reason(piece.finish, piece.blocked, !piece.calls.is_empty());
        openai_format::completion(&id, message, finish, &piece.usage.unwrap_or_default())
    }

    /// Takes the stream's identity from its first event and sends the role chunk.
    fn start(&mut self, answer: Option<&GenerateContent<'_>>, out: &mut Vec<u8>) {
        if self.id.is_some() {
            return;
        }
        let id = completion_id(answer, &self.fallback_model, self.created);
        out.extend(openai_format::chunk_event(
            &id,
            json!({"role": "assistant", "content": ""}),
            None,
        ));
        self.id = Some(id);
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let answer = match serde_json::from_str::<GenerateContent>(data) {
            Ok(answer) => answer,
            Err(_) => {
                // Not an event's shape: an error in another form (a list), or nothing to translate.
                let v = serde_json::from_str::<Value>(data).ok();
                if let Some(error) = v.as_ref().and_then(error_object) {
                    self.fail(error, out);
                }
                return;
            }
        };
        if let Some(error) = answer.error() {
            self.fail(error, out);
            return;
        }
        self.start(Some(&answer), out);
        let Some(id) = &self.id else {
            return;
        };
        let piece = read_piece(&answer);
        for text in piece.texts.iter().filter(|t| !t.is_empty()) {
            out.extend(openai_format::chunk_event(
                id,
                ContentDelta { content: text },
                None,
            ));
        }
        for (name, args) in &piece.calls {
            let n = self.calls;
            self.calls += 1;
            let call = openai_format::tool_call(Some(n), &call_id(n), name, args);
            out.extend(openai_format::chunk_event(
                id,
                json!({ "tool_calls": [call] }),
                None,
            ));
        }
        if let Some(finish) = piece.finish {
            self.finish = Some(finish.to_string());
        }
        self.blocked |= piece.blocked;
        if let Some(usage) = piece.usage {
            self.usage = usage;
        }
    }

    /// Ends the stream with Gemini's error as an OpenAI error event and `[DONE]`.
    fn fail(&mut self, error: &Value, out: &mut Vec<u8>) {
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
    }

    /// The end of the stream: the finish chunk, the usage chunk and `[DONE]`, whatever came.
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start(None, out);
        let Some(id) = &self.id else {
            return;
        };
        let finish = finish_reason(self.finish.as_deref(), self.blocked, self.calls > 0);
        out.extend(openai_format::chunk_event(id, json!({}), Some(finish)));
        out.extend(openai_format::usage_event(id, &self.usage));
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
        if self.parser.overflowed() && !self.done {
            out.extend(openai_format::stream_failure(
                &openai_format::event_too_large(),
            ));
            self.done = true;
        }
        if end {
            self.close(&mut out);
        }
        out
    }
}

/// Translates a `batchEmbedContents` answer.
pub(super) struct EmbeddingsResponse {
    pub(super) status: u32,
    pub(super) body: Vec<u8>,
    pub(super) model: String,
    pub(super) base64: bool,
    pub(super) provider_auth: String,
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
