//! Converse answers, ConverseStream events and Bedrock errors → the OpenAI chat format (the
//! mapping is in the module documentation of `bedrock.rs`). Answers and event payloads are read
//! into borrowed typed forms, never a JSON tree.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::eventstream;
use crate::error::GatewayError;
use crate::provider::openai_format::{self, AssistantMessage, CompletionId, ContentDelta};
use crate::provider::{ResponseShape, ResponseTranslator};
use crate::usage::Usage;

const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";

pub(super) fn is_success(status: u32) -> bool {
    (200..300).contains(&status)
}

/// A Bedrock error body's `message` (`{"message": ...}`, some services `Message`).
#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow, default, alias = "Message")]
    message: Option<Cow<'a, str>>,
}

fn json_message(body: &[u8]) -> Option<Cow<'_, str>> {
    serde_json::from_slice::<ErrorBody<'_>>(body).ok()?.message
}

/// Bedrock's error message, or the body's text.
pub(super) fn error_message(status: u32, body: &[u8]) -> String {
    if let Some(message) = json_message(body) {
        return message.into_owned();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("Bedrock answered with HTTP {status}.")
    } else {
        text.chars().take(1000).collect()
    }
}

pub(super) fn unreadable(what: &str) -> Vec<u8> {
    openai_format::error_body(502, &format!("Bedrock answered with {what}."))
}

/// Converse's `TokenUsage`
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    cache_write_input_tokens: Option<u64>,
}

impl TokenUsage {
    /// Normalized usage (see the module comment: `inputTokens` excludes cache reads and writes).
    fn usage(&self) -> Usage {
        let cached_prompt = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_write_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(cached_prompt)
            .saturating_add(cache_write);
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt,
            completion,
            total: prompt.saturating_add(completion),
            cached_prompt,
            cache_write,
            reasoning: 0,
        }
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

/// A Converse answer: the members the OpenAI answer needs, strings borrowed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseAnswer<'a> {
    #[serde(borrow, default)]
    output: Option<Output<'a>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(borrow, default)]
    message: Option<OutputMessage<'a>>,
}

#[derive(Deserialize)]
struct OutputMessage<'a> {
    #[serde(borrow, default)]
    content: Option<Vec<ContentBlock<'a>>>,
}

/// An answer's content block; kinds other than text and tool use (reasoning, citations) are
/// skipped: the OpenAI chat format has no field for them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlock<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_use: Option<ToolUse<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<Value>,
}

/// A whole Converse answer → an OpenAI chat completion.
fn completion(id: &CompletionId, body: &[u8]) -> Vec<u8> {
    let answer = match serde_json::from_slice::<ConverseAnswer<'_>>(body) {
        Ok(answer) => answer,
        Err(e) if e.is_data() => return unreadable("no output.message.content"),
        Err(_) => return unreadable("a body that is not JSON"),
    };
    let Some(blocks) = answer.output.and_then(|o| o.message?.content) else {
        return unreadable("no output.message.content");
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.text {
            text.push_str(&t);
        } else if let Some(tool) = block.tool_use {
            let arguments = tool
                .input
                .map_or_else(|| "{}".to_string(), |input| input.to_string());
            tool_calls.push(openai_format::tool_call(
                None,
                tool.tool_use_id.as_deref().unwrap_or(""),
                tool.name.as_deref().unwrap_or(""),
                &arguments,
            ));
        }
    }
    let usage = answer.usage.map(|u| u.usage()).unwrap_or_default();
    openai_format::completion(
        id,
        AssistantMessage::new(&text, tool_calls),
        finish_reason(answer.stop_reason.as_deref()),
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

/// ConverseStream state between pieces of the body: the decoder, and what the translation
/// has sent (apart, so that a message read in the decoder's buffer can drive the translation).
#[derive(Default)]
struct Stream {
    decoder: eventstream::Decoder,
    sent: Sent,
}

#[derive(Default)]
struct Sent {
    role_sent: bool,
    /// Bedrock content-block index → OpenAI `tool_calls` index.
    tools: Vec<(u64, usize)>,
    /// `messageStop` seen: the answer is complete.
    finished: bool,
    /// `[DONE]` sent: nothing more goes out.
    done: bool,
}

/// The payload of one ConverseStream event
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html):
/// the members of every event type the translation reads, strings borrowed; a payload that
/// cannot be read counts as empty.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventPayload<'a> {
    #[serde(default)]
    content_block_index: Option<u64>,
    /// `contentBlockStart`
    #[serde(borrow, default)]
    start: Option<BlockStart<'a>>,
    /// `contentBlockDelta`
    #[serde(borrow, default)]
    delta: Option<BlockDelta<'a>>,
    /// `messageStop`
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    /// `metadata`
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart<'a> {
    #[serde(borrow, default)]
    tool_use: Option<ToolUse<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_use: Option<ToolUseDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolUseDelta<'a> {
    /// A piece of the tool input's JSON text.
    #[serde(borrow, default)]
    input: Option<Cow<'a, str>>,
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
        let Stream { decoder, sent } = self;
        if sent.done {
            return out;
        }
        decoder.push(chunk);
        while let Some(next) = decoder.next_message_ref() {
            match next {
                Ok(message) => sent.event(id, &message, &mut out),
                Err(e) => sent.fail(
                    &mut out,
                    502,
                    &format!("Bedrock's event stream is corrupted: {}.", e.describe()),
                ),
            }
            if sent.done {
                return out;
            }
        }
        if end {
            if sent.finished && decoder.pending() == 0 {
                out.extend_from_slice(openai_format::DONE);
                sent.done = true;
            } else {
                sent.fail(
                    &mut out,
                    502,
                    "Bedrock's event stream ended before the answer was complete.",
                );
            }
        }
        out
    }
}

impl Sent {
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

    fn event(&mut self, id: &CompletionId, message: &eventstream::MessageRef, out: &mut Vec<u8>) {
        match message.header(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = message.header(":exception-type").unwrap_or("exception");
                let text = json_message(message.payload).map_or_else(
                    || format!("Bedrock stream failed: {kind}."),
                    Cow::into_owned,
                );
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
        let payload: EventPayload<'_> = serde_json::from_slice(message.payload).unwrap_or_default();
        let block = payload.content_block_index.unwrap_or(0);
        match message.header(":event-type").unwrap_or("") {
            "messageStart" => self.role(id, out),
            "contentBlockStart" => {
                if let Some(tool) = payload.start.and_then(|s| s.tool_use) {
                    self.role(id, out);
                    let index = self.tool_index(block);
                    let call = openai_format::tool_call(
                        Some(index),
                        tool.tool_use_id.as_deref().unwrap_or(""),
                        tool.name.as_deref().unwrap_or(""),
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
                let Some(delta) = payload.delta else { return };
                if let Some(text) = delta.text {
                    self.role(id, out);
                    out.extend(openai_format::chunk_event(
                        id,
                        ContentDelta { content: &text },
                        None,
                    ));
                } else if let Some(input) = delta.tool_use.and_then(|t| t.input) {
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
                let reason = finish_reason(payload.stop_reason.as_deref());
                out.extend(openai_format::chunk_event(id, json!({}), Some(reason)));
                self.finished = true;
            }
            "metadata" => {
                if let Some(usage) = payload.usage {
                    out.extend(openai_format::usage_event(id, &usage.usage()));
                }
                out.extend_from_slice(openai_format::DONE);
                self.done = true;
            }
            _ => {}
        }
    }
}
