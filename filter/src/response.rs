//! What the downstream filter does with a response, already in the OpenAI format (the upstream
//! filter translated it): read usage from JSON or from the stream as it passes, drop the usage
//! chunk the gateway asked for on the client's behalf, and give every error the OpenAI shape.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::GatewayError;
use crate::provider::openai_format;
use crate::sse::{SseEvent, SseParser};
use crate::usage::Usage;

/// How much of the end of a JSON answer is kept to find `usage` in (OpenAI puts it after the
/// choices; its object is a few hundred bytes).
const JSON_TAIL: usize = 64 * 1024;
/// How much of the start of a JSON answer is kept: the whole of a small answer (parsed fully,
/// wherever its `usage` stands) or the body log's excerpt.
const JSON_HEAD: usize = 64 * 1024;
/// Largest error body read into the message of a rewritten error.
const MAX_ERROR_MESSAGE: usize = 1024;
/// Largest error body the gateway buffers to give it the OpenAI shape; the rest is dropped.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// How a response body is handled, chosen from its status and content type.
#[derive(Debug)]
pub enum ResponseMode {
    /// A JSON body: bytes flow on unchanged; its start and end are kept to read usage from.
    Json(JsonWindow),
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
        body_log_cap: usize,
    ) -> Self {
        let ct = content_type.unwrap_or_default().to_ascii_lowercase();
        if status >= 400 {
            Self::Error { status }
        } else if ct.starts_with("text/event-stream") {
            let mut observer = StreamObserver::new(strip_usage_chunk);
            if transcript {
                observer.transcript = Some(Transcript::new(body_log_cap));
            }
            Self::Stream(Box::new(observer))
        } else {
            Self::Json(JsonWindow::new(if transcript {
                JSON_HEAD.max(body_log_cap)
            } else {
                JSON_HEAD
            }))
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
    /// Why the gateway ended the stream itself (an OpenAI error code), if it did.
    pub failure: Option<&'static str>,
    /// The answer reassembled from the deltas, kept only when bodies are logged.
    pub transcript: Option<Transcript>,
}

/// Most tool calls a transcript keeps apart (a provider names their indices).
const MAX_TRANSCRIPT_CALLS: usize = 128;

/// A streamed answer put back together: content, tool calls by index, finish reason. Only for
/// the body log, so it keeps at most the log's cap of text: a provider's endless stream cannot
/// grow it.
#[derive(Debug)]
pub struct Transcript {
    content: String,
    /// index -> (id, name, arguments)
    tool_calls: BTreeMap<u64, (String, String, String)>,
    finish_reason: Option<String>,
    /// Bytes of text it may still keep.
    room: usize,
    /// Text was left out.
    cut: bool,
}

/// Appends what of `text` fits in `room` (cut on a character boundary).
fn keep(out: &mut String, text: &str, room: &mut usize, cut: &mut bool) {
    let mut end = text.len().min(*room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    *cut |= end < text.len();
    *room -= end;
    out.push_str(text.get(..end).unwrap_or_default());
}

impl Transcript {
    /// A transcript of at most `cap` bytes of text.
    pub fn new(cap: usize) -> Self {
        Self {
            content: String::new(),
            tool_calls: BTreeMap::new(),
            finish_reason: None,
            room: cap,
            cut: false,
        }
    }

    fn add(&mut self, chunk: &Value) {
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        let delta = choice.get("delta");
        fn text(v: Option<&Value>) -> &str {
            v.and_then(Value::as_str).unwrap_or_default()
        }
        if let Some(content) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
            keep(&mut self.content, content, &mut self.room, &mut self.cut);
        }
        let calls = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            if !self.tool_calls.contains_key(&index)
                && self.tool_calls.len() >= MAX_TRANSCRIPT_CALLS
            {
                self.cut = true;
                continue;
            }
            let function = call.get("function");
            let entry = self.tool_calls.entry(index).or_default();
            let (room, cut) = (&mut self.room, &mut self.cut);
            keep(&mut entry.0, text(call.get("id")), room, cut);
            keep(
                &mut entry.1,
                text(function.and_then(|f| f.get("name"))),
                room,
                cut,
            );
            keep(
                &mut entry.2,
                text(function.and_then(|f| f.get("arguments"))),
                room,
                cut,
            );
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
        if self.cut {
            message.insert("truncated".into(), Value::Bool(true));
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
            failure: None,
            transcript: None,
        }
    }

    /// Takes one network chunk. Returns the bytes to send instead, or `None` when the chunk
    /// goes on unchanged (the case when nothing is stripped and nothing went wrong).
    ///
    /// The client always learns how the stream ended: an event past the parser's cap, or a
    /// stream that ends without `[DONE]` (the provider hung up), is ended here with an OpenAI
    /// error event and `[DONE]`; an error event of the provider's own gets the `[DONE]` it lacks.
    pub fn on_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        if self.failure.is_some() {
            return Some(Vec::new()); // the client's stream is already over
        }
        // The chunk starts on an event boundary: nothing of an earlier chunk is held back.
        let clean_start = self.parser.pending() == 0;
        let mut events = std::mem::take(&mut self.events);
        self.parser.feed(chunk, &mut events);
        if end_of_stream {
            self.parser.finish(&mut events);
        }
        let mut dropped = Vec::new(); // no allocation unless an event is dropped
        for (i, event) in events.iter().enumerate() {
            if !self.inspect(event) {
                dropped.push(i);
            }
        }
        // Stripping re-frames the chunk only when it must: an event is dropped, or one is held
        // back or completed across chunks. Otherwise the chunk passes as it is.
        let reframe = self.strip_usage_chunk
            && (!dropped.is_empty() || !clean_start || self.parser.pending() > 0);
        let out = reframe.then(|| {
            let mut out = Vec::with_capacity(chunk.len());
            for (i, event) in events.iter().enumerate() {
                if !dropped.contains(&i) {
                    out.extend_from_slice(&event.raw);
                }
            }
            out
        });
        events.clear();
        self.events = events;
        let failure = if self.parser.overflowed() {
            Some(openai_format::event_too_large())
        } else if end_of_stream && !self.saw_done && !self.error {
            Some(stream_cut())
        } else {
            None
        };
        if let Some(failure) = failure {
            self.failure = Some(failure.code());
            // A blank line first ends whatever partial event the client holds.
            let mut ending = out.unwrap_or_else(|| chunk.to_vec());
            if self.parser.overflowed() {
                ending.clear();
            }
            ending.extend_from_slice(b"\n\n");
            ending.extend(openai_format::stream_failure(&failure));
            return Some(ending);
        }
        if end_of_stream && !self.saw_done {
            // The provider's own error event ended the stream; `[DONE]` lets clients stop.
            let mut ending = out.unwrap_or_else(|| chunk.to_vec());
            ending.extend_from_slice(openai_format::DONE);
            return Some(ending);
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
        // Parse only the events that can matter (most are content deltas, and OpenAI's carry
        // `"usage":null`), or all of them when the answer is reassembled for the body log.
        let matters = has_value(data, "\"usage\"") || has_value(data, "\"error\"");
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

/// Whether the JSON text has a member `key` (quoted) whose value is not `null`. A key inside a
/// string is escaped (`\"usage\"`) and does not count. Errs towards true: the caller then parses.
fn has_value(json: &str, key: &str) -> bool {
    let bytes = json.as_bytes();
    json.match_indices(key).any(|(at, _)| {
        if at > 0 && bytes.get(at - 1) == Some(&b'\\') {
            return false;
        }
        let rest = json.get(at + key.len()..).unwrap_or_default().trim_start();
        match rest.strip_prefix(':') {
            Some(value) => !value.trim_start().starts_with("null"),
            None => false,
        }
    })
}

/// The provider ended a stream without its end marker: it hung up or was cut.
pub fn stream_cut() -> GatewayError {
    GatewayError::ProviderFailure {
        code: "upstream_stream_reset",
        message: "The provider's stream ended before the answer was complete.".into(),
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

/// The start and the end of a JSON answer that passes through unchanged: enough to read its
/// usage and log an excerpt, in bounded memory whatever the answer's size.
#[derive(Debug)]
pub struct JsonWindow {
    /// Reads a `usage` object (OpenAI's unless told otherwise).
    reader: fn(&Value) -> Option<Usage>,
    head: Vec<u8>,
    head_cap: usize,
    tail: Vec<u8>,
    total: usize,
}

impl JsonWindow {
    pub fn new(head_cap: usize) -> Self {
        Self {
            reader: Usage::from_openai,
            head: Vec::new(),
            head_cap,
            tail: Vec::new(),
            total: 0,
        }
    }

    /// The same window, reading `usage` objects of another format (an answer passed through
    /// in the client's own API).
    pub fn reading_usage_with(self, reader: fn(&Value) -> Option<Usage>) -> Self {
        Self { reader, ..self }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.total = self.total.saturating_add(chunk.len());
        let room = self.head_cap.saturating_sub(self.head.len());
        let (to_head, rest) = chunk.split_at(room.min(chunk.len()));
        self.head.extend_from_slice(to_head);
        if rest.is_empty() {
            return;
        }
        // The tail holds the last JSON_TAIL bytes after the head.
        let keep_new = rest.len().min(JSON_TAIL);
        let drop_old = (self.tail.len() + keep_new).saturating_sub(JSON_TAIL);
        self.tail.drain(..drop_old.min(self.tail.len()));
        self.tail
            .extend_from_slice(rest.get(rest.len() - keep_new..).unwrap_or_default());
    }

    /// The answer's usage: the whole answer parsed when it fitted in the head, else the last
    /// `usage` member found in the tail.
    pub fn usage(&self) -> Option<Usage> {
        if self.tail.is_empty() {
            #[derive(serde::Deserialize)]
            struct OnlyUsage {
                usage: Option<Value>,
            }
            let v: OnlyUsage = serde_json::from_slice(&self.head).ok()?;
            return v.usage.as_ref().and_then(self.reader);
        }
        usage_member(&self.tail, self.reader)
    }

    /// The body log's excerpt of the answer, saying how much was left out.
    pub fn excerpt(&self, cap: usize) -> String {
        let shown = log_excerpt(&self.head, cap);
        let unseen = self.total - self.head.len();
        if unseen == 0 {
            shown
        } else {
            format!("{shown}...[{unseen} more bytes]")
        }
    }
}

/// The value of the last `"usage":` member in a piece of JSON text (an answer's tail). A
/// `"usage"` inside a string is escaped (`\"usage\"`) and so is not taken for the member.
fn usage_member(text: &[u8], reader: fn(&Value) -> Option<Usage>) -> Option<Usage> {
    const KEY: &[u8] = b"\"usage\"";
    let mut end = text.len();
    while let Some(at) = text
        .get(..end)
        .and_then(|t| t.windows(KEY.len()).rposition(|w| w == KEY))
    {
        end = at;
        if at > 0 && text.get(at - 1) == Some(&b'\\') {
            continue;
        }
        let rest = text.get(at + KEY.len()..).unwrap_or_default();
        let rest = rest.trim_ascii_start();
        let Some(value) = rest.strip_prefix(b":") else {
            continue;
        };
        let mut values = serde_json::Deserializer::from_slice(value).into_iter::<Value>();
        if let Some(Ok(v)) = values.next() {
            if let Some(usage) = reader(&v) {
                return Some(usage);
            }
        }
    }
    None
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
    fn stripping_leaves_chunks_of_whole_events_as_they_are() {
        let first_event_end = STREAM.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let mut obs = StreamObserver::new(true);
        // Whole events, nothing to drop: no replacement at all (no copy, no re-framing).
        assert_eq!(obs.on_chunk(&STREAM[..first_event_end], false), None);
        // Half an event: held back; its completion comes re-framed, whole.
        let (a, b) = STREAM[..first_event_end].split_at(10);
        assert_eq!(obs.on_chunk(a, false), Some(Vec::new()));
        assert_eq!(
            obs.on_chunk(b, false).as_deref(),
            Some(&STREAM[..first_event_end])
        );
        // Every usage-only event of a chunk is dropped, not only the last.
        let usage_only = &STREAM[first_event_end..STREAM.len() - b"data: [DONE]\n\n".len()];
        let twice = [usage_only, usage_only, b"data: [DONE]\n\n"].concat();
        assert_eq!(
            obs.on_chunk(&twice, true).as_deref(),
            Some(&b"data: [DONE]\n\n"[..])
        );
    }

    /// The events of an ending the gateway added, as JSON values (`[DONE]` as a string).
    fn events_of(sent: &[u8]) -> Vec<Value> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        parser.feed(sent, &mut events);
        parser.finish(&mut events);
        events
            .iter()
            .filter_map(|e| e.data.as_deref())
            .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.into())))
            .collect()
    }

    #[test]
    fn a_stream_cut_before_done_ends_with_an_error_event_and_done() {
        // The provider hangs up after the first event, whatever the chunking.
        let first_event_end = STREAM.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let cut_stream = &STREAM[..first_event_end];
        for strip in [false, true] {
            let mut obs = StreamObserver::new(strip);
            let mut sent = Vec::new();
            let (a, b) = cut_stream.split_at(10);
            for (chunk, end) in [(a, false), (b, false), (&b""[..], true)] {
                match obs.on_chunk(chunk, end) {
                    Some(r) => sent.extend(r),
                    None => sent.extend_from_slice(chunk),
                }
            }
            let events = events_of(&sent);
            assert_eq!(events.len(), 3, "{}", String::from_utf8_lossy(&sent));
            assert_eq!(events[1]["error"]["code"], "upstream_stream_reset");
            assert_eq!(events[1]["error"]["type"], "upstream_error");
            assert_eq!(events[2], "[DONE]");
            assert_eq!(obs.failure, Some("upstream_stream_reset"));
        }
    }

    #[test]
    fn a_provider_error_event_without_done_gets_done() {
        let stream =
            b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";
        let mut obs = StreamObserver::new(false);
        let sent = obs.on_chunk(stream, true).unwrap();
        let events = events_of(&sent);
        assert_eq!(events[0]["error"]["message"], "overloaded");
        assert_eq!(events[1], "[DONE]");
        assert_eq!(events.len(), 2);
        assert!(obs.error && obs.failure.is_none());
    }

    #[test]
    fn an_endless_event_ends_the_stream_and_nothing_after_it_passes() {
        let mut obs = StreamObserver::new(false);
        assert_eq!(
            obs.on_chunk(b"data: {\"choices\":[]}\n\ndata: \"", false),
            None
        );
        let big = vec![b'x'; crate::sse::MAX_EVENT_BYTES];
        let ending = obs.on_chunk(&big, false).unwrap();
        assert!(
            ending.len() < 1000,
            "the chunk that overflowed is not passed on"
        );
        let events = events_of(&ending);
        assert_eq!(events[0]["error"]["code"], "stream_event_too_large");
        assert_eq!(events[1], "[DONE]");
        assert_eq!(
            obs.on_chunk(b"more\n\ndata: [DONE]\n\n", true),
            Some(Vec::new())
        );
        assert_eq!(obs.failure, Some("stream_event_too_large"));
    }

    #[test]
    fn usage_is_read_from_the_end_of_a_large_answer_in_bounded_memory() {
        // An answer of about 1 MB whose content quotes a usage object: the real one is last.
        let content = format!(
            "{} \\\"usage\\\": {{\\\"prompt_tokens\\\": 1}}",
            "word ".repeat(200_000)
        );
        let body = format!(
            r#"{{"id":"c","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}],"usage": {{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}},"system_fingerprint":"fp"}}"#
        );
        assert!(serde_json::from_str::<Value>(&body).is_ok(), "valid JSON");
        for chunk_size in [1000, 65_536, 300_000, body.len()] {
            let mut w = JsonWindow::new(JSON_HEAD);
            for chunk in body.as_bytes().chunks(chunk_size) {
                w.push(chunk);
                assert!(w.head.len() <= JSON_HEAD && w.tail.len() <= JSON_TAIL);
            }
            let u = w.usage().unwrap();
            assert_eq!(
                (u.prompt, u.completion, u.total),
                (11, 7, 18),
                "{chunk_size}"
            );
        }
        // A small answer is parsed whole, whatever the member order.
        let mut w = JsonWindow::new(JSON_HEAD);
        w.push(br#"{"usage":{"prompt_tokens":2,"completion_tokens":3},"choices":[]}"#);
        assert_eq!(w.usage().map(|u| u.total), Some(5));
        // A large answer with no usage has none.
        let mut w = JsonWindow::new(16);
        w.push(format!(r#"{{"choices":[{{"x":"{}"}}]}}"#, "y".repeat(100)).as_bytes());
        assert_eq!(w.usage(), None);
        assert!(w.excerpt(8).ends_with("more bytes]"));
    }

    #[test]
    fn only_members_with_a_value_make_an_event_worth_parsing() {
        let usage = "\"usage\"";
        assert!(!has_value(r#"{"choices":[],"usage":null}"#, usage));
        assert!(!has_value(r#"{"usage" : null}"#, usage));
        assert!(has_value(r#"{"usage": {"prompt_tokens":1}}"#, usage));
        assert!(has_value(r#"{"usage"	:	0}"#, usage));
        assert!(has_value(r#"{"error":{"message":"x"}}"#, "\"error\""));
        assert!(!has_value(r#"{"error":{"message":"x"}}"#, usage));
        // Quoted in content: escaped, not a member.
        assert!(!has_value(r#"{"content":"say \"usage\": 1"}"#, usage));
        assert!(!has_value(r#"{"content":"usage"}"#, usage));
        // A longer name that starts with one of them is another member.
        assert!(!has_value(r#"{"usage_x": 1, "x_usage": 2}"#, usage));
        assert!(!has_value(r#"{"choices":[]}"#, usage));
        assert!(!has_value(r#""usage""#, usage));
    }

    #[test]
    fn a_transcript_keeps_at_most_its_cap() {
        let mut t = Transcript::new(10);
        let delta = |content: &str| json!({"choices": [{"delta": {"content": content}}]});
        for _ in 0..1000 {
            t.add(&delta("héllo wörld "));
        }
        for i in 0..1000u64 {
            t.add(&json!({"choices": [{"delta": {"tool_calls": [{"index": i, "id": "c"}]}}]}));
        }
        assert!(t.content.len() <= 10 && t.content.starts_with("héllo"));
        assert!(t.tool_calls.len() <= MAX_TRANSCRIPT_CALLS);
        let message: Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(message["truncated"], true);
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
            ResponseMode::choose(
                200,
                Some("text/event-stream; charset=utf-8"),
                false,
                false,
                0
            ),
            ResponseMode::Stream(_)
        ));
        assert!(matches!(
            ResponseMode::choose(200, Some("application/json"), false, false, 0),
            ResponseMode::Json { .. }
        ));
        assert!(matches!(
            ResponseMode::choose(429, Some("application/json"), false, false, 0),
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
        obs.transcript = Some(Transcript::new(usize::MAX));
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
