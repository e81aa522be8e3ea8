//! The OpenAI Responses API (`POST /v1/responses`) as an inbound front end: the client's body
//! becomes an OpenAI Chat Completions body (the intermediate form every provider translator
//! reads), and the chat answer, whole or streamed, becomes the Responses API's `response` object
//! or event stream again. Host-free; the pipeline calls these four entry points.
//!
//! - [`to_chat`] (`request`, `input`): the request; what cannot be honoured by translation is a
//!   400 naming the parameter.
//! - [`answer_from_chat`] (`answer`): a `chat.completion` → the `response` object.
//! - [`StreamFromChat`] (`stream`): `chat.completion.chunk` SSE → Responses SSE events.
//! - [`error_from_chat`] (`error`): an OpenAI error body → the Responses error body.
//!
//! To a provider that serves the Responses API itself (OpenAI, Azure) the client's body goes
//! instead (`crate::provider::responses`) and its answer passes untouched, read for usage by
//! `native`. What only such a provider can take (hosted tools, ...) is set aside from the chat
//! form by `openai_only`, and the request then cannot go to any other provider.
//!
//! Without a response store (`store`, optional) the gateway is stateless: `store` is accepted
//! and treated as false, and what needs a stored response (`previous_response_id`,
//! `conversation`, `background`, reusable `prompt`s, item references, files by id) is refused.
//! With one, `previous_response_id` is expanded before `to_chat` sees the request. What is translated, dropped and refused, with the
//! references used, is in `filter/testdata/openai_responses/README.md`.

mod answer;
mod error;
mod input;
mod native;
mod openai_only;
mod request;
pub mod store;
mod stream;
mod tools;

#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};

pub use answer::answer_from_chat;
pub use error::error_from_chat;
pub use native::{native_usage, NativeStream};
pub use request::to_chat;
pub use stream::StreamFromChat;

/// What the answer needs to know of the request: the model the client named, whether it
/// streams, and the request fields the `response` object repeats (`instructions`, `tools`,
/// `tool_choice`, `text`, `reasoning`, `max_output_tokens`, `metadata`, ...), in the Responses
/// shape the client sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub model: String,
    pub stream: bool,
    /// The response object's request-derived fields, key by key.
    echo: Map<String, Value>,
    /// Identity used when the chat answer carries none (a stream that fails before its first
    /// chunk): `created_at` and the seed of the `resp_` id. Set by [`Context::set_identity`].
    fallback_created: u64,
    fallback_id: String,
    /// Why the request cannot go to a provider that gets the chat form (a hosted tool, ...),
    /// if it cannot: it then goes only to one that serves the Responses API itself.
    pub untranslatable: Option<String>,
    /// The `resp_` id the gateway minted for this response (a response store is configured):
    /// used instead of one derived from the provider's completion id, which may be guessable.
    minted_id: Option<String>,
}

impl Context {
    /// The time and a request id (e.g. Envoy's `x-request-id`) to name the response by when
    /// the provider's answer does not say (it normally does: its `id` and `created`).
    pub fn set_identity(&mut self, now_unix: u64, request_id: &str) {
        self.fallback_created = now_unix;
        self.fallback_id = id_base(request_id);
    }

    /// The response will be kept by the gateway's store under `id` (an unguessable
    /// `resp_...`): the answer is named by it and says `store: true`.
    pub fn set_stored_id(&mut self, id: String) {
        self.minted_id = Some(id);
        self.echo.insert("store".into(), Value::Bool(true));
    }
}

/// The ids of one response and its items, derived from the chat completion's `id` so that a
/// response and the provider's answer can be matched in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    base: String,
    created_at: u64,
}

impl Identity {
    /// From a chat completion or chunk (`id`, `created`); the context's fallback otherwise.
    fn of(chat: &Value, ctx: &Context) -> Self {
        let minted = ctx
            .minted_id
            .as_deref()
            .map(|id| id.strip_prefix("resp_").unwrap_or(id).to_string());
        let base = minted
            .or_else(|| {
                chat.get("id")
                    .and_then(Value::as_str)
                    .map(id_base)
                    .filter(|b| !b.is_empty())
            })
            .unwrap_or_else(|| ctx.fallback_id.clone());
        let base = if base.is_empty() {
            "gateway".to_string()
        } else {
            base
        };
        let created_at = chat
            .get("created")
            .and_then(Value::as_u64)
            .unwrap_or(ctx.fallback_created);
        Self { base, created_at }
    }

    fn response_id(&self) -> String {
        format!("resp_{}", self.base)
    }

    fn message_id(&self, output_index: usize) -> String {
        format!("msg_{}_{output_index}", self.base)
    }

    fn call_item_id(&self, output_index: usize) -> String {
        format!("fc_{}_{output_index}", self.base)
    }
}

/// The letters, digits, `_` and `-` of an id without its `chatcmpl-` prefix, at most 64.
fn id_base(id: &str) -> String {
    id.strip_prefix("chatcmpl-")
        .unwrap_or(id)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

/// How a response ended.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    InProgress,
    Completed,
    /// `incomplete_details.reason`: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    /// The `error` object (`code`, `message`).
    Failed(Value),
}

impl Status {
    /// From a chat `finish_reason`: `length` and `content_filter` leave the response
    /// incomplete, everything else (stop, tool_calls, none at all) completes it.
    fn of_finish(finish_reason: Option<&str>) -> Self {
        match finish_reason {
            Some("length") => Self::Incomplete("max_output_tokens"),
            Some("content_filter") => Self::Incomplete("content_filter"),
            _ => Self::Completed,
        }
    }

    /// The `status` of the response, and of its output items.
    fn name(&self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete(_) => "incomplete",
            Self::Failed(_) => "failed",
        }
    }

    /// An output item's `status` when the response ends this way.
    fn item_status(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::InProgress => "in_progress",
            Self::Incomplete(_) | Self::Failed(_) => "incomplete",
        }
    }
}

/// The `response` object: identity, status, output, usage, and the request's echoed fields.
fn response_object(
    ctx: &Context,
    identity: &Identity,
    status: &Status,
    output: Vec<Value>,
    usage: Option<Value>,
) -> Value {
    let mut obj = ctx.echo.clone();
    let (error, incomplete) = match status {
        Status::Failed(error) => (error.clone(), Value::Null),
        Status::Incomplete(reason) => (Value::Null, json!({ "reason": reason })),
        _ => (Value::Null, Value::Null),
    };
    for (key, value) in [
        ("id", Value::from(identity.response_id())),
        ("object", Value::from("response")),
        ("created_at", Value::from(identity.created_at)),
        ("status", Value::from(status.name())),
        ("error", error),
        ("incomplete_details", incomplete),
        ("model", Value::from(ctx.model.as_str())),
        ("output", Value::Array(output)),
        ("usage", usage.unwrap_or(Value::Null)),
    ] {
        obj.insert(key.to_string(), value);
    }
    Value::Object(obj)
}

/// Chat `usage` → Responses `usage`: `input_tokens` = prompt tokens (cached included, as both
/// APIs count them), `output_tokens` = completion tokens (reasoning included), the cached,
/// cache-write and reasoning details carried over. `None` when the chat answer has none.
fn usage_of(chat_usage: Option<&Value>) -> Option<Value> {
    let u = chat_usage.filter(|u| u.is_object())?;
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let input = count(u.get("prompt_tokens"));
    let output = count(u.get("completion_tokens"));
    let total = match u.get("total_tokens").and_then(Value::as_u64) {
        Some(total) => total,
        None => input.saturating_add(output),
    };
    let prompt_details = u.get("prompt_tokens_details");
    let detail = |key: &str| count(prompt_details.and_then(|d| d.get(key)));
    let reasoning = count(
        u.get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")),
    );
    Some(json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": detail("cached_tokens"),
            "cache_write_tokens": detail("cache_creation_tokens"),
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total,
    }))
}

/// An `output_text` content part.
fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `refusal` content part.
fn refusal(text: &str) -> Value {
    json!({"type": "refusal", "refusal": text})
}

/// A `message` output item.
fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
}

/// A `function_call` output item.
fn function_call_item(id: &str, status: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    })
}
