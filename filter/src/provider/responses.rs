//! A Responses API request (`POST /v1/responses`) passed through to a provider that serves that
//! API itself ([`super::Provider::serves_responses`]: OpenAI, Azure OpenAI, or an
//! OpenAI-compatible server configured with `responses_api: true`). The client's body goes as
//! sent, every field kept (hosted tools, `include`, `truncation`, reasoning items, ...), with two
//! changes: `model` is the target's model (Azure: the deployment name), and `store` is `false`,
//! because the gateway is stateless and what it answers must not depend on state kept at one
//! provider (a fallback to another would lose it). The answer comes back untouched
//! (`crate::inbound::responses::native` reads its usage).
//!
//! References:
//! - OpenAI: `POST https://api.openai.com/v1/responses`, `Authorization: Bearer`,
//!   https://platform.openai.com/docs/api-reference/responses/create (`store` defaults to true).
//! - Azure OpenAI: the Responses API is served by the v1 API only, at
//!   `POST https://{resource}.openai.azure.com/openai/v1/responses` with the `api-key` header and
//!   the deployment name as `model`, no `api-version` needed ("The v1 API is required to access
//!   the latest features", https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses,
//!   REST examples; and https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle).

use serde_json::Value;

use super::{Attempt, ProviderKind, UpstreamRequest};
use crate::error::{parse_object, GatewayError};

/// The client's Responses body for this attempt's provider.
pub fn native_request(attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError> {
    let provider = attempt.provider;
    let (path, auth) = match provider.kind {
        ProviderKind::OpenAiCompatible(_) => (
            format!("{}/responses", provider.path_prefix),
            attempt
                .api_key()
                .map(|key| ("authorization", format!("Bearer {key}"))),
        ),
        ProviderKind::Azure => (
            format!("{}/v1/responses", provider.path_prefix),
            attempt.api_key().map(|key| ("api-key", key.to_string())),
        ),
        other => {
            return Err(GatewayError::Misconfigured(format!(
                "provider '{}' ({}) does not serve the Responses API",
                provider.id,
                other.name()
            )))
        }
    };
    let mut req = parse_object(body)?;
    req.insert("model".into(), Value::from(attempt.upstream_model));
    req.insert("store".into(), Value::Bool(false));
    let mut headers = Vec::with_capacity(2);
    headers.extend(auth);
    headers.push(("content-type", "application/json".to_string()));
    Ok(UpstreamRequest {
        path,
        headers,
        body: Some(
            serde_json::to_vec(&req).map_err(|e| GatewayError::Misconfigured(e.to_string()))?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::config::compile;
    use crate::provider::{Operation, Provider};
    use serde_json::json;

    fn provider(settings: Value) -> Provider {
        compile("p".into(), settings, &|name| Some(format!("key-of-{name}"))).expect("valid")
    }

    fn attempt<'a>(provider: &'a Provider, upstream: &'a str) -> Attempt<'a> {
        Attempt {
            provider,
            operation: Operation::Chat,
            client_model: "gw-model",
            upstream_model: upstream,
            stream: true,
            client_asked_usage: false,
            embeddings_base64: false,
            now_unix: 0,
            key_index: 0,
        }
    }

    /// Everything the client sent arrives, fields the chat form cannot carry included; only
    /// `model` and `store` change.
    #[test]
    fn the_body_goes_as_sent_with_the_model_mapped_and_store_false() {
        let sent = json!({
            "model": "gw-model", "input": [{"type": "reasoning", "id": "rs_1", "summary": [],
                "encrypted_content": "gAAA"}, {"role": "user", "content": "Hi"}],
            "tools": [{"type": "web_search"}], "include": ["reasoning.encrypted_content"],
            "truncation": "auto", "store": true, "stream": true, "future_field": {"x": 1},
        });
        let openai = provider(json!({"type": "openai", "api_key_env": "OPENAI"}));
        let req = native_request(&attempt(&openai, "gpt-5"), sent.to_string().as_bytes())
            .expect("a request");
        assert_eq!(req.path, "/v1/responses");
        assert!(req
            .headers
            .contains(&("authorization", "Bearer key-of-OPENAI".to_string())));
        let body: Value = serde_json::from_slice(&req.body.expect("a body")).expect("JSON");
        let mut expected = sent.clone();
        expected["model"] = json!("gpt-5");
        expected["store"] = json!(false);
        assert_eq!(body, expected);
    }

    #[test]
    fn azure_gets_the_v1_path_its_api_key_header_and_the_deployment_as_model() {
        let azure = provider(json!({"type": "azure", "api_key_env": "AZ"}));
        let req = native_request(
            &attempt(&azure, "my-deployment"),
            br#"{"model":"m","input":"x"}"#,
        )
        .expect("a request");
        assert_eq!(req.path, "/openai/v1/responses");
        assert!(req.headers.contains(&("api-key", "key-of-AZ".to_string())));
        assert!(!req.headers.iter().any(|(n, _)| *n == "authorization"));
        let body: Value = serde_json::from_slice(&req.body.expect("a body")).expect("JSON");
        assert_eq!(body["model"], "my-deployment");
    }

    #[test]
    fn a_provider_of_another_kind_is_a_gateway_misconfiguration() {
        let gemini = provider(json!({"type": "gemini"}));
        let e = native_request(&attempt(&gemini, "g"), br#"{"input":"x"}"#).expect_err("gemini");
        assert_eq!(e.status(), 500);
    }
}
