//! `chat.completion.chunk` SSE → the Responses API event stream, chunk by chunk.
//!
//! The sequence, each event with a `sequence_number` counting from 0: `response.created` and
//! `response.in_progress` (at the first chunk); per output item `response.output_item.added`;
//! for text `response.content_part.added`, `response.output_text.delta`...,
//! `response.output_text.done`, `response.content_part.done` (a refusal the same with
//! `response.refusal.*`); for a tool call `response.function_call_arguments.delta`...,
//! `.done`; then `response.output_item.done`; last `response.completed` (or
//! `response.incomplete` when the chat finish reason is `length` / `content_filter`) with the
//! whole response and its usage. Text comes in one `message` item; a tool call starts its own
//! `function_call` item and ends the message; tool calls stay open until the end, so a
//! provider that interleaves them is still translated. The stream ends there: Responses streams
//! have no `[DONE]`.
//!
//! A failure (an OpenAI error event, a stream cut before `[DONE]`, an event over the SSE cap,
//! a chunk that is not JSON, an answer over [`MAX_OUTPUT_BYTES`]) ends the stream with an
//! `error` event and `response.failed`: the SDK yields both, and clients that only watch one of
//! them still learn of it (the Codex CLI stops with the message, checked by hand).
//!
//! Reference: https://platform.openai.com/docs/api-reference/responses-streaming and the SDK's
//! `types/responses/response_stream_event.py` (and the event files it lists).

use serde_json::{json, Value};

mod items;

use super::error::Failure;
use super::{
    function_call_item, message_item, response_object, usage_of, Context, Identity, Status,
};
use crate::sse::{SseEvent, SseParser};
use items::{Item, Part};

/// The most answer text, refusal, tool names and arguments a stream holds for its final
/// `response.completed` (which repeats the whole output). Far above any model's output limit.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// OpenAI `chat.completion.chunk` SSE bytes, split anywhere → Responses API SSE events.
#[derive(Debug)]
pub struct StreamFromChat {
    ctx: Context,
    parser: SseParser,
    /// Set at the first chunk (or a failure before it): `response.created` was sent.
    identity: Option<Identity>,
    sequence: u64,
    items: Vec<Item>,
    /// The `message` item that text and refusal deltas go to, while no tool call came after.
    open_message: Option<usize>,
    /// Chat tool call `index` → its item.
    calls: Vec<(u64, usize)>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    held_bytes: usize,
    max_output_bytes: usize,
    ended: bool,
    /// The `response` of `response.completed` / `response.incomplete`, once sent.
    finished: Option<Box<Value>>,
}

impl StreamFromChat {
    pub fn new(ctx: &Context) -> Self {
        Self {
            ctx: ctx.clone(),
            parser: SseParser::fields_only(),
            identity: None,
            sequence: 0,
            items: Vec::new(),
            open_message: None,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
            held_bytes: 0,
            max_output_bytes: MAX_OUTPUT_BYTES,
            ended: false,
            finished: None,
        }
    }

    #[cfg(test)]
    pub(super) fn with_output_limit(ctx: &Context, limit: usize) -> Self {
        Self {
            max_output_bytes: limit,
            ..Self::new(ctx)
        }
    }

    /// The whole response, once the stream completed (or ended incomplete); `None` before, or
    /// when it failed.
    pub fn finished_response(&mut self) -> Option<Value> {
        self.finished.take().map(|b| *b)
    }

    /// Feeds the provider's next bytes (`end`: the last ones) and returns the events to send.
    /// After the terminal event everything is ignored.
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        let mut events = Vec::new();
        self.parser.feed(chunk, &mut events);
        if end {
            self.parser.finish(&mut events);
        }
        for event in events {
            self.on_event(event, &mut out);
            if self.ended {
                return out;
            }
        }
        if self.parser.overflowed() {
            let failure = Failure::new(
                "stream_event_too_large",
                "The provider sent a stream event larger than the gateway's limit.",
            );
            self.fail(failure, &mut out);
        } else if end {
            let failure = Failure::new(
                "upstream_stream_reset",
                "The provider's stream ended before the answer was complete.",
            );
            self.fail(failure, &mut out);
        }
        out
    }

    fn on_event(&mut self, event: SseEvent, out: &mut Vec<u8>) {
        let Some(data) = event.data else {
            return; // a comment or keep-alive
        };
        if data.trim() == "[DONE]" {
            self.start(&Value::Null, out);
            let status = Status::of_finish(self.finish_reason.as_deref());
            self.finish(status, out);
            return;
        }
        let chunk: Value = match serde_json::from_str(&data) {
            Ok(chunk @ Value::Object(_)) => chunk,
            _ => {
                let failure = Failure::new(
                    "upstream_error",
                    "The provider sent a stream event that is not a JSON object.",
                );
                return self.fail(failure, out);
            }
        };
        self.start(&chunk, out);
        if let Some(error) = chunk.get("error").filter(|e| e.is_object()) {
            return self.fail(Failure::of_openai_error(error), out);
        }
        if let Some(usage) = usage_of(chunk.get("usage")) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else {
            return;
        };
        for (key, is_refusal) in [("content", false), ("refusal", true)] {
            if self.ended {
                return;
            }
            if let Some(text) = delta.get(key).and_then(Value::as_str) {
                if !text.is_empty() && self.hold(text.len(), out) {
                    self.text_delta(text, is_refusal, out);
                }
            }
        }
        let calls = delta.get("tool_calls").and_then(Value::as_array);
        for call in calls.map(Vec::as_slice).unwrap_or_default() {
            if self.ended {
                return;
            }
            self.call_delta(call, out);
        }
    }

    /// `response.created` and `response.in_progress`, once, named after the first chunk.
    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.identity.is_some() {
            return;
        }
        let identity = Identity::of(chunk, &self.ctx);
        let response = response_object(&self.ctx, &identity, &Status::InProgress, Vec::new(), None);
        self.identity = Some(identity);
        self.emit(
            json!({"type": "response.created", "response": response}),
            out,
        );
        self.emit(
            json!({"type": "response.in_progress", "response": response}),
            out,
        );
    }

    /// Closes every open item and sends the terminal event.
    fn finish(&mut self, status: Status, out: &mut Vec<u8>) {
        let item_status = status.item_status();
        self.close_message(item_status, out);
        let mut events = Vec::new();
        for (index, item) in self.items.iter_mut().enumerate() {
            if let Item::Call {
                id,
                call_id,
                name,
                arguments,
                status: held @ None,
            } = item
            {
                *held = Some(item_status);
                events.push(json!({
                    "type": "response.function_call_arguments.done",
                    "item_id": id, "output_index": index, "name": name, "arguments": arguments,
                }));
                events.push(json!({
                    "type": "response.output_item.done", "output_index": index,
                    "item": function_call_item(id, item_status, call_id, name, arguments),
                }));
            }
        }
        for event in events {
            self.emit(event, out);
        }
        let kind = match status {
            Status::Incomplete(_) => "response.incomplete",
            _ => "response.completed",
        };
        let response = self.response(&status);
        self.emit(json!({"type": kind, "response": &response}), out);
        self.finished = Some(Box::new(response));
        self.ended = true;
    }

    /// An `error` event and `response.failed` with what was produced so far.
    fn fail(&mut self, failure: Failure, out: &mut Vec<u8>) {
        self.start(&Value::Null, out);
        self.emit(
            json!({"type": "error", "code": failure.code, "message": failure.message, "param": failure.param}),
            out,
        );
        let response = self.response(&Status::Failed(failure.response_error()));
        self.emit(
            json!({"type": "response.failed", "response": response}),
            out,
        );
        self.ended = true;
    }

    /// Counts `len` more bytes of answer; past the cap the stream fails (the provider's fault).
    fn hold(&mut self, len: usize, out: &mut Vec<u8>) -> bool {
        self.held_bytes = self.held_bytes.saturating_add(len);
        if self.held_bytes <= self.max_output_bytes {
            return true;
        }
        let message = format!(
            "The provider's answer is larger than the gateway's limit of {} bytes.",
            self.max_output_bytes
        );
        self.fail(Failure::new("response_too_large", message), out);
        false
    }

    /// The whole response as it stands; items not finished are `incomplete`.
    fn response(&self, status: &Status) -> Value {
        let output = self
            .items
            .iter()
            .map(|item| match item {
                Item::Message { id, parts, status } => {
                    let content = parts.iter().map(Part::json).collect();
                    message_item(id, status.unwrap_or("incomplete"), content)
                }
                Item::Call {
                    id,
                    call_id,
                    name,
                    arguments,
                    status,
                } => {
                    function_call_item(id, status.unwrap_or("incomplete"), call_id, name, arguments)
                }
            })
            .collect();
        response_object(
            &self.ctx,
            &self.identity(),
            status,
            output,
            self.usage.clone(),
        )
    }

    fn identity(&self) -> Identity {
        self.identity
            .clone()
            .unwrap_or_else(|| Identity::of(&Value::Null, &self.ctx))
    }

    fn emit(&mut self, mut event: Value, out: &mut Vec<u8>) {
        if let Some(obj) = event.as_object_mut() {
            obj.insert("sequence_number".into(), Value::from(self.sequence));
        }
        self.sequence = self.sequence.saturating_add(1);
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(event.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}
