//! The `guardrails` section: named policies of guards, each attached to every request
//! (`all`), to models or to gateway keys. Compiled at plugin start: unknown fields refused,
//! every regular expression compiled, every model and key name checked, guard names unique.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::detect::PiiPatterns;
use super::detect_secrets::SecretPatterns;
use super::webhook::{Protocol, Webhook};
use super::{bedrock, moderation};
use super::{Action, Guard, Guardrails, Kind, Phase, Policy};
use crate::config_error::{err, ConfigError};
use crate::provider::Provider;

const DEFAULT_STREAM_WINDOW: usize = 256;
const MAX_STREAM_WINDOW: usize = 8192;
/// The longest match assumed of a custom regular expression (for the stream window).
const DEFAULT_MAX_MATCH: usize = 128;
const MAX_LABEL: usize = 32;
const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 500;
const MAX_WEBHOOK_TIMEOUT_MS: u64 = 10_000;
/// A hosted service's answer takes longer than a sidecar's.
const DEFAULT_SERVICE_TIMEOUT_MS: u64 = 2_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrails {
    policies: BTreeMap<String, RawPolicy>,
    stream_window_bytes: Option<usize>,
    #[serde(default)]
    body_logs: RawBodyLogs,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawBodyLogs {
    #[default]
    Mask,
    Clear,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    guards: Vec<RawGuard>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuard {
    name: String,
    kind: RawKind,
    action: RawAction,
    #[serde(default)]
    phase: RawPhase,
    #[serde(default)]
    restore: bool,
    pattern: Option<String>,
    keywords: Option<Vec<String>>,
    label: Option<String>,
    max_match_bytes: Option<usize>,
    cluster: Option<String>,
    path: Option<String>,
    timeout_ms: Option<u64>,
    failure_mode: Option<RawFailureMode>,
    entities: Option<Vec<String>>,
    language: Option<String>,
    score_threshold: Option<f64>,
    provider: Option<String>,
    model: Option<String>,
    categories: Option<BTreeMap<String, f64>>,
    guardrail_id: Option<String>,
    guardrail_version: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawFailureMode {
    Closed,
    Open,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Email,
    Phone,
    PaymentCard,
    Iban,
    UsSsn,
    IpAddress,
    Secrets,
    Regex,
    Keywords,
    Webhook,
    Presidio,
    OpenaiModeration,
    BedrockGuardrail,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawAction {
    Block,
    Mask,
    Monitor,
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
enum RawPhase {
    Request,
    Response,
    #[default]
    Both,
}

/// Compiles the section. `is_model` and `is_key` tell whether a name is configured; the
/// adapters name `providers` whose credentials they use.
pub fn compile(
    value: &Value,
    is_model: &dyn Fn(&str) -> bool,
    is_key: &dyn Fn(&str) -> bool,
    providers: &[Provider],
) -> Result<Guardrails, ConfigError> {
    let at = "guardrails";
    let raw: RawGuardrails =
        serde_json::from_value(value.clone()).map_err(|e| err(at, e.to_string()))?;
    let stream_window = raw.stream_window_bytes.unwrap_or(DEFAULT_STREAM_WINDOW);
    if !(64..=MAX_STREAM_WINDOW).contains(&stream_window) {
        return Err(err(
            "guardrails.stream_window_bytes",
            format!("must be between 64 and {MAX_STREAM_WINDOW}"),
        ));
    }
    if raw.policies.is_empty() {
        return Err(err(
            "guardrails.policies",
            "at least one policy is required",
        ));
    }
    let mut guards: Vec<Guard> = Vec::new();
    let mut policies = Vec::new();
    for (name, policy) in raw.policies {
        let at = format!("guardrails.policies.{name}");
        if policy.guards.is_empty() {
            return Err(err(
                format!("{at}.guards"),
                "at least one guard is required",
            ));
        }
        if !policy.all && policy.models.is_empty() && policy.keys.is_empty() {
            return Err(err(
                &at,
                "attached to nothing: set `all: true`, `models` or `keys`",
            ));
        }
        if let Some(m) = policy.models.iter().find(|m| !is_model(m)) {
            return Err(err(format!("{at}.models"), format!("no model named '{m}'")));
        }
        if let Some(k) = policy.keys.iter().find(|k| !is_key(k)) {
            return Err(err(format!("{at}.keys"), format!("no key named '{k}'")));
        }
        let mut indices = Vec::new();
        for (i, raw_guard) in policy.guards.into_iter().enumerate() {
            let guard = compile_guard(raw_guard, &format!("{at}.guards[{i}]"), providers)?;
            if guards.iter().any(|g| g.name == guard.name) {
                return Err(err(
                    format!("{at}.guards[{i}].name"),
                    format!("a guard named '{}' already exists", guard.name),
                ));
            }
            indices.push(guards.len());
            guards.push(guard);
        }
        policies.push(Policy {
            name,
            guards: indices,
            all: policy.all,
            models: policy.models,
            keys: policy.keys,
        });
    }
    Ok(Guardrails {
        guards,
        policies,
        stream_window,
        mask_body_logs: raw.body_logs == RawBodyLogs::Mask,
        pii: PiiPatterns::new().map_err(|e| err(at, e))?,
        secrets: SecretPatterns::new().map_err(|e| err(at, e))?,
    })
}

fn compile_guard(raw: RawGuard, at: &str, providers: &[Provider]) -> Result<Guard, ConfigError> {
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(err(
            format!("{at}.name"),
            "1 to 64 letters, digits, '-' or '_' (it appears in stats and errors)",
        ));
    }
    let action = match raw.action {
        RawAction::Block => Action::Block,
        RawAction::Mask => Action::Mask,
        RawAction::Monitor => Action::Monitor,
    };
    if raw.restore && action != Action::Mask {
        return Err(err(
            format!("{at}.restore"),
            "only a `mask` guard can restore",
        ));
    }
    let custom = matches!(raw.kind, RawKind::Regex | RawKind::Keywords);
    if raw.max_match_bytes.is_some() && !custom {
        return Err(err(
            format!("{at}.max_match_bytes"),
            "only for `regex` and `keywords` guards (the built-in detectors know theirs)",
        ));
    }
    if raw.pattern.is_some() && !matches!(raw.kind, RawKind::Regex) {
        return Err(err(format!("{at}.pattern"), "only for `kind: regex`"));
    }
    if raw.keywords.is_some() && !matches!(raw.kind, RawKind::Keywords) {
        return Err(err(format!("{at}.keywords"), "only for `kind: keywords`"));
    }
    let presidio = matches!(raw.kind, RawKind::Presidio);
    let moderation = matches!(raw.kind, RawKind::OpenaiModeration);
    let bedrock = matches!(raw.kind, RawKind::BedrockGuardrail);
    let webhook = presidio || moderation || bedrock || matches!(raw.kind, RawKind::Webhook);
    let bedrock_only = [
        ("guardrail_id", raw.guardrail_id.is_some()),
        ("guardrail_version", raw.guardrail_version.is_some()),
    ];
    if let Some((field, _)) = bedrock_only.iter().find(|(_, set)| *set && !bedrock) {
        return Err(err(
            format!("{at}.{field}"),
            "only for `kind: bedrock_guardrail`",
        ));
    }
    let moderation_only = [
        ("model", raw.model.is_some()),
        ("categories", raw.categories.is_some()),
    ];
    if let Some((field, _)) = moderation_only.iter().find(|(_, set)| *set && !moderation) {
        return Err(err(
            format!("{at}.{field}"),
            "only for `kind: openai_moderation`",
        ));
    }
    if raw.provider.is_some() && !moderation && !bedrock {
        return Err(err(
            format!("{at}.provider"),
            "only for `kind: openai_moderation` and `kind: bedrock_guardrail`",
        ));
    }
    if bedrock && raw.restore {
        return Err(err(
            format!("{at}.restore"),
            "Bedrock's anonymized texts cannot be restored (they hold Bedrock's own placeholders)",
        ));
    }
    if bedrock && action == Action::Mask && !matches!(raw.phase, RawPhase::Request) {
        return Err(err(
            format!("{at}.phase"),
            "a Bedrock guardrail masks requests only: set `phase: request` (or block answers)",
        ));
    }
    let presidio_only = [
        ("entities", raw.entities.is_some()),
        ("language", raw.language.is_some()),
        ("score_threshold", raw.score_threshold.is_some()),
    ];
    if let Some((field, _)) = presidio_only.iter().find(|(_, set)| *set && !presidio) {
        return Err(err(format!("{at}.{field}"), "only for `kind: presidio`"));
    }
    let webhook_only = [
        ("cluster", raw.cluster.is_some()),
        ("path", raw.path.is_some()),
        ("timeout_ms", raw.timeout_ms.is_some()),
        ("failure_mode", raw.failure_mode.is_some()),
    ];
    if let Some((field, _)) = webhook_only.iter().find(|(_, set)| *set && !webhook) {
        return Err(err(format!("{at}.{field}"), "only for `kind: webhook`"));
    }
    if webhook && !moderation && !bedrock && !matches!(raw.phase, RawPhase::Request) {
        return Err(err(
            format!("{at}.phase"),
            "webhook and presidio guards run on requests only for now: set `phase: request`",
        ));
    }
    if moderation && action == Action::Mask {
        return Err(err(
            format!("{at}.action"),
            "a moderation guard blocks or monitors (it names no spans to mask)",
        ));
    }
    let kind = match raw.kind {
        RawKind::Email => Kind::Email,
        RawKind::Phone => Kind::Phone,
        RawKind::PaymentCard => Kind::PaymentCard,
        RawKind::Iban => Kind::Iban,
        RawKind::UsSsn => Kind::UsSsn,
        RawKind::IpAddress => Kind::IpAddress,
        RawKind::Secrets => Kind::Secrets,
        RawKind::Webhook
        | RawKind::Presidio
        | RawKind::OpenaiModeration
        | RawKind::BedrockGuardrail => {
            let cluster = raw
                .cluster
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    err(
                        format!("{at}.cluster"),
                        "required: the Envoy cluster of the webhook",
                    )
                })?;
            let default_timeout = if moderation || bedrock {
                DEFAULT_SERVICE_TIMEOUT_MS
            } else {
                DEFAULT_WEBHOOK_TIMEOUT_MS
            };
            let timeout_ms = raw.timeout_ms.unwrap_or(default_timeout);
            if timeout_ms == 0 || timeout_ms > MAX_WEBHOOK_TIMEOUT_MS {
                return Err(err(
                    format!("{at}.timeout_ms"),
                    format!("must be between 1 and {MAX_WEBHOOK_TIMEOUT_MS}"),
                ));
            }
            let guardrail = if bedrock {
                Some(bedrock::compile(
                    raw.provider.as_deref(),
                    raw.guardrail_id.as_deref(),
                    raw.guardrail_version.as_deref(),
                    at,
                    providers,
                )?)
            } else {
                None
            };
            let default_path = match (&guardrail, raw.kind) {
                (Some(g), _) => g.path(),
                (None, RawKind::Presidio) => "/analyze".into(),
                (None, RawKind::OpenaiModeration) => moderation::DEFAULT_PATH.into(),
                (None, _) => "/guard".into(),
            };
            let path = raw.path.clone().unwrap_or(default_path);
            if !path.starts_with('/') {
                return Err(err(format!("{at}.path"), "must start with '/'"));
            }
            let protocol = if presidio {
                let score_threshold = raw.score_threshold.unwrap_or(0.5);
                if !(0.0..=1.0).contains(&score_threshold) {
                    return Err(err(
                        format!("{at}.score_threshold"),
                        "must be between 0 and 1",
                    ));
                }
                Protocol::Presidio {
                    entities: raw.entities.clone().unwrap_or_default(),
                    language: raw.language.clone().unwrap_or_else(|| "en".into()),
                    score_threshold,
                }
            } else if let Some(g) = guardrail {
                Protocol::BedrockGuardrail(g)
            } else if moderation {
                Protocol::OpenAiModeration(moderation::compile(
                    raw.provider.as_deref(),
                    raw.model.clone(),
                    raw.categories.as_ref(),
                    at,
                    providers,
                )?)
            } else {
                Protocol::Generic
            };
            Kind::Webhook(Webhook {
                cluster,
                path,
                timeout_ms,
                fail_open: raw.failure_mode == Some(RawFailureMode::Open),
                protocol,
            })
        }
        RawKind::Regex => {
            let pattern = raw
                .pattern
                .as_deref()
                .ok_or_else(|| err(format!("{at}.pattern"), "required for `kind: regex`"))?;
            let re =
                Regex::new(pattern).map_err(|e| err(format!("{at}.pattern"), e.to_string()))?;
            if re.is_match("") {
                return Err(err(format!("{at}.pattern"), "matches the empty text"));
            }
            Kind::Regex(re, max_match(raw.max_match_bytes, DEFAULT_MAX_MATCH, at)?)
        }
        RawKind::Keywords => {
            let words = raw.keywords.as_deref().unwrap_or_default();
            if words.is_empty() || words.iter().any(|w| w.trim().is_empty()) {
                return Err(err(
                    format!("{at}.keywords"),
                    "a non-empty list of non-empty words or phrases",
                ));
            }
            let longest = words.iter().map(String::len).max().unwrap_or(0);
            Kind::Keywords(
                keywords_regex(words).map_err(|e| err(format!("{at}.keywords"), e))?,
                max_match(raw.max_match_bytes, longest, at)?,
            )
        }
    };
    let label = match raw.label {
        Some(label) => label,
        None if custom => raw.name.to_ascii_uppercase().replace('-', "_"),
        None => kind.default_label().to_string(),
    };
    let label_ok = !label.is_empty()
        && label.len() <= MAX_LABEL
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !label_ok {
        return Err(err(
            format!("{at}.label"),
            format!("1 to {MAX_LABEL} upper-case letters, digits or '_' (as in [EMAIL_1])"),
        ));
    }
    Ok(Guard {
        name: raw.name,
        kind,
        phase: match raw.phase {
            RawPhase::Request => Phase::Request,
            RawPhase::Response => Phase::Response,
            RawPhase::Both => Phase::Both,
        },
        action,
        restore: raw.restore,
        label,
    })
}

/// The configured provider an adapter guard names in `{at}.provider`, which must be of `kind`
/// (`required` says what it is for, `kind_reason` why that kind); with its index.
pub(super) fn named_provider<'a>(
    name: Option<&str>,
    kind: &str,
    at: &str,
    providers: &'a [Provider],
    (required, kind_reason): (&str, &str),
) -> Result<(usize, &'a Provider), ConfigError> {
    let field = format!("{at}.provider");
    let name = name.ok_or_else(|| err(&field, format!("required: {required}")))?;
    let (index, p) = providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.id == name)
        .ok_or_else(|| err(&field, format!("no provider named '{name}'")))?;
    if p.kind.name() != kind {
        return Err(err(
            &field,
            format!(
                "provider '{name}' is of type '{}': {kind_reason}",
                p.kind.name()
            ),
        ));
    }
    Ok((index, p))
}

fn max_match(value: Option<usize>, default: usize, at: &str) -> Result<usize, ConfigError> {
    let v = value.unwrap_or(default);
    if v == 0 || v > MAX_STREAM_WINDOW {
        return Err(err(
            format!("{at}.max_match_bytes"),
            format!("must be between 1 and {MAX_STREAM_WINDOW}"),
        ));
    }
    Ok(v)
}

/// Whole words or phrases, any case: `\b` only where the word begins or ends with a word
/// character (a `\b` after "c++" would never match).
fn keywords_regex(words: &[String]) -> Result<Regex, String> {
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| {
            let w = w.trim();
            format!(
                "{}{}{}",
                if word_char(w.chars().next()) {
                    r"\b"
                } else {
                    ""
                },
                regex_lite::escape(w),
                if word_char(w.chars().last()) {
                    r"\b"
                } else {
                    ""
                }
            )
        })
        .collect();
    Regex::new(&format!("(?i)(?:{})", alternatives.join("|"))).map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "config_tests.rs"]
pub mod tests;
