//! Cohere answers (chat JSON, chat stream events, embed JSON, errors) back to the OpenAI
//! format; the mapping is in the module documentation of `cohere.rs`. Answers are read into
//! typed forms that borrow the body's strings (owned only when they hold escapes); members the
//! OpenAI answer does not need are skipped.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::provider::openai_format::{self, AssistantMessage, CompletionId, ContentDelta};
use crate::provider::{Attempt, Operation, ResponseShape, ResponseTranslator};
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

/// Longest part of an error body that is not JSON kept as the error's message.
const MAX_ERROR_TEXT: usize = 500;

// ---------------------------------------------------------------------------------------------
// Cohere's answers, as read

/// A `ChatResponseV2` (https://docs.cohere.com/reference/chat, Response).
#[derive(Deserialize)]
struct ChatAnswer<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<AnswerMessage<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Deserialize)]
struct AnswerMessage<'a> {
    #[serde(borrow, default)]
    content: Option<AnswerText<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

/// The answer's text: its `text` content parts joined (`thinking` parts are reasoning, not the
/// answer), or the content itself when it is a string. Joined while reading, without a list of
/// parts.
struct AnswerText<'a>(Cow<'a, str>);

/// One content part of an answer; only `text` parts are kept.
#[derive(Deserialize)]
struct ContentPart<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for AnswerText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = AnswerText<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of content parts or a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(AnswerText(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(AnswerText(Cow::Owned(text.to_string())))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut parts: A) -> Result<Self::Value, A::Error> {
                let mut joined = Cow::Borrowed("");
                while let Some(part) = parts.next_element::<ContentPart<'de>>()? {
                    match (part.kind.as_deref(), part.text) {
                        (Some("text"), Some(text)) if joined.is_empty() => joined = text,
                        (Some("text"), Some(text)) => joined.to_mut().push_str(&text),
                        _ => {}
                    }
                }
                Ok(AnswerText(joined))
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

/// A tool call of an answer (a list of them) or of a stream's `tool-call-start` and
/// `tool-call-delta` (one, arguments in pieces).
#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<CalledFunction<'a>>,
}

#[derive(Deserialize)]
struct CalledFunction<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Arguments<'a>>,
}

/// Tool-call arguments: Cohere sends their JSON text; any other JSON value is taken as the
/// arguments themselves.
#[derive(Deserialize)]
#[serde(untagged)]
enum Arguments<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Json(Value),
}

impl ToolCall<'_> {
    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.function
            .as_ref()
            .and_then(|f| f.name.as_deref())
            .unwrap_or_default()
    }

    /// The arguments as JSON text, empty when there are none.
    fn arguments(&self) -> Cow<'_, str> {
        match self.function.as_ref().and_then(|f| f.arguments.as_ref()) {
            Some(Arguments::Text(text)) => Cow::Borrowed(text),
            Some(Arguments::Json(value)) => Cow::Owned(value.to_string()),
            None => Cow::Borrowed(""),
        }
    }
}

/// Cohere's `Usage`: what the model processed (`tokens`) and what was billed.
#[derive(Deserialize)]
struct CohereUsage {
    #[serde(default)]
    tokens: Option<TokenCounts>,
    #[serde(default)]
    billed_units: Option<TokenCounts>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    cached_tokens: Option<u64>,
}

/// Counts Cohere types as doubles (`5.0` is read too).
#[derive(Deserialize)]
struct TokenCounts {
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    output_tokens: Option<u64>,
}

impl CohereUsage {
    /// OpenAI usage: `tokens` first, `billed_units` for a count it lacks (billed tokens leave
    /// out the prompt scaffolding and are smaller).
    fn normalized(&self) -> Usage {
        let pick = |count: fn(&TokenCounts) -> Option<u64>| {
            self.tokens
                .as_ref()
                .and_then(count)
                .or_else(|| self.billed_units.as_ref().and_then(count))
                .unwrap_or(0)
        };
        let prompt = pick(|c| c.input_tokens);
        let completion = pick(|c| c.output_tokens);
        Usage {
            prompt,
            completion,
            total: prompt.saturating_add(completion),
            cached_prompt: self.cached_tokens.unwrap_or(0),
            ..Usage::default()
        }
    }
}

fn usage(usage: Option<&CohereUsage>) -> Usage {
    usage.map(CohereUsage::normalized).unwrap_or_default()
}

/// An `EmbedByTypeResponse` (https://docs.cohere.com/reference/embed, Response).
#[derive(Deserialize)]
struct EmbedAnswer {
    #[serde(default)]
    embeddings: Option<FloatVectors>,
    #[serde(default)]
    meta: Option<EmbedMeta>,
}

#[derive(Deserialize)]
struct EmbedMeta {
    #[serde(default)]
    billed_units: Option<TokenCounts>,
}

/// The float vectors of `embeddings`: `{"float": [...]}` by type (v2), or the list itself (the
/// older `embeddings_floats` shape); `None` when embeddings of other types only came. Read
/// without buffering the vectors. Cohere Embed on Bedrock answers in the same shapes.
pub(crate) struct FloatVectors(pub(crate) Option<Vec<Vec<f64>>>);

#[derive(Deserialize)]
struct EmbeddingsByType {
    #[serde(default)]
    float: Option<Vec<Vec<f64>>>,
}

impl<'de> Deserialize<'de> for FloatVectors {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VectorsVisitor;

        impl<'de> Visitor<'de> for VectorsVisitor {
            type Value = FloatVectors;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("embeddings by type or a list of float vectors")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(|v| FloatVectors(Some(v)))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                EmbeddingsByType::deserialize(MapAccessDeserializer::new(map))
                    .map(|by_type| FloatVectors(by_type.float))
            }
        }

        deserializer.deserialize_any(VectorsVisitor)
    }
}

/// An error body: Cohere's `{"message": ...}`, or an `{"error": {"message": ...}}`.
#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<ErrorObject<'a>>,
}

#[derive(Deserialize)]
struct ErrorObject<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

impl ErrorBody<'_> {
    fn read(body: &[u8]) -> Option<ErrorBody<'_>> {
        serde_json::from_slice(body).ok()
    }

    fn message(&self) -> Option<&str> {
        self.message
            .as_deref()
            .or_else(|| self.error.as_ref()?.message.as_deref())
    }
}

/// One event of a chat stream (https://docs.cohere.com/reference/chat-stream).
#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    /// `message-start`: the answer's id.
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    /// Tool-call events: which call.
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<EventDelta<'a>>,
    /// An error object sent instead of an event.
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Default, Deserialize)]
struct EventDelta<'a> {
    #[serde(borrow, default)]
    message: Option<DeltaMessage<'a>>,
    /// `message-end`'s members.
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Deserialize)]
struct DeltaMessage<'a> {
    #[serde(borrow, default)]
    content: Option<IfObject<DeltaContent<'a>>>,
    #[serde(borrow, default)]
    tool_calls: Option<IfObject<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct DeltaContent<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// A member read when it is an object and skipped when it is a list: `message-start` sends
/// `content` and `tool_calls` as (empty) lists where the deltas send one object.
struct IfObject<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for IfObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = IfObject<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or a list")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| IfObject(Some(t)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IfObject(None))
            }
        }

        deserializer.deserialize_any(ObjectVisitor(PhantomData))
    }
}

impl<'a> DeltaMessage<'a> {
    fn text(&self) -> Option<&str> {
        self.content.as_ref()?.0.as_ref()?.text.as_deref()
    }

    fn tool_call(&self) -> Option<&ToolCall<'a>> {
        self.tool_calls.as_ref()?.0.as_ref()
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI stream deltas, written without a JSON tree (members sorted, as a JSON value of them
// would serialize)

/// The first chunk's delta: `{"content": "", "role": "assistant"}`.
#[derive(Serialize)]
struct RoleDelta {
    content: &'static str,
    role: &'static str,
}

/// The finish chunk's empty delta: `{}`.
#[derive(Serialize)]
struct NoDelta {}

/// `{"tool_calls": [call]}`.
#[derive(Serialize)]
struct ToolCallsDelta<T> {
    tool_calls: [T; 1],
}

/// A tool call's arguments so far: `{"function": {"arguments": ...}, "index": n}`.
#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    function: ArgumentsOnly<'a>,
    index: usize,
}

#[derive(Serialize)]
struct ArgumentsOnly<'a> {
    arguments: &'a str,
}

// ---------------------------------------------------------------------------------------------
// Translation

pub(super) struct CohereResponse {
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
    pub(super) fn new(attempt: &Attempt, base64: bool) -> Self {
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
        if !(200..300).contains(&self.status) {
            return openai_format::error_body(
                self.status,
                &error_message(&self.buffer, self.status),
            );
        }
        match self.operation {
            Operation::Chat => match serde_json::from_slice::<ChatAnswer>(&self.buffer) {
                Ok(answer) if answer.message.is_some() => self.chat(&answer),
                _ => self.not_an_answer("a chat answer"),
            },
            Operation::Embeddings => match serde_json::from_slice::<EmbedAnswer>(&self.buffer) {
                Ok(EmbedAnswer {
                    embeddings: Some(FloatVectors(Some(vectors))),
                    meta,
                }) => self.embeddings(&vectors, meta.as_ref()),
                _ => self.not_an_answer("an embed answer with float vectors"),
            },
        }
    }

    /// A 2xx body that is not the answer asked for: a 502 with Cohere's message when the body
    /// is an error, never an empty answer.
    fn not_an_answer(&self, what: &str) -> Vec<u8> {
        let error = ErrorBody::read(&self.buffer);
        let message = match error.as_ref().and_then(ErrorBody::message) {
            Some(message) if !message.is_empty() => message.to_string(),
            _ if serde_json::from_slice::<IgnoredAny>(&self.buffer).is_err() => {
                "Cohere answered with a body that is not JSON.".to_string()
            }
            _ => format!("Cohere answered with a body that is not {what}."),
        };
        openai_format::error_body(502, &message)
    }

    fn chat(&self, answer: &ChatAnswer<'_>) -> Vec<u8> {
        let id = CompletionId {
            id: answer.id.as_deref().unwrap_or_default().to_string(),
            created: self.id.created,
            model: self.id.model.clone(),
        };
        let message = answer.message.as_ref();
        let text = message
            .and_then(|m| m.content.as_ref())
            .map_or("", |text| &text.0);
        let calls: Vec<Value> = message
            .and_then(|m| m.tool_calls.as_ref())
            .into_iter()
            .flatten()
            .map(|call| openai_format::tool_call(None, call.id(), call.name(), &call.arguments()))
            .collect();
        let reason = finish_reason(answer.finish_reason.as_deref());
        let message = AssistantMessage::new(text, calls);
        openai_format::completion(&id, message, reason, &usage(answer.usage.as_ref()))
    }

    fn embeddings(&self, vectors: &[Vec<f64>], meta: Option<&EmbedMeta>) -> Vec<u8> {
        let prompt = meta
            .and_then(|m| m.billed_units.as_ref())
            .and_then(|b| b.input_tokens)
            .unwrap_or(0);
        let usage = Usage {
            prompt,
            total: prompt,
            ..Usage::default()
        };
        openai_format::embeddings(&self.id.model, vectors, self.base64, &usage)
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
            stream.fail(
                "The Cohere stream ended before its message-end event.",
                &mut out,
            );
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
        let Ok(v) = serde_json::from_str::<StreamEvent>(data) else {
            return;
        };
        let kind = v
            .kind
            .as_deref()
            .or(event.event.as_deref())
            .unwrap_or_default();
        let delta = v.delta.as_ref().and_then(|d| d.message.as_ref());
        match kind {
            "message-start" => {
                if let Some(i) = &v.id {
                    id.id = i.to_string();
                }
                self.start(id, out);
            }
            "content-start" | "content-delta" => {
                if let Some(text) = delta.and_then(DeltaMessage::text) {
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
                let call = delta.and_then(DeltaMessage::tool_call);
                let index = self.tools.len();
                self.tools.push((v.index, index));
                self.start(id, out);
                let call = openai_format::tool_call(
                    Some(index),
                    call.map_or("", |c| c.id()),
                    call.map_or("", |c| c.name()),
                    &call.map(|c| c.arguments()).unwrap_or_default(),
                );
                out.extend(openai_format::chunk_event(
                    id,
                    ToolCallsDelta { tool_calls: [call] },
                    None,
                ));
            }
            "tool-call-delta" => {
                let arguments = delta
                    .and_then(DeltaMessage::tool_call)
                    .map(ToolCall::arguments)
                    .unwrap_or_default();
                // The call of that index, else the last one started.
                let index = self
                    .tools
                    .iter()
                    .rev()
                    .find(|(cohere, _)| *cohere == v.index)
                    .or(self.tools.last())
                    .map(|(_, index)| *index);
                if let (Some(index), false) = (index, arguments.is_empty()) {
                    let delta = ArgumentsDelta {
                        function: ArgumentsOnly {
                            arguments: &arguments,
                        },
                        index,
                    };
                    out.extend(openai_format::chunk_event(
                        id,
                        ToolCallsDelta {
                            tool_calls: [delta],
                        },
                        None,
                    ));
                }
            }
            "message-end" => {
                let end = v.delta.unwrap_or_default();
                let reason = end.finish_reason.as_deref();
                let error = end.error.as_deref().filter(|e| !e.is_empty());
                if error.is_some() || reason == Some("ERROR") {
                    self.fail(
                        error.unwrap_or("Cohere reported an error during generation."),
                        out,
                    );
                    return;
                }
                self.start(id, out);
                out.extend(openai_format::chunk_event(
                    id,
                    NoDelta {},
                    Some(finish_reason(reason)),
                ));
                out.extend(openai_format::usage_event(id, &usage(end.usage.as_ref())));
                out.extend_from_slice(openai_format::DONE);
                self.done = true;
            }
            "" if v.message.is_some() => {
                // An error object instead of an event.
                self.fail(v.message.as_deref().unwrap_or_default(), out);
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
                RoleDelta {
                    content: "",
                    role: "assistant",
                },
                None,
            ));
        }
    }

    /// Ends the stream with an OpenAI error event and `[DONE]`, which the SDKs raise on.
    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        out.extend(openai_format::error_event(
            message,
            "upstream_error",
            Some("upstream_error"),
        ));
        out.extend_from_slice(openai_format::DONE);
        self.done = true;
    }
}

fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("MAX_TOKENS" | "TIMEOUT" | "ERROR") => "length",
        Some("TOOL_CALL") => "tool_calls",
        _ => "stop",
    }
}

/// The message of a Cohere error answer: its `message` (or `error.message`), else the start of
/// the body, else the status.
fn error_message(body: &[u8], status: u32) -> String {
    let message = match ErrorBody::read(body).as_ref().and_then(ErrorBody::message) {
        Some(message) => message.to_string(),
        None => {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(MAX_ERROR_TEXT).collect()
        }
    };
    if message.is_empty() {
        format!("Cohere answered with HTTP status {status}.")
    } else {
        message
    }
}
