//! The OpenAI-compatible family: the client's body goes out almost as it came, with the
//! provider's model name and, for streams, a request for the final usage chunk. Each provider of
//! the family is a row of [`COMPATIBLE`] with its defaults and known quirks.
//! Reference: https://platform.openai.com/docs/api-reference/chat/create

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::ApiKeyEnv;
use super::{Attempt, Operation, ResponseTranslator, Translator, UpstreamRequest};
use crate::error::GatewayError;
use crate::json::RawMembers;

/// One OpenAI-compatible provider: where it lives and what it does not do like OpenAI.
#[derive(Debug, PartialEq, Eq)]
pub struct CompatRow {
    /// The `type` in the plugin configuration.
    pub name: &'static str,
    /// Its public API host (for the Envoy cluster); empty for self-hosted servers.
    pub host: &'static str,
    pub path_prefix: &'static str,
    /// Accepts `stream_options.include_usage` (else usage is read if the server sends it).
    pub stream_usage: bool,
    /// Honours `n > 1`; where it does not, such a request is a 400 rather than one answer.
    pub multiple_choices: bool,
    /// Serves `POST {prefix}/embeddings`.
    pub embeddings: bool,
}

const fn row(
    name: &'static str,
    host: &'static str,
    path_prefix: &'static str,
    stream_usage: bool,
    multiple_choices: bool,
    embeddings: bool,
) -> CompatRow {
    CompatRow {
        name,
        host,
        path_prefix,
        stream_usage,
        multiple_choices,
        embeddings,
    }
}

/// The OpenAI-compatible providers. Quirks from each provider's API reference; `stream_usage`
/// can be overridden per provider in the configuration.
pub static COMPATIBLE: &[CompatRow] = &[
    row("openai", "api.openai.com", "/v1", true, true, true),
    row("mistral", "api.mistral.ai", "/v1", false, true, true),
    row("groq", "api.groq.com", "/openai/v1", true, false, false),
    row("cerebras", "api.cerebras.ai", "/v1", true, false, false),
    row("sambanova", "api.sambanova.ai", "/v1", true, false, true),
    row("together", "api.together.xyz", "/v1", true, true, true),
    row("xai", "api.x.ai", "/v1", true, false, false),
    row("openrouter", "openrouter.ai", "/api/v1", true, false, false),
    row("deepseek", "api.deepseek.com", "/v1", true, false, false),
    row(
        "fireworks",
        "api.fireworks.ai",
        "/inference/v1",
        true,
        true,
        true,
    ),
    row("perplexity", "api.perplexity.ai", "", false, false, false),
    row(
        "huggingface",
        "router.huggingface.co",
        "/v1",
        true,
        false,
        false,
    ),
    row(
        "github",
        "models.github.ai",
        "/inference",
        true,
        false,
        true,
    ),
    row("ollama", "", "/v1", true, false, true),
    row("vllm", "", "/v1", true, true, true),
    row("llamacpp", "", "/v1", false, false, true),
    row("openai-compatible", "", "/v1", true, true, true),
];

pub struct OpenAiCompatible;

impl OpenAiCompatible {
    fn row(attempt: &Attempt) -> Option<&'static CompatRow> {
        match attempt.provider.kind {
            super::ProviderKind::OpenAiCompatible(row) => Some(row),
            _ => None,
        }
    }
}

/// Whether the gateway asks this attempt's provider for the stream's usage chunk.
pub fn injects_usage(attempt: &Attempt) -> bool {
    attempt.operation == Operation::Chat
        && attempt.stream
        && attempt.provider.stream_usage()
        && !attempt.client_asked_usage
}

/// The client's OpenAI body for an OpenAI-family provider: the provider's model name and the
/// usage request; `None` when nothing changes. Every other member is copied as the client wrote
/// it (`RawMembers`): a long conversation is not parsed into a tree and written out again.
pub fn openai_body(attempt: &Attempt, body: &[u8]) -> Result<Option<Vec<u8>>, GatewayError> {
    let inject = injects_usage(attempt);
    if attempt.client_model == attempt.upstream_model && !inject {
        return Ok(None);
    }
    let members: RawMembers =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len().saturating_add(64));
    let mut stream_options = None;
    let model = serde_json::to_vec(attempt.upstream_model).map_err(misconfigured)?;
    write(&mut out, "model", &model)?;
    for (name, value) in &members.0 {
        match name.as_ref() {
            // Every `model` goes (the provider's name is written once, above).
            "model" => {}
            "stream_options" if inject => stream_options = Some(value.get()),
            _ => write(&mut out, name, value.get().as_bytes())?,
        }
    }
    if inject {
        // The client's options kept (validated: an object or null), usage asked for.
        let mut options: Map<String, Value> = stream_options
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or_default();
        options.insert("include_usage".into(), Value::Bool(true));
        let options = serde_json::to_vec(&options).map_err(misconfigured)?;
        write(&mut out, "stream_options", &options)?;
    }
    out.push(b'}');
    Ok(Some(out))
}

/// Appends the member `name: value` (`value` already JSON text) to an object being written.
fn write(out: &mut Vec<u8>, name: &str, value: &[u8]) -> Result<(), GatewayError> {
    out.push(if out.is_empty() { b'{' } else { b',' });
    serde_json::to_writer(&mut *out, name).map_err(misconfigured)?;
    out.push(b':');
    out.extend_from_slice(value);
    Ok(())
}

fn misconfigured(e: serde_json::Error) -> GatewayError {
    GatewayError::Misconfigured(e.to_string())
}

/// The chat body's `n`, read without parsing the rest (for a body that goes on as it is).
fn requested_choices(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct N {
        n: Option<u64>,
    }
    serde_json::from_slice::<N>(body).ok().and_then(|v| v.n)
}

/// `n > 1` asked of a provider that would silently answer once.
pub fn refuse_multiple_choices(attempt: &Attempt, n: Option<u64>) -> Result<(), GatewayError> {
    if n.unwrap_or(1) > 1 {
        return Err(GatewayError::InvalidParameter {
            param: "n".into(),
            message: format!(
                "Provider '{}' ({}) cannot return several choices; send n=1 or choose another model.",
                attempt.provider.id,
                attempt.provider.kind.name()
            ),
        });
    }
    Ok(())
}

impl Translator for OpenAiCompatible {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let row = Self::row(attempt);
        let endpoint = match attempt.operation {
            Operation::Chat => {
                if !row.is_some_and(|r| r.multiple_choices) {
                    refuse_multiple_choices(attempt, requested_choices(body))?;
                }
                "chat/completions"
            }
            Operation::Embeddings => "embeddings",
        };
        let mut headers = Vec::with_capacity(1);
        if let Some(key) = attempt.api_key() {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        Ok(UpstreamRequest {
            path: format!("{}/{endpoint}", attempt.provider.path_prefix),
            headers,
            body: openai_body(attempt, body)?,
        })
    }

    fn response(&self, _: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        None
    }
}

/// The settings of an OpenAI-compatible provider (`providers.<id>`, besides the common keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSettings {
    pub api_key_env: Option<ApiKeyEnv>,
    /// Ask for usage on streams; absent: the row's default (see [`CompatRow::stream_usage`]).
    pub stream_usage: Option<bool>,
    /// Serves `POST {prefix}/responses` (OpenAI's Responses API): Responses requests then pass
    /// through to it. Absent: only type `openai` does (`crate::provider::responses`).
    pub responses_api: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn config() -> Config {
        let json = r#"{"providers": {
                "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
                "groq": {"type": "groq", "api_key_env": "OPENAI_API_KEY"},
                "local": {"type": "vllm", "path_prefix": "/api/v1", "stream_usage": false}},
            "models": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}, "llama": {"provider": "local"},
                       "g": {"provider": "groq"}}}"#;
        Config::from_json(json.as_bytes(), &|_| Some("sk-secret".into())).unwrap()
    }

    fn attempt<'a>(c: &'a Config, model: &'a str, stream: bool, asked: bool) -> Attempt<'a> {
        let m = &c.models[model];
        Attempt {
            provider: c.provider_of(m).unwrap(),
            operation: Operation::Chat,
            client_model: model,
            upstream_model: &m.route.targets[0].upstream_model,
            stream,
            client_asked_usage: asked,
            embeddings_base64: false,
            now_unix: 0,
            key_index: 0,
        }
    }

    const HI: &[u8] = br#"{"model":"fast","stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#;

    #[test]
    fn head_has_path_and_bearer_key() {
        let c = config();
        let r = OpenAiCompatible
            .request(&attempt(&c, "fast", false, false), HI)
            .unwrap();
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(
            r.headers,
            vec![("authorization", "Bearer sk-secret".to_string())]
        );
        let local = OpenAiCompatible
            .request(&attempt(&c, "llama", false, false), HI)
            .unwrap();
        assert_eq!(local.path, "/api/v1/chat/completions");
        assert!(
            local.headers.is_empty(),
            "a provider without api_key_env gets no credentials"
        );
        let groq = OpenAiCompatible
            .request(&attempt(&c, "g", false, false), HI)
            .unwrap();
        assert_eq!(
            groq.path, "/openai/v1/chat/completions",
            "the row's default prefix"
        );
    }

    #[test]
    fn body_gets_the_upstream_model_and_a_usage_request() {
        let c = config();
        let body = OpenAiCompatible
            .request(&attempt(&c, "fast", true, false), HI)
            .unwrap()
            .body
            .unwrap();
        let out: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            out,
            json!({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},
                   "messages":[{"role":"user","content":"hi"}],"temperature":0.5})
        );
    }

    /// The members the gateway does not change are copied byte for byte (escapes, number
    /// spelling and spacing inside them kept); `model` is replaced however often it was sent;
    /// the client's stream options are kept with usage asked for, a null one replaced.
    #[test]
    fn an_amended_body_keeps_the_other_members_as_written() {
        let c = config();
        let body = br#"{"model":"fast","messages":[{"role":"user","content":"caf\u00e9 \"q\""}],
            "temperature": 0.50, "model": "fast", "stream": true,
            "stream_options": {"include_usage": false, "include_obfuscation": true},
            "x_custom": {"a": [1, 2.0e3]}}"#;
        let out = OpenAiCompatible
            .request(&attempt(&c, "fast", true, false), body)
            .unwrap()
            .body
            .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        for kept in [
            r#""messages":[{"role":"user","content":"caf\u00e9 \"q\""}]"#,
            r#""temperature":0.50"#,
            r#""x_custom":{"a": [1, 2.0e3]}"#,
        ] {
            assert!(text.contains(kept), "{kept} in {text}");
        }
        assert_eq!(text.matches("\"model\"").count(), 1, "{text}");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(
            v["stream_options"],
            json!({"include_usage": true, "include_obfuscation": true})
        );
        assert_eq!(v["messages"][0]["content"], "caf\u{e9} \"q\"");

        let null_options = br#"{"model":"fast","stream":true,"stream_options":null,"messages":[]}"#;
        let out = OpenAiCompatible
            .request(&attempt(&c, "fast", true, false), null_options)
            .unwrap()
            .body
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn body_is_left_alone_when_nothing_changes() {
        let c = config();
        let r = OpenAiCompatible
            .request(&attempt(&c, "llama", true, false), HI)
            .unwrap();
        assert_eq!(r.body, None, "same model, stream_usage off");
    }

    #[test]
    fn several_choices_are_refused_where_the_provider_gives_one() {
        let c = config();
        let body = br#"{"model":"g","n":2,"messages":[{"role":"user","content":"hi"}]}"#;
        let e = OpenAiCompatible
            .request(&attempt(&c, "g", false, false), body)
            .unwrap_err();
        assert_eq!((e.status(), e.param()), (400, Some("n")));
        assert!(OpenAiCompatible
            .request(&attempt(&c, "fast", false, false), body)
            .is_ok());
    }
}
