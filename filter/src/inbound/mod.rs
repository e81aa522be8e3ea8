//! Inbound front ends: the client-facing APIs other than OpenAI Chat Completions. Each API
//! module turns the client's body into an OpenAI Chat Completions body (the intermediate form
//! every provider translator reads) and the OpenAI answer (JSON, chunk stream or error) back
//! into its own shapes, free of the host. The pipeline asks [`Api`] for the request side and a
//! [`Front`] (what the answer needs to know of the request) for the answer side; a provider that
//! speaks the client's API natively gets the client's body instead (`Front::native_to`).
//!
//! Adding an API: a module with `Context`, `to_chat`, `answer_from_chat`, `StreamFromChat` and
//! `error_from_chat`, a variant in [`Api`], [`Front`] and [`FrontStream`], and its endpoint in
//! `gateway::endpoint_for`.

pub mod messages;
pub mod responses;

use crate::error::GatewayError;
use crate::provider::{Provider, ProviderKind};

/// The API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI Chat Completions and Embeddings: today's path, no conversion.
    OpenAi,
    /// Anthropic Messages (`POST /v1/messages`, `/v1/messages/count_tokens`).
    Messages,
    /// OpenAI Responses (`POST /v1/responses`): passed through to a provider that serves it
    /// (OpenAI, Azure), translated to and from the chat form for every other.
    Responses,
}

impl Api {
    /// How filter state names it (the provider filter in another VM reads it back).
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Messages => "messages",
            Self::Responses => "responses",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "messages" => Some(Self::Messages),
            "responses" => Some(Self::Responses),
            _ => None,
        }
    }

    /// The client's body as an OpenAI chat body and what its answer needs; `None` for the
    /// OpenAI API (its body is the chat body already).
    pub fn to_chat(self, body: &[u8]) -> Result<Option<(Vec<u8>, Front)>, GatewayError> {
        match self {
            Self::OpenAi => Ok(None),
            Self::Messages => {
                messages::to_chat(body).map(|(chat, ctx)| Some((chat, Front::Messages(ctx))))
            }
            Self::Responses => {
                responses::to_chat(body).map(|(chat, ctx)| Some((chat, Front::Responses(ctx))))
            }
        }
    }

    /// An OpenAI-shaped error body (and its status) in this API's error shape; the OpenAI API
    /// keeps it.
    pub fn error_body(self, status: u32, openai_error: Vec<u8>) -> Vec<u8> {
        match self {
            Self::OpenAi => openai_error,
            Self::Messages => messages::error_from_chat(status, &openai_error),
            Self::Responses => responses::error_from_chat(status, &openai_error),
        }
    }

    /// Whether `provider` speaks this API itself: the client's body then goes to it (model
    /// mapped, credentials set) and its answer comes back untouched.
    pub fn native_to(self, provider: &Provider) -> bool {
        match self {
            Self::OpenAi => provider.kind.is_openai_family(),
            Self::Messages => provider.kind == ProviderKind::Anthropic,
            Self::Responses => provider.serves_responses(),
        }
    }
}

/// What the answer of a converted request needs to know of the request.
#[derive(Debug, Clone)]
pub enum Front {
    Messages(messages::Context),
    Responses(responses::Context),
}

impl Front {
    pub fn api(&self) -> Api {
        match self {
            Self::Messages(_) => Api::Messages,
            Self::Responses(_) => Api::Responses,
        }
    }

    /// The time and request id an answer is named by when the provider's answer does not say
    /// (the Responses API's `created_at` and `resp_` id).
    pub fn set_identity(&mut self, now_unix: u64, request_id: &str) {
        match self {
            Self::Messages(_) => {}
            Self::Responses(ctx) => ctx.set_identity(now_unix, request_id),
        }
    }

    /// Why the request cannot go to a provider that does not speak its API (a block or tool
    /// with no chat equivalent), if it cannot.
    pub fn untranslatable(&self) -> Option<&str> {
        match self {
            Self::Messages(ctx) => ctx.untranslatable.as_deref(),
            Self::Responses(ctx) => ctx.untranslatable.as_deref(),
        }
    }

    /// The answer will be kept by the Responses API's store under `id` (Responses only).
    pub fn set_stored_id(&mut self, id: String) {
        if let Self::Responses(ctx) = self {
            ctx.set_stored_id(id);
        }
    }

    /// A whole OpenAI chat completion -> this API's answer body.
    pub fn answer_from_chat(&self, chat: &[u8]) -> Vec<u8> {
        match self {
            Self::Messages(ctx) => messages::answer_from_chat(chat, ctx),
            Self::Responses(ctx) => responses::answer_from_chat(chat, ctx),
        }
    }

    /// Reads the usage of this API's own answer (a `usage` object), from a provider that
    /// speaks it.
    pub fn native_usage(&self) -> fn(&serde_json::Value) -> Option<crate::usage::Usage> {
        match self {
            Self::Messages(_) => messages::native_usage,
            Self::Responses(_) => responses::native_usage,
        }
    }

    /// The observer of this API's own event stream, from a provider that speaks it.
    pub fn native_stream(&self) -> NativeStream {
        match self {
            Self::Messages(_) => NativeStream::Messages(messages::NativeStream::default()),
            Self::Responses(_) => NativeStream::Responses(responses::NativeStream::new()),
        }
    }

    /// The translator of an OpenAI chunk stream into this API's events.
    pub fn stream(&self) -> FrontStream {
        match self {
            Self::Messages(ctx) => FrontStream::Messages(messages::StreamFromChat::new(ctx)),
            Self::Responses(ctx) => FrontStream::Responses(responses::StreamFromChat::new(ctx)),
        }
    }
}

/// An OpenAI chunk stream translated into the client's API, piece by piece.
#[derive(Debug)]
pub enum FrontStream {
    Messages(messages::StreamFromChat),
    Responses(responses::StreamFromChat),
}

impl FrontStream {
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        match self {
            Self::Messages(s) => s.push(chunk, end),
            Self::Responses(s) => s.push(chunk, end),
        }
    }

    /// The whole Responses `response` once the stream completed (Responses only).
    pub fn finished_response(&mut self) -> Option<serde_json::Value> {
        match self {
            Self::Messages(_) => None,
            Self::Responses(s) => s.finished_response(),
        }
    }
}

/// A provider's own stream in the client's API, passing untouched: its usage read, and an end
/// in that API's error events added when it breaks.
#[derive(Debug)]
pub enum NativeStream {
    Messages(messages::NativeStream),
    Responses(responses::NativeStream),
}

impl NativeStream {
    /// Observes one piece; returns the events to send after it when the stream broke.
    pub fn push(&mut self, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
        match self {
            Self::Messages(s) => s.push(chunk, end),
            Self::Responses(s) => s.push(chunk, end),
        }
    }

    pub fn usage(&self) -> Option<crate::usage::Usage> {
        match self {
            Self::Messages(s) => s.usage(),
            Self::Responses(s) => s.usage(),
        }
    }

    /// Why the gateway ended the stream itself, if it did.
    pub fn failure(&self) -> Option<&'static str> {
        match self {
            Self::Messages(s) => s.failure,
            Self::Responses(s) => s.failure,
        }
    }

    /// The whole Responses `response` once the stream completed (Responses only).
    pub fn finished_response(&mut self) -> Option<serde_json::Value> {
        match self {
            Self::Messages(_) => None,
            Self::Responses(s) => s.finished_response(),
        }
    }

    /// The stream carried the provider's error, or the gateway ended it.
    pub fn errored(&self) -> bool {
        match self {
            Self::Messages(s) => s.error,
            Self::Responses(s) => s.error,
        }
    }
}

/// Why a provider's own stream, passed through to a client of its API, broke: an event larger
/// than the parser takes, or the end before the answer was complete. `(code, message)` of the
/// error event the front end then writes in its API's shape.
pub(crate) fn native_stream_break(
    overflowed: bool,
    ended_early: bool,
) -> Option<(&'static str, &'static str)> {
    if overflowed {
        Some((
            "stream_event_too_large",
            "An event of the provider's stream is larger than the gateway accepts.",
        ))
    } else if ended_early {
        Some((
            "upstream_stream_reset",
            "The provider's stream ended before the answer was complete.",
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn responses_is_an_api_of_its_own_native_to_providers_that_serve_it() {
        assert_eq!(Api::parse(Api::Responses.name()), Some(Api::Responses));
        assert_eq!(Api::Responses.name(), "responses");
        let provider = |settings: serde_json::Value| {
            crate::provider::config::compile("p".into(), settings, &|_| None).expect("valid")
        };
        for (settings, native) in [
            (json!({"type": "openai"}), true),
            (json!({"type": "azure"}), true),
            (json!({"type": "openai", "responses_api": false}), false),
            (json!({"type": "mistral"}), false),
            (json!({"type": "anthropic"}), false),
            (json!({"type": "gemini"}), false),
        ] {
            assert_eq!(
                Api::Responses.native_to(&provider(settings.clone())),
                native,
                "{settings}"
            );
        }
        let (chat, front) = Api::Responses
            .to_chat(br#"{"model":"m","input":"hi","instructions":"be brief"}"#)
            .expect("a valid request")
            .expect("converted");
        assert_eq!(front.api(), Api::Responses);
        assert_eq!(front.untranslatable(), None);
        let chat: Value = serde_json::from_slice(&chat).expect("chat JSON");
        assert_eq!(
            chat["messages"],
            json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
        );
    }

    #[test]
    fn responses_errors_keep_the_openai_error_body_with_all_four_fields() {
        // https://platform.openai.com/docs/guides/error-codes: {"error": {message, type, param, code}}.
        let body = Api::Responses.error_body(
            429,
            br#"{"error":{"message":"slow down","type":"requests"}}"#.to_vec(),
        );
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            v,
            json!({"error": {"message": "slow down", "type": "requests", "param": null,
                             "code": "rate_limit_exceeded"}})
        );
    }
}
