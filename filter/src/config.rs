//! The plugin configuration root: one JSON document, deserialized strictly (unknown keys are an
//! error) into its sections and compiled at plugin start into [`Config`], where every reference
//! is resolved. Each section's type and `compile` live in the module that owns it (providers in
//! `provider::config` and each provider's module, models and routes in `routing::config`,
//! prices in `pricing`, keys in `keys`, the rate limit service in `ratelimit::config`); this
//! root only hands each section what it needs. A bad document is refused with a
//! [`ConfigError`] naming the field path.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::cache::{self, CacheConfig};
use crate::guard::{self, Guardrails};
use crate::keys::{self, Keys};
use crate::provider;
use crate::ratelimit::{self, Service};
use crate::routing::{self, Strategy};
use crate::scrub::{Scrubber, MIN_SECRET_LEN};

pub use crate::config_error::ConfigError;
pub use crate::provider::{Credentials, Provider, Secret};
pub use crate::routing::Model;

use crate::config_error::err;

/// Default cap on a request body. Envoy's own buffer limits must be larger (see envoy/envoy.yaml).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
const MAX_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_BODY_LOG_MAX_BYTES: usize = 16 * 1024;
const MAX_BODY_LOG_MAX_BYTES: usize = 1024 * 1024;

/// The document's top level: each section stays raw JSON until its owner compiles it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    providers: BTreeMap<String, Value>,
    models: BTreeMap<String, Value>,
    #[serde(default)]
    max_request_bytes: Option<usize>,
    #[serde(default)]
    body_log_max_bytes: Option<usize>,
    keys: Option<Value>,
    teams: Option<Value>,
    model_limits: Option<Value>,
    rate_limit_service: Option<Value>,
    cache: Option<Value>,
    guardrails: Option<Value>,
    responses: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub models: BTreeMap<String, Model>,
    pub max_request_bytes: usize,
    /// Cap on each body written to the body log.
    pub body_log_max_bytes: usize,
    /// Gateway keys, teams and their limits and budgets (open gateway when none).
    pub keys: Keys,
    /// The global rate limit service (Envoy's RateLimitService API), if any.
    pub rate_limit_service: Option<Service>,
    /// Some route picks by observed latency: only then are latencies recorded.
    pub observes_latency: bool,
    /// Some route picks by cost or latency, which skip rate-limited targets: only then are the
    /// providers' rate-limit headers read.
    pub observes_limits: bool,
    /// Every provider secret, scrubbed from what providers send back.
    pub scrubber: Scrubber,
    /// Response caching (`crate::cache`); `None`: no request is looked up or stored.
    pub cache: Option<CacheConfig>,
    /// Guardrail policies (`guard` module), if any.
    pub guardrails: Option<Guardrails>,
    /// The Responses API's response store (`inbound::responses::store`); `None`: stateless.
    pub response_store: Option<crate::inbound::responses::store::StoreConfig>,
}

impl Config {
    /// Parses and validates the plugin configuration. `env` looks up environment variables
    /// (the VM's environment in Envoy, a map in tests).
    pub fn from_json(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| err("(document)", e.to_string()))?;
        if doc.providers.is_empty() {
            return Err(err("providers", "at least one provider is required"));
        }
        if doc.models.is_empty() {
            return Err(err("models", "at least one model is required"));
        }
        let mut providers = Vec::with_capacity(doc.providers.len());
        for (id, value) in doc.providers {
            providers.push(provider::config::compile(id, value, env)?);
        }
        refuse_shared_clusters(&providers)?;
        let mut models = BTreeMap::new();
        for (id, value) in doc.models {
            let model = routing::compile_model(&id, value, &providers)?;
            models.insert(id, model);
        }
        let max_request_bytes = doc.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes == 0 || max_request_bytes > MAX_MAX_REQUEST_BYTES {
            return Err(err(
                "max_request_bytes",
                format!("must be between 1 and {MAX_MAX_REQUEST_BYTES}"),
            ));
        }
        let body_log_max_bytes = doc.body_log_max_bytes.unwrap_or(DEFAULT_BODY_LOG_MAX_BYTES);
        if body_log_max_bytes > MAX_BODY_LOG_MAX_BYTES {
            return Err(err(
                "body_log_max_bytes",
                format!("must be at most {MAX_BODY_LOG_MAX_BYTES}"),
            ));
        }
        let keys = keys::compile(
            keys::Sections {
                keys: doc.keys.as_ref(),
                teams: doc.teams.as_ref(),
                model_limits: doc.model_limits.as_ref(),
            },
            &|name| models.contains_key(name),
            env,
        )?;
        let rate_limit_service = doc
            .rate_limit_service
            .as_ref()
            .map(|v| ratelimit::compile_service(v, "rate_limit_service"))
            .transpose()?;
        let observes_latency = models
            .values()
            .any(|m| matches!(m.route.strategy, Strategy::Latency { .. }));
        let observes_limits = models.values().any(|m| {
            matches!(
                m.route.strategy,
                Strategy::Latency { .. } | Strategy::Cost { .. }
            )
        });
        let scrubber = scrubber_of(&providers);
        let key_of_secret = |secret: &str| {
            let key = keys
                .authenticate(Some(&format!("Bearer {secret}")), None)
                .ok()?;
            let models = key.models.as_ref().map(|m| m.iter().cloned().collect());
            Some(cache::semantic::KeyInfo {
                id: key.id.clone(),
                models,
            })
        };
        let semantic_ctx = cache::semantic::Context {
            env,
            keys_required: keys.required(),
            key_of_secret: &key_of_secret,
        };
        let cache = doc
            .cache
            .as_ref()
            .map(|v| {
                let is_model = |name: &str| models.contains_key(name);
                cache::config::compile(v, &is_model, env, &semantic_ctx)
            })
            .transpose()?;
        let guardrails = doc
            .guardrails
            .as_ref()
            .map(|v| {
                let is_model = |m: &str| models.contains_key(m);
                guard::compile(v, &is_model, &|k| keys.key(k).is_some(), &providers)
            })
            .transpose()?;
        for (id, model) in &models {
            if let Some(classifier) = &model.route.classifier {
                let field = format!("models.{id}.classifier.cluster");
                refuse_provider_cluster(&providers, &field, &classifier.cluster)?;
            }
        }
        let callouts = guardrails
            .iter()
            .flat_map(Guardrails::callout_clusters)
            .chain(cache.iter().flat_map(CacheConfig::callout_clusters));
        for (field, cluster) in callouts {
            refuse_provider_cluster(&providers, &field, cluster)?;
        }
        let response_store = doc
            .responses
            .as_ref()
            .map(crate::inbound::responses::store::compile)
            .transpose()?
            .flatten();
        if response_store.is_some() && !keys.required() {
            return Err(err(
                "responses.store",
                "needs gateway keys (the 'keys' section): stored responses are scoped to the key that made them",
            ));
        }
        Ok(Self {
            response_store,
            providers,
            models,
            max_request_bytes,
            body_log_max_bytes,
            keys,
            rate_limit_service,
            observes_latency,
            observes_limits,
            scrubber,
            cache,
            guardrails,
        })
    }

    /// The provider of the model's first target.
    pub fn provider_of(&self, model: &Model) -> Option<&Provider> {
        self.providers.get(model.first_target()?.provider)
    }

    /// Whether any target of the model has its provider switched on.
    pub fn available(&self, model: &Model) -> bool {
        model.route.targets.iter().any(|t| {
            self.providers
                .get(t.provider)
                .is_some_and(Provider::enabled)
        })
    }
}

/// Each provider needs its own Envoy cluster: the upstream filter learns its provider from it.
fn refuse_shared_clusters(providers: &[Provider]) -> Result<(), ConfigError> {
    for (i, p) in providers.iter().enumerate() {
        if let Some(other) = providers
            .iter()
            .skip(i + 1)
            .find(|o| o.cluster == p.cluster)
        {
            return Err(err(
                format!("providers.{}.cluster", other.id),
                format!("cluster '{}' is already used by provider '{}'; each provider needs its own Envoy cluster", p.cluster, p.id),
            ));
        }
    }
    Ok(())
}

/// A callout (classifier, guard, embeddings) may not go to a provider's cluster: that cluster
/// runs the provider filter, which would start in the same VM as the calling filter and trap
/// it (`duplicate context_id`). A callout to a provider's host needs a cluster of its own, to
/// the same host without the provider filter. `field` is the callout's `cluster` field path.
pub fn refuse_provider_cluster(
    providers: &[Provider],
    field: &str,
    cluster: &str,
) -> Result<(), ConfigError> {
    match providers.iter().find(|p| p.cluster == cluster) {
        Some(p) => Err(err(
            field,
            format!("cluster '{cluster}' is provider '{}''s cluster, whose provider filter cannot serve a callout: give the callout a cluster of its own to the same host (without the provider filter)", p.id),
        )),
        None => Ok(()),
    }
}

/// The scrubber of every provider key and AWS credential. A secret too short to scrub without
/// mangling messages is named in a warning (never shown).
fn scrubber_of(providers: &[Provider]) -> Scrubber {
    let mut secrets: Vec<(&str, &str)> = Vec::new();
    for p in providers {
        match &p.credentials {
            Credentials::ApiKeys(keys) => {
                secrets.extend(keys.iter().map(|k| (p.id.as_str(), k.expose())));
            }
            Credentials::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let aws = [
                    Some(access_key_id),
                    Some(secret_access_key),
                    session_token.as_ref(),
                ];
                secrets.extend(
                    aws.into_iter()
                        .flatten()
                        .map(|k| (p.id.as_str(), k.expose())),
                );
            }
            Credentials::None | Credentials::Missing(_) => {}
        }
    }
    for (id, secret) in &secrets {
        if secret.len() < MIN_SECRET_LEN {
            log::warn!(
                "a credential of provider '{id}' is shorter than {MIN_SECRET_LEN} characters: it is not scrubbed from provider messages"
            );
        }
    }
    Scrubber::new(secrets.into_iter().map(|(_, s)| s))
}

#[cfg(test)]
mod tests;
