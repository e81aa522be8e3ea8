//! One fake provider for the integration tests and for `make run`'s demo: it speaks the OpenAI
//! chat-completions wire format (JSON and SSE), the other providers' formats (`fake/`, OpenAI's
//! Responses API among them), records every request it receives, and answers
//! either with a scripted reply (status, headers, delay, body split into chunks) or, by default,
//! with a deterministic echo of the last user message.

use std::collections::VecDeque;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::http::{read_body, read_head, write_chunked, write_full, Head};

/// A request as the provider received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub head: Head,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What to answer one request with.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Sent as one fixed-length body when `chunked` is false; otherwise each piece is one
    /// HTTP chunk, sent after its delay.
    pub pieces: Vec<(Duration, Vec<u8>)>,
    pub chunked: bool,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            pieces: vec![(Duration::ZERO, body.to_string().into_bytes())],
            chunked: false,
        }
    }

    /// An SSE stream: each event (already framed, e.g. `data: {...}\n\n`) one chunk.
    pub fn sse(events: &[String], gap: Duration) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            pieces: events
                .iter()
                .map(|e| (gap, e.clone().into_bytes()))
                .collect(),
            chunked: true,
        }
    }

    /// No answer: the connection is closed as soon as the request is read (a reset).
    pub fn reset() -> Self {
        Self {
            status: 0,
            headers: Vec::new(),
            pieces: Vec::new(),
            chunked: false,
        }
    }

    /// The default answer (whatever the request asks), after a delay.
    pub fn default_after(delay: Duration) -> Self {
        Self {
            status: 1,
            headers: Vec::new(),
            pieces: vec![(delay, Vec::new())],
            chunked: false,
        }
    }

    /// The same body, cut into chunks at the given byte offsets.
    pub fn split_at(mut self, cuts: &[usize]) -> Self {
        let body: Vec<u8> = self.pieces.iter().flat_map(|(_, p)| p.clone()).collect();
        let mut pieces = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            let cut = cut.min(body.len());
            pieces.push((Duration::ZERO, body[start..cut].to_vec()));
            start = cut;
        }
        self.pieces = pieces;
        self.chunked = true;
        self
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    script: VecDeque<Reply>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl FakeProvider {
    /// Listens on 127.0.0.1:`port` (0 picks a free port) and serves until the process ends.
    pub fn start(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let provider = Self {
            port,
            shared: Arc::default(),
        };
        let server = provider.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let server = server.clone();
                thread::spawn(move || server.serve(conn));
            }
        });
        Ok(provider)
    }

    /// Queues a reply for the next request (first in, first out).
    pub fn push_reply(&self, reply: Reply) {
        self.lock().script.push_back(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A test thread that panicked while holding the lock must not hide later failures.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(&self, conn: TcpStream) {
        // Small SSE writes must leave at once, as a real provider's do.
        let _ = conn.set_nodelay(true);
        let Ok(mut writer) = conn.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(conn);
        while let Ok(Some(head)) = read_head(&mut reader) {
            let Ok(body) = read_body(&mut reader, &head, false, |_| {}) else {
                return;
            };
            let mut parts = head.first_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let received = Received {
                method,
                path,
                head,
                body,
            };
            let reply = {
                let mut shared = self.lock();
                shared.received.push(received.clone());
                shared.script.pop_front()
            };
            let reply = match reply {
                // A delay marker before the default answer.
                Some(r) if r.status == 1 => {
                    thread::sleep(r.pieces.first().map_or(Duration::ZERO, |(d, _)| *d));
                    default_reply(&received)
                }
                Some(r) => r,
                None => default_reply(&received),
            };
            if reply.status == 0 {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return;
            }
            let written = if reply.chunked {
                write_chunked(&mut writer, reply.status, &reply.headers, &reply.pieces)
            } else {
                let body: Vec<u8> = reply.pieces.iter().flat_map(|(_, p)| p.clone()).collect();
                if let Some((delay, _)) = reply.pieces.first() {
                    thread::sleep(*delay);
                }
                write_full(&mut writer, reply.status, &reply.headers, &body)
            };
            if written.is_err() {
                return;
            }
        }
    }
}

/// Word count, the fake provider's stand-in for a tokenizer: deterministic and easy to predict.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn message_text(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// What the demo answers: text, or a call of the first declared tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoAnswer {
    Text(String),
    ToolCall { name: String, arguments: String },
}

/// The demo answer to an OpenAI request body, with the usage it reports: input tokens are the
/// words of every message text (system included, tool calls and tool results not), output
/// tokens the words of a text answer. See tests/src/fake/README.md.
pub fn demo_reply(request: &Value) -> (DemoAnswer, u64, u64) {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let prompt: u64 = messages
        .iter()
        .filter(|m| m["role"] != "tool")
        .map(|m| count_tokens(&message_text(m)))
        .sum();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(message_text)
        .unwrap_or_default();
    let first_tool = request["tools"][0]["function"]["name"].as_str();
    let answer = match (last["role"].as_str(), first_tool) {
        (Some("tool"), _) => DemoAnswer::Text(format!("Tool said: {}", message_text(&last))),
        (Some("user"), Some(tool)) => DemoAnswer::ToolCall {
            name: tool.to_string(),
            arguments: json!({"text": last_user}).to_string(),
        },
        _ => DemoAnswer::Text(format!(
            "Hello from the demo provider! You said: {last_user}"
        )),
    };
    let completion = match &answer {
        DemoAnswer::Text(t) => count_tokens(t),
        DemoAnswer::ToolCall { .. } => 0,
    };
    (answer, prompt, completion)
}

/// The text of the demo answer (panics on a tool call: for tests that send no tools).
pub fn demo_answer(request: &Value) -> (String, u64, u64) {
    match demo_reply(request) {
        (DemoAnswer::Text(t), p, c) => (t, p, c),
        (other, _, _) => panic!("expected a text answer, got {other:?}"),
    }
}

/// The last user text, which may ask the fake for an error (`FAIL 429`, `FAIL STREAM`).
pub fn last_user_text(request: &Value) -> String {
    request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(message_text)
        .unwrap_or_default()
}

/// The provider wire format a request is in, from its path.
fn default_reply(req: &Received) -> Reply {
    let path = req.path.split('?').next().unwrap_or_default();
    if path.ends_with("/messages") {
        return crate::fake::anthropic::reply(req);
    }
    if path.ends_with("/messages/count_tokens") {
        return crate::fake::anthropic::count_tokens(req);
    }
    if path.contains(":generateContent")
        || path.contains(":streamGenerateContent")
        || path.contains(":batchEmbedContents")
    {
        return crate::fake::gemini::reply(req);
    }
    if path.starts_with("/guardrail/") {
        return crate::fake::guardrails::apply_guardrail(req);
    }
    if path.starts_with("/model/") {
        return crate::fake::bedrock::reply(req);
    }
    if path.ends_with("/v2/chat") || path.ends_with("/v2/embed") {
        return crate::fake::cohere::reply(req);
    }
    if path.ends_with("/embeddings") {
        return openai_embeddings(req);
    }
    if path.ends_with("/moderations") {
        return crate::fake::guardrails::moderations(req);
    }
    if path.ends_with("/responses") {
        return crate::fake::openai_responses::reply(req);
    }
    openai_reply(req)
}

/// Deterministic stand-in vector for a text: [characters, words, 0.5].
pub fn fake_vector(text: &str) -> Vec<f64> {
    vec![text.chars().count() as f64, count_tokens(text) as f64, 0.5]
}

/// The embeddings model name that asks the fake for [`bag_of_words_vector`] instead.
pub const BAG_OF_WORDS_MODEL: &str = "bag-of-words";

/// Dimensions of [`bag_of_words_vector`].
pub const BAG_OF_WORDS_DIMENSIONS: usize = 256;

/// A vector that makes texts with the same words similar: each word (lowercase, anything but
/// letters and digits a separator) counts 1 in the dimension its FNV-1a hash picks. So
/// "What is X?" and "what is x" are the same vector, and a test knows any two texts'
/// similarity from their words (`cosine`).
pub fn bag_of_words_vector(text: &str) -> Vec<f64> {
    let mut v = vec![0.0; BAG_OF_WORDS_DIMENSIONS];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        v[(hash % BAG_OF_WORDS_DIMENSIONS as u64) as usize] += 1.0;
    }
    v
}

/// Cosine similarity of two vectors of the same length.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn openai_embeddings(req: &Received) -> Reply {
    let request = req.json();
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => vec![],
    };
    let tokens: u64 = inputs.iter().map(|i| count_tokens(i)).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let vector = if request["model"] == BAG_OF_WORDS_MODEL {
                bag_of_words_vector(text)
            } else {
                fake_vector(text)
            };
            let embedding = if request["encoding_format"] == "base64" {
                use base64::Engine;
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|x| (*x as f32).to_le_bytes())
                    .collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Reply::json(
        200,
        &json!({"object": "list", "data": data, "model": request["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

fn openai_reply(req: &Received) -> Reply {
    if !req
        .path
        .split('?')
        .next()
        .unwrap_or_default()
        .ends_with("/chat/completions")
    {
        return Reply::json(
            404,
            &json!({"error": {"message": format!("no route {}", req.path), "type": "invalid_request_error", "code": null}}),
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&req.body) else {
        return Reply::json(
            400,
            &json!({"error": {"message": "fake provider: body is not JSON", "type": "invalid_request_error", "code": null}}),
        );
    };
    let model = request["model"].as_str().unwrap_or("unknown").to_string();
    let stream = request["stream"] == true;
    match last_user_text(&request).as_str() {
        "FAIL 429" => {
            let mut r = Reply::json(
                429,
                &json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
            );
            r.headers.push(("retry-after".into(), "1".into()));
            return r;
        }
        "FAIL STREAM" if stream => {
            let mut events = stream_events(&model, "partial answer", None);
            events.truncate(3); // role chunk and two words
            events.push(format!("data: {}\n\n", json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}})));
            return Reply::sse(&events, Duration::from_millis(5));
        }
        _ => {}
    }
    let (answer, prompt, completion) = demo_reply(&request);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    let include_usage = request["stream_options"]["include_usage"] == true;
    match (answer, stream) {
        (DemoAnswer::Text(text), true) => {
            let mut events = stream_events(&model, &text, include_usage.then_some(&usage));
            if req.path.starts_with("/openai/deployments/") {
                add_azure_annotations(&mut events);
            }
            Reply::sse(&events, Duration::from_millis(5))
        }
        (DemoAnswer::Text(text), false) => Reply::json(
            200,
            &completion_body(
                &model,
                json!({"role": "assistant", "content": text}),
                "stop",
                &usage,
            ),
        ),
        (DemoAnswer::ToolCall { name, arguments }, false) => {
            let call = json!([{"id": "call_demo_0", "type": "function", "function": {"name": name, "arguments": arguments}}]);
            Reply::json(
                200,
                &completion_body(
                    &model,
                    json!({"role": "assistant", "content": null, "tool_calls": call}),
                    "tool_calls",
                    &usage,
                ),
            )
        }
        (DemoAnswer::ToolCall { name, arguments }, true) => {
            let chunk = |delta: Value, finish: Value| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                )
            };
            let mut events = vec![
                chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_demo_0", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
            ];
            if include_usage {
                events.push(format!("data: {}\n\n", json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage})));
            }
            events.push("data: [DONE]\n\n".into());
            Reply::sse(&events, Duration::from_millis(5))
        }
    }
}

/// Azure's content-filter annotations in a stream: the prompt annotation chunk first, and an
/// asynchronous-filter annotation before the finish chunk, both with an empty id and object
/// (https://learn.microsoft.com/azure/ai-services/openai/concepts/content-streaming).
pub fn add_azure_annotations(events: &mut Vec<String>) {
    let safe = json!({"hate": {"filtered": false, "severity": "safe"}, "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"}, "violence": {"filtered": false, "severity": "safe"}});
    let prompt = json!({"id": "", "object": "", "created": 0, "model": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": safe}], "choices": []});
    let completion = json!({"id": "", "object": "", "created": 0, "model": "",
        "choices": [{"index": 0, "finish_reason": null, "content_filter_results": safe,
            "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 10}}]});
    let finish = events
        .iter()
        .position(|e| e.contains("\"finish_reason\":\"stop\""))
        .unwrap_or(events.len());
    events.insert(finish, format!("data: {completion}\n\n"));
    events.insert(0, format!("data: {prompt}\n\n"));
}

fn completion_body(model: &str, message: Value, finish: &str, usage: &Value) -> Value {
    json!({
        "id": "chatcmpl-demo", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    })
}

/// The answer split after each space, one piece per word ("Hello ", "world"): how every fake
/// format streams its deltas.
pub fn words(text: &str) -> Vec<String> {
    let parts: Vec<&str> = text.split(' ').collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i < last {
                format!("{w} ")
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// An OpenAI chat-completion stream: a role chunk, one chunk per word, a finish chunk, the usage
/// chunk when asked for, and `[DONE]`.
pub fn stream_events(model: &str, answer: &str, usage: Option<&Value>) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if usage.is_some() {
            c["usage"] = Value::Null;
        }
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for word in words(answer) {
        events.push(chunk(json!({"content": word}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if let Some(usage) = usage {
        let c = json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [], "usage": usage});
        events.push(format!("data: {c}\n\n"));
    }
    events.push("data: [DONE]\n\n".into());
    events
}
