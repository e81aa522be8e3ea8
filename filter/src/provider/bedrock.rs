//! AWS Bedrock: chat through the Converse and ConverseStream APIs, embeddings through
//! InvokeModel (Amazon Titan text embeddings, Cohere Embed), every request signed with AWS
//! Signature Version 4 inside the filter ([`sigv4`]); streamed answers arrive in the binary
//! `application/vnd.amazon.eventstream` framing ([`eventstream`]) and leave as OpenAI SSE.
//!
//! References:
//! - Converse: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
//! - ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
//!   and https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
//! - Token usage: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html
//!   and prompt caching: https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html
//! - Structured output: https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html
//! - Titan embeddings: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
//! - Cohere Embed: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html
//! - SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
//!
//! Requests go to `bedrock-runtime.{region}.amazonaws.com` (set as `:authority` and signed as
//! `host`): `POST {path_prefix}/model/{modelId}/converse` (or `/converse-stream` when streaming,
//! `/invoke` for embeddings), the model id percent-encoded in the path (and encoded once more in
//! the SigV4 canonical URI, as for every service but S3). Signed headers: `content-type`,
//! `host`, `x-amz-content-sha256`, `x-amz-date`, and `x-amz-security-token` with a session token.
//!
//! Chat, mapped:
//! - `messages`: `system`/`developer` → `system: [{text}]`; `user` text and `image_url` data URLs
//!   (png, jpeg, gif, webp) → `text` / `image {format, source: {bytes}}` blocks; `assistant`
//!   text and `tool_calls` → `text` / `toolUse {toolUseId, name, input}` (arguments parsed as
//!   JSON); `tool` → `toolResult {toolUseId, content: [{text}]}` in a user turn (always `text`:
//!   every Converse model takes it, not every one takes `json`). Consecutive turns of one role
//!   are merged, as Converse wants roles to alternate. Blank text parts are left out (Converse
//!   refuses blank text). Tool-call ids are kept, characters outside `[A-Za-z0-9_-]` becoming
//!   `_` (Converse's `toolUseId` pattern), the same way in calls and results.
//! - `max_completion_tokens` / `max_tokens` → `inferenceConfig.maxTokens`; `temperature`,
//!   `top_p` → `topP`, `stop` → `stopSequences` (Bedrock checks the ranges per model).
//! - `tools` (function tools) → `toolConfig.tools[].toolSpec {name, description,
//!   inputSchema: {json}}`; `tool_choice` `auto` → `{auto}`, `required` → `{any}`, a named
//!   function → `{tool: {name}}`; `none` → no `toolConfig` at all (Converse has no "none";
//!   Bedrock then refuses a history holding tool calls, with its own 400).
//! - `response_format` `json_schema` → `outputConfig.textFormat {type: json_schema,
//!   structure: {jsonSchema: {schema (as a string), name, description}}}`; `text` → nothing.
//! - `cache_control` markers ([`cache_marks`]) on content parts, system parts, whole messages
//!   and `tools[i]` → a `cachePoint {type: default}` block right after the marked block (in
//!   `system`, the message's `content`, `toolConfig.tools`); a marker's `ttl` is dropped.
//!   Bedrock checks the per-model limits itself (models without caching answer with their 400).
//!
//! Chat, refused with a 400 (the answer would not be what was asked): `n > 1`; image links
//! (`http(s)://`: Bedrock takes image bytes only); other image types; content parts other than
//! text and images (audio, files); non-function tools; `response_format` `json_object` (no
//! schema-less JSON mode); `tool_choice` `required` or a named tool without `tools`; the
//! deprecated `function` role; tool-call arguments that are not JSON.
//!
//! Chat, dropped (no Converse equivalent; OpenAI treats them as hints or metadata):
//! `frequency_penalty`, `presence_penalty`, `seed`, `logit_bias`, `logprobs`, `top_logprobs`,
//! `user`, `parallel_tool_calls`, `store`, `metadata`, `service_tier`, `reasoning_effort`,
//! `prediction`, `modalities`, `audio`, `web_search_options`, `stream_options` (usage always
//! comes), message `name`s, image `detail`, tool `strict`. Reasoning blocks in answers are
//! dropped too (the OpenAI chat format has no field for them).
//!
//! Answers: `output.message.content` text → `content`, `toolUse` → `tool_calls` (arguments =
//! the input as a JSON string); `stopReason` `end_turn`/`stop_sequence` → `stop`, `max_tokens`
//! and `model_context_window_exceeded` → `length`, `tool_use` → `tool_calls`,
//! `guardrail_intervened`/`content_filtered` → `content_filter`. Usage: Bedrock's
//! `inputTokens` counts only the input that was neither read from nor written to the cache
//! (as Anthropic counts it; cache tokens come apart in `cacheReadInputTokens` and
//! `cacheWriteInputTokens`), so the normalized `prompt` is their sum, `cached_prompt` the
//! cache reads and `cache_write` the writes; `total` = prompt + completion.
//! Errors (non-2xx, `{"message": ...}`) → the OpenAI error shape with Bedrock's status.
//!
//! Streams (ConverseStream events): `messageStart` → the role chunk; `contentBlockStart` with
//! `toolUse` → a `tool_calls` chunk (id, name, empty arguments) with its OpenAI index;
//! `contentBlockDelta` → `content` or `tool_calls[].function.arguments` chunks; `messageStop` →
//! the finish chunk; `metadata` → the usage chunk (always: the gateway strips it when unwanted)
//! and `[DONE]`. An exception message (`throttlingException`, ...), an error message, a CRC
//! failure or a stream cut inside the answer → an OpenAI error event and `[DONE]`.
//!
//! Embeddings (`POST /model/{modelId}/invoke`): `amazon.titan-embed-*` → `{"inputText",
//! "dimensions"?}` → `{"embedding", "inputTextTokenCount"}`, one input per request (more →
//! 400); `cohere.embed-*` → `{"texts", "input_type": "search_document", "output_dimension"?}`
//! → `{"embeddings": [[...]]}` (or `{"embeddings": {"float": [[...]]}}`); Cohere's answer body
//! carries no token count, so its usage is 0. Token-array inputs → 400 (Bedrock takes text);
//! other model families → 400. `encoding_format: base64` is honoured.
//!
//! Where: the Converse body is written in [`request`], answers and stream events are read in
//! [`response`], embeddings both ways in [`embeddings`]; all through typed forms that borrow
//! the bodies' strings, no JSON tree built.

mod embeddings;
mod eventstream;
mod request;
mod response;
mod settings;
mod sigv4;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

use super::openai_format::CompletionId;
use super::{percent_encode, Attempt, Operation, ResponseTranslator, Translator, UpstreamRequest};
use embeddings::{embeddings_request, EmbeddingsResponse};
use request::converse_request;
use response::ChatResponse;
pub use settings::BedrockSettings;

use super::config::{Credentials, ProviderSettings};
use crate::error::GatewayError;

pub struct Bedrock;

/// Bedrock runtime's signing name in the SigV4 credential scope.
const SERVICE: &str = "bedrock";

impl Translator for Bedrock {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let (action, payload) = match attempt.operation {
            Operation::Chat => {
                let action = if attempt.stream {
                    "converse-stream"
                } else {
                    "converse"
                };
                (action, converse_request(body)?)
            }
            Operation::Embeddings => {
                let (payload, _) = embeddings_request(attempt.upstream_model, body)?;
                ("invoke", payload)
            }
        };
        let path = format!(
            "{}/model/{}/{action}",
            attempt.provider.path_prefix,
            percent_encode(attempt.upstream_model)
        );
        let headers = signed_headers(attempt, &path, &payload)?;
        Ok(UpstreamRequest {
            path,
            headers,
            body: Some(payload),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        let id = completion_id(attempt);
        Some(match attempt.operation {
            Operation::Chat => Box::new(ChatResponse::new(id)),
            Operation::Embeddings => {
                Box::new(EmbeddingsResponse::new(id.model, attempt.embeddings_base64))
            }
        })
    }
}

fn completion_id(attempt: &Attempt) -> CompletionId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff;
    CompletionId {
        id: format!("chatcmpl-bedrock-{:x}{n:04x}", attempt.now_unix),
        created: attempt.now_unix,
        model: attempt.client_model.to_string(),
    }
}

/// The headers of a signed request to `path` with `payload`, `:authority` included.
fn signed_headers(
    attempt: &Attempt,
    path: &str,
    payload: &[u8],
) -> Result<Vec<(&'static str, String)>, GatewayError> {
    signed_post(attempt.provider, path, payload, attempt.now_unix)
}

/// The headers of a `POST` to Bedrock runtime's `path` with `payload`, signed with `provider`'s
/// AWS credentials at `now_unix` (`:authority` included): the provider's attempts and the
/// guardrail callouts (`ApplyGuardrail`) alike.
pub fn signed_post(
    provider: &super::Provider,
    path: &str,
    payload: &[u8],
    now_unix: u64,
) -> Result<Vec<(&'static str, String)>, GatewayError> {
    let Credentials::Aws {
        access_key_id,
        secret_access_key,
        session_token,
    } = &provider.credentials
    else {
        return Err(GatewayError::Misconfigured(format!(
            "provider '{}' has no AWS credentials to sign with",
            provider.id
        )));
    };
    let ProviderSettings::Bedrock(settings) = &provider.settings else {
        return Err(GatewayError::Misconfigured(format!(
            "provider '{}' has no Bedrock settings",
            provider.id
        )));
    };
    let region = settings.region.as_str();
    let host = format!("bedrock-runtime.{region}.amazonaws.com");
    let amz_date = sigv4::amz_date(now_unix);
    let payload_hash = sigv4::payload_hash(payload);
    let mut signed: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("host", &host),
        ("x-amz-content-sha256", &payload_hash),
        ("x-amz-date", &amz_date),
    ];
    if let Some(token) = session_token {
        signed.push(("x-amz-security-token", token.expose()));
    }
    let authorization = sigv4::authorization(
        &sigv4::Request {
            method: "POST",
            path,
            query: &[],
            headers: &signed,
            payload_hash: &payload_hash,
        },
        &sigv4::Key {
            access_key_id: access_key_id.expose(),
            secret_access_key: secret_access_key.expose(),
            region,
            service: SERVICE,
        },
        &amz_date,
    );
    let mut headers = vec![
        (":authority", host.clone()),
        ("content-type", "application/json".to_string()),
        ("x-amz-date", amz_date.clone()),
        ("x-amz-content-sha256", payload_hash.clone()),
    ];
    if let Some(token) = session_token {
        headers.push(("x-amz-security-token", token.expose().to_string()));
    }
    headers.push(("authorization", authorization));
    Ok(headers)
}
