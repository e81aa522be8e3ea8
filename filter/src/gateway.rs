//! Decisions of the downstream (client-facing) filter, free of the host: which endpoint a
//! request is for, whether its body is acceptable, and which route it takes. The wasm adapter
//! applies them: a local reply, or filter state plus a route-cache clear.

use serde_json::json;

use crate::chat::{parse_chat_request, parse_embeddings_request};
use crate::config::{Config, Model};
use crate::error::GatewayError;
use crate::provider::Operation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
    ListModels,
    RetrieveModel(String),
}

/// Maps method and path (query string ignored) to an endpoint, or the error to answer with.
pub fn endpoint_for(method: &str, path: &str) -> Result<Endpoint, GatewayError> {
    let path_only = path.split(['?', '#']).next().unwrap_or_default();
    let path_only = path_only.strip_suffix('/').unwrap_or(path_only);
    let (endpoint, allowed) = match path_only {
        "/v1/chat/completions" => (Endpoint::ChatCompletions, "POST"),
        "/v1/embeddings" => (Endpoint::Embeddings, "POST"),
        "/v1/models" => (Endpoint::ListModels, "GET"),
        p => match p.strip_prefix("/v1/models/") {
            Some(id) if !id.is_empty() => (Endpoint::RetrieveModel(percent_decode(id)), "GET"),
            _ => {
                return Err(GatewayError::UnknownUrl {
                    method: method.into(),
                    path: path_only.into(),
                })
            }
        },
    };
    if method == allowed {
        Ok(endpoint)
    } else {
        Err(GatewayError::MethodNotAllowed {
            method: method.into(),
            path: path_only.into(),
        })
    }
}

/// The decision for a valid request: carried to the router and the upstream filter as filter
/// state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub operation: Operation,
    pub model: String,
    pub provider: String,
    /// Selects the Envoy route (`wasm.gw_route`), i.e. the provider cluster.
    pub route: String,
    pub stream: bool,
    pub client_asked_usage: bool,
}

pub fn plan_request(
    config: &Config,
    operation: Operation,
    body: &[u8],
) -> Result<Plan, GatewayError> {
    if body.len() > config.max_request_bytes {
        return Err(GatewayError::BodyTooLarge {
            limit: config.max_request_bytes,
        });
    }
    let (model_name, stream, client_asked_usage) = match operation {
        Operation::Chat => {
            let r = parse_chat_request(body)?;
            (r.model, r.stream, r.include_usage)
        }
        Operation::Embeddings => (parse_embeddings_request(body)?.model, false, false),
    };
    let model = find_model(config, &model_name)?;
    let provider = config.provider_of(model).ok_or_else(|| {
        GatewayError::Misconfigured(format!("model '{}' has no provider", model.id))
    })?;
    if !provider.kind.supports(operation) {
        return Err(GatewayError::InvalidParameter {
            param: "model".into(),
            message: format!(
                "The model '{model_name}' is served by provider '{}' ({}), which does not offer {}.",
                provider.id,
                provider.kind.name(),
                operation.name()
            ),
        });
    }
    Ok(Plan {
        operation,
        model: model_name,
        provider: provider.id.clone(),
        route: provider.cluster.clone(),
        stream,
        client_asked_usage,
    })
}

/// A configured model whose provider is switched on.
fn find_model<'c>(config: &'c Config, name: &str) -> Result<&'c Model, GatewayError> {
    let model = config
        .models
        .get(name)
        .ok_or_else(|| GatewayError::ModelNotFound(name.to_string()))?;
    match config.provider_of(model) {
        Some(p) if !p.enabled() => Err(GatewayError::ModelUnavailable {
            model: name.to_string(),
            provider: p.id.clone(),
            key_env: p.missing_vars(),
        }),
        _ => Ok(model),
    }
}

fn model_object(config: &Config, model: &Model, created: u64) -> serde_json::Value {
    let owner = config.provider_of(model).map_or("", |p| p.id.as_str());
    json!({"id": model.id, "object": "model", "created": created, "owned_by": owner})
}

/// `GET /v1/models`: every model whose provider is switched on, in the OpenAI list shape.
pub fn models_list(config: &Config, created: u64) -> Vec<u8> {
    let data: Vec<_> = config
        .models
        .values()
        .filter(|m| config.provider_of(m).is_some_and(|p| p.enabled()))
        .map(|m| model_object(config, m, created))
        .collect();
    json!({"object": "list", "data": data})
        .to_string()
        .into_bytes()
}

/// `GET /v1/models/{id}`.
pub fn model_retrieve(config: &Config, id: &str, created: u64) -> Result<Vec<u8>, GatewayError> {
    let model = find_model(config, id)?;
    Ok(model_object(config, model, created)
        .to_string()
        .into_bytes())
}

/// Model ids may hold `/` (e.g. `meta-llama/Llama-3.1-8B`), which clients percent-encode.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn config() -> Config {
        let json = r#"{"providers": {
                "demo": {"type": "openai", "cluster": "provider_demo"},
                "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"}},
            "models": {"demo-chat": {"provider": "demo"}, "gpt-4o-mini": {"provider": "openai"},
                       "meta/llama": {"provider": "demo"}},
            "max_request_bytes": 200}"#;
        Config::from_json(json.as_bytes(), &|_| None).unwrap()
    }

    #[test]
    fn endpoints_and_methods() {
        assert_eq!(
            endpoint_for("POST", "/v1/chat/completions"),
            Ok(Endpoint::ChatCompletions)
        );
        assert_eq!(
            endpoint_for("POST", "/v1/chat/completions?x=1"),
            Ok(Endpoint::ChatCompletions)
        );
        assert_eq!(endpoint_for("GET", "/v1/models/"), Ok(Endpoint::ListModels));
        assert_eq!(
            endpoint_for("GET", "/v1/models/meta%2Fllama"),
            Ok(Endpoint::RetrieveModel("meta/llama".into()))
        );
        assert_eq!(
            endpoint_for("GET", "/v1/chat/completions")
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(endpoint_for("POST", "/v1/nope").unwrap_err().status(), 404);
        assert_eq!(endpoint_for("GET", "/").unwrap_err().code(), "unknown_url");
    }

    #[test]
    fn chat_plan_picks_the_provider_cluster() {
        let plan = plan_request(
            &config(),
            Operation::Chat,
            br#"{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(
            plan,
            Plan {
                operation: Operation::Chat,
                model: "demo-chat".into(),
                provider: "demo".into(),
                route: "provider_demo".into(),
                stream: true,
                client_asked_usage: false
            }
        );
    }

    #[test]
    fn chat_refusals() {
        let c = config();
        let unknown = plan_request(
            &c,
            Operation::Chat,
            br#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap_err();
        assert_eq!((unknown.status(), unknown.code()), (404, "model_not_found"));
        let off = plan_request(
            &c,
            Operation::Chat,
            br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap_err();
        assert_eq!(off.status(), 404);
        assert!(off.to_string().contains("OPENAI_API_KEY"), "{off}");
        let big = format!(
            r#"{{"model":"demo-chat","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(300)
        );
        assert_eq!(
            plan_request(&c, Operation::Chat, big.as_bytes())
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(
            plan_request(&c, Operation::Chat, b"{oops")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn models_list_shows_only_switched_on_providers() {
        let v: Value = serde_json::from_slice(&models_list(&config(), 42)).unwrap();
        assert_eq!(v["object"], "list");
        let ids: Vec<_> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["demo-chat", "meta/llama"]);
        assert_eq!(
            v["data"][0],
            json!({"id": "demo-chat", "object": "model", "created": 42, "owned_by": "demo"})
        );
        assert!(model_retrieve(&config(), "gpt-4o-mini", 0).is_err());
    }
}
