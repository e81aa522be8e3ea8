//! Cohere API v2: chat (`POST {prefix}/chat`, JSON or SSE) and embed (`POST {prefix}/embed`),
//! with `authorization: Bearer <key>`.
//!
//! References:
//! - Chat: https://docs.cohere.com/reference/chat (request body, `ChatResponseV2`,
//!   `ChatFinishReason`, `Usage`) and the stream events
//!   https://docs.cohere.com/reference/chat-stream, https://docs.cohere.com/v2/docs/streaming,
//!   https://docs.cohere.com/docs/tool-use-streaming.
//! - Tools: https://docs.cohere.com/v2/docs/tool-use-overview; images:
//!   https://docs.cohere.com/docs/image-inputs; JSON mode:
//!   https://docs.cohere.com/v2/docs/structured-outputs.
//! - Embed: https://docs.cohere.com/reference/embed (`V2EmbedRequest`, `EmbedByTypeResponse`).
//! - Errors: every error status carries `{"message": "..."}`
//!   (https://docs.cohere.com/reference/errors).
//! - OpenAI side: https://platform.openai.com/docs/api-reference/chat/create,
//!   https://platform.openai.com/docs/api-reference/chat/streaming,
//!   https://platform.openai.com/docs/api-reference/embeddings/create.
//!
//! Chat request, mapped: `model` (the provider's name); messages `system` and `developer` →
//! `system`, `user` (text and `image_url` parts, the same shape in Cohere v2, `detail` kept),
//! `assistant` (text and refusal parts as text, `tool_calls` with their ids), `tool`
//! (`tool_call_id`, text content); `tools` (function tools; a tool without `parameters` gets an
//! empty object schema; `strict: true` on any tool → `strict_tools: true`); `tool_choice`
//! `auto` → omitted, `none` → `NONE`, `required` → `REQUIRED`, a named function → only that tool
//! is sent, with `REQUIRED` (Cohere cannot name a tool; with one tool left, "use at least one
//! tool" means "use this one"); `max_completion_tokens` / `max_tokens` → `max_tokens`;
//! `temperature`; `top_p` → `p`, clamped to Cohere's [0.01, 0.99]; `stop` → `stop_sequences`;
//! `seed`; `frequency_penalty`, `presence_penalty`; `response_format` `json_object` →
//! `{"type":"json_object"}`, `json_schema` → `{"type":"json_object","json_schema":<schema>}`,
//! `text` → omitted; `stream`.
//!
//! Dropped (no Cohere equivalent; the answer keeps its meaning): `user`, `name` on messages,
//! `parallel_tool_calls`, `stream_options` (Cohere always reports usage at `message-end`),
//! `logprobs` / `top_logprobs` (answers carry `logprobs: null`), `logit_bias`, `metadata`,
//! `store`, `service_tier`, `reasoning_effort`, `prediction`, `prompt_cache_key`,
//! `safety_identifier`, `web_search_options`.
//!
//! Refused with a 400 naming the parameter: `n > 1`; `temperature > 1` and
//! `frequency_penalty` / `presence_penalty` outside [0, 1] (Cohere's ranges); a negative `seed`;
//! the legacy `functions` / `function_call` and `function` role; audio (`modalities` with
//! `audio`, `audio`, `input_audio` parts) and `file` parts; non-text parts in system, assistant
//! or tool messages; non-function tools; a named `tool_choice` whose tool is not declared, or any
//! other `tool_choice` form; an unknown `response_format` type.
//!
//! Embeddings: `input` (a string or strings) → `texts`, with `input_type: "search_document"`
//! and `embedding_types: ["float"]`; `dimensions` → `output_dimension`; `user` dropped; token
//! arrays refused (400, Cohere embeds text only). The answer is the OpenAI list, in base64 when
//! the client asked `encoding_format: "base64"`, with usage from `meta.billed_units`.
//!
//! Chat answer: text content parts are joined into `content` (`null` when there is none and
//! there are tool calls); `thinking` parts and `tool_plan` are the model's reasoning, not its
//! answer, and are dropped; `citations` are dropped; `tool_calls` keep their ids. Finish
//! reasons: `COMPLETE`, `STOP_SEQUENCE` → `stop`; `MAX_TOKENS` → `length`; `TOOL_CALL` →
//! `tool_calls`; `TIMEOUT` → `length` (cut short by a limit). `ERROR` in a JSON answer → `length`
//! too: the status line (200) is already sent when the body is read, so an error body would be
//! taken for a success by the SDKs; the partial answer is kept and marked as cut short. In a
//! stream, `ERROR` (or a `message-end` carrying `error`) ends the stream with an OpenAI error
//! event and `[DONE]`, which the SDKs raise on. Usage: `usage.tokens` (what the model processed)
//! is preferred, each field falling back to `usage.billed_units` (billed tokens exclude the
//! prompt scaffolding and are smaller); `cached_tokens` → `prompt_tokens_details.cached_tokens`.
//! The answer's `id` is Cohere's, its `model` the provider's model name, `created` the time of
//! the attempt.
//!
//! Stream: `message-start` → a role chunk; `content-delta` text → content chunks;
//! `tool-call-start` → a `tool_calls` delta (index, id, type, name, arguments so far);
//! `tool-call-delta` → arguments deltas; `message-end` → the finish chunk, the usage chunk
//! (always; the gateway drops it when the client did not ask) and `[DONE]`. Ignored:
//! `content-start` / `content-end` (text they might carry is still emitted), `thinking` deltas,
//! `tool-plan-delta`, `tool-call-end`, `citation-start` / `citation-end`, `debug`, a `[DONE]`
//! data line. A stream that ends without `message-end` gets an error event and `[DONE]`.
//! Any non-2xx answer becomes `{"error": {...}}` with Cohere's `message` and the same status; a
//! 2xx body that is not the answer asked for (not JSON, no `message` object in a chat answer, no
//! float vectors in an embed answer) is a 502 error with Cohere's `message` if it has one, never
//! an empty answer.
//!
//! `request.rs` writes the Cohere bodies from typed members that borrow the client's parsed
//! body; `response.rs` reads Cohere's answers into typed forms that borrow the answer's strings.

use serde::Deserialize;
use serde_json::Value;

use super::config::ApiKeyEnv;
use super::openai::refuse_multiple_choices;
use super::{Attempt, Operation, ResponseTranslator, Translator, UpstreamRequest};
use crate::error::{parse_object, GatewayError};
use response::CohereResponse;
pub(crate) use response::FloatVectors;

pub struct Cohere;

impl Translator for Cohere {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let req = parse_object(body)?;
        let (endpoint, body) = match attempt.operation {
            Operation::Chat => {
                refuse_multiple_choices(attempt, req.get("n").and_then(Value::as_u64))?;
                (
                    "chat",
                    serde_json::to_vec(&request::chat_body(attempt, &req)?),
                )
            }
            Operation::Embeddings => (
                "embed",
                serde_json::to_vec(&request::embed_body(attempt, &req)?),
            ),
        };
        let body = body.map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
        let mut headers = Vec::with_capacity(2);
        if let Some(key) = attempt.api_key() {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        headers.push(("content-type", "application/json".to_string()));
        Ok(UpstreamRequest {
            path: format!("{}/{endpoint}", attempt.provider.path_prefix),
            headers,
            body: Some(body),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        let base64 = attempt.operation == Operation::Embeddings && attempt.embeddings_base64;
        Some(Box::new(CohereResponse::new(attempt, base64)))
    }
}

/// The settings of a Cohere provider (`providers.<id>`, besides the common keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohereSettings {
    pub api_key_env: Option<ApiKeyEnv>,
}

mod request;
mod response;
#[cfg(test)]
mod tests;
