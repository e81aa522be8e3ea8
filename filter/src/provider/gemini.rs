//! Google Gemini API (generativelanguage.googleapis.com, `v1beta`): OpenAI chat completions go to
//! `models/{model}:generateContent` (streamed: `:streamGenerateContent?alt=sse`) and embeddings to
//! `models/{model}:batchEmbedContents`; the answers come back in the OpenAI format.
//!
//! References (Gemini): https://ai.google.dev/api/generate-content (request, response,
//! `UsageMetadata`, `FinishReason`, `streamGenerateContent`), https://ai.google.dev/api/caching
//! (`Content`, `Part`, `FunctionCall`, `FunctionResponse`, `Tool`, `ToolConfig`, `Schema`),
//! https://ai.google.dev/gemini-api/docs/function-calling,
//! https://ai.google.dev/gemini-api/docs/thought-signatures,
//! https://ai.google.dev/gemini-api/docs/structured-output,
//! https://ai.google.dev/gemini-api/docs/file-input-methods,
//! https://ai.google.dev/gemini-api/docs/openai (reasoning_effort budgets),
//! https://ai.google.dev/api/embeddings#method:-models.batchembedcontents,
//! https://ai.google.dev/gemini-api/docs/troubleshooting (error bodies).
//! OpenAI: https://platform.openai.com/docs/api-reference/chat/create and
//! https://platform.openai.com/docs/api-reference/embeddings/create.
//!
//! **Mapped.** `system` and `developer` messages → `systemInstruction` (all of them, in order,
//! wherever they stand); `user` → role `user`, `assistant` → role `model`, consecutive turns of
//! one role merged. Text parts → `text` (empty texts left out: Gemini refuses them); images:
//! base64 `data:` URLs → `inlineData`, `http(s)` URLs → `fileData {mimeType, fileUri}` with the
//! type taken from the URL's extension (png, jpg/jpeg, webp, heic, heif: the image types Gemini
//! reads; Gemini fetches public and signed URLs itself); `input_audio` (wav, mp3) and `file`
//! parts with a base64 `file_data` → `inlineData`. Assistant `tool_calls` (and the legacy
//! `function_call`) → `functionCall {name, args}`; the first call of each model turn carries the
//! documented placeholder `thoughtSignature` `skip_thought_signature_validator`, because the
//! OpenAI format cannot carry Gemini's real signatures back and Gemini 3 refuses a call turn
//! without one. `tool` messages (and legacy `function` messages) → `functionResponse {name,
//! response: {"content": <the text, or the JSON it holds>}}` in a `user` turn, the name found from
//! the earlier assistant call with that id. `tools` → one `{functionDeclarations: [...]}`, each
//! schema cut down to Gemini's `Schema` subset: `$ref` into `$defs`/`definitions` inlined,
//! `allOf` merged, `oneOf` → `anyOf`, `type: [T, "null"]` and `anyOf: [.., {type: null}]` →
//! `nullable`, `const` → one-value `enum`; kept: type, format (only those Gemini knows: enum and
//! date-time for strings, float/double, int32/int64), title, description, nullable, string
//! enum, properties, required, items, anyOf, min/max (Items, Length, Properties, imum), pattern,
//! example, default, propertyOrdering; dropped: every other keyword (`$schema`,
//! `additionalProperties`, `strict`, `examples`, `multipleOf`, ...). A function without
//! properties is declared without `parameters`. `tool_choice` → `toolConfig.
//! functionCallingConfig`: auto → AUTO, none → NONE, required → ANY, a named function → ANY +
//! `allowedFunctionNames`, `allowed_tools` in mode required → ANY + those names.
//! `generationConfig`: temperature, top_p → topP, max_completion_tokens (else max_tokens) →
//! maxOutputTokens, stop → stopSequences, n (1) → candidateCount, seed, presence_penalty,
//! frequency_penalty, response_format json_object → responseMimeType application/json and
//! json_schema → the same + `responseSchema` (the subset above; `responseSchema` rather than
//! `responseJsonSchema`, which older models lack), reasoning_effort → thinkingConfig.
//! thinkingBudget (none 0, minimal and low 1024, medium 8192, high 24576, as Gemini's own
//! OpenAI endpoint does).
//! Answers: text parts → `content` (thought parts are not content), `functionCall` →
//! `tool_calls` with ids `call_<n>` (n counts the calls of one response) and the args as a JSON
//! string; finishReason STOP → stop, MAX_TOKENS → length, SAFETY, RECITATION, BLOCKLIST,
//! PROHIBITED_CONTENT, SPII and the IMAGE_ variants → content_filter, `tool_calls` whenever calls
//! are present (unless length or content_filter), anything else → stop; a prompt blocked by
//! `promptFeedback.blockReason` → an empty answer with finish_reason content_filter. Usage:
//! prompt = promptTokenCount + toolUsePromptTokenCount, cached = cachedContentTokenCount,
//! completion = candidatesTokenCount + thoughtsTokenCount, reasoning = thoughtsTokenCount,
//! total = totalTokenCount (else the sum); in a stream the last `usageMetadata` counts. Errors
//! (`{"error": {code, message, status}}`, or any non-2xx body) → the OpenAI error shape with the
//! provider's status; an invalid key (Gemini answers 400 `API_KEY_INVALID`) gets the gateway's
//! "provider refused the gateway's credentials" message instead of Gemini's; an error inside a
//! stream → an OpenAI error event and `[DONE]`. The id is `chatcmpl-<responseId>`, the model
//! Gemini's `modelVersion` (else the configured model). Embeddings: input strings → one
//! `requests[]` entry each, dimensions → outputDimensionality; the vectors come back as floats
//! or, when the client asked `encoding_format: "base64"`, base64. Gemini reports no embedding
//! usage: 0 unless a `usageMetadata.promptTokenCount` is present.
//!
//! **Dropped** (no effect on the answer's meaning, or nothing to map to): user, metadata, store,
//! service_tier, parallel_tool_calls, prediction, stream_options (usage is always sent),
//! prompt_cache_key, safety_identifier, image `detail`, message `name`, the order of schema
//! properties (Gemini orders by `propertyOrdering` only), answer parts other than text and
//! function calls (executable code, inline images), and any other parameter not named here.
//!
//! **Refused (400)**: n > 1, logprobs / top_logprobs, logit_bias, audio output, web_search_options,
//! the legacy `functions` parameter, non-base64 data URLs, image URLs of an unknown type, OpenAI
//! file ids, tool-call arguments that are not a JSON object, a tool message whose
//! tool_call_id matches no earlier call, unresolvable or self-referring `$ref`s and schemas
//! deeper than 32 levels or larger than 10,000 nodes once `$ref`s are inlined, tool_choice
//! naming an undeclared function or asking for a call without tools, `allowed_tools` in mode
//! auto, token-array embedding inputs.
//!
//! Where: the request bodies are written in [`request`] from typed members that borrow the
//! client's strings (the conversation in [`contents`], schemas cut down in [`schema`]);
//! answers, stream events and embeddings are read in [`response`]. The client's
//! `encoding_format` reaches the embeddings answer through the attempt
//! (`Attempt::embeddings_base64`).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config::ApiKeyEnv;
use super::openai_format::{self, CompletionId};
use super::{
    percent_encode, Attempt, Operation, ResponseShape, ResponseTranslator, Translator,
    UpstreamRequest,
};
use crate::error::{parse_object, GatewayError};
use crate::sse::SseParser;
use crate::usage::Usage;

pub struct Gemini;

/// Gemini's documented signature for function calls it did not produce in this conversation
/// (https://ai.google.dev/gemini-api/docs/thought-signatures, FAQ).
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";
/// How deep a tool or response schema may nest (`$ref`s followed included).
const MAX_SCHEMA_DEPTH: usize = 32;
/// How many schema nodes one conversion may produce (shared `$ref`s are copied out each time).
const MAX_SCHEMA_NODES: usize = 10_000;
/// Largest piece of a non-JSON error body quoted in the error message.
const MAX_ERROR_TEXT: usize = 512;

/// The upstream model without a leading `models/`, which the path adds itself.
fn model_id(upstream: &str) -> &str {
    upstream.strip_prefix("models/").unwrap_or(upstream)
}

impl Translator for Gemini {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let req = parse_object(body)?;
        let model = model_id(attempt.upstream_model);
        let (method, body) = match attempt.operation {
            Operation::Chat => {
                super::openai::refuse_multiple_choices(
                    attempt,
                    req.get("n").and_then(Value::as_u64),
                )?;
                let method = if attempt.stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                (method, generate_content_request(&req)?)
            }
            Operation::Embeddings => ("batchEmbedContents", embeddings_request(&req, model)?),
        };
        let mut headers = Vec::with_capacity(2);
        if let Some(key) = attempt.api_key() {
            headers.push(("x-goog-api-key", key.to_string()));
        }
        headers.push(("content-type", "application/json".to_string()));
        Ok(UpstreamRequest {
            path: format!(
                "{}/models/{}:{method}",
                attempt.provider.path_prefix,
                percent_encode(model)
            ),
            headers,
            body: Some(body),
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        let provider_auth = GatewayError::ProviderAuth {
            provider: attempt.provider.id.clone(),
            status: 400,
        }
        .to_string();
        let model = model_id(attempt.upstream_model).to_string();
        match attempt.operation {
            Operation::Chat => Some(Box::new(ChatResponse::new(
                attempt.stream,
                model,
                attempt.now_unix,
                provider_auth,
            ))),
            Operation::Embeddings => {
                let base64 = attempt.embeddings_base64;
                Some(Box::new(EmbeddingsResponse {
                    status: 0,
                    body: Vec::new(),
                    model,
                    base64,
                    provider_auth,
                }))
            }
        }
    }
}

/// The settings of a Gemini provider (`providers.<id>`, besides the common keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiSettings {
    pub api_key_env: Option<ApiKeyEnv>,
}

mod contents;
mod request;
mod response;
mod schema;
#[cfg(test)]
mod tests;

use request::{embeddings_request, generate_content_request};
use response::*;
use schema::*;
