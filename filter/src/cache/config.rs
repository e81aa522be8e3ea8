//! The `cache` section: the local tier's bounds and, per model (a model is also a route here),
//! whether its answers are cached, for how long and in which namespace.
//!
//! ```json
//! "cache": {
//!   "local": {"slots": 4096, "max_bytes": 67108864},
//! (the semantic layer's own fields, `local.semantic` and `models.<m>.semantic`: `semantic.rs`)
//!   "models": {"demo-chat": {"ttl": 300, "scope": "team", "max_entry_bytes": 131072,
//!                            "tool_calls": false}}
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::semantic::{self, IndexBounds, Semantic};
use crate::config_error::{err, ConfigError};

const DEFAULT_SLOTS: u32 = 4096;
const MAX_SLOTS: u32 = 1 << 20;
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
const MAX_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const DEFAULT_TTL_SECS: u64 = 300;
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
const DEFAULT_MAX_ENTRY_BYTES: usize = 128 * 1024;
const MAX_MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;

/// Whose entries a request may read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The key's team (the key itself when it has no team).
    Team,
    /// The key alone.
    Key,
    /// Every caller of the model.
    Global,
}

/// How one model's answers are cached.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCache {
    pub ttl_secs: u64,
    pub scope: Scope,
    /// Larger answers are not stored.
    pub max_entry_bytes: usize,
    /// Answers that call tools are stored too (off by default: an agent loop would get the
    /// previous turn's call again).
    pub tool_calls: bool,
    /// Entries also go to (and come from) the shared tier, when one is configured.
    pub shared: bool,
    /// The semantic layer on an exact miss (chat only).
    pub semantic: Option<Semantic>,
}

/// The local tier (proxy-wasm shared data of one Envoy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTier {
    pub slots: u32,
    /// Total bytes of entries held at once.
    pub max_bytes: u64,
    /// The semantic index's bounds (used when a model has a semantic layer).
    pub semantic: IndexBounds,
}

/// The compiled `cache` section.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub local: LocalTier,
    pub models: BTreeMap<String, ModelCache>,
    /// The tier every Envoy shares (`cache/shared`), if configured.
    pub shared: Option<super::shared::SharedTier>,
}

impl CacheConfig {
    pub fn model(&self, name: &str) -> Option<&ModelCache> {
        self.models.get(name)
    }

    /// Some model shares its semantic entries (a semantic layer, and the shared tier on for it):
    /// only then is the tier's vector collection looked up (and created).
    pub fn shares_vectors(&self) -> bool {
        self.shared.is_some()
            && self
                .models
                .values()
                .any(|m| m.shared && m.semantic.is_some())
    }

    /// The shared tier's and the semantic layer's callout clusters, with the field that names
    /// each (the configuration root refuses one that is a provider's: the provider filter would
    /// run in this VM).
    pub fn callout_clusters(&self) -> Vec<(String, &str)> {
        let shared = self
            .shared
            .as_ref()
            .map(|t| ("cache.shared.cluster".to_string(), t.cluster.as_str()));
        let semantic = self.models.iter().filter_map(|(name, m)| {
            let s = m.semantic.as_ref()?;
            Some((
                format!("cache.models.{name}.semantic.cluster"),
                s.cluster.as_str(),
            ))
        });
        shared.into_iter().chain(semantic).collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    local: Option<RawLocal>,
    shared: Option<Value>,
    #[serde(default)]
    models: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    slots: Option<u32>,
    max_bytes: Option<u64>,
    semantic: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    ttl: Option<u64>,
    scope: Option<String>,
    max_entry_bytes: Option<usize>,
    tool_calls: Option<bool>,
    exact: Option<bool>,
    semantic: Option<Value>,
    shared: Option<bool>,
}

/// Compiles the `cache` section; `is_model` tells which model names exist, `env` the variables
/// the shared tier's key may come from, `semantic_ctx` what the semantic sections check against.
pub fn compile(
    value: &Value,
    is_model: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
    semantic_ctx: &semantic::Context<'_>,
) -> Result<CacheConfig, ConfigError> {
    let raw = RawSection::deserialize(value).map_err(|e| err("cache", e.to_string()))?;
    let shared = raw
        .shared
        .as_ref()
        .map(|v| super::shared::config::compile(v, env))
        .transpose()?;
    let local = raw.local.unwrap_or(RawLocal {
        slots: None,
        max_bytes: None,
        semantic: None,
    });
    let semantic_bounds = semantic::compile_bounds(local.semantic.as_ref())?;
    let slots = local.slots.unwrap_or(DEFAULT_SLOTS);
    if slots == 0 || slots > MAX_SLOTS {
        return Err(err(
            "cache.local.slots",
            format!("must be between 1 and {MAX_SLOTS}"),
        ));
    }
    let max_bytes = local.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    if max_bytes == 0 || max_bytes > MAX_MAX_BYTES {
        return Err(err(
            "cache.local.max_bytes",
            format!("must be between 1 and {MAX_MAX_BYTES}"),
        ));
    }
    let mut models = BTreeMap::new();
    let mut semantic_keys = Vec::new();
    for (name, value) in raw.models {
        let at = format!("cache.models.{name}");
        if !is_model(&name) {
            return Err(err(&at, format!("no model named '{name}'")));
        }
        let m = RawModel::deserialize(&value).map_err(|e| err(&at, e.to_string()))?;
        if m.exact == Some(false) {
            if m.semantic.is_some() {
                return Err(err(
                    format!("{at}.semantic"),
                    "the semantic layer serves entries of the exact cache: it needs `exact` on",
                ));
            }
            continue; // switched off for this model
        }
        let semantic = match &m.semantic {
            None => None,
            Some(v) => {
                let at = format!("{at}.semantic");
                let (s, key) = semantic::compile(v, &at, is_model, semantic_ctx)?;
                if let Some(key) = key {
                    semantic_keys.push((at, key));
                }
                Some(s)
            }
        };
        let ttl_secs = m.ttl.unwrap_or(DEFAULT_TTL_SECS);
        if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
            return Err(err(
                format!("{at}.ttl"),
                format!("seconds between 1 and {MAX_TTL_SECS}"),
            ));
        }
        let scope = match m.scope.as_deref() {
            None | Some("team") => Scope::Team,
            Some("key") => Scope::Key,
            Some("global") => Scope::Global,
            Some(other) => {
                return Err(err(
                    format!("{at}.scope"),
                    format!("'{other}' is not one of team, key, global"),
                ))
            }
        };
        let max_entry_bytes = m.max_entry_bytes.unwrap_or(DEFAULT_MAX_ENTRY_BYTES);
        let entry_cap = MAX_MAX_ENTRY_BYTES.min(usize::try_from(max_bytes).unwrap_or(usize::MAX));
        if max_entry_bytes == 0 || max_entry_bytes > entry_cap {
            return Err(err(
                format!("{at}.max_entry_bytes"),
                format!("must be between 1 and {entry_cap} (and at most cache.local.max_bytes)"),
            ));
        }
        models.insert(
            name,
            ModelCache {
                ttl_secs,
                scope,
                max_entry_bytes,
                tool_calls: m.tool_calls.unwrap_or(false),
                shared: m.shared.unwrap_or(true),
                semantic,
            },
        );
    }
    let embeddings_models: Vec<&str> = models
        .values()
        .filter_map(|m| m.semantic.as_ref().map(|s| s.embeddings_model.as_str()))
        .collect();
    for (at, key) in &semantic_keys {
        semantic::check_key_models(at, key, &embeddings_models)?;
    }
    Ok(CacheConfig {
        local: LocalTier {
            slots,
            max_bytes,
            semantic: semantic_bounds,
        },
        models,
        shared,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile_json(v: Value) -> Result<CacheConfig, ConfigError> {
        let ctx = semantic::Context {
            env: &|_| None,
            keys_required: false,
            key_of_secret: &|_| None,
        };
        compile(&v, &|m| m == "chat", &|_| None, &ctx)
    }

    #[test]
    fn defaults_are_conservative() {
        let c = compile_json(json!({"models": {"chat": {}}})).unwrap();
        let m = c.model("chat").unwrap();
        assert_eq!(m.ttl_secs, 300);
        assert_eq!(m.scope, Scope::Team);
        assert!(!m.tool_calls);
        assert_eq!(m.max_entry_bytes, 128 * 1024);
        assert_eq!(c.local.slots, 4096);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"models": {"nope": {}}}), "cache.models.nope"),
            (
                json!({"models": {"chat": {"ttl": 0}}}),
                "cache.models.chat.ttl",
            ),
            (
                json!({"models": {"chat": {"scope": "org"}}}),
                "cache.models.chat.scope",
            ),
            (
                json!({"models": {"chat": {"max_entry_bytes": 0}}}),
                "cache.models.chat.max_entry_bytes",
            ),
            (
                json!({"models": {"chat": {"semantic": {}}}}),
                "cache.models.chat.semantic",
            ),
            (
                json!({"models": {"chat": {"exact": false, "semantic": {"embeddings_model": "chat"}}}}),
                "cache.models.chat.semantic",
            ),
            (
                json!({"local": {"semantic": {"slots": 0}}}),
                "cache.local.semantic.slots",
            ),
            (
                json!({"models": {"chat": {"ttl_s": 3}}}),
                "cache.models.chat",
            ),
            (json!({"local": {"slots": 0}}), "cache.local.slots"),
            (json!({"local": {"max_bytes": 0}}), "cache.local.max_bytes"),
            (json!({"locals": {}}), "cache"),
        ];
        for (doc, field) in cases {
            let e = compile_json(doc.clone()).unwrap_err();
            assert_eq!(e.field, field, "{doc}: {e}");
        }
    }

    #[test]
    fn an_entry_cannot_be_larger_than_the_tier() {
        let e = compile_json(
            json!({"local": {"max_bytes": 1000}, "models": {"chat": {"max_entry_bytes": 1001}}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "cache.models.chat.max_entry_bytes");
        let off = compile_json(json!({"models": {"chat": {"exact": false}}})).unwrap();
        assert!(off.model("chat").is_none());
    }
}
