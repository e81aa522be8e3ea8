//! A Responses provider's own answer (OpenAI, Azure), passing through untouched: its usage is
//! read as it passes (for limits, budgets, cost, stats and the log), and a stream that breaks
//! (ends without `response.completed`, `response.incomplete`, `response.failed` or an `error`
//! event, or has an event past the parser's cap) is ended with an `error` event and
//! `response.failed`, as the translated stream ends, so the client learns it failed.
//!
//! Reference: https://platform.openai.com/docs/api-reference/responses/object (`usage`:
//! `input_tokens` with `input_tokens_details.cached_tokens` among them, `output_tokens` with
//! `output_tokens_details.reasoning_tokens`, `total_tokens`) and
//! https://platform.openai.com/docs/api-reference/responses-streaming (the terminal events carry
//! the whole `response`, usage included; every event has `sequence_number`).

use serde_json::{json, Value};

use super::error::Failure;
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

/// A Responses `usage` object in the gateway's normalized form (prompt counts cached tokens,
/// completion counts reasoning tokens: as the Responses API counts them already).
pub fn native_usage(usage: &Value) -> Option<Usage> {
    let u = usage.as_object()?;
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt = count(u.get("input_tokens"));
    let completion = count(u.get("output_tokens"));
    Some(Usage {
        prompt,
        completion,
        total: u
            .get("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(prompt.saturating_add(completion)),
        cached_prompt: count(
            u.get("input_tokens_details")
                .and_then(|d| d.get("cached_tokens")),
        ),
        cache_write: 0,
        reasoning: count(
            u.get("output_tokens_details")
                .and_then(|d| d.get("reasoning_tokens")),
        ),
    })
}

#[derive(Debug, Default)]
pub struct NativeStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    usage: Option<Usage>,
    /// The last `response` object of a lifecycle event, for the `response.failed` the gateway
    /// sends when the stream breaks.
    last_response: Option<Value>,
    next_sequence: u64,
    ended: bool,
    /// The `response` of `response.completed` / `response.incomplete`.
    finished: Option<Value>,
    /// An `error` or `response.failed` event came (the provider's own), or the gateway ended
    /// the stream.
    pub error: bool,
    /// Why the gateway ended the stream itself, if it did (an OpenAI-style error code).
    pub failure: Option<&'static str>,
}

impl NativeStream {
    pub fn new() -> Self {
        Self {
            parser: SseParser::fields_only(),
            ..Self::default()
        }
    }

    /// Observes one piece; returns the events to send after it when the stream broke.
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
        let (code, message) =
            crate::inbound::native_stream_break(self.parser.overflowed(), end && !self.ended)?;
        self.failure = Some(code);
        self.error = true;
        Some(self.ending(&Failure::new(code, message)))
    }

    /// The whole response of a stream that completed (or ended incomplete).
    pub fn finished_response(&mut self) -> Option<Value> {
        self.finished.take()
    }

    /// What the stream reported of usage (its terminal event's).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// `error`, then `response.failed` with the last response object seen (when one was).
    fn ending(&mut self, failure: &Failure) -> Vec<u8> {
        let mut out = b"\n\n".to_vec();
        let error = json!({"type": "error", "code": failure.code, "message": failure.message,
            "param": failure.param, "sequence_number": self.next_sequence});
        self.next_sequence = self.next_sequence.saturating_add(1);
        out.extend(format!("event: error\ndata: {error}\n\n").into_bytes());
        if let Some(mut response) = self.last_response.take() {
            if let Some(obj) = response.as_object_mut() {
                obj.insert("status".into(), Value::from("failed"));
                obj.insert("error".into(), failure.response_error());
            }
            let failed = json!({"type": "response.failed", "sequence_number": self.next_sequence,
                "response": response});
            out.extend(format!("event: response.failed\ndata: {failed}\n\n").into_bytes());
        }
        out
    }

    fn inspect(&mut self, event: &SseEvent) {
        let Some(data) = event.data.as_deref() else {
            return;
        };
        // Only the lifecycle events are parsed; the deltas (most events) are only counted. A
        // stream without `event:` lines names each event by its `type` alone: parsed then.
        let mut parsed = None;
        let kind = match event.event.as_deref() {
            Some(kind) => kind,
            None => {
                parsed = serde_json::from_str::<Value>(data).ok();
                parsed
                    .as_ref()
                    .and_then(|v| v.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            }
        };
        let lifecycle = matches!(
            kind,
            "response.created"
                | "response.in_progress"
                | "response.queued"
                | "response.completed"
                | "response.incomplete"
                | "response.failed"
                | "error"
        );
        if !lifecycle {
            self.next_sequence = self.next_sequence.saturating_add(1);
            return;
        }
        let kind = kind.to_string();
        let Some(v) = parsed.or_else(|| serde_json::from_str::<Value>(data).ok()) else {
            return;
        };
        if let Some(n) = v.get("sequence_number").and_then(Value::as_u64) {
            self.next_sequence = n.saturating_add(1);
        }
        match kind.as_str() {
            "error" | "response.failed" => {
                self.error = true;
                self.ended = true;
            }
            "response.completed" | "response.incomplete" => self.ended = true,
            _ => {}
        }
        let Some(response) = v.get("response") else {
            return;
        };
        if let Some(usage) = response.get("usage").and_then(native_usage) {
            self.usage = Some(usage);
        }
        if !self.ended {
            self.last_response = Some(response.clone());
        } else if matches!(kind.as_str(), "response.completed" | "response.incomplete") {
            self.finished = Some(response.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream in the shape of the streaming reference's example, usage in the last event.
    const STREAM: &str = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1741290958,\"status\":\"in_progress\",\"model\":\"gpt-4.1\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":5},\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":3},\"total_tokens\":48}}}\n\n",
    );

    #[test]
    fn usage_is_read_from_the_responses_usage_object() {
        // The response object reference's example usage.
        let usage = native_usage(&serde_json::json!({"input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}));
        assert_eq!(
            usage,
            Some(Usage {
                prompt: 36,
                completion: 87,
                total: 123,
                ..Usage::default()
            })
        );
        assert_eq!(native_usage(&Value::Null), None);
    }

    #[test]
    fn a_whole_stream_passes_with_its_usage_read_whatever_the_pieces() {
        for cut in 0..=STREAM.len() {
            let mut s = NativeStream::default();
            let (a, b) = STREAM.as_bytes().split_at(cut);
            assert_eq!(s.push(a, false), None);
            assert_eq!(s.push(b, true), None, "cut at {cut}");
            assert_eq!(
                s.usage(),
                Some(Usage {
                    prompt: 37,
                    completion: 11,
                    total: 48,
                    cached_prompt: 5,
                    cache_write: 0,
                    reasoning: 3
                }),
                "cut at {cut}"
            );
            assert!(!s.error && s.failure.is_none());
        }
    }

    #[test]
    fn a_stream_cut_short_ends_with_error_and_response_failed() {
        let cut = STREAM
            .find("event: response.completed")
            .expect("the terminal event");
        let mut s = NativeStream::default();
        assert_eq!(s.push(&STREAM.as_bytes()[..cut], false), None);
        let ending = s.push(b"", true).expect("an ending");
        assert_eq!(s.failure, Some("upstream_stream_reset"));
        let text = String::from_utf8(ending).expect("UTF-8");
        let events: Vec<Value> = text
            .split("\n\n")
            .filter_map(|b| b.split_once("data: "))
            .map(|(_, d)| serde_json::from_str(d).expect("JSON"))
            .collect();
        assert_eq!(events.len(), 2, "{text}");
        assert_eq!(events[0]["type"], "error");
        assert_eq!(events[0]["code"], "upstream_stream_reset");
        assert_eq!(events[0]["sequence_number"], 2);
        assert_eq!(events[1]["type"], "response.failed");
        assert_eq!(events[1]["sequence_number"], 3);
        assert_eq!(events[1]["response"]["id"], "resp_1");
        assert_eq!(events[1]["response"]["status"], "failed");
        assert_eq!(events[1]["response"]["error"]["code"], "server_error");
    }

    #[test]
    fn events_named_only_by_their_type_are_read_too() {
        let bare: String = STREAM
            .split("\n\n")
            .filter_map(|b| b.split_once('\n').map(|(_, data)| format!("{data}\n\n")))
            .collect();
        let mut s = NativeStream::default();
        assert_eq!(s.push(bare.as_bytes(), true), None, "{bare}");
        assert_eq!(s.usage().map(|u| u.total), Some(48));
    }

    #[test]
    fn the_providers_own_error_event_ends_the_stream_as_failed_without_more_events() {
        let mut s = NativeStream::default();
        let error = "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\",\"param\":null,\"sequence_number\":1}\n\n";
        assert_eq!(s.push(error.as_bytes(), true), None);
        assert!(s.error);
        assert_eq!(s.failure, None);
    }
}
