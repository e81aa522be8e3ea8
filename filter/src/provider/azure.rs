//! Azure OpenAI: the OpenAI body, sent to a deployment (the model entry's `model` is the
//! deployment name) with `api-version` and the `api-key` header.
//! Reference: https://learn.microsoft.com/azure/ai-services/openai/reference
//! (Chat completions: `POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=...`).

use super::openai::openai_body;
use super::{Attempt, Operation, ResponseTranslator, Translator, UpstreamRequest};
use crate::error::GatewayError;

pub struct Azure;

impl Translator for Azure {
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
        let endpoint = match attempt.operation {
            Operation::Chat => "chat/completions",
            Operation::Embeddings => "embeddings",
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
                crate::provider::percent_encode(&attempt.provider.api_version)
            ),
            headers,
            body: openai_body(attempt, body)?,
        })
    }

    fn response(&self, _: &Attempt) -> Option<Box<dyn ResponseTranslator>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

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
