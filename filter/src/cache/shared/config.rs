//! The `cache.shared` section: where the shared tier lives and how it is reached.
//!
//! ```json
//! "shared": {"store": "chroma", "cluster": "chroma", "key_env": "GATEWAY_CACHE_KEY",
//!            "timeout_ms": 50, "write_timeout_ms": 1000,
//!            "chroma": {"tenant": "default_tenant", "database": "default_database",
//!                       "collection": "ai_gateway_cache",
//!                       "vector_collection": "ai_gateway_cache_vectors"}}
//! ```
//!
//! `vector_collection` holds the semantic layer's vectors (Chroma fixes a collection's dimension
//! at its first record, and exact entries carry a one-dimension vector): by default the
//! collection's name with `_vectors`.
//!
//! Refused at start, naming the field: a cluster that is a provider's (a callout into a provider
//! cluster runs the provider filter in this VM and traps it), no key in the environment (entries
//! are never written unsealed), a key that is not 32 bytes of base64, names Chroma would refuse
//! or that could change the call's path.

use serde::Deserialize;
use serde_json::Value;

use super::chroma::Chroma;
use super::seal::SealKey;
use super::{StoreCall, VectorStore};
use crate::config_error::{err, is_env_name, ConfigError};

const DEFAULT_KEY_ENV: &str = "GATEWAY_CACHE_KEY";
const DEFAULT_TIMEOUT_MS: u64 = 50;
const DEFAULT_WRITE_TIMEOUT_MS: u64 = 1000;
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The store behind the tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Chroma(Chroma),
}

impl Store {
    pub fn api(&self) -> &dyn VectorStore {
        match self {
            Self::Chroma(c) => c,
        }
    }
}

/// The compiled `cache.shared` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedTier {
    pub store: Store,
    /// The same store's collection of semantic entries (vectors of an embeddings model).
    pub vectors: Store,
    /// The Envoy cluster of the store (never a provider's).
    pub cluster: String,
    pub key: SealKey,
    /// A lookup waits this long before the request goes on as a miss.
    pub timeout_ms: u64,
    /// A write (after the answer) waits this long.
    pub write_timeout_ms: u64,
}

impl SharedTier {
    pub fn api(&self) -> &dyn VectorStore {
        self.store.api()
    }

    /// The store's API on the collection of semantic entries.
    pub fn vectors_api(&self) -> &dyn VectorStore {
        self.vectors.api()
    }

    /// The collection lookup the root context sends.
    pub fn collection_call(&self) -> StoreCall {
        self.api().collection_call()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShared {
    store: Option<String>,
    cluster: Option<String>,
    key_env: Option<String>,
    timeout_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    chroma: Option<RawChroma>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChroma {
    tenant: Option<String>,
    database: Option<String>,
    collection: Option<String>,
    vector_collection: Option<String>,
}

/// Compiles `cache.shared`; `env` gives the sealing key's variable. (Its cluster is checked
/// against the providers' by the configuration root, as every callout's.)
pub fn compile(
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SharedTier, ConfigError> {
    const AT: &str = "cache.shared";
    let raw = RawShared::deserialize(value).map_err(|e| err(AT, e.to_string()))?;
    match raw.store.as_deref() {
        None | Some("chroma") => {}
        Some(other) => {
            return Err(err(
                format!("{AT}.store"),
                format!("'{other}' is not a store this gateway speaks; use chroma"),
            ))
        }
    }
    let cluster = raw.cluster.ok_or_else(|| {
        err(
            format!("{AT}.cluster"),
            "required: the Envoy cluster of the store (a cluster of its own, not a provider's)",
        )
    })?;
    if cluster.is_empty() {
        return Err(err(format!("{AT}.cluster"), "must not be empty"));
    }
    let key_env = raw.key_env.unwrap_or_else(|| DEFAULT_KEY_ENV.into());
    if !is_env_name(&key_env) {
        return Err(err(
            format!("{AT}.key_env"),
            format!("'{key_env}' is not an environment variable name"),
        ));
    }
    let key_text = env(&key_env).filter(|v| !v.is_empty()).ok_or_else(|| {
        err(
            format!("{AT}.key_env"),
            format!("{key_env} is not set in Envoy's environment (or not in the VM's host_env_keys); the shared tier seals every entry with it and is refused without it"),
        )
    })?;
    let key = SealKey::parse(&key_text)
        .map_err(|why| err(format!("{AT}.key_env"), format!("{key_env} {why}")))?;
    let timeout_ms = timeout(raw.timeout_ms, DEFAULT_TIMEOUT_MS, "timeout_ms")?;
    let write_timeout_ms = timeout(
        raw.write_timeout_ms,
        DEFAULT_WRITE_TIMEOUT_MS,
        "write_timeout_ms",
    )?;
    let chroma = raw.chroma.unwrap_or(RawChroma {
        tenant: None,
        database: None,
        collection: None,
        vector_collection: None,
    });
    let name = |value: Option<String>, default: &str, field: &str| {
        let value = value.unwrap_or_else(|| default.into());
        if chroma_name(&value) {
            Ok(value)
        } else {
            Err(err(
                format!("{AT}.chroma.{field}"),
                format!("'{value}' is not a Chroma name: 3 to 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"),
            ))
        }
    };
    let exact = Chroma {
        tenant: name(chroma.tenant, "default_tenant", "tenant")?,
        database: name(chroma.database, "default_database", "database")?,
        collection: name(chroma.collection, "ai_gateway_cache", "collection")?,
    };
    let default_vectors = format!("{}_vectors", exact.collection);
    let vectors = Chroma {
        collection: name(
            chroma.vector_collection,
            &default_vectors,
            "vector_collection",
        )?,
        ..exact.clone()
    };
    if vectors.collection == exact.collection {
        return Err(err(
            format!("{AT}.chroma.vector_collection"),
            "must differ from the collection of exact entries (Chroma fixes a collection's dimension at its first record)",
        ));
    }
    Ok(SharedTier {
        store: Store::Chroma(exact),
        vectors: Store::Chroma(vectors),
        cluster,
        key,
        timeout_ms,
        write_timeout_ms,
    })
}

fn timeout(value: Option<u64>, default: u64, field: &str) -> Result<u64, ConfigError> {
    let ms = value.unwrap_or(default);
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(err(
            format!("cache.shared.{field}"),
            format!("milliseconds between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(ms)
}

/// Chroma's rule for collection names (3-63 characters of `[a-zA-Z0-9._-]`, alphanumeric at
/// both ends), applied to every name that goes into a path.
fn chroma_name(s: &str) -> bool {
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (3..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && ok_end(s.chars().next())
        && ok_end(s.chars().last())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;

    use super::*;

    fn key() -> String {
        base64::engine::general_purpose::STANDARD.encode([5u8; 32])
    }

    fn compile_with(
        v: Value,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SharedTier, ConfigError> {
        compile(&v, env)
    }

    fn compile_json(v: Value) -> Result<SharedTier, ConfigError> {
        compile_with(v, &|name| (name == "GATEWAY_CACHE_KEY").then(key))
    }

    #[test]
    fn defaults() {
        let t = compile_json(json!({"cluster": "chroma"})).unwrap();
        assert_eq!(t.timeout_ms, 50);
        assert_eq!(t.write_timeout_ms, 1000);
        assert_eq!(
            t.store,
            Store::Chroma(Chroma {
                tenant: "default_tenant".into(),
                database: "default_database".into(),
                collection: "ai_gateway_cache".into(),
            })
        );
        assert_eq!(
            t.vectors,
            Store::Chroma(Chroma {
                tenant: "default_tenant".into(),
                database: "default_database".into(),
                collection: "ai_gateway_cache_vectors".into(),
            })
        );
        assert_eq!(
            t.collection_call().path,
            "/api/v2/tenants/default_tenant/databases/default_database/collections"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({}), "cache.shared.cluster"),
            (json!({"cluster": ""}), "cache.shared.cluster"),
            (
                json!({"cluster": "c", "store": "redis"}),
                "cache.shared.store",
            ),
            (
                json!({"cluster": "c", "key_env": "NOT-A-NAME"}),
                "cache.shared.key_env",
            ),
            (
                json!({"cluster": "c", "key_env": "UNSET_KEY"}),
                "cache.shared.key_env",
            ),
            (
                json!({"cluster": "c", "timeout_ms": 0}),
                "cache.shared.timeout_ms",
            ),
            (
                json!({"cluster": "c", "write_timeout_ms": 60001}),
                "cache.shared.write_timeout_ms",
            ),
            (
                json!({"cluster": "c", "chroma": {"collection": "a/b"}}),
                "cache.shared.chroma.collection",
            ),
            (
                json!({"cluster": "c", "chroma": {"tenant": "x"}}),
                "cache.shared.chroma.tenant",
            ),
            (
                json!({"cluster": "c", "chroma": {"database": "-db"}}),
                "cache.shared.chroma.database",
            ),
            (
                json!({"cluster": "c", "chroma": {"space": "l2"}}),
                "cache.shared",
            ),
            (json!({"cluster": "c", "ttl": 3}), "cache.shared"),
            (
                json!({"cluster": "c", "chroma": {"collection": "x".repeat(60)}}),
                "cache.shared.chroma.vector_collection",
            ),
            (
                json!({"cluster": "c", "chroma": {"collection": "same", "vector_collection": "same"}}),
                "cache.shared.chroma.vector_collection",
            ),
        ];
        for (doc, field) in cases {
            let e = compile_json(doc.clone()).unwrap_err();
            assert_eq!(e.field, field, "{doc}: {e}");
        }
    }

    #[test]
    fn a_missing_or_bad_key_is_refused_without_showing_it() {
        let e = compile_with(json!({"cluster": "chroma"}), &|_| None).unwrap_err();
        assert_eq!(e.field, "cache.shared.key_env");
        assert!(e.message.contains("GATEWAY_CACHE_KEY is not set"), "{e}");
        let short = base64::engine::general_purpose::STANDARD.encode(b"sixteen byte key");
        let e = compile_with(json!({"cluster": "chroma"}), &|_| Some(short.clone())).unwrap_err();
        assert_eq!(e.field, "cache.shared.key_env");
        assert!(!e.message.contains(&short), "{e}");
        let t = compile_with(json!({"cluster": "chroma", "key_env": "MY_KEY"}), &|n| {
            (n == "MY_KEY").then(key)
        });
        assert!(t.is_ok());
    }
}
