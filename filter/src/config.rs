//! The plugin configuration: one JSON document, deserialized strictly (unknown keys are an
//! error) and compiled at plugin start into [`Config`], where every reference is resolved.
//! A bad document is refused with a [`ConfigError`] naming the field path.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::keys::{self, Keys};
use crate::pricing::{self, Price};
use crate::provider::{headers, ProviderKind};
use crate::ratelimit_proto::{self, Service};
use crate::routing::{self, Route, Strategy, Target};
use crate::scrub::{Scrubber, MIN_SECRET_LEN};

/// Default cap on a request body. Envoy's own buffer limits must be larger (see envoy/envoy.yaml).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
const MAX_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_BODY_LOG_MAX_BYTES: usize = 16 * 1024;
const MAX_BODY_LOG_MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field, e.g. `providers.openai.api_key_env`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration at `{}`: {}",
            self.field, self.message
        )
    }
}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(rename = "type")]
    kind: String,
    cluster: Option<String>,
    path_prefix: Option<String>,
    /// One variable, or several (one key per Envoy endpoint, see `key_index`).
    api_key_env: Option<Value>,
    stream_usage: Option<bool>,
    api_version: Option<String>,
    default_max_tokens: Option<u64>,
    region: Option<String>,
    aws_access_key_id_env: Option<String>,
    aws_secret_access_key_env: Option<String>,
    aws_session_token_env: Option<String>,
    /// Client headers this provider receives besides the built-in allow-list.
    forward_headers: Option<Vec<String>>,
}

/// A price in US dollars per million tokens, as providers publish them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    cache_write: Option<f64>,
}

/// A provider key read from the environment. Never printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the gateway authenticates to a provider, read from the environment at plugin start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The provider needs no key (a local server).
    None,
    /// One key or several: an Envoy endpoint's metadata `ai_gateway.key_index` says which one
    /// its attempts use, so Envoy balances and ejects per key.
    ApiKeys(Vec<Secret>),
    /// AWS access keys for SigV4 signing (Bedrock).
    Aws {
        access_key_id: Secret,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// A required variable is not set: the provider is switched off. Holds the variable names.
    Missing(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub kind: ProviderKind,
    /// The Envoy cluster whose upstream filter speaks for this provider.
    pub cluster: String,
    /// Path prefix of the provider's API, e.g. `/v1`; no trailing slash.
    pub path_prefix: String,
    pub credentials: Credentials,
    /// Ask for usage on streamed requests (`stream_options.include_usage`; OpenAI family).
    pub stream_usage: bool,
    /// Azure OpenAI `api-version`.
    pub api_version: String,
    /// `max_tokens` sent when the client set none, where the provider requires it (Anthropic).
    pub default_max_tokens: u64,
    /// AWS region (Bedrock).
    pub region: String,
    /// Client headers forwarded besides the built-in allow-list (`provider::headers`).
    pub forward_headers: Vec<String>,
}

impl Provider {
    pub fn enabled(&self) -> bool {
        !matches!(self.credentials, Credentials::Missing(_))
    }

    /// The environment variables this provider is missing, for error messages.
    pub fn missing_vars(&self) -> String {
        match &self.credentials {
            Credentials::Missing(vars) => vars.join(", "),
            _ => String::new(),
        }
    }

    /// The key at `index` (0 when the endpoint names none); the first when out of range.
    pub fn api_key(&self, index: usize) -> Option<&str> {
        match &self.credentials {
            Credentials::ApiKeys(keys) => keys.get(index).or(keys.first()).map(Secret::expose),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    /// The name clients use.
    pub id: String,
    /// Its targets and how one is picked; a plain model is a route of one target.
    pub route: Route,
    /// Request and response bodies of this model go to the body log.
    pub log_bodies: bool,
}

impl Model {
    /// The first configured target (the only one of a plain model).
    pub fn first_target(&self) -> Option<&Target> {
        self.route.targets.first()
    }
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
    /// Every provider secret, scrubbed from what providers send back.
    pub scrubber: Scrubber,
}

impl Config {
    /// Parses and validates the plugin configuration. `env` looks up environment variables
    /// (the VM's environment in Envoy, a map in tests).
    pub fn from_json(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| err("(document)", e.to_string()))?;
        if raw.providers.is_empty() {
            return Err(err("providers", "at least one provider is required"));
        }
        if raw.models.is_empty() {
            return Err(err("models", "at least one model is required"));
        }
        let mut providers = Vec::with_capacity(raw.providers.len());
        for (id, value) in raw.providers {
            providers.push(compile_provider(id, value, env)?);
        }
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
        let mut models = BTreeMap::new();
        for (id, value) in raw.models {
            let model = compile_model(&id, value, &providers)?;
            models.insert(id, model);
        }
        let max_request_bytes = raw.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes == 0 || max_request_bytes > MAX_MAX_REQUEST_BYTES {
            return Err(err(
                "max_request_bytes",
                format!("must be between 1 and {MAX_MAX_REQUEST_BYTES}"),
            ));
        }
        let body_log_max_bytes = raw.body_log_max_bytes.unwrap_or(DEFAULT_BODY_LOG_MAX_BYTES);
        if body_log_max_bytes > MAX_BODY_LOG_MAX_BYTES {
            return Err(err(
                "body_log_max_bytes",
                format!("must be at most {MAX_BODY_LOG_MAX_BYTES}"),
            ));
        }
        let keys = keys::compile(
            keys::Sections {
                keys: raw.keys.as_ref(),
                teams: raw.teams.as_ref(),
                model_limits: raw.model_limits.as_ref(),
            },
            &|name| models.contains_key(name),
            env,
        )?;
        let rate_limit_service = raw
            .rate_limit_service
            .as_ref()
            .map(|v| ratelimit_proto::compile_service(v, "rate_limit_service"))
            .transpose()?;
        let observes_latency = models
            .values()
            .any(|m| matches!(m.route.strategy, Strategy::Latency { .. }));
        let scrubber = scrubber_of(&providers);
        Ok(Self {
            providers,
            models,
            max_request_bytes,
            body_log_max_bytes,
            keys,
            rate_limit_service,
            observes_latency,
            scrubber,
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

fn compile_provider(
    id: String,
    value: Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, ConfigError> {
    let at = |field: &str| format!("providers.{id}.{field}");
    if !is_identifier(&id) {
        return Err(err(
            format!("providers.{id}"),
            "provider ids may contain only letters, digits, '_' and '-'",
        ));
    }
    let raw: RawProvider =
        serde_json::from_value(value).map_err(|e| err(format!("providers.{id}"), e.to_string()))?;
    let kind = ProviderKind::parse(&raw.kind).ok_or_else(|| {
        err(
            at("type"),
            format!(
                "unknown provider type '{}'; known: {}",
                raw.kind,
                ProviderKind::names().join(", ")
            ),
        )
    })?;
    // Settings that belong to one kind are refused on others: a typo must not pass silently.
    let only_for = |field: &str, present: bool, allowed: bool, kinds: &str| {
        if present && !allowed {
            Err(err(
                at(field),
                format!("applies only to type {kinds}, not '{}'", raw.kind),
            ))
        } else {
            Ok(())
        }
    };
    let bedrock = kind == ProviderKind::Bedrock;
    only_for(
        "api_version",
        raw.api_version.is_some(),
        kind == ProviderKind::Azure,
        "'azure'",
    )?;
    only_for(
        "default_max_tokens",
        raw.default_max_tokens.is_some(),
        kind == ProviderKind::Anthropic,
        "'anthropic'",
    )?;
    only_for(
        "stream_usage",
        raw.stream_usage.is_some(),
        kind.is_openai_family(),
        "of the OpenAI-compatible family",
    )?;
    only_for("region", raw.region.is_some(), bedrock, "'bedrock'")?;
    only_for(
        "aws_access_key_id_env",
        raw.aws_access_key_id_env.is_some(),
        bedrock,
        "'bedrock'",
    )?;
    only_for(
        "aws_secret_access_key_env",
        raw.aws_secret_access_key_env.is_some(),
        bedrock,
        "'bedrock'",
    )?;
    only_for(
        "aws_session_token_env",
        raw.aws_session_token_env.is_some(),
        bedrock,
        "'bedrock'",
    )?;
    only_for(
        "api_key_env",
        raw.api_key_env.is_some(),
        !bedrock,
        "other than 'bedrock' (use aws_*_env)",
    )?;

    let cluster = raw.cluster.clone().unwrap_or_else(|| id.clone());
    if cluster.is_empty() {
        return Err(err(at("cluster"), "must not be empty"));
    }
    let path_prefix = raw
        .path_prefix
        .clone()
        .unwrap_or_else(|| kind.default_path_prefix().to_string());
    if !path_prefix.is_empty()
        && (!path_prefix.starts_with('/')
            || path_prefix.ends_with('/')
            || path_prefix.contains(['?', '#', ' ']))
    {
        return Err(err(
            at("path_prefix"),
            format!("'{path_prefix}' must start with '/', not end with '/', and hold no query"),
        ));
    }
    let region = raw.region.clone().unwrap_or_default();
    if bedrock && !is_region(&region) {
        return Err(err(
            at("region"),
            format!("'{region}' is not an AWS region (e.g. us-east-1); required for bedrock"),
        ));
    }
    let credentials = if bedrock {
        aws_credentials(&raw, &at, env)?
    } else {
        let names: Vec<String> = match &raw.api_key_env {
            None => Vec::new(),
            Some(Value::String(name)) => vec![name.clone()],
            Some(Value::Array(names))
                if !names.is_empty() && names.iter().all(Value::is_string) =>
            {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            }
            Some(_) => {
                return Err(err(
                    at("api_key_env"),
                    "must be a variable name or a non-empty list of them",
                ))
            }
        };
        let mut keys = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for name in &names {
            match read_env(name, &at("api_key_env"), env)? {
                Some(key) => keys.push(key),
                None => missing.push(name.clone()),
            }
        }
        if names.is_empty() {
            Credentials::None
        } else if missing.is_empty() {
            Credentials::ApiKeys(keys)
        } else {
            Credentials::Missing(missing)
        }
    };
    let default_max_tokens = raw.default_max_tokens.unwrap_or(4096);
    if default_max_tokens == 0 {
        return Err(err(at("default_max_tokens"), "must be at least 1"));
    }
    let forward_headers = raw.forward_headers.unwrap_or_default();
    for (i, name) in forward_headers.iter().enumerate() {
        headers::check_forward_header(name)
            .map_err(|message| err(format!("{}[{i}]", at("forward_headers")), message))?;
    }
    Ok(Provider {
        kind,
        cluster,
        path_prefix,
        credentials,
        stream_usage: raw
            .stream_usage
            .unwrap_or_else(|| kind.default_stream_usage()),
        api_version: raw.api_version.unwrap_or_else(|| "2024-10-21".into()),
        default_max_tokens,
        region,
        forward_headers,
        id,
    })
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

/// Reads a variable whose name was configured; `None` when it is unset or blank.
fn read_env(
    name: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    if !is_env_name(name) {
        return Err(err(
            field,
            format!("'{name}' is not an environment variable name"),
        ));
    }
    Ok(env(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(Secret))
}

fn aws_credentials(
    raw: &RawProvider,
    at: &dyn Fn(&str) -> String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    let var = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.to_string());
    let access_var = var(&raw.aws_access_key_id_env, "AWS_ACCESS_KEY_ID");
    let secret_var = var(&raw.aws_secret_access_key_env, "AWS_SECRET_ACCESS_KEY");
    let token_var = var(&raw.aws_session_token_env, "AWS_SESSION_TOKEN");
    let access = read_env(&access_var, &at("aws_access_key_id_env"), env)?;
    let secret = read_env(&secret_var, &at("aws_secret_access_key_env"), env)?;
    let session_token = read_env(&token_var, &at("aws_session_token_env"), env)?;
    Ok(match (access, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Credentials::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        },
        (access, secret) => Credentials::Missing(
            [
                (access.is_none(), access_var),
                (secret.is_none(), secret_var),
            ]
            .into_iter()
            .filter_map(|(missing, name)| missing.then_some(name))
            .collect(),
        ),
    })
}

fn is_region(s: &str) -> bool {
    s.len() >= 6
        && s.split('-').count() >= 3
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Keys of the short form of a model entry: one target.
const PLAIN_KEYS: &[&str] = &["provider", "model", "price", "log_bodies"];

fn compile_model(id: &str, value: Value, providers: &[Provider]) -> Result<Model, ConfigError> {
    let at = format!("models.{id}");
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            &at,
            "model names must be non-empty and hold no whitespace",
        ));
    }
    let Value::Object(entry) = value else {
        return Err(err(&at, "must be an object"));
    };
    let log_bodies = match entry.get("log_bodies") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err(format!("{at}.log_bodies"), "must be true or false")),
    };
    let price = |v: &Value, here: &str| -> Result<Price, ConfigError> {
        let raw: RawPrice =
            serde_json::from_value(v.clone()).map_err(|e| err(here, e.to_string()))?;
        compile_price(&raw, here)
    };
    let route = if let Some(targets) = entry.get("targets") {
        for key in entry.keys() {
            let known = ["targets", "strategy", "log_bodies"].contains(&key.as_str())
                || routing::ROUTE_KEYS.contains(&key.as_str());
            if !known {
                return Err(err(
                    format!("{at}.{key}"),
                    "unknown field of a routed model (targets, strategy, rules, ...)",
                ));
            }
        }
        let targets = targets
            .as_array()
            .ok_or_else(|| err(format!("{at}.targets"), "must be an array"))?;
        routing::compile_route(
            &at,
            targets,
            entry.get("strategy"),
            &entry,
            providers,
            &price,
        )?
    } else {
        if let Some(key) = entry.keys().find(|k| !PLAIN_KEYS.contains(&k.as_str())) {
            let hint = if routing::ROUTE_KEYS.contains(&key.as_str()) || key == "strategy" {
                " (routing settings need `targets`)"
            } else {
                ""
            };
            return Err(err(format!("{at}.{key}"), format!("unknown field{hint}")));
        }
        let provider_name = match entry.get("provider") {
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(err(format!("{at}.provider"), "must be a string")),
            None => return Err(err(&at, "missing field `provider` (or `targets`)")),
        };
        let provider = providers
            .iter()
            .position(|p| p.id == provider_name)
            .ok_or_else(|| {
                err(
                    format!("{at}.provider"),
                    format!("no provider named '{provider_name}'"),
                )
            })?;
        let upstream_model = match entry.get("model") {
            None => id.to_string(),
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => return Err(err(format!("{at}.model"), "must be a non-empty string")),
        };
        let price = match entry.get("price") {
            Some(v) => Some(price(v, &format!("{at}.price"))?),
            None => pricing::builtin(&upstream_model)
                .or_else(|| pricing::builtin(id))
                .map(|r| r.price),
        };
        Route {
            targets: vec![Target {
                provider,
                upstream_model,
                weight: 1,
                quality: 0,
                tier: None,
                price,
            }],
            strategy: Strategy::Weighted,
            sticky_user: false,
            rules: Vec::new(),
            default_tier: None,
            fallback: true,
            classifier: None,
        }
    };
    Ok(Model {
        id: id.to_string(),
        route,
        log_bodies,
    })
}

fn compile_price(raw: &RawPrice, at: &str) -> Result<Price, ConfigError> {
    let dollars = |field: &str, v: f64| {
        pricing::from_dollars(v).ok_or_else(|| {
            err(
                format!("{at}.{field}"),
                "must be a number of US dollars per million tokens, from 0 to 1000000",
            )
        })
    };
    let input = dollars("input", raw.input)?;
    Ok(Price {
        input,
        output: dollars("output", raw.output)?,
        // Without a cache price, cached input costs as much as any input.
        cached_input: raw
            .cached_input
            .map(|v| dollars("cached_input", v))
            .transpose()?
            .unwrap_or(input),
        cache_write: raw
            .cache_write
            .map(|v| dollars("cache_write", v))
            .transpose()?
            .unwrap_or(input),
    })
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "OPENAI_API_KEY").then(|| "sk-test".to_string())
    }

    fn compile(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(json.as_bytes(), &env)
    }

    const GOOD: &str = r#"{
        "providers": {
            "demo": {"type": "openai", "cluster": "provider_demo"},
            "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
            "groq": {"type": "openai", "api_key_env": "GROQ_API_KEY", "path_prefix": "/openai/v1"}
        },
        "models": {
            "demo-chat": {"provider": "demo"},
            "fast": {"provider": "openai", "model": "gpt-4o-mini"},
            "llama": {"provider": "groq", "model": "llama-3.1-8b-instant"}
        }
    }"#;

    #[test]
    fn good_config_compiles_with_resolved_references() {
        let c = compile(GOOD).unwrap();
        assert_eq!(c.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        let fast = &c.models["fast"];
        assert_eq!(fast.route.targets[0].upstream_model, "gpt-4o-mini");
        let p = c.provider_of(fast).unwrap();
        assert_eq!(
            (p.id.as_str(), p.cluster.as_str(), p.path_prefix.as_str()),
            ("openai", "openai", "/v1")
        );
        assert_eq!(
            p.credentials,
            Credentials::ApiKeys(vec![Secret("sk-test".into())])
        );
        assert_eq!(
            c.models["demo-chat"].route.targets[0].upstream_model,
            "demo-chat"
        );
        assert_eq!(
            c.providers
                .iter()
                .find(|p| p.cluster == "provider_demo")
                .unwrap()
                .credentials,
            Credentials::None
        );
        let groq = c.providers.iter().find(|p| p.cluster == "groq").unwrap();
        assert!(
            !groq.enabled(),
            "a provider whose key variable is unset is switched off"
        );
        assert_eq!(groq.path_prefix, "/openai/v1");
    }

    #[test]
    fn prices_come_from_the_table_or_the_configuration() {
        let c = compile(
            r#"{"providers": {"openai": {"type": "openai"}},
                "models": {"fast": {"provider": "openai", "model": "gpt-4o-mini-2024-07-18"},
                           "mine": {"provider": "openai", "price": {"input": 1.5, "output": 6, "cached_input": 0.15}},
                           "unknown": {"provider": "openai", "model": "my-finetune"}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.models["fast"].route.targets[0].price,
            Some(pricing::builtin("gpt-4o-mini").unwrap().price)
        );
        assert_eq!(
            c.models["mine"].route.targets[0].price,
            Some(Price {
                input: 1_500_000,
                output: 6_000_000,
                cached_input: 150_000,
                cache_write: 1_500_000
            })
        );
        assert_eq!(c.models["unknown"].route.targets[0].price, None);
        let e = compile(r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p", "price": {"input": -1, "output": 1}}}}"#)
            .unwrap_err();
        assert_eq!(e.field, "models.m.price.input");
        let e = compile(r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p", "price": {"input": 1}}}}"#)
            .unwrap_err();
        assert!(e.message.contains("missing field `output`"), "{e}");
    }

    #[test]
    fn several_keys_per_provider_all_or_nothing() {
        let json = r#"{"providers": {"p": {"type": "openai", "api_key_env": ["KEY_A", "KEY_B"]}},
                       "models": {"m": {"provider": "p"}}}"#;
        let both = Config::from_json(json.as_bytes(), &|n| Some(format!("v-{n}"))).unwrap();
        let p = &both.providers[0];
        assert_eq!(
            (p.api_key(0), p.api_key(1), p.api_key(7)),
            (Some("v-KEY_A"), Some("v-KEY_B"), Some("v-KEY_A"))
        );
        let half =
            Config::from_json(json.as_bytes(), &|n| (n == "KEY_A").then(|| "a".into())).unwrap();
        assert_eq!(
            half.providers[0].credentials,
            Credentials::Missing(vec!["KEY_B".into()])
        );
        let e = compile(r#"{"providers": {"p": {"type": "openai", "api_key_env": []}}, "models": {"m": {"provider": "p"}}}"#).unwrap_err();
        assert_eq!(e.field, "providers.p.api_key_env");
    }

    #[test]
    fn every_provider_secret_is_scrubbed() {
        let json = r#"{"providers": {
                "a": {"type": "openai", "api_key_env": ["KEY_1", "KEY_2"]},
                "b": {"type": "bedrock", "region": "us-east-1"}},
            "models": {"m": {"provider": "a"}}}"#;
        let env = |name: &str| Some(format!("secret-value-of-{name}"));
        let c = Config::from_json(json.as_bytes(), &env).unwrap();
        for var in [
            "KEY_1",
            "KEY_2",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            let body = format!("provider said: bad secret-value-of-{var}!");
            assert_eq!(
                c.scrubber.scrub(body.as_bytes()).as_deref(),
                Some(&b"provider said: bad [REDACTED]!"[..]),
                "{var}"
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = compile(GOOD).unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("sk-test"), "{dump}");
    }

    /// Each refusal names the field that is wrong.
    #[test]
    fn bad_configs_are_refused_naming_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("not json", "(document)", ""),
            (
                r#"{"providers": {}, "models": {"m": {"provider": "p"}}}"#,
                "providers",
                "at least one",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {}}"#,
                "models",
                "at least one",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "extra": 1}"#,
                "(document)",
                "unknown field `extra`",
            ),
            (
                r#"{"providers": {"p": {"type": "nope"}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p.type",
                "unknown provider type 'nope'",
            ),
            (
                r#"{"providers": {"p": {"type": "openai", "colour": 1}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p",
                "unknown field `colour`",
            ),
            (
                r#"{"providers": {"p": {"type": "openai", "api_key_env": "no-dash"}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p.api_key_env",
                "not an environment variable",
            ),
            (
                r#"{"providers": {"p": {"type": "openai", "path_prefix": "v1/"}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p.path_prefix",
                "must start with '/'",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "q"}}}"#,
                "models.m.provider",
                "no provider named 'q'",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {}}}"#,
                "models.m",
                "missing field `provider`",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": 3}}}"#,
                "models.m.provider",
                "must be a string",
            ),
            (
                r#"{"providers": {"a": {"type": "openai", "cluster": "c"}, "b": {"type": "openai", "cluster": "c"}}, "models": {"m": {"provider": "a"}}}"#,
                "providers.b.cluster",
                "already used",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "max_request_bytes": 0}"#,
                "max_request_bytes",
                "between",
            ),
            (
                r#"{"providers": {"a b": {"type": "openai"}}, "models": {"m": {"provider": "a b"}}}"#,
                "providers.a b",
                "may contain only",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"two words": {"provider": "p"}}}"#,
                "models.two words",
                "whitespace",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p", "strategy": "cost"}}}"#,
                "models.m.strategy",
                "routing settings need `targets`",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": []}}}"#,
                "models.m.targets",
                "at least one target",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "q", "model": "x"}]}}}"#,
                "models.m.targets[0].provider",
                "no provider named 'q'",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x"}], "strategy": "fastest"}}}"#,
                "models.m.strategy",
                "must be 'weighted'",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "my-own"}], "strategy": "cost"}}}"#,
                "models.m.targets[0].price",
                "needs a price",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x", "tier": "a"}], "rules": [{"when": {"images": true}, "tier": "b"}]}}}"#,
                "models.m.rules[0].tier",
                "no target has tier 'b'",
            ),
            (
                r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x"}], "speed": 1}}}"#,
                "models.m.speed",
                "unknown field",
            ),
            (
                r#"{"providers": {"p": {"type": "openai", "forward_headers": ["x-ok", "Cookie"]}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p.forward_headers[1]",
                "lower-case header name",
            ),
            (
                r#"{"providers": {"p": {"type": "anthropic", "forward_headers": ["proxy-authorization"]}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p.forward_headers[0]",
                "carries credentials",
            ),
            (
                r#"{"providers": {"p": {"type": "openai", "forward_headers": "x-one"}}, "models": {"m": {"provider": "p"}}}"#,
                "providers.p",
                "invalid type",
            ),
        ];
        for (json, field, message) in cases {
            let e = compile(json).expect_err(json);
            assert_eq!(&e.field, field, "{json}: {e}");
            assert!(e.message.contains(message), "{json}: {e}");
            assert!(
                e.to_string().contains(field),
                "the display names the field: {e}"
            );
        }
    }
}
