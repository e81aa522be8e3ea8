//! Azure OpenAI: the OpenAI body, sent to a deployment (the model entry's `model` is the
//! deployment name) with `api-version` and the `api-key` header.
//! Reference: https://learn.microsoft.com/azure/ai-services/openai/reference
//! (Chat completions: `POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=...`).
//!
//! Answers are OpenAI's, but a stream also carries Azure's content-filter annotations
//! (https://learn.microsoft.com/azure/ai-services/openai/concepts/content-streaming and
//! .../concepts/content-filter, "Streaming"): first a prompt annotation chunk with `"id": ""`,
//! `"object": ""`, `"choices": []` and `prompt_filter_results`, and with the asynchronous filter
//! further chunks with an empty `id`/`object` whose choices hold only `content_filter_results`
//! and `content_filter_offsets`. A strict OpenAI client sees two ids and an object that is not
//! `chat.completion.chunk`. The stream translator drops the prompt annotation chunk and gives
//! the others the stream's id, object, `created` and model (and an empty `delta`); every other
//! event passes as it came, byte for byte. Non-streamed answers carry `prompt_filter_results`
//! as an extra field, which OpenAI clients ignore: they pass untouched.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{ApiKeyEnv, ProviderSettings};
use super::openai::openai_body;
use super::{Attempt, Operation, ResponseShape, ResponseTranslator, Translator, UpstreamRequest};
use crate::error::GatewayError;
use crate::sse::{SseEvent, SseParser};

pub struct Azure;

impl Translator for Azure {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let endpoint = match attempt.operation {
            Operation::Chat => "chat/completions",
            Operation::Embeddings => "embeddings",
        };
        let ProviderSettings::Azure(settings) = &attempt.provider.settings else {
            return Err(GatewayError::Misconfigured(format!(
                "provider '{}' has no Azure settings",
                attempt.provider.id
            )));
        };
        let mut headers = Vec::with_capacity(1);
        if let Some(key) = attempt.api_key() {
            headers.push(("api-key", key.to_string()));
        }
        Ok(UpstreamRequest {
            path: format!(
                "{}/deployments/{}/{endpoint}?api-version={}",
                attempt.provider.path_prefix,
                crate::provider::percent_encode(attempt.upstream_model),
                crate::provider::percent_encode(&settings.api_version)
            ),
            headers,
            body: openai_body(attempt, body)?,
        })
    }

    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        (attempt.stream && attempt.operation == Operation::Chat)
            .then(|| Box::new(AzureStream::default()) as Box<dyn ResponseTranslator>)
    }
}

/// Rewrites the annotation chunks of an Azure chat stream (see the module comment).
#[derive(Default)]
pub struct AzureStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    /// Not a stream (an error body): passed as it comes.
    passthrough: bool,
    /// `id`, `created` and `model` of the stream's first real chunk.
    identity: Option<(Value, Value, Value)>,
    /// Annotation chunks seen before the stream's identity, sent once it is known.
    waiting: Vec<Map<String, Value>>,
}

impl AzureStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<u8>) {
        let Some(data) = event.data.as_deref() else {
            out.extend_from_slice(&event.raw);
            return;
        };
        // Only chunks with an empty string (an annotation's `"id":""`) or a prompt annotation
        // are parsed, and every chunk until the stream's id is known; content deltas pass.
        let look = self.identity.is_none()
            || data.contains("\"\"")
            || data.contains("prompt_filter_results");
        let parsed = match look {
            true => serde_json::from_str::<Value>(data).ok(),
            false => None,
        };
        let Some(Value::Object(mut chunk)) = parsed else {
            if data.trim() == "[DONE]" {
                self.flush_waiting(out);
            }
            out.extend_from_slice(&event.raw);
            return;
        };
        let blank = |v: Option<&Value>| v.is_none_or(|v| v.as_str().is_some_and(str::is_empty));
        let prompt_annotation = chunk.contains_key("prompt_filter_results")
            && chunk
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            && chunk.get("usage").is_none_or(Value::is_null);
        if prompt_annotation {
            return;
        }
        if !blank(chunk.get("id")) && self.identity.is_none() {
            let field = |k: &str| chunk.get(k).cloned().unwrap_or(Value::Null);
            self.identity = Some((field("id"), field("created"), field("model")));
            self.flush_waiting(out);
        }
        // An error event or anything else that is not a chunk passes as it came.
        let whole = !blank(chunk.get("id")) && !blank(chunk.get("object"));
        if whole || !chunk.contains_key("choices") {
            out.extend_from_slice(&event.raw);
            return;
        }
        match self.identity.is_some() {
            true => self.emit_fixed(chunk, out),
            false => {
                chunk.remove("prompt_filter_results");
                self.waiting.push(chunk);
            }
        }
    }

    /// Sends an annotation chunk as a `chat.completion.chunk` of this stream.
    fn emit_fixed(&self, mut chunk: Map<String, Value>, out: &mut Vec<u8>) {
        if let Some((id, created, model)) = &self.identity {
            chunk.insert("id".into(), id.clone());
            chunk.insert("object".into(), "chat.completion.chunk".into());
            if chunk.get("created").and_then(Value::as_u64).unwrap_or(0) == 0 {
                chunk.insert("created".into(), created.clone());
            }
            if chunk
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                chunk.insert("model".into(), model.clone());
            }
        }
        for choice in chunk
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(choice) = choice.as_object_mut() {
                choice
                    .entry("delta")
                    .or_insert_with(|| Value::Object(Map::new()));
            }
        }
        out.extend_from_slice(b"data: ");
        out.extend(serde_json::to_vec(&Value::Object(chunk)).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    /// Sends the annotation chunks that came before the stream's id (with a made-up id when
    /// the stream never named one).
    fn flush_waiting(&mut self, out: &mut Vec<u8>) {
        if self.waiting.is_empty() {
            return;
        }
        if self.identity.is_none() {
            self.identity = Some(("chatcmpl-azure".into(), 0.into(), "".into()));
        }
        for chunk in std::mem::take(&mut self.waiting) {
            self.emit_fixed(chunk, out);
        }
    }
}

impl ResponseTranslator for AzureStream {
    fn start(&mut self, status: u32, content_type: Option<&str>) -> ResponseShape {
        let sse = content_type
            .unwrap_or_default()
            .to_ascii_lowercase()
            .starts_with("text/event-stream");
        if status >= 400 || !sse {
            self.passthrough = true;
            return ResponseShape {
                content_type: "application/json",
                buffer_whole: false,
            };
        }
        ResponseShape::SSE
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        if self.passthrough {
            return chunk.to_vec();
        }
        self.parser.feed(chunk, &mut self.events);
        if end {
            self.parser.finish(&mut self.events);
        }
        let mut out = Vec::with_capacity(chunk.len());
        for event in std::mem::take(&mut self.events) {
            self.event(event, &mut out);
        }
        if end {
            self.flush_waiting(&mut out);
        }
        out
    }
}

/// The settings of an Azure OpenAI provider (`providers.<id>`, besides the common keys). The
/// deployment is the model entry's `model`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSettings {
    pub api_key_env: Option<ApiKeyEnv>,
    /// The `api-version` query parameter.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Ask for usage on streams (`stream_options.include_usage`).
    #[serde(default = "stream_usage_by_default")]
    pub stream_usage: bool,
    /// Serves the Responses API (`{prefix}/v1/responses`): Responses requests then pass through
    /// to it (`crate::provider::responses`). On by default.
    #[serde(default = "responses_api_by_default")]
    pub responses_api: bool,
}

fn responses_api_by_default() -> bool {
    true
}

/// The latest GA `api-version` of the data plane when this was written (reference above).
fn default_api_version() -> String {
    "2024-10-21".into()
}

fn stream_usage_by_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// An Azure stream as the content-streaming reference shows it: the prompt annotation chunk
    /// first, content chunks, an asynchronous-filter annotation chunk with an empty id and
    /// object, the finish chunk, `[DONE]`.
    /// https://learn.microsoft.com/azure/ai-services/openai/concepts/content-streaming
    const STREAM: &str = concat!(
        r#"data: {"id":"","object":"","created":0,"model":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}],"choices":[],"usage":null}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-7rCNsVeZy0PGnX3H6jK8STps5nZUY","object":"chat.completion.chunk","created":1692913344,"model":"gpt-35-turbo","choices":[{"index":0,"finish_reason":null,"delta":{"role":"assistant"}}],"usage":null}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-7rCNsVeZy0PGnX3H6jK8STps5nZUY","object":"chat.completion.chunk","created":1692913344,"model":"gpt-35-turbo","choices":[{"index":0,"finish_reason":null,"delta":{"content":"Color"}}],"usage":null}"#,
        "\n\n",
        r#"data: {"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":null,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"content_filter_offsets":{"check_offset":44,"start_offset":44,"end_offset":198}}],"usage":null}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-7rCNsVeZy0PGnX3H6jK8STps5nZUY","object":"chat.completion.chunk","created":1692913344,"model":"gpt-35-turbo","choices":[{"index":0,"finish_reason":"stop","delta":{}}],"usage":null}"#,
        "\n\n",
        "data: [DONE]\n\n",
    );

    fn translate(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut t = AzureStream::default();
        assert_eq!(
            t.start(200, Some("text/event-stream; charset=utf-8")),
            ResponseShape::SSE
        );
        let mut out = Vec::new();
        let mut start = 0;
        let bounds: Vec<usize> = cuts.iter().copied().chain([stream.len()]).collect();
        for (i, &end) in bounds.iter().enumerate() {
            out.extend(t.body(&stream[start..end], i == bounds.len() - 1));
            start = end;
        }
        out
    }

    fn data_lines(out: &[u8]) -> Vec<String> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_prefix("data: ").unwrap().to_string())
            .collect()
    }

    #[test]
    fn every_chunk_has_the_streams_id_and_object() {
        let out = translate(STREAM.as_bytes(), &[]);
        let lines = data_lines(&out);
        assert_eq!(
            lines.len(),
            5,
            "the prompt annotation is dropped: {lines:?}"
        );
        assert_eq!(lines[4], "[DONE]");
        for line in &lines[..4] {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["id"], "chatcmpl-7rCNsVeZy0PGnX3H6jK8STps5nZUY", "{line}");
            assert_eq!(v["object"], "chat.completion.chunk", "{line}");
            assert_eq!(v["created"], 1692913344, "{line}");
            assert_eq!(v["model"], "gpt-35-turbo", "{line}");
            assert!(v["choices"][0]["delta"].is_object(), "{line}");
        }
        let annotation: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(
            annotation["choices"][0]["content_filter_offsets"]["end_offset"], 198,
            "the annotation's own data stays"
        );
        let originals: Vec<&str> = STREAM.split("\n\n").collect();
        for (sent, original) in [(0, 1), (1, 2), (3, 4)] {
            assert_eq!(
                lines[sent],
                originals[original].strip_prefix("data: ").unwrap(),
                "chunks that need no change pass byte for byte"
            );
        }
    }

    #[test]
    fn the_same_at_every_split() {
        let whole = translate(STREAM.as_bytes(), &[]);
        for cut in 0..=STREAM.len() {
            assert_eq!(translate(STREAM.as_bytes(), &[cut]), whole, "cut {cut}");
        }
    }

    #[test]
    fn an_annotation_before_the_first_id_waits_for_it() {
        let annotation = STREAM.split("\n\n").nth(3).unwrap();
        let role = STREAM.split("\n\n").nth(1).unwrap();
        let stream = format!("{annotation}\n\n{role}\n\ndata: [DONE]\n\n");
        let lines = data_lines(&translate(stream.as_bytes(), &[]));
        assert_eq!(lines.len(), 3, "{lines:?}");
        for line in &lines[..2] {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["id"], "chatcmpl-7rCNsVeZy0PGnX3H6jK8STps5nZUY");
        }
    }

    #[test]
    fn an_error_event_passes_at_once() {
        let error = r#"data: {"error":{"code":"content_filter","message":"The response was filtered","status":400}}"#;
        let stream = format!("{error}\n\n");
        let mut t = AzureStream::default();
        t.start(200, Some("text/event-stream"));
        assert_eq!(t.body(stream.as_bytes(), false), stream.as_bytes());
    }

    #[test]
    fn errors_and_non_streamed_answers_pass_untouched() {
        let mut t = AzureStream::default();
        let shape = t.start(429, Some("application/json"));
        assert!(!shape.buffer_whole);
        let body =
            br#"{"error":{"code":"429","message":"Requests have exceeded the rate limit."}}"#;
        assert_eq!(t.body(body, true), body.to_vec());
        let c = Config::from_json(
            br#"{"providers": {"az": {"type": "azure"}}, "models": {"m": {"provider": "az"}}}"#,
            &|_| None,
        )
        .unwrap();
        let a = Attempt {
            provider: &c.providers[0],
            operation: Operation::Chat,
            client_model: "m",
            upstream_model: "m",
            stream: false,
            client_asked_usage: false,
            embeddings_base64: false,
            now_unix: 0,
            key_index: 0,
        };
        assert!(
            Azure.response(&a).is_none(),
            "a JSON answer (with prompt_filter_results) needs no translator"
        );
        assert!(Azure.response(&Attempt { stream: true, ..a }).is_some());
    }

    #[test]
    fn deployment_path_version_and_api_key() {
        let json = r#"{"providers": {"az": {"type": "azure", "api_key_env": "AZURE_OPENAI_API_KEY", "api_version": "2024-10-21"}},
            "models": {"gpt-4o": {"provider": "az", "model": "my-gpt4o-deployment"}}}"#;
        let c = Config::from_json(json.as_bytes(), &|_| Some("az-key".into())).unwrap();
        let m = &c.models["gpt-4o"];
        let a = Attempt {
            provider: c.provider_of(m).unwrap(),
            operation: Operation::Chat,
            client_model: "gpt-4o",
            upstream_model: &m.route.targets[0].upstream_model,
            stream: false,
            client_asked_usage: false,
            embeddings_base64: false,
            now_unix: 0,
            key_index: 0,
        };
        let r = Azure
            .request(
                &a,
                br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
            )
            .unwrap();
        assert_eq!(
            r.path,
            "/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(r.headers, vec![("api-key", "az-key".to_string())]);
    }
}
