//! Decisions of the downstream (client-facing) filter, free of the host: which endpoint a
//! request is for, whether its body is acceptable, and which route it takes. The wasm adapter
//! applies them: a local reply, or filter state plus a route-cache clear.

use serde_json::json;

use crate::chat::{parse_chat_request_for, parse_embeddings_request};
use crate::config::{Config, Model};
use crate::error::GatewayError;
use crate::inbound::Api;
use crate::provider::Operation;
use crate::routing::{self, Facts, Inputs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
    /// Anthropic Messages (`POST /v1/messages`).
    Messages,
    /// Anthropic token counting (`POST /v1/messages/count_tokens`).
    CountTokens,
    /// OpenAI Responses (`POST /v1/responses`).
    Responses,
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
        "/v1/messages" => (Endpoint::Messages, "POST"),
        "/v1/messages/count_tokens" => (Endpoint::CountTokens, "POST"),
        "/v1/responses" => (Endpoint::Responses, "POST"),
        "/v1/models" => (Endpoint::ListModels, "GET"),
        p => match p.strip_prefix("/v1/models/") {
            Some(id) if !id.is_empty() => (Endpoint::RetrieveModel(percent_decode(id)), "GET"),
            _ if p.starts_with("/v1/responses/") => return Err(no_response_store()),
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

/// A stored response (`GET`/`DELETE /v1/responses/{id}`, its `input_items`, `cancel`): the
/// gateway keeps none, so it is a client error naming why rather than a 404 for a URL.
fn no_response_store() -> GatewayError {
    GatewayError::InvalidParameter {
        param: "response_id".into(),
        message: "Stored responses are not available: this gateway has no response store configured (it is stateless, as with store: false). Keep the response the API returned instead of fetching it by id.".into(),
    }
}

/// The API a path belongs to (its errors take that API's shape, even before the request is
/// authenticated).
pub fn api_of(path: &str) -> Api {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.starts_with("/v1/messages") {
        Api::Messages
    } else if path == "/v1/responses" || path.starts_with("/v1/responses/") {
        Api::Responses
    } else {
        Api::OpenAi
    }
}

/// A valid request whose model is known, before the routing decision.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub operation: Operation,
    pub model: String,
    pub stream: bool,
    pub client_asked_usage: bool,
    pub facts: Facts,
}

/// The decision for a valid request: carried to the router and the upstream filter as filter
/// state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub operation: Operation,
    pub model: String,
    /// Indices of the model's targets in the order Envoy tries them.
    pub chain: Vec<usize>,
    /// The primary target's provider.
    pub provider: String,
    /// The Envoy route for a chain of this length (`chain1` … `chain4`).
    pub route: String,
    /// The primary target's cluster (`wasm.gw_target`, which the route's cluster matches on).
    pub cluster: String,
    pub strategy: &'static str,
    pub reason: String,
    pub stream: bool,
    pub client_asked_usage: bool,
}

/// Validates the body and finds its model (switched on).
pub fn prepare(
    config: &Config,
    operation: Operation,
    body: &[u8],
) -> Result<Prepared, GatewayError> {
    if body.len() > config.max_request_bytes {
        return Err(GatewayError::BodyTooLarge {
            limit: config.max_request_bytes,
        });
    }
    let (model_name, stream, client_asked_usage, facts) = match operation {
        Operation::Chat => {
            let reads_text = |m: &str| config.models.get(m).is_some_and(|m| m.route.reads_text());
            let r = parse_chat_request_for(body, reads_text)?;
            (r.model, r.stream, r.include_usage, r.facts)
        }
        Operation::Embeddings => (
            parse_embeddings_request(body)?.model,
            false,
            false,
            Facts {
                prompt_tokens: embeddings_input_tokens(body),
                max_tokens: Some(0),
                ..Facts::default()
            },
        ),
    };
    let model = find_model(config, &model_name)?;
    let serves = |t: &crate::routing::Target| {
        config
            .providers
            .get(t.provider)
            .is_some_and(|p| p.enabled() && p.kind.supports(operation))
    };
    if !model.route.targets.iter().any(serves) {
        let provider = config.provider_of(model);
        return Err(GatewayError::InvalidParameter {
            param: "model".into(),
            message: format!(
                "The model '{model_name}' is served by provider '{}' ({}), which does not offer {}.",
                provider.map_or("", |p| p.id.as_str()),
                provider.map_or("", |p| p.kind.name()),
                operation.name()
            ),
        });
    }
    Ok(Prepared {
        operation,
        model: model_name,
        stream,
        client_asked_usage,
        facts,
    })
}

/// Estimated tokens of an (already validated) embeddings input: about four characters a token
/// for text, one a number for token arrays. Charged when the provider reports no usage.
fn embeddings_input_tokens(body: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Input {
        input: serde_json::Value,
    }
    fn tokens(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::String(s) => (s.chars().count() as u64).div_ceil(4),
            serde_json::Value::Number(_) => 1,
            serde_json::Value::Array(items) => items
                .iter()
                .fold(0u64, |sum, item| sum.saturating_add(tokens(item))),
            _ => 0,
        }
    }
    serde_json::from_slice::<Input>(body).map_or(0, |i| tokens(&i.input))
}

/// Picks the targets for a prepared request.
pub fn plan(config: &Config, prepared: Prepared, inputs: &Inputs) -> Result<Plan, GatewayError> {
    let model = find_model(config, &prepared.model)?;
    let decision = routing::decide(&model.route, inputs, &|t| {
        config
            .providers
            .get(t.provider)
            .is_some_and(|p| p.enabled() && p.kind.supports(prepared.operation))
    })?;
    let primary = decision
        .chain
        .first()
        .and_then(|&i| model.route.targets.get(i));
    let provider = primary
        .and_then(|t| config.providers.get(t.provider))
        .ok_or_else(|| {
            GatewayError::Misconfigured(format!("model '{}' has no target to send to", model.id))
        })?;
    Ok(Plan {
        operation: prepared.operation,
        model: prepared.model,
        route: format!("chain{}", decision.chain.len()),
        chain: decision.chain,
        provider: provider.id.clone(),
        cluster: provider.cluster.clone(),
        strategy: decision.strategy,
        reason: decision.reason,
        stream: prepared.stream,
        client_asked_usage: prepared.client_asked_usage,
    })
}

/// A configured model with at least one target whose provider is switched on.
fn find_model<'c>(config: &'c Config, name: &str) -> Result<&'c Model, GatewayError> {
    let model = config
        .models
        .get(name)
        .ok_or_else(|| GatewayError::ModelNotFound(name.to_string()))?;
    if config.available(model) {
        return Ok(model);
    }
    let first = config.provider_of(model);
    Err(GatewayError::ModelUnavailable {
        model: name.to_string(),
        provider: first.map_or_else(String::new, |p| p.id.clone()),
        key_env: first.map_or_else(String::new, |p| p.missing_vars()),
    })
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
        .filter(|m| config.available(m))
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
    use crate::routing::{self, Inputs, Observed};

    /// Validation and a plain pick without observations.
    fn plan_request(
        config: &Config,
        operation: Operation,
        body: &[u8],
    ) -> Result<Plan, GatewayError> {
        let prepared = prepare(config, operation, body)?;
        let facts = prepared.facts.clone();
        let inputs = Inputs {
            providers: &config.providers,
            facts: &facts,
            observed: &|_| Observed::default(),
            random: routing::hash(body),
            now_unix: 0,
            pinned: None,
            classified: None,
        };
        plan(config, prepared, &inputs)
    }

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
        assert_eq!(endpoint_for("POST", "/v1/messages"), Ok(Endpoint::Messages));
        assert_eq!(
            endpoint_for("POST", "/v1/responses"),
            Ok(Endpoint::Responses)
        );
        assert!(matches!(
            endpoint_for("GET", "/v1/responses"),
            Err(GatewayError::MethodNotAllowed { .. })
        ));
        for (method, path) in [
            ("GET", "/v1/responses/resp_123"),
            ("DELETE", "/v1/responses/resp_123"),
            ("GET", "/v1/responses/resp_123/input_items"),
        ] {
            let e = endpoint_for(method, path).unwrap_err();
            assert_eq!(e.status(), 400, "{method} {path}");
            assert!(
                e.to_string().contains("no response store configured"),
                "{e}"
            );
        }
        assert_eq!(
            endpoint_for("POST", "/v1/messages/count_tokens?beta=true"),
            Ok(Endpoint::CountTokens)
        );
        assert_eq!(
            endpoint_for("GET", "/v1/messages").unwrap_err().status(),
            405
        );
        assert_eq!(api_of("/v1/messages?beta=true"), Api::Messages);
        assert_eq!(api_of("/v1/chat/completions"), Api::OpenAi);
        assert_eq!(api_of("/v1/responses"), Api::Responses);
        assert_eq!(api_of("/v1/responses/resp_1?include=x"), Api::Responses);
        assert_eq!(api_of("/v1/responsesx"), Api::OpenAi);
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
            (
                plan.model.as_str(),
                plan.provider.as_str(),
                plan.cluster.as_str(),
                plan.route.as_str()
            ),
            ("demo-chat", "demo", "provider_demo", "chain1")
        );
        assert_eq!(plan.chain, vec![0]);
        assert!(plan.stream && !plan.client_asked_usage);
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
    fn embeddings_inputs_are_estimated() {
        // 8 characters = 2 tokens; 3 token ids = 3 tokens.
        assert_eq!(
            embeddings_input_tokens(br#"{"input":"abcdefgh","model":"e"}"#),
            2
        );
        assert_eq!(
            embeddings_input_tokens(br#"{"input":["abcd","abcde"],"model":"e"}"#),
            1 + 2
        );
        assert_eq!(embeddings_input_tokens(br#"{"input":[[1,2,3]]}"#), 3);
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
