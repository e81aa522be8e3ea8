//! OpenAI `chat.completion.chunk` SSE -> Anthropic's streaming events, piece by piece.
//!
//! `message_start` and a `ping` open the stream at the first chunk; text deltas go into a
//! `text` block, each tool call into a `tool_use` block with `input_json_delta`s; a block is
//! stopped when the next one starts. `finish_reason` and the usage chunk are held until
//! `[DONE]`, which becomes `message_delta` (stop reason, usage) and `message_stop`. An OpenAI
//! error event, an event past the parser's cap or a stream ending without `[DONE]` becomes an
//! `error` event, and the stream ends there.

use serde_json::{json, Value};

use super::answer::{message_id, stop_reason, tool_id, usage};
use super::Context;
use crate::sse::{SseEvent, SseParser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// A tool call, by its OpenAI index.
    Tool(u64),
}

#[derive(Debug)]
pub struct StreamFromChat {
    model: String,
    parser: SseParser,
    events: Vec<SseEvent>,
    started: bool,
    /// The open block and its Anthropic index.
    open: Option<(Open, u64)>,
    next_index: u64,
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// The client's stream is over (`message_stop` or `error` sent).
    over: bool,
}

impl StreamFromChat {
    pub fn new(ctx: &Context) -> Self {
        Self {
            model: ctx.model.clone(),
            parser: SseParser::fields_only(),
            events: Vec::new(),
            started: false,
            open: None,
            next_index: 0,
            finish_reason: None,
            usage: None,
            over: false,
        }
    }

    /// The next piece of the OpenAI stream (`end` on the last) -> Anthropic event bytes.
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.over {
            return out;
        }
        self.parser.feed(chunk, &mut self.events);
        if end {
            self.parser.finish(&mut self.events);
        }
        for event in std::mem::take(&mut self.events) {
            if self.over {
                break;
            }
            self.handle(&event, &mut out);
        }
        if !self.over && self.parser.overflowed() {
            self.fail(
                "api_error",
                "An event of the provider's stream is larger than the gateway accepts.",
                &mut out,
            );
        } else if !self.over && end {
            self.fail(
                "api_error",
                "The provider's stream ended before the answer was complete.",
                &mut out,
            );
        }
        out
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let Some(data) = event.data.as_deref() else {
            return;
        };
        if data.trim() == "[DONE]" {
            self.finish(out);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("The provider failed during the stream.");
            self.fail(stream_error_type(error), message, out);
            return;
        }
        self.start(v.get("id").and_then(Value::as_str), out);
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        let delta = choice.get("delta");
        if let Some(text) = delta
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.open_block(Open::Text, out, |_| json!({"type": "text", "text": ""}));
            emit(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
            );
        }
        let calls = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let tool = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function");
            let index = self.open_block(Open::Tool(tool), out, |_| {
                json!({"type": "tool_use",
                    "id": call.get("id").and_then(Value::as_str).map_or_else(|| tool_id(tool), str::to_string),
                    "name": function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default(),
                    "input": {}})
            });
            if let Some(args) = function
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                emit(
                    out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": args}}),
                );
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    /// `message_start` and a `ping`, once.
    fn start(&mut self, chat_id: Option<&str>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        emit(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(chat_id), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
        emit(out, "ping", &json!({"type": "ping"}));
    }

    /// The Anthropic index of the block `kind`, started (after stopping another) if not open.
    fn open_block(
        &mut self,
        kind: Open,
        out: &mut Vec<u8>,
        block: impl FnOnce(u64) -> Value,
    ) -> u64 {
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.stop_block(out);
        let index = self.next_index;
        self.next_index = index.saturating_add(1);
        emit(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block(index)}),
        );
        self.open = Some((kind, index));
        index
    }

    fn stop_block(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            emit(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// `[DONE]`: the last block stops, then `message_delta` and `message_stop`.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(None, out);
        self.stop_block(out);
        emit(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish_reason.as_deref()), "stop_sequence": null},
                "usage": usage(self.usage.as_ref())}),
        );
        emit(out, "message_stop", &json!({"type": "message_stop"}));
        self.over = true;
    }

    fn fail(&mut self, error_type: &str, message: &str, out: &mut Vec<u8>) {
        emit(
            out,
            "error",
            &json!({"type": "error", "error": {"type": error_type, "message": message}}),
        );
        self.over = true;
    }
}

/// Anthropic's error type for an OpenAI error object inside a stream (no status to go by).
fn stream_error_type(error: &Value) -> &'static str {
    let field = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or_default();
    match (field("type"), field("code")) {
        (_, "rate_limit_exceeded") | ("rate_limit_error" | "requests" | "tokens", _) => {
            "rate_limit_error"
        }
        ("overloaded_error", _) => "overloaded_error",
        ("invalid_request_error", _) => "invalid_request_error",
        _ => "api_error",
    }
}

fn emit(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
