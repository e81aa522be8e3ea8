//! The OpenAI-compatible family: the client's body goes out almost as it came, with the
//! provider's model name and, for streams, a request for the final usage chunk.
//! Reference: https://platform.openai.com/docs/api-reference/chat/create

use serde_json::Value;

use super::{Attempt, RequestHead, Translator};
use crate::config::KeyState;
use crate::error::GatewayError;

pub struct OpenAiCompatible;

impl OpenAiCompatible {
    fn wants_usage_injected(attempt: &Attempt) -> bool {
        attempt.stream && attempt.provider.stream_usage && !attempt.client_asked_usage
    }
}

impl Translator for OpenAiCompatible {
    fn request_head(&self, attempt: &Attempt) -> RequestHead {
        let mut headers = Vec::with_capacity(1);
        if let KeyState::Present(key) = &attempt.provider.key {
            headers.push(("authorization", format!("Bearer {}", key.expose())));
        }
        RequestHead {
            path: format!("{}/chat/completions", attempt.provider.path_prefix),
            headers,
        }
    }

    fn body_unchanged(&self, attempt: &Attempt) -> bool {
        attempt.client_model == attempt.upstream_model && !Self::wants_usage_injected(attempt)
    }

    fn request_body(&self, attempt: &Attempt, body: &[u8]) -> Result<Vec<u8>, GatewayError> {
        let mut req: Value =
            serde_json::from_slice(body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
        let Some(obj) = req.as_object_mut() else {
            return Err(GatewayError::InvalidJson(
                "the body must be a JSON object".into(),
            ));
        };
        obj.insert(
            "model".into(),
            Value::String(attempt.upstream_model.to_string()),
        );
        if Self::wants_usage_injected(attempt) {
            let opts = obj
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(opts) = opts.as_object_mut() {
                opts.insert("include_usage".into(), Value::Bool(true));
            }
        }
        serde_json::to_vec(&req).map_err(|e| GatewayError::Misconfigured(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn config() -> Config {
        let json = r#"{"providers": {
                "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
                "local": {"type": "openai", "path_prefix": "/api/v1", "stream_usage": false}},
            "models": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}, "llama": {"provider": "local"}}}"#;
        Config::from_json(json.as_bytes(), &|_| Some("sk-secret".into())).unwrap()
    }

    fn attempt<'a>(c: &'a Config, model: &'a str, stream: bool, asked: bool) -> Attempt<'a> {
        let m = &c.models[model];
        Attempt {
            provider: c.provider_of(m).unwrap(),
            client_model: model,
            upstream_model: &m.upstream_model,
            stream,
            client_asked_usage: asked,
        }
    }

    #[test]
    fn head_has_path_and_bearer_key() {
        let c = config();
        let head = OpenAiCompatible.request_head(&attempt(&c, "fast", false, false));
        assert_eq!(head.path, "/v1/chat/completions");
        assert_eq!(
            head.headers,
            vec![("authorization", "Bearer sk-secret".to_string())]
        );
        let local = OpenAiCompatible.request_head(&attempt(&c, "llama", false, false));
        assert_eq!(local.path, "/api/v1/chat/completions");
        assert!(
            local.headers.is_empty(),
            "a provider without api_key_env gets no credentials"
        );
    }

    #[test]
    fn body_gets_the_upstream_model_and_a_usage_request() {
        let c = config();
        let a = attempt(&c, "fast", true, false);
        assert!(!OpenAiCompatible.body_unchanged(&a));
        let body = br#"{"model":"fast","stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#;
        let out: Value =
            serde_json::from_slice(&OpenAiCompatible.request_body(&a, body).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},
                   "messages":[{"role":"user","content":"hi"}],"temperature":0.5})
        );
    }

    #[test]
    fn body_is_left_alone_when_nothing_changes() {
        let c = config();
        assert!(
            OpenAiCompatible.body_unchanged(&attempt(&c, "llama", true, false)),
            "stream_usage off"
        );
        assert!(
            !OpenAiCompatible.body_unchanged(&attempt(&c, "fast", false, false)),
            "model renamed"
        );
    }
}
