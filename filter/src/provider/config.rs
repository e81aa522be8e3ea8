//! The `providers.<id>` section: the keys every provider takes (`type`, `cluster`,
//! `path_prefix`, `forward_headers`) and, by `type`, the settings of its kind, each defined and
//! deserialized (unknown keys refused) in that kind's module. Compiled into [`Provider`] at
//! plugin start, with the credentials read from the environment.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::anthropic::AnthropicSettings;
use super::azure::AzureSettings;
use super::bedrock::BedrockSettings;
use super::cohere::CohereSettings;
use super::gemini::GeminiSettings;
use super::headers;
use super::openai::OpenAiSettings;
use super::ProviderKind;
use crate::config_error::{err, field_names, is_env_name, ConfigError};

/// A provider key read from the environment. Never printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

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

/// The settings only one kind of provider takes, typed per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    OpenAiCompatible(OpenAiSettings),
    Azure(AzureSettings),
    Anthropic(AnthropicSettings),
    Gemini(GeminiSettings),
    Bedrock(BedrockSettings),
    Cohere(CohereSettings),
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
    /// Client headers forwarded besides the built-in allow-list (`provider::headers`).
    pub forward_headers: Vec<String>,
    /// What only this kind of provider takes (Azure's `api_version`, Bedrock's region, ...).
    pub settings: ProviderSettings,
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

    /// How many API keys the provider has (Envoy endpoints stand for them, one each).
    pub fn api_key_count(&self) -> usize {
        match &self.credentials {
            Credentials::ApiKeys(keys) => keys.len(),
            _ => 0,
        }
    }

    /// The key at `index` (0 when the endpoint names none); the first when out of range.
    pub fn api_key(&self, index: usize) -> Option<&str> {
        match &self.credentials {
            Credentials::ApiKeys(keys) => keys.get(index).or(keys.first()).map(Secret::expose),
            _ => None,
        }
    }

    /// Serves OpenAI's Responses API itself: a Responses request passes through to it
    /// (`provider::responses`). OpenAI and Azure by default; `responses_api` in the settings of
    /// an OpenAI-compatible or Azure provider says otherwise.
    pub fn serves_responses(&self) -> bool {
        match (&self.settings, self.kind) {
            (ProviderSettings::OpenAiCompatible(s), ProviderKind::OpenAiCompatible(row)) => {
                s.responses_api.unwrap_or(row.name == "openai")
            }
            (ProviderSettings::Azure(s), ProviderKind::Azure) => s.responses_api,
            _ => false,
        }
    }

    /// Ask for usage on streamed requests (`stream_options.include_usage`; OpenAI family).
    pub fn stream_usage(&self) -> bool {
        match (&self.settings, self.kind) {
            (ProviderSettings::OpenAiCompatible(s), ProviderKind::OpenAiCompatible(row)) => {
                s.stream_usage.unwrap_or(row.stream_usage)
            }
            (ProviderSettings::Azure(s), _) => s.stream_usage,
            _ => false,
        }
    }
}

/// The keys every kind of provider takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonSettings {
    #[serde(rename = "type")]
    kind: String,
    cluster: Option<String>,
    path_prefix: Option<String>,
    /// Client headers this provider receives besides the built-in allow-list.
    forward_headers: Option<Vec<String>>,
}

/// `api_key_env`: one variable, or several (one key per Envoy endpoint, see `key_index`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "a variable name or a non-empty list of them")]
pub enum ApiKeyEnv {
    One(String),
    Several(Vec<String>),
}

/// The kinds by the settings type they take, for refusals that say which kind takes a key.
const KIND_GROUPS: &[&str] = &[
    "the OpenAI-compatible types",
    "'azure'",
    "'anthropic'",
    "'gemini'",
    "'bedrock'",
    "'cohere'",
];

fn settings_fields(group: usize) -> &'static [&'static str] {
    match group {
        0 => field_names::<OpenAiSettings>(),
        1 => field_names::<AzureSettings>(),
        2 => field_names::<AnthropicSettings>(),
        3 => field_names::<GeminiSettings>(),
        4 => field_names::<BedrockSettings>(),
        _ => field_names::<CohereSettings>(),
    }
}

fn group_of(kind: ProviderKind) -> usize {
    match kind {
        ProviderKind::OpenAiCompatible(_) => 0,
        ProviderKind::Azure => 1,
        ProviderKind::Anthropic => 2,
        ProviderKind::Gemini => 3,
        ProviderKind::Bedrock => 4,
        ProviderKind::Cohere => 5,
    }
}

/// Compiles `providers.<id>`; `env` reads the environment (the VM's in Envoy).
pub fn compile(
    id: String,
    value: Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, ConfigError> {
    let here = format!("providers.{id}");
    let at = |field: &str| format!("{here}.{field}");
    if !is_identifier(&id) {
        return Err(err(
            &here,
            "provider ids may contain only letters, digits, '_' and '-'",
        ));
    }
    let Value::Object(mut own) = value else {
        return Err(err(&here, "must be an object"));
    };
    let common_keys = field_names::<CommonSettings>();
    let common: Map<String, Value> = common_keys
        .iter()
        .filter_map(|k| own.remove_entry(*k))
        .collect();
    let common: CommonSettings =
        serde_json::from_value(Value::Object(common)).map_err(|e| err(&here, e.to_string()))?;
    let kind = ProviderKind::parse(&common.kind).ok_or_else(|| {
        err(
            at("type"),
            format!(
                "unknown provider type '{}'; known: {}",
                common.kind,
                ProviderKind::names().join(", ")
            ),
        )
    })?;
    refuse_foreign_keys(&own, kind, &here)?;
    let settings = match kind {
        ProviderKind::OpenAiCompatible(_) => {
            ProviderSettings::OpenAiCompatible(settings_of(own, &here)?)
        }
        ProviderKind::Azure => ProviderSettings::Azure(settings_of(own, &here)?),
        ProviderKind::Anthropic => {
            let s: AnthropicSettings = settings_of(own, &here)?;
            s.check(&here)?;
            ProviderSettings::Anthropic(s)
        }
        ProviderKind::Gemini => ProviderSettings::Gemini(settings_of(own, &here)?),
        ProviderKind::Bedrock => {
            let s: BedrockSettings = settings_of(own, &here)?;
            s.check(&here)?;
            ProviderSettings::Bedrock(s)
        }
        ProviderKind::Cohere => ProviderSettings::Cohere(settings_of(own, &here)?),
    };

    let cluster = common.cluster.unwrap_or_else(|| id.clone());
    if cluster.is_empty() {
        return Err(err(at("cluster"), "must not be empty"));
    }
    let path_prefix = common
        .path_prefix
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
    let credentials = match &settings {
        ProviderSettings::Bedrock(s) => s.credentials(&here, env)?,
        ProviderSettings::OpenAiCompatible(OpenAiSettings { api_key_env, .. })
        | ProviderSettings::Azure(AzureSettings { api_key_env, .. })
        | ProviderSettings::Anthropic(AnthropicSettings { api_key_env, .. })
        | ProviderSettings::Gemini(GeminiSettings { api_key_env })
        | ProviderSettings::Cohere(CohereSettings { api_key_env }) => {
            api_key_credentials(api_key_env.as_ref(), &at("api_key_env"), env)?
        }
    };
    let forward_headers = common.forward_headers.unwrap_or_default();
    for (i, name) in forward_headers.iter().enumerate() {
        headers::check_forward_header(name)
            .map_err(|message| err(format!("{}[{i}]", at("forward_headers")), message))?;
    }
    Ok(Provider {
        id,
        kind,
        cluster,
        path_prefix,
        credentials,
        forward_headers,
        settings,
    })
}

/// Deserializes a kind's settings from the keys left after the common ones.
fn settings_of<T: DeserializeOwned>(own: Map<String, Value>, here: &str) -> Result<T, ConfigError> {
    serde_json::from_value(Value::Object(own)).map_err(|e| err(here, e.to_string()))
}

/// Refuses a key this kind does not take, naming it and, when another kind takes it, which:
/// a setting of one kind given to another must not pass silently.
fn refuse_foreign_keys(
    own: &Map<String, Value>,
    kind: ProviderKind,
    here: &str,
) -> Result<(), ConfigError> {
    let group = group_of(kind);
    let takes = settings_fields(group);
    let Some(key) = own.keys().find(|k| !takes.contains(&k.as_str())) else {
        return Ok(());
    };
    let others: Vec<&str> = (0..KIND_GROUPS.len())
        .filter(|&g| g != group && settings_fields(g).contains(&key.as_str()))
        .filter_map(|g| KIND_GROUPS.get(g).copied())
        .collect();
    let takes = format!(
        "{} besides {}",
        takes.join(", "),
        field_names::<CommonSettings>().join(", ")
    );
    let message = if others.is_empty() {
        format!(
            "unknown field `{key}`; type '{}' takes {takes}",
            kind.name()
        )
    } else {
        format!(
            "applies only to type {}, not '{}' (which takes {takes})",
            others.join(", "),
            kind.name()
        )
    };
    Err(err(format!("{here}.{key}"), message))
}

/// The keys named by `api_key_env`, all or nothing: a provider with any of them unset is off.
fn api_key_credentials(
    names: Option<&ApiKeyEnv>,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    let names: &[String] = match names {
        None => return Ok(Credentials::None),
        Some(ApiKeyEnv::One(name)) => std::slice::from_ref(name),
        Some(ApiKeyEnv::Several(names)) if !names.is_empty() => names,
        Some(ApiKeyEnv::Several(_)) => {
            return Err(err(
                field,
                "must be a variable name or a non-empty list of them",
            ))
        }
    };
    let mut keys = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for name in names {
        match read_env(name, field, env)? {
            Some(key) => keys.push(key),
            None => missing.push(name.clone()),
        }
    }
    Ok(if missing.is_empty() {
        Credentials::ApiKeys(keys)
    } else {
        Credentials::Missing(missing)
    })
}

/// Reads a variable whose name was configured at `field`; `None` when it is unset or blank.
pub(crate) fn read_env(
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

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(json: &str) -> Result<Provider, ConfigError> {
        let value: Value = serde_json::from_str(json).unwrap();
        compile("p".into(), value, &|name| Some(format!("secret-of-{name}")))
    }

    /// What each kind takes, per the README "Providers" section.
    #[test]
    fn settings_are_typed_per_kind_with_their_defaults() {
        let azure = provider(r#"{"type": "azure", "api_key_env": "AZ_KEY"}"#).unwrap();
        assert_eq!(
            azure.settings,
            ProviderSettings::Azure(AzureSettings {
                api_key_env: Some(ApiKeyEnv::One("AZ_KEY".into())),
                api_version: "2024-10-21".into(),
                stream_usage: true,
                responses_api: true,
            })
        );
        assert_eq!(azure.api_key(0), Some("secret-of-AZ_KEY"));
        let anthropic = provider(r#"{"type": "anthropic", "default_max_tokens": 1024}"#).unwrap();
        assert_eq!(
            anthropic.settings,
            ProviderSettings::Anthropic(AnthropicSettings {
                api_key_env: None,
                default_max_tokens: 1024,
            })
        );
        assert_eq!(anthropic.credentials, Credentials::None);
        let bedrock = provider(r#"{"type": "bedrock", "region": "eu-west-3"}"#).unwrap();
        let ProviderSettings::Bedrock(settings) = &bedrock.settings else {
            panic!("{bedrock:?}")
        };
        assert_eq!(settings.region, "eu-west-3");
        assert!(matches!(
            &bedrock.credentials,
            Credentials::Aws { access_key_id, .. } if access_key_id.expose() == "secret-of-AWS_ACCESS_KEY_ID"
        ));
        // Mistral does not take `stream_options` (its row says so) unless told otherwise.
        let mistral = provider(r#"{"type": "mistral"}"#).unwrap();
        assert!(!mistral.stream_usage());
        let told = provider(r#"{"type": "mistral", "stream_usage": true}"#).unwrap();
        assert!(told.stream_usage());
        assert!(provider(r#"{"type": "openai"}"#).unwrap().stream_usage());
    }

    /// Who gets a Responses request as sent (README "OpenAI Responses API"): OpenAI and Azure
    /// by default, an OpenAI-compatible server when its settings say so, no other kind.
    #[test]
    fn the_responses_api_is_served_by_openai_and_azure_unless_told_otherwise() {
        let serves = |json: &str| provider(json).expect(json).serves_responses();
        assert!(serves(r#"{"type": "openai"}"#));
        assert!(serves(r#"{"type": "azure"}"#));
        assert!(!serves(r#"{"type": "openai", "responses_api": false}"#));
        assert!(!serves(r#"{"type": "azure", "responses_api": false}"#));
        for kind in ["groq", "mistral", "vllm", "openai-compatible"] {
            assert!(!serves(&format!(r#"{{"type": "{kind}"}}"#)), "{kind}");
        }
        assert!(serves(r#"{"type": "vllm", "responses_api": true}"#));
        for kind in ["anthropic", "gemini", "cohere"] {
            assert!(!serves(&format!(r#"{{"type": "{kind}"}}"#)), "{kind}");
        }
        let e = provider(r#"{"type": "openai", "responses_api": "yes"}"#).expect_err("a string");
        assert_eq!(e.field, "providers.p");
        assert!(e.message.contains("expected a boolean"), "{e}");
    }

    /// A setting of one kind given to another is refused, naming the field and who takes it.
    #[test]
    fn a_setting_of_another_kind_is_refused_naming_the_field() {
        let cases = [
            (r#"{"type": "openai", "api_version": "2024-10-21"}"#, "api_version", "applies only to type 'azure', not 'openai'"),
            (r#"{"type": "gemini", "default_max_tokens": 10}"#, "default_max_tokens", "applies only to type 'anthropic', not 'gemini'"),
            (r#"{"type": "anthropic", "region": "us-east-1"}"#, "region", "applies only to type 'bedrock', not 'anthropic'"),
            (r#"{"type": "cohere", "stream_usage": false}"#, "stream_usage", "applies only to type the OpenAI-compatible types, 'azure', not 'cohere'"),
            (r#"{"type": "bedrock", "region": "us-east-1", "api_key_env": "K"}"#, "api_key_env", "not 'bedrock' (which takes region, aws_access_key_id_env"),
            (r#"{"type": "azure", "aws_session_token_env": "T"}"#, "aws_session_token_env", "applies only to type 'bedrock', not 'azure'"),
            (r#"{"type": "groq", "deployment": "x"}"#, "deployment", "unknown field `deployment`; type 'groq' takes api_key_env, stream_usage, responses_api besides type, cluster"),
            (r#"{"type": "gemini", "responses_api": true}"#, "responses_api", "applies only to type the OpenAI-compatible types, 'azure', not 'gemini'"),
        ];
        for (json, field, message) in cases {
            let e = provider(json).expect_err(json);
            assert_eq!(e.field, format!("providers.p.{field}"), "{json}: {e}");
            assert!(e.message.contains(message), "{json}: {e}");
        }
    }

    #[test]
    fn bad_values_of_typed_settings_are_refused_naming_the_field() {
        let cases = [
            (
                r#"{"type": "anthropic", "default_max_tokens": 0}"#,
                "providers.p.default_max_tokens",
            ),
            (r#"{"type": "bedrock"}"#, "providers.p.region"),
            (
                r#"{"type": "bedrock", "region": "mars"}"#,
                "providers.p.region",
            ),
            (
                r#"{"type": "bedrock", "region": "us-east-1", "aws_access_key_id_env": "a-b"}"#,
                "providers.p.aws_access_key_id_env",
            ),
            (
                r#"{"type": "openai", "api_key_env": []}"#,
                "providers.p.api_key_env",
            ),
            (r#"{"type": "azure", "api_version": 2024}"#, "providers.p"),
            (r#"{"type": "openai", "api_key_env": 7}"#, "providers.p"),
            (r#"["openai"]"#, "providers.p"),
        ];
        for (json, field) in cases {
            let e = provider(json).expect_err(json);
            assert_eq!(e.field, field, "{json}: {e}");
        }
        let e = provider(r#"{"type": "openai", "api_key_env": 7}"#).unwrap_err();
        assert!(
            e.message.contains("a variable name or a non-empty list"),
            "{e}"
        );
    }
}
