//! Validation of an OpenAI `POST /v1/chat/completions` body before anything is forwarded.
//! A request that fails here never reaches a provider: every known field of the request object
//! with a wrong type or value is a 400 naming the parameter, as OpenAI answers it. Unknown
//! fields pass through untouched, so parameters newer than this code still work.
//!
//! The checks follow the OpenAI API reference for the request object (`CreateChatCompletionRequest`
//! in the openai-openapi spec, mirrored by the openai-python SDK's `completion_create_params.py`);
//! `filter/testdata/openai/README.md` says which version and lists what is checked.
//!
//! - `check`: the type, range and enum checks every field goes through;
//! - `messages`: each message by role, each content part by type;
//! - `tools`: `tools`, `tool_choice`, `functions`, `function_call`;
//! - `options`: the object-shaped options (`response_format`, `audio`, `metadata`, ...);
//! - `embeddings`: `POST /v1/embeddings`.

mod check;
mod embeddings;
mod messages;
mod options;
mod tools;

use crate::json::{Json, Object};

use crate::error::{invalid, read_object, GatewayError};
use crate::routing::Facts;
use check::{check_fields, Rule};

pub use check::{check_name, missing, wrong_type};
pub use embeddings::{embeddings_base64, parse_embeddings_request, EmbeddingsRequest};

/// What the gateway needs to know of a valid chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// The client asked for a usage chunk at the end of the stream.
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
    /// What content rules and cost estimates look at.
    pub facts: Facts,
}

/// The largest `max_tokens` / `max_completion_tokens` admitted: 2^24 = 16,777,216. Above every
/// model's real output limit (the largest are in the hundreds of thousands), so no honest
/// request is refused; far below overflow, so quota estimates (prompt + max_tokens, times a
/// price in micro-dollars) stay exact.
pub const MAX_OUTPUT_TOKENS: i64 = 1 << 24;

/// The scalar fields of the request object and what each must hold (OpenAI API reference,
/// `CreateChatCompletionRequest`). Nested shapes are checked by the submodules.
const SCALAR_FIELDS: &[(&str, Rule)] = &[
    ("stream", Rule::Bool),
    ("logprobs", Rule::Bool),
    ("store", Rule::Bool),
    ("parallel_tool_calls", Rule::Bool),
    ("user", Rule::Str),
    ("prompt_cache_key", Rule::Str),
    ("safety_identifier", Rule::StrMax(64)),
    (
        "max_tokens",
        Rule::Int {
            min: 1,
            max: MAX_OUTPUT_TOKENS,
        },
    ),
    (
        "max_completion_tokens",
        Rule::Int {
            min: 1,
            max: MAX_OUTPUT_TOKENS,
        },
    ),
    ("n", Rule::Int { min: 1, max: 128 }),
    (
        "seed",
        Rule::Int {
            min: i64::MIN,
            max: i64::MAX,
        },
    ),
    ("top_logprobs", Rule::Int { min: 0, max: 20 }),
    ("temperature", Rule::Number { min: 0.0, max: 2.0 }),
    ("top_p", Rule::Number { min: 0.0, max: 1.0 }),
    (
        "presence_penalty",
        Rule::Number {
            min: -2.0,
            max: 2.0,
        },
    ),
    (
        "frequency_penalty",
        Rule::Number {
            min: -2.0,
            max: 2.0,
        },
    ),
    (
        "reasoning_effort",
        Rule::OneOf(&["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
    ),
    (
        "service_tier",
        Rule::OneOf(&["auto", "default", "flex", "scale", "priority", "fast"]),
    ),
    ("verbosity", Rule::OneOf(&["low", "medium", "high"])),
    ("prompt_cache_retention", Rule::OneOf(&["in_memory", "24h"])),
];

pub fn parse_chat_request(body: &[u8]) -> Result<ChatRequest, GatewayError> {
    parse_chat_request_for(body, |_| true)
}

/// [`parse_chat_request`], with the message texts (and what is read from them: `code`) gathered
/// only when `reads_text` says the requested model's routing reads them: gathering them is a
/// copy, a lowercase copy and eight searches of every text, a fifth of the parse for nothing
/// on a route without content rules.
pub fn parse_chat_request_for(
    body: &[u8],
    reads_text: impl Fn(&str) -> bool,
) -> Result<ChatRequest, GatewayError> {
    let req = read_object(body)?;
    let model = model_of(&req)?;
    messages::check_messages(req.get("messages"))?;
    check_fields(&req, "", SCALAR_FIELDS)?;
    let stream = req.get("stream") == Some(&Json::Bool(true));
    options::check_options(&req, stream)?;
    tools::check_tools(&req)?;

    let include_usage = req
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        == Some(&Json::Bool(true));
    // Both were checked against MAX_OUTPUT_TOKENS; the newer name wins.
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| req.get(k).and_then(Json::as_u64));
    let facts = facts_of(&req, max_tokens, reads_text(&model));
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        max_tokens,
        facts,
    })
}

/// The required, non-empty `model` of a chat or embeddings request.
fn model_of(req: &Object) -> Result<String, GatewayError> {
    match req.get("model") {
        None | Some(Json::Null) => Err(GatewayError::MissingParameter("model")),
        Some(Json::String(m)) if m.is_empty() => {
            Err(invalid("model", "'model' must not be empty."))
        }
        Some(Json::String(m)) => Ok(m.to_string()),
        Some(other) => Err(wrong_type("model", "a string", other)),
    }
}

/// Estimated prompt tokens (about four characters a token, plus a few a message), whether images
/// or tools are present, the user; with `with_text`, also the text (as sent and lowercase) and
/// whether it holds code.
fn facts_of(req: &Object, max_tokens: Option<u64>, with_text: bool) -> Facts {
    let mut text = Texts {
        keep: with_text,
        ..Texts::default()
    };
    let mut images = false;
    let messages = req
        .get("messages")
        .and_then(Json::as_array)
        .unwrap_or_default();
    for message in messages {
        match message.get("content") {
            Some(Json::String(s)) => text.push(s.as_ref()),
            Some(Json::Array(parts)) => {
                for part in parts {
                    match part.get("type").and_then(Json::as_str) {
                        Some("image_url") => images = true,
                        _ => text.push(part.get("text").and_then(Json::as_str).unwrap_or_default()),
                    }
                }
            }
            _ => {}
        }
    }
    let chars = text.chars;
    let text = text.text;
    let lower = text.to_lowercase();
    let code = lower.contains("```")
        || [
            "\ndef ",
            "\nfn ",
            "function ",
            "#include",
            "\nclass ",
            "\nimport ",
            "select * from",
        ]
        .iter()
        .any(|p| lower.contains(p));
    Facts {
        prompt_tokens: estimate_prompt_tokens(chars, messages.len()),
        max_tokens,
        images,
        tools: req
            .get("tools")
            .and_then(Json::as_array)
            .is_some_and(|t| !t.is_empty()),
        code,
        text: lower,
        raw_text: text,
        user: req.get("user").and_then(Json::as_str).map(str::to_string),
    }
}

/// About four characters a token, plus four a message; saturates instead of wrapping.
fn estimate_prompt_tokens(chars: usize, messages: usize) -> u64 {
    let chars = u64::try_from(chars).unwrap_or(u64::MAX);
    let messages = u64::try_from(messages).unwrap_or(u64::MAX);
    chars.div_ceil(4).saturating_add(messages.saturating_mul(4))
}

/// The message texts, each after a line break; counted always (the token estimate), kept only
/// when asked.
#[derive(Default)]
struct Texts {
    keep: bool,
    text: String,
    chars: usize,
}

impl Texts {
    fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.chars = self.chars.saturating_add(1 + s.chars().count());
        if self.keep {
            self.text.push('\n');
            self.text.push_str(s);
        }
    }
}

#[cfg(test)]
mod tests;
