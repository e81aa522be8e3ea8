//! What the downstream filter does with a response, already in the OpenAI format (the upstream
//! filter translated it): read usage from JSON or from the stream as it passes, drop the usage
//! chunk the gateway asked for on the client's behalf, and give every error the OpenAI shape.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::GatewayError;
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

/// Largest non-streamed body kept aside to read usage from; beyond it usage is not read.
const MAX_JSON_COPY: usize = 16 * 1024 * 1024;
/// Largest error body read into the message of a rewritten error.
const MAX_ERROR_MESSAGE: usize = 1024;

/// How a response body is handled, chosen from its status and content type.
#[derive(Debug)]
pub enum ResponseMode {
    /// A JSON body: a copy is kept to read usage at the end; bytes flow on unchanged.
    Json { copy: Vec<u8>, overflow: bool },
    /// An SSE stream, observed event by event.
    Stream(Box<StreamObserver>),
    /// An error response: buffered whole, then given the OpenAI shape if it lacks it.
    Error { status: u32 },
    /// The body is dropped and this one sent instead (a provider refusing the gateway's key).
    Replace(Vec<u8>),
}

impl ResponseMode {
    pub fn choose(
        status: u32,
        content_type: Option<&str>,
        strip_usage_chunk: bool,
        transcript: bool,
    ) -> Self {
        let ct = content_type.unwrap_or_default().to_ascii_lowercase();
        if status >= 400 {
            Self::Error { status }
        } else if ct.starts_with("text/event-stream") {
            let mut observer = StreamObserver::new(strip_usage_chunk);
            if transcript {
                observer.transcript = Some(Transcript::default());
            }
            Self::Stream(Box::new(observer))
        } else {
            Self::Json {
                copy: Vec::new(),
                overflow: false,
            }
        }
    }
}

/// Observes an OpenAI chat-completion stream; strips the usage-only final chunk when the client
/// did not ask for it.
#[derive(Debug)]
pub struct StreamObserver {
    parser: SseParser,
    strip_usage_chunk: bool,
    events: Vec<SseEvent>,
    pub usage: Option<Usage>,
    pub saw_done: bool,
    /// An `error` object seen in the stream.
    pub error: bool,
    /// The answer reassembled from the deltas, kept only when bodies are logged.
    pub transcript: Option<Transcript>,
}

/// A streamed answer put back together: content, tool calls by index, finish reason.
#[derive(Debug, Default)]
pub struct Transcript {
    content: String,
    /// index -> (id, name, arguments)
    tool_calls: BTreeMap<u64, (String, String, String)>,
    finish_reason: Option<String>,
}

impl Transcript {
    fn add(&mut self, chunk: &Value) {
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        let delta = choice.get("delta");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(content) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
            self.content.push_str(content);
        }
        let calls = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function");
            let entry = self.tool_calls.entry(index).or_default();
            entry.0.push_str(&text(call.get("id")));
            entry
                .1
                .push_str(&text(function.and_then(|f| f.get("name"))));
            entry
                .2
                .push_str(&text(function.and_then(|f| f.get("arguments"))));
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    /// The reassembled assistant message, as a JSON text.
    pub fn to_json(&self) -> String {
        let calls: Vec<Value> = self
            .tool_calls
            .values()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        let mut message = serde_json::Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert("content".into(), self.content.clone().into());
        message.insert("finish_reason".into(), json!(self.finish_reason));
        if !calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        Value::Object(message).to_string()
    }
}

impl StreamObserver {
    pub fn new(strip_usage_chunk: bool) -> Self {
        Self {
            parser: SseParser::new(),
            strip_usage_chunk,
            events: Vec::new(),
            usage: None,
            saw_done: false,
            error: false,
            transcript: None,
        }
    }

    /// Takes one network chunk. Returns the bytes to send instead, or `None` when the chunk
    /// goes on unchanged (always the case when nothing is stripped).
    pub fn on_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        self.parser.feed(chunk, &mut self.events);
        if end_of_stream {
            self.parser.finish(&mut self.events);
        }
        let mut out = self.strip_usage_chunk.then(Vec::new);
        for event in std::mem::take(&mut self.events) {
            let keep = self.inspect(&event);
            if let Some(out) = out.as_mut() {
                if keep {
                    out.extend_from_slice(&event.raw);
                }
            }
        }
        out
    }

    /// Reads usage, `[DONE]` and errors from one event; false when the event is to be dropped.
    fn inspect(&mut self, event: &SseEvent) -> bool {
        let Some(data) = event.data.as_deref() else {
            return true;
        };
        if data.trim() == "[DONE]" {
            self.saw_done = true;
            return true;
        }
        // Parse only the events that can matter (most are content deltas), or all of them when
        // the answer is being reassembled for the body log.
        let matters = data.contains("\"usage\"") || data.contains("\"error\"");
        if !matters && self.transcript.is_none() {
            return true;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return true;
        };
        if let Some(t) = self.transcript.as_mut() {
            t.add(&v);
        }
        if v.get("error").is_some_and(|e| !e.is_null()) {
            self.error = true;
        }
        let Some(usage) = v.get("usage").and_then(Usage::from_openai) else {
            return true;
        };
        self.usage = Some(usage);
        let usage_only = v
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|c| c.is_empty());
        !(self.strip_usage_chunk && usage_only)
    }
}

/// A body for the body log: at most `cap` bytes (cut on a character boundary), with a note of
/// what was cut.
pub fn log_excerpt(body: &[u8], cap: usize) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= cap {
        return text.into_owned();
    }
    let mut cut = cap;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}...[{} more bytes]",
        text.get(..cut).unwrap_or_default(),
        text.len() - cut
    )
}

/// Keeps a copy of a JSON body (bounded) for reading usage at the end.
pub fn copy_json_chunk(copy: &mut Vec<u8>, overflow: &mut bool, chunk: &[u8]) {
    if *overflow || copy.len() + chunk.len() > MAX_JSON_COPY {
        *overflow = true;
        copy.clear();
    } else {
        copy.extend_from_slice(chunk);
    }
}

/// Returns the body to send in place of an error response that is not in the OpenAI error
/// shape (Envoy's own text replies, a provider's HTML page), or `None` when it already is.
pub fn normalize_error_body(status: u32, body: &[u8]) -> Option<Vec<u8>> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let err = v.get("error");
        if err
            .and_then(|e| e.get("message"))
            .is_some_and(Value::is_string)
        {
            return None;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut message = if text.is_empty() {
        default_reason(status).to_string()
    } else {
        text.to_string()
    };
    if message.len() > MAX_ERROR_MESSAGE {
        let mut cut = MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    Some(GatewayError::Upstream { status, message }.to_json())
}

fn default_reason(status: u32) -> &'static str {
    match status {
        400 => "Bad request.",
        401 => "Unauthorized.",
        403 => "Forbidden.",
        404 => "Not found.",
        408 => "Request timeout.",
        413 => "Request body too large.",
        429 => "Too many requests.",
        502 => "Bad gateway: the provider could not be reached.",
        503 => "Service unavailable: no provider could take the request.",
        504 => "Gateway timeout: the provider did not answer in time.",
        _ => "The request failed.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n\
data: [DONE]\n\n";

    fn run(strip: bool, cuts: &[usize]) -> (Vec<u8>, StreamObserver) {
        let mut obs = StreamObserver::new(strip);
        let mut sent = Vec::new();
        let mut start = 0;
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(STREAM.len());
        for (i, &cut) in bounds.iter().enumerate() {
            let chunk = &STREAM[start..cut];
            let end = i == bounds.len() - 1;
            match obs.on_chunk(chunk, end) {
                Some(replacement) => sent.extend(replacement),
                None => sent.extend_from_slice(chunk),
            }
            start = cut;
        }
        (sent, obs)
    }

    #[test]
    fn usage_is_read_and_the_stream_passes_untouched_when_asked_for() {
        for cut in 0..=STREAM.len() {
            let (sent, obs) = run(false, &[cut]);
            assert_eq!(sent, STREAM, "cut {cut}");
            assert_eq!(obs.usage.map(|u| u.total), Some(7), "cut {cut}");
            assert!(obs.saw_done);
        }
    }

    #[test]
    fn usage_chunk_is_stripped_when_the_client_did_not_ask() {
        let first_event_end = STREAM.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let expected: Vec<u8> = [&STREAM[..first_event_end], b"data: [DONE]\n\n"].concat();
        for cut in 0..=STREAM.len() {
            let (sent, obs) = run(true, &[cut]);
            assert_eq!(
                String::from_utf8_lossy(&sent),
                String::from_utf8_lossy(&expected),
                "cut {cut}"
            );
            assert_eq!(obs.usage.map(|u| (u.prompt, u.completion)), Some((5, 2)));
        }
    }

    #[test]
    fn error_bodies_get_the_openai_shape_once() {
        let wrapped = normalize_error_body(503, b"no healthy upstream").unwrap();
        let v: Value = serde_json::from_slice(&wrapped).unwrap();
        assert_eq!(v["error"]["message"], "no healthy upstream");
        assert_eq!(v["error"]["code"], "upstream_unavailable");
        assert_eq!(normalize_error_body(503, &wrapped), None, "already shaped");
        let empty: Value =
            serde_json::from_slice(&normalize_error_body(504, b"").unwrap()).unwrap();
        assert!(empty["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeout"));
        let odd: Value =
            serde_json::from_slice(&normalize_error_body(422, br#"{"detail":"bad"}"#).unwrap())
                .unwrap();
        assert_eq!(odd["error"]["message"], r#"{"detail":"bad"}"#);
        let long = "é".repeat(2000);
        let cut: Value =
            serde_json::from_slice(&normalize_error_body(500, long.as_bytes()).unwrap()).unwrap();
        assert!(cut["error"]["message"].as_str().unwrap().len() <= MAX_ERROR_MESSAGE);
    }

    #[test]
    fn mode_follows_status_and_content_type() {
        assert!(matches!(
            ResponseMode::choose(200, Some("text/event-stream; charset=utf-8"), false, false),
            ResponseMode::Stream(_)
        ));
        assert!(matches!(
            ResponseMode::choose(200, Some("application/json"), false, false),
            ResponseMode::Json { .. }
        ));
        assert!(matches!(
            ResponseMode::choose(429, Some("application/json"), false, false),
            ResponseMode::Error { status: 429 }
        ));
    }

    #[test]
    fn a_stream_is_reassembled_for_the_body_log() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n"
        );
        let mut obs = StreamObserver::new(false);
        obs.transcript = Some(Transcript::default());
        assert_eq!(
            obs.on_chunk(stream.as_bytes(), true),
            None,
            "logging does not change the stream"
        );
        let message: Value = serde_json::from_str(&obs.transcript.unwrap().to_json()).unwrap();
        assert_eq!(
            message,
            json!({"role": "assistant", "content": "Hello", "finish_reason": "tool_calls",
                   "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]})
        );
    }
}
