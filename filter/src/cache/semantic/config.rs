//! The semantic layer's configuration: per model (`models.<m>.semantic`: the embeddings model,
//! the gateway key its calls use, threshold, turns, timeout, cluster) and the index's bounds
//! (`local.semantic`), checked against the rest of the configuration at start.

use serde::Deserialize;
use serde_json::Value;

use crate::config_error::{err, is_env_name, ConfigError};
use crate::provider::Secret;

const DEFAULT_THRESHOLD: f64 = 0.95;
const DEFAULT_MAX_TURNS: u32 = 1;
const MAX_MAX_TURNS: u32 = 64;
const DEFAULT_TIMEOUT_MS: u64 = 1000;
const MAX_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_CLUSTER: &str = "gateway_loopback";
const DEFAULT_SLOTS: u32 = 512;
const MAX_SLOTS: u32 = 1 << 16;
const DEFAULT_BUCKET_ENTRIES: u16 = 4;
const MAX_BUCKET_ENTRIES: u16 = 64;
const DEFAULT_MAX_DIMENSIONS: u16 = 3072;
const MAX_MAX_DIMENSIONS: u16 = 4096;
/// The index's worst case (every slot a full bucket of the largest vectors) must fit this.
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// One model's semantic layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Semantic {
    /// The configured model (served by the gateway itself) that embeds the texts.
    pub embeddings_model: String,
    /// The `authorization` header of the embeddings call (a gateway key's secret), when the
    /// gateway requires keys.
    pub credential: Option<Secret>,
    /// Cosine similarity at or above which a stored answer is served.
    pub threshold: f32,
    /// Conversations with more user messages than this are not looked up semantically.
    pub max_turns: u32,
    pub timeout_ms: u64,
    /// The loopback cluster to the gateway's own listener.
    pub cluster: String,
}

/// The bounds of the semantic index in shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexBounds {
    pub slots: u32,
    pub bucket_entries: u16,
    pub max_dimensions: u16,
}

impl Default for IndexBounds {
    fn default() -> Self {
        Self {
            slots: DEFAULT_SLOTS,
            bucket_entries: DEFAULT_BUCKET_ENTRIES,
            max_dimensions: DEFAULT_MAX_DIMENSIONS,
        }
    }
}

/// A gateway key as the semantic sections check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    /// The models it may use (`None`: every model).
    pub models: Option<Vec<String>>,
}

/// What the semantic sections need of the rest of the configuration.
pub struct Context<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether the gateway requires keys (an open gateway needs no credential for the call).
    pub keys_required: bool,
    /// The gateway key a secret authenticates as; `None` when it is no live key.
    pub key_of_secret: &'a dyn Fn(&str) -> Option<KeyInfo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSemantic {
    embeddings_model: String,
    key_env: Option<String>,
    threshold: Option<f64>,
    max_turns: Option<u32>,
    timeout_ms: Option<u64>,
    cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBounds {
    slots: Option<u32>,
    bucket_entries: Option<u16>,
    max_dimensions: Option<u16>,
}

/// Compiles `<at>` (a model's `semantic` section); the key it names may use no model other
/// than embeddings models (checked by the caller over every section, `check_key_models`).
pub fn compile(
    value: &Value,
    at: &str,
    is_model: &dyn Fn(&str) -> bool,
    ctx: &Context<'_>,
) -> Result<(Semantic, Option<KeyInfo>), ConfigError> {
    let raw = RawSemantic::deserialize(value).map_err(|e| err(at, e.to_string()))?;
    if !is_model(&raw.embeddings_model) {
        return Err(err(
            format!("{at}.embeddings_model"),
            format!("no model named '{}'", raw.embeddings_model),
        ));
    }
    let threshold = raw.threshold.unwrap_or(DEFAULT_THRESHOLD);
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(err(
            format!("{at}.threshold"),
            "a cosine similarity above 0 and at most 1",
        ));
    }
    let max_turns = raw.max_turns.unwrap_or(DEFAULT_MAX_TURNS);
    if max_turns == 0 || max_turns > MAX_MAX_TURNS {
        return Err(err(
            format!("{at}.max_turns"),
            format!("between 1 and {MAX_MAX_TURNS}"),
        ));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(err(
            format!("{at}.timeout_ms"),
            format!("between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    let cluster = raw.cluster.unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    if cluster.is_empty() {
        return Err(err(format!("{at}.cluster"), "must not be empty"));
    }
    let (credential, key) = match raw.key_env {
        None if ctx.keys_required => {
            return Err(err(
                format!("{at}.key_env"),
                "the gateway requires keys: name the environment variable holding the secret of the gateway key the embeddings calls use",
            ))
        }
        None => (None, None),
        Some(name) => {
            let field = format!("{at}.key_env");
            if !is_env_name(&name) {
                return Err(err(field, format!("'{name}' is not an environment variable name")));
            }
            let secret = (ctx.env)(&name)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| err(&field, format!("environment variable {name} is not set")))?;
            let key = (ctx.key_of_secret)(&secret).ok_or_else(|| {
                err(&field, format!("the secret in {name} is no live gateway key"))
            })?;
            match &key.models {
                Some(models) if models.contains(&raw.embeddings_model) => {}
                _ => {
                    return Err(err(
                        &field,
                        format!("gateway key '{}' must be limited (its `models`) to the embeddings model '{}'", key.id, raw.embeddings_model),
                    ))
                }
            }
            (Some(Secret(format!("Bearer {secret}"))), Some(key))
        }
    };
    Ok((
        Semantic {
            embeddings_model: raw.embeddings_model,
            credential,
            threshold: threshold as f32,
            max_turns,
            timeout_ms,
            cluster,
        },
        key,
    ))
}

/// The key the embeddings calls use may reach no model but embeddings models: its secret sits
/// in the gateway's configuration, so it must be worth nothing else.
pub fn check_key_models(
    at: &str,
    key: &KeyInfo,
    embeddings_models: &[&str],
) -> Result<(), ConfigError> {
    let other = key
        .models
        .iter()
        .flatten()
        .find(|m| !embeddings_models.contains(&m.as_str()));
    match other {
        Some(m) => Err(err(
            format!("{at}.key_env"),
            format!("gateway key '{}' may also use '{m}', which is no semantic embeddings model; give the embeddings calls a key of their own", key.id),
        )),
        None => Ok(()),
    }
}

/// Compiles `cache.local.semantic`.
pub fn compile_bounds(value: Option<&Value>) -> Result<IndexBounds, ConfigError> {
    const AT: &str = "cache.local.semantic";
    let Some(value) = value else {
        return Ok(IndexBounds::default());
    };
    let raw = RawBounds::deserialize(value).map_err(|e| err(AT, e.to_string()))?;
    let d = IndexBounds::default();
    let bounds = IndexBounds {
        slots: raw.slots.unwrap_or(d.slots),
        bucket_entries: raw.bucket_entries.unwrap_or(d.bucket_entries),
        max_dimensions: raw.max_dimensions.unwrap_or(d.max_dimensions),
    };
    if bounds.slots == 0 || bounds.slots > MAX_SLOTS {
        return Err(err(
            format!("{AT}.slots"),
            format!("between 1 and {MAX_SLOTS}"),
        ));
    }
    if bounds.bucket_entries == 0 || bounds.bucket_entries > MAX_BUCKET_ENTRIES {
        return Err(err(
            format!("{AT}.bucket_entries"),
            format!("between 1 and {MAX_BUCKET_ENTRIES}"),
        ));
    }
    if bounds.max_dimensions == 0 || bounds.max_dimensions > MAX_MAX_DIMENSIONS {
        return Err(err(
            format!("{AT}.max_dimensions"),
            format!("between 1 and {MAX_MAX_DIMENSIONS}"),
        ));
    }
    if bounds.max_index_bytes() > MAX_INDEX_BYTES {
        return Err(err(
            AT,
            format!(
                "slots x bucket_entries x (4 x max_dimensions + 50) is {} bytes; at most {MAX_INDEX_BYTES}",
                bounds.max_index_bytes()
            ),
        ));
    }
    Ok(bounds)
}

impl IndexBounds {
    /// Shared data the index holds at most: every slot a full bucket of the largest vectors.
    pub fn max_index_bytes(&self) -> u64 {
        u64::from(self.slots)
            * (u64::from(self.bucket_entries)
                * (4 * u64::from(self.max_dimensions)
                    + crate::cache::semantic_index::ITEM_HEADER as u64)
                + crate::cache::semantic_index::BUCKET_HEADER as u64)
    }
}
