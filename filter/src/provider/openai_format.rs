//! Builders for the OpenAI wire format that every native translator answers in: chat
//! completions, stream chunks, usage, errors, embeddings. One place, so all providers look alike
//! to the client and to the gateway's own usage reader.
//! Reference: https://platform.openai.com/docs/api-reference/chat/object and
//! https://platform.openai.com/docs/api-reference/chat/streaming

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::GatewayError;
use crate::usage::Usage;

/// The SSE terminator of an OpenAI stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// The OpenAI `usage` object. `prompt_tokens` counts every input token (cached and cache
/// writes included) and `completion_tokens` every output token (reasoning included), as OpenAI
/// counts them; the details say how many of those were cached, written to cache or reasoning.
/// Members in sorted order, as a JSON value of it would serialize (the answers' bytes do not
/// change with how they are built).
#[derive(Serialize)]
struct UsageObject {
    completion_tokens: u64,
    completion_tokens_details: ReasoningDetails,
    prompt_tokens: u64,
    prompt_tokens_details: PromptDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct PromptDetails {
    cache_creation_tokens: u64,
    cached_tokens: u64,
}

impl From<&Usage> for UsageObject {
    fn from(u: &Usage) -> Self {
        Self {
            completion_tokens: u.completion,
            completion_tokens_details: ReasoningDetails {
                reasoning_tokens: u.reasoning,
            },
            prompt_tokens: u.prompt,
            prompt_tokens_details: PromptDetails {
                cache_creation_tokens: u.cache_write,
                cached_tokens: u.cached_prompt,
            },
            total_tokens: u.total,
        }
    }
}

/// Identity of one response, repeated in every chunk of a stream.
#[derive(Debug, Clone, Default)]
pub struct CompletionId {
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// The assistant message of a whole answer: its text (`null` when it only calls tools) and
/// its tool calls ([`tool_call`] without index).
#[derive(Serialize)]
pub struct AssistantMessage<'a> {
    pub content: Option<&'a str>,
    pub role: &'static str,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    pub tool_calls: Vec<Value>,
}

impl<'a> AssistantMessage<'a> {
    /// The message for `text` and `tool_calls`: the text is `null` when it is empty and the
    /// message calls tools (OpenAI's shape for a tool-calling answer).
    pub fn new(text: &'a str, tool_calls: Vec<Value>) -> Self {
        Self::with_content(
            (!text.is_empty() || tool_calls.is_empty()).then_some(text),
            tool_calls,
        )
    }

    pub fn with_content(content: Option<&'a str>, tool_calls: Vec<Value>) -> Self {
        Self {
            content,
            role: "assistant",
            tool_calls,
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    choices: [Choice<'a>; 1],
    created: u64,
    id: &'a str,
    model: &'a str,
    object: &'static str,
    usage: UsageObject,
}

#[derive(Serialize)]
struct Choice<'a> {
    finish_reason: &'a str,
    index: u32,
    logprobs: Option<()>,
    message: AssistantMessage<'a>,
}

/// A whole `chat.completion` with one choice, written straight from its parts (no JSON tree).
pub fn completion(
    id: &CompletionId,
    message: AssistantMessage<'_>,
    finish_reason: &str,
    usage: &Usage,
) -> Vec<u8> {
    let completion = Completion {
        choices: [Choice {
            finish_reason,
            index: 0,
            logprobs: None,
            message,
        }],
        created: id.created,
        id: &id.id,
        model: &id.model,
        object: "chat.completion",
        usage: usage.into(),
    };
    let mut out = Vec::with_capacity(384);
    write_json(&mut out, &completion);
    out
}

/// One `chat.completion.chunk` SSE event with one choice. Written straight into the output (a
/// stream has one per token): the same bytes as serializing the whole object as a JSON value, in
/// that order (members sorted), without building it.
pub fn chunk_event(
    id: &CompletionId,
    delta: impl Serialize,
    finish_reason: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + id.id.len() + id.model.len());
    out.extend_from_slice(b"data: {\"choices\":[{\"delta\":");
    write_json(&mut out, &delta);
    out.extend_from_slice(b",\"finish_reason\":");
    write_json(&mut out, &finish_reason);
    out.extend_from_slice(b",\"index\":0,\"logprobs\":null}],\"created\":");
    out.extend_from_slice(id.created.to_string().as_bytes());
    out.extend_from_slice(b",\"id\":");
    write_json(&mut out, &id.id);
    out.extend_from_slice(b",\"model\":");
    write_json(&mut out, &id.model);
    out.extend_from_slice(b",\"object\":\"chat.completion.chunk\"}\n\n");
    out
}

/// A text delta of a stream chunk (`{"content": text}`), written without a JSON tree.
#[derive(Serialize)]
pub struct ContentDelta<'a> {
    pub content: &'a str,
}

fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Writing strings, numbers and maps into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// The final usage-only chunk (`choices: []`), as OpenAI sends it for `include_usage`. The
/// gateway always emits it; the downstream filter drops it when the client did not ask.
pub fn usage_event(id: &CompletionId, usage: &Usage) -> Vec<u8> {
    #[derive(Serialize)]
    struct UsageChunk<'a> {
        choices: [(); 0],
        created: u64,
        id: &'a str,
        model: &'a str,
        object: &'static str,
        usage: UsageObject,
    }
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"data: ");
    write_json(
        &mut out,
        &UsageChunk {
            choices: [],
            created: id.created,
            id: &id.id,
            model: &id.model,
            object: "chat.completion.chunk",
            usage: usage.into(),
        },
    );
    out.extend_from_slice(b"\n\n");
    out
}

/// An error inside a stream, as OpenAI sends it (`data: {"error": {...}}`); the SDKs raise on it.
pub fn error_event(message: &str, error_type: &str, code: Option<&str>) -> Vec<u8> {
    sse(&json!({"error": {"message": message, "type": error_type, "param": null, "code": code}}))
}

/// Ends a stream on a failure: an OpenAI error event, then `[DONE]`, so the SDKs raise the error
/// and the connection ends cleanly.
pub fn stream_failure(e: &GatewayError) -> Vec<u8> {
    let mut out = error_event(&e.to_string(), e.error_type(), Some(e.code()));
    out.extend_from_slice(DONE);
    out
}

/// The provider sent one stream event larger than the SSE parser holds.
pub fn event_too_large() -> GatewayError {
    GatewayError::ProviderFailure {
        code: "stream_event_too_large",
        message: format!(
            "The provider sent a stream event larger than the gateway's limit of {} bytes; the stream was ended.",
            crate::sse::MAX_EVENT_BYTES
        ),
    }
}

/// A provider's error answer in the OpenAI error shape, keeping the provider's status.
pub fn error_body(status: u32, message: &str) -> Vec<u8> {
    GatewayError::Upstream {
        status,
        message: message.to_string(),
    }
    .to_json()
}

/// A tool call in an assistant message (or, with `index`, in a stream delta).
pub fn tool_call(index: Option<usize>, id: &str, name: &str, arguments: &str) -> Value {
    let mut call =
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}});
    if let (Some(i), Some(obj)) = (index, call.as_object_mut()) {
        obj.insert("index".into(), i.into());
    }
    call
}

/// An `embedding` list answer. With `base64`, each vector is little-endian f32 bytes in base64,
/// as the OpenAI SDKs ask by default (`encoding_format: "base64"`).
pub fn embeddings(model: &str, vectors: &[Vec<f64>], base64: bool, usage: &Usage) -> Vec<u8> {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage.prompt, "total_tokens": usage.total},
    })
    .to_string()
    .into_bytes()
}

fn sse(v: &Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_written_as_its_json_value_would_be() {
        let id = CompletionId {
            id: "chatcmpl-\"q\"".into(),
            created: 1_700_000_000,
            model: "m/ü".into(),
        };
        for (delta, finish) in [
            (json!({"content": "a \"quote\" and\nnewline"}), None),
            (json!({}), Some("stop")),
            (
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                None,
            ),
        ] {
            let expected = sse(&json!({
                "id": id.id,
                "object": "chat.completion.chunk",
                "created": id.created,
                "model": id.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }));
            assert_eq!(
                String::from_utf8(chunk_event(&id, delta, finish)).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    /// The OpenAI chat completion object
    /// (https://platform.openai.com/docs/api-reference/chat/object) as a JSON value, and the
    /// same for the usage-only chunk: what the writers must produce, byte for byte.
    fn usage_value(u: &Usage) -> Value {
        json!({
            "prompt_tokens": u.prompt,
            "completion_tokens": u.completion,
            "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cached_prompt, "cache_creation_tokens": u.cache_write},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning},
        })
    }

    #[test]
    fn a_completion_and_a_usage_chunk_are_written_as_their_json_values_would_be() {
        let id = CompletionId {
            id: "msg_\"1\"".into(),
            created: 1_700_000_000,
            model: "claude/ü".into(),
        };
        let u = Usage {
            prompt: 12,
            completion: 3,
            total: 15,
            cached_prompt: 4,
            cache_write: 2,
            reasoning: 1,
        };
        let call = tool_call(None, "call_1", "get_weather", "{\"city\":\"Köln\"}");
        for (message, expected_message) in [
            (
                AssistantMessage::new("Hi \"there\"\n", Vec::new()),
                json!({"role": "assistant", "content": "Hi \"there\"\n"}),
            ),
            (
                AssistantMessage::new("", vec![call.clone()]),
                json!({"role": "assistant", "content": null, "tool_calls": [call]}),
            ),
            (
                AssistantMessage::new("", Vec::new()),
                json!({"role": "assistant", "content": ""}),
            ),
        ] {
            let expected = json!({
                "id": id.id,
                "object": "chat.completion",
                "created": id.created,
                "model": id.model,
                "choices": [{"index": 0, "message": expected_message, "logprobs": null, "finish_reason": "stop"}],
                "usage": usage_value(&u),
            });
            assert_eq!(
                String::from_utf8(completion(&id, message, "stop", &u)).unwrap(),
                expected.to_string()
            );
        }
        let expected = sse(&json!({
            "id": id.id,
            "object": "chat.completion.chunk",
            "created": id.created,
            "model": id.model,
            "choices": [],
            "usage": usage_value(&u),
        }));
        assert_eq!(
            String::from_utf8(usage_event(&id, &u)).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn chunks_and_usage_round_trip_through_the_usage_reader() {
        let id = CompletionId {
            id: "x".into(),
            created: 1,
            model: "m".into(),
        };
        let u = Usage {
            prompt: 10,
            completion: 5,
            total: 15,
            cached_prompt: 4,
            cache_write: 2,
            reasoning: 1,
        };
        let ev = usage_event(&id, &u);
        let data = std::str::from_utf8(&ev)
            .unwrap()
            .strip_prefix("data: ")
            .unwrap()
            .trim();
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(Usage::from_openai(&v["usage"]), Some(u));
        assert_eq!(v["choices"], json!([]));
        let c = chunk_event(&id, json!({"content": "hi"}), None);
        assert!(c.starts_with(b"data: {") && c.ends_with(b"\n\n"));
    }

    #[test]
    fn embeddings_in_floats_and_base64() {
        let u = Usage {
            prompt: 3,
            total: 3,
            ..Default::default()
        };
        let floats: Value =
            serde_json::from_slice(&embeddings("e", &[vec![0.5, -1.0]], false, &u)).unwrap();
        assert_eq!(floats["data"][0]["embedding"], json!([0.5, -1.0]));
        let b64: Value =
            serde_json::from_slice(&embeddings("e", &[vec![0.5, -1.0]], true, &u)).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            bytes,
            [0.5f32.to_le_bytes(), (-1.0f32).to_le_bytes()].concat()
        );
        assert_eq!(b64["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    }
}
