//! The Anthropic Messages API, inbound (`POST /v1/messages`): the client's Messages body
//! becomes an OpenAI chat body for providers that do not speak Messages, and their OpenAI answer
//! (JSON, chunk stream, error) becomes Anthropic's again. To the Anthropic provider the client's
//! body goes through as sent (`provider::anthropic::native_request`) and its answer comes back
//! untouched; `native` reads usage and failures from it as it passes.
//!
//! References (Anthropic's published API reference):
//! - Messages: https://docs.anthropic.com/en/api/messages
//! - Streaming: https://docs.anthropic.com/en/docs/build-with-claude/streaming
//! - Errors: https://docs.anthropic.com/en/api/errors
//! - Stop reasons: https://docs.anthropic.com/en/api/handling-stop-reasons
//! - Token counting: https://docs.anthropic.com/en/api/messages-count-tokens
//!
//! Request (Messages -> chat), in `request` and `blocks`:
//! - `model`, `max_tokens` (both required), `stream` (with `stream_options.include_usage`, so
//!   the answer can carry Anthropic's usage), `temperature`, `top_p`, `stop_sequences` -> `stop`,
//!   `metadata.user_id` -> `user`.
//! - `system` (a string or text blocks) -> a leading system message.
//! - user content: `text` -> text parts; `image` (base64 or url source) -> `image_url`;
//!   `document` (base64 PDF) -> a `file` part, (text source) -> a text part; `tool_result` ->
//!   a `tool` message (its text; `is_error` marks it), placed before the turn's other content.
//! - assistant content: `text` -> content; `tool_use` -> `tool_calls` (input as JSON text);
//!   `thinking`/`redacted_thinking` are left out (their signatures mean nothing to other models).
//! - `tools` (custom tools) -> function tools; `tool_choice` auto/any/tool/none ->
//!   auto/required/named/none, `disable_parallel_tool_use` -> `parallel_tool_calls: false`.
//! - Dropped for other providers: `top_k`, `thinking`, `service_tier`, `cache_control` markers.
//! - A 400 naming the field: a missing or mistyped required field, a wrong role, a block
//!   without its required members, a value out of range.
//! - Not translatable (server tools such as `web_search_*`, image `file` sources, URL
//!   documents, unknown block types): fine for an Anthropic target; a 400 from any other.
//!
//! Answer (chat -> Messages), in `answer` and `stream`: a `message` object or the event
//! sequence `message_start`, `ping`, `content_block_start`/`content_block_delta` (`text_delta`,
//! `input_json_delta`)/`content_block_stop`, `message_delta` (stop reason, usage),
//! `message_stop`. `finish_reason` stop -> `end_turn`, length -> `max_tokens`, tool_calls ->
//! `tool_use`, content_filter -> `refusal`. Usage: `input_tokens` = prompt tokens less cache
//! reads and writes (Anthropic counts them apart), `cache_read_input_tokens`,
//! `cache_creation_input_tokens`, `output_tokens`.

mod answer;
mod blocks;
mod native;
mod request;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_answer;

pub use answer::{answer_from_chat, error_from_chat, error_type_for_status};
pub use native::{native_usage, NativeStream};
pub use request::{count_tokens_to_chat, to_chat};
pub use stream::StreamFromChat;

/// What the answer needs to know of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The model the client named (echoed in the answer).
    pub model: String,
    pub stream: bool,
    /// Why the request cannot be translated for a provider other than Anthropic, if it cannot.
    pub untranslatable: Option<String>,
}
