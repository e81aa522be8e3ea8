//! An Anthropic provider's own answer to a Messages request, passing through untouched: its
//! usage is read as it passes (for limits, budgets, stats and the log), and a stream that breaks
//! (ends without `message_stop` or an `error` event, or has an event past the parser's cap) is
//! ended with an `error` event, so the client learns it failed.

use serde_json::Value;

use crate::provider::anthropic::RawUsage;
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

/// The usage of an Anthropic `usage` object, normalized (prompt = input + cache reads and
/// writes, as `crate::usage` counts it).
pub fn native_usage(usage: &Value) -> Option<Usage> {
    if !usage.is_object() {
        return None;
    }
    let mut raw = RawUsage::default();
    raw.update(usage);
    Some(raw.normalized())
}

#[derive(Debug)]
pub struct NativeStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    raw: RawUsage,
    saw_usage: bool,
    saw_stop: bool,
    /// An `error` event came (the provider's own), or the gateway ended the stream.
    pub error: bool,
    /// Why the gateway ended the stream itself, if it did (an OpenAI-style error code).
    pub failure: Option<&'static str>,
}

impl Default for NativeStream {
    fn default() -> Self {
        Self {
            parser: SseParser::fields_only(),
            events: Vec::new(),
            raw: RawUsage::default(),
            saw_usage: false,
            saw_stop: false,
            error: false,
            failure: None,
        }
    }
}

impl NativeStream {
    /// Observes one piece; returns an `error` event to send after it when the stream broke.
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
        if self.failure.is_some() {
            return None;
        }
        self.parser.feed(chunk, &mut self.events);
        if end {
            self.parser.finish(&mut self.events);
        }
        for event in std::mem::take(&mut self.events) {
            self.inspect(&event);
        }
        let (code, message) = crate::inbound::native_stream_break(
            self.parser.overflowed(),
            end && !self.saw_stop && !self.error,
        )?;
        self.failure = Some(code);
        self.error = true;
        let mut out = b"\n\nevent: error\ndata: ".to_vec();
        out.extend(super::answer::error_body("api_error", message));
        out.extend_from_slice(b"\n\n");
        Some(out)
    }

    /// What the stream reported of usage so far.
    pub fn usage(&self) -> Option<Usage> {
        self.saw_usage.then(|| self.raw.normalized())
    }

    fn inspect(&mut self, event: &SseEvent) {
        // Only these events matter; content deltas (most of them) are not parsed.
        let kind = event.event.as_deref().unwrap_or_default();
        if !matches!(
            kind,
            "message_start" | "message_delta" | "message_stop" | "error"
        ) {
            return;
        }
        match kind {
            "message_stop" => self.saw_stop = true,
            "error" => self.error = true,
            _ => {}
        }
        let Some(v) = event
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        else {
            return;
        };
        let usage = match kind {
            "message_start" => v.get("message").and_then(|m| m.get("usage")),
            _ => v.get("usage"),
        };
        if let Some(u) = usage.filter(|u| u.is_object()) {
            self.raw.update(u);
            self.saw_usage = true;
        }
    }
}
