//! Gateway keys ("virtual keys"): who may call the gateway, for which models, within which
//! limits and budgets. Owns the `keys`, `teams` and `model_limits` sections of the plugin
//! configuration, compiled at plugin start (unknown fields refused, every reference checked,
//! errors naming the field path), and the lookup of a request's key in constant time.
//!
//! ```json
//! {
//!   "teams": {
//!     "search": {
//!       "limits":  {"requests_per_minute": 600, "tokens_per_minute": 200000},
//!       "budgets": {"usd_per_day": 50, "usd_per_month": 1000}
//!     }
//!   },
//!   "keys": {
//!     "search-backend": {
//!       "sha256": "<64 hex digits: SHA-256 of the key the client sends>",
//!       "team": "search",
//!       "models": ["gpt-4o-mini", "text-embedding-3-small"],
//!       "limits":  {"requests_per_minute": 60, "tokens_per_minute": 50000},
//!       "budgets": {"usd_per_day": 5, "usd_per_month": 100}
//!     },
//!     "alice":   {"key_env": "GATEWAY_KEY_ALICE", "models": ["demo-chat"]},
//!     "old-app": {"sha256": "<hex>", "revoked": true}
//!   },
//!   "model_limits": {
//!     "gpt-4o": {"requests_per_minute": 500, "tokens_per_minute": 30000}
//!   }
//! }
//! ```
//!
//! - `keys` absent: the gateway is open (no key is asked for); present, it must hold at least one
//!   key and every request must carry one. Each key has exactly one of `sha256` (the hex SHA-256
//!   of the key, so the configuration never holds a usable key) or `key_env` (an environment
//!   variable holding the key itself, hashed at plugin start; unset is a configuration error).
//!   Key and team ids are `[A-Za-z0-9_-]{1,64}`: they appear in stats names, logs and counters.
//! - `team` (optional) names an entry of `teams`; the team's limits and budgets apply to all its
//!   keys together, on top of the key's own. `models` (optional, absent = every model) lists the
//!   model (or route) names the key may use; each must be configured.
//! - `revoked: true` keeps the key known (its id shows in logs) but answers 401.
//! - Limits are per minute and count requests and tokens (prompt + completion); budgets are US
//!   dollars per UTC day and per UTC month, held as integer micro-dollars. Every number must be
//!   at least 1 (a key that may do nothing is `revoked`).
//! - `model_limits` caps a model for all callers together (e.g. the provider's own quota).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::error::GatewayError;
use crate::quota::{Charge, Counter, Kind, Scope, Window};
use crate::sha256;

mod config;

pub use config::compile;

/// Longest key or team id.
pub const MAX_ID_LEN: usize = 64;

/// Per-minute limits of a key, a team or a model. `None`: not limited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

/// Spending limits in micro-dollars per UTC day and UTC month. `None`: not limited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    pub micros_per_day: Option<u64>,
    pub micros_per_month: Option<u64>,
}

/// One configured gateway key. Holds the SHA-256 of the key, never the key; `Debug` shows
/// neither.
#[derive(Clone)]
pub struct Key {
    pub id: String,
    pub team: Option<String>,
    /// Allowed model (or route) names; `None` = all.
    pub models: Option<BTreeSet<String>>,
    pub revoked: bool,
    pub limits: Limits,
    pub budgets: Budgets,
    /// Request and response bodies of this key go to the body log (with the model's own switch).
    pub log_bodies: bool,
    /// The client networks this key may be used from (`None`: anywhere).
    pub networks: Option<Vec<crate::guard::network::Cidr>>,
    hash: [u8; 32],
}

impl Key {
    /// Whether this key may use `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("models", &self.models)
            .field("revoked", &self.revoked)
            .field("limits", &self.limits)
            .field("budgets", &self.budgets)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    pub limits: Limits,
    pub budgets: Budgets,
}

/// The raw JSON of the sections this module owns, each `None` when absent from the document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sections<'a> {
    pub keys: Option<&'a Value>,
    pub teams: Option<&'a Value>,
    pub model_limits: Option<&'a Value>,
}

/// The compiled key configuration.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// `true` when the configuration has a `keys` section: every request needs a key.
    required: bool,
    keys: Vec<Key>,
    teams: BTreeMap<String, Team>,
    model_limits: BTreeMap<String, Limits>,
}

/// Why a request was not let in. `Display` names the key id at most, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer …` and no `x-api-key`.
    Missing,
    /// A key that matches no configured key.
    Unknown,
    Revoked {
        key_id: String,
    },
    ModelNotAllowed {
        key_id: String,
        model: String,
    },
}

impl AuthError {
    /// 401 for missing, unknown and revoked keys; 403 for a model the key may not use.
    pub fn status(&self) -> u32 {
        match self {
            Self::Missing | Self::Unknown | Self::Revoked { .. } => 401,
            Self::ModelNotAllowed { .. } => 403,
        }
    }

    /// A stable machine-readable reason, for the OpenAI error `code` and for stats.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_api_key",
            Self::Unknown => "invalid_api_key",
            Self::Revoked { .. } => "revoked_api_key",
            Self::ModelNotAllowed { .. } => "model_not_allowed",
        }
    }

    /// The key id, when the key was recognised.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Missing | Self::Unknown => None,
            Self::Revoked { key_id } | Self::ModelNotAllowed { key_id, .. } => Some(key_id),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str(
                "You didn't provide an API key. Send your gateway key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
            ),
            Self::Unknown => f.write_str("Incorrect API key provided."),
            Self::Revoked { key_id } => write!(f, "The API key '{key_id}' has been revoked."),
            Self::ModelNotAllowed { key_id, model } => write!(
                f,
                "The API key '{key_id}' may not use the model '{model}'."
            ),
        }
    }
}

impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> Self {
        GatewayError::Auth {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// What a request estimates it will use, for the two-phase accounting of [`crate::quota`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Prompt estimate + `max_tokens` (or the default completion allowance).
    pub tokens: u64,
    /// The estimated cost in micro-dollars; `None` when the model has no price (budgets are
    /// then still checked, but this request adds nothing to them).
    pub cost_micros: Option<u64>,
}

/// The key a request presents: `Authorization: Bearer <key>` first, else `x-api-key`.
/// `None` when neither holds a non-empty key (another `Authorization` scheme counts as none).
pub fn presented_key<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|v| {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
    });
    bearer
        .filter(|k| !k.is_empty())
        .or_else(|| x_api_key.map(str::trim).filter(|k| !k.is_empty()))
}

impl Keys {
    /// Whether requests must carry a key (the configuration has a `keys` section).
    pub fn required(&self) -> bool {
        self.required
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn key(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.get(id)
    }

    pub fn model_limits(&self, model: &str) -> Limits {
        self.model_limits.get(model).copied().unwrap_or_default()
    }

    /// Finds the configured key for the request's headers. The presented key is hashed and
    /// compared with every configured hash, always all of them and without an early exit,
    /// so the time taken does not tell which key (or how much of a hash) matched.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        x_api_key: Option<&str>,
    ) -> Result<&Key, AuthError> {
        let presented = presented_key(authorization, x_api_key).ok_or(AuthError::Missing)?;
        let digest = sha256::digest(presented.as_bytes());
        let found = constant_time_find(&digest, self.keys.iter().map(|k| &k.hash));
        let key = found
            .and_then(|i| self.keys.get(i))
            .ok_or(AuthError::Unknown)?;
        if key.revoked {
            return Err(AuthError::Revoked {
                key_id: key.id.clone(),
            });
        }
        Ok(key)
    }

    /// Refuses a model (or route) the key may not use.
    pub fn authorize(&self, key: &Key, model: &str) -> Result<(), AuthError> {
        if key.allows(model) {
            Ok(())
        } else {
            Err(AuthError::ModelNotAllowed {
                key_id: key.id.clone(),
                model: model.to_string(),
            })
        }
    }

    /// The counters a request must be admitted by, in a fixed order (key, team, model; requests,
    /// tokens, then budgets), for [`crate::quota::reserve`]. `key` is `None` on an open gateway.
    pub fn charges(&self, key: Option<&Key>, model: &str, estimate: &Estimate) -> Vec<Charge> {
        let mut out = Vec::new();
        if let Some(key) = key {
            push_limits(&mut out, Scope::Key, &key.id, &key.limits, estimate);
            if let Some(team) = key.team.as_deref().and_then(|t| self.teams.get(t)) {
                push_limits(&mut out, Scope::Team, &team.id, &team.limits, estimate);
            }
        }
        push_limits(
            &mut out,
            Scope::Model,
            model,
            &self.model_limits(model),
            estimate,
        );
        if let Some(key) = key {
            push_budgets(&mut out, Scope::Key, &key.id, &key.budgets, estimate);
            if let Some(team) = key.team.as_deref().and_then(|t| self.teams.get(t)) {
                push_budgets(&mut out, Scope::Team, &team.id, &team.budgets, estimate);
            }
        }
        out
    }
}

fn push_limits(
    out: &mut Vec<Charge>,
    scope: Scope,
    id: &str,
    limits: &Limits,
    estimate: &Estimate,
) {
    let rows = [
        (Kind::Requests, limits.requests_per_minute, 1),
        (Kind::Tokens, limits.tokens_per_minute, estimate.tokens),
    ];
    for (kind, limit, amount) in rows {
        if let Some(limit) = limit {
            out.push(Charge {
                counter: Counter::new(scope, id, kind, Window::Minute, limit),
                amount,
            });
        }
    }
}

fn push_budgets(
    out: &mut Vec<Charge>,
    scope: Scope,
    id: &str,
    budgets: &Budgets,
    estimate: &Estimate,
) {
    let amount = estimate.cost_micros.unwrap_or(0);
    let rows = [
        (Window::Day, budgets.micros_per_day),
        (Window::Month, budgets.micros_per_month),
    ];
    for (window, limit) in rows {
        if let Some(limit) = limit {
            out.push(Charge {
                counter: Counter::new(scope, id, Kind::Cost, window, limit),
                amount,
            });
        }
    }
}

/// The index of the entry equal to `digest`, comparing every byte of every entry whatever
/// matches (the result is folded in with masks, not branches).
fn constant_time_find<'a>(
    digest: &[u8; 32],
    hashes: impl Iterator<Item = &'a [u8; 32]>,
) -> Option<usize> {
    // `found` holds index + 1 of the match (0: none); configured hashes are unique.
    let mut found: usize = 0;
    for (i, hash) in hashes.enumerate() {
        let diff = hash
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        // 1 when diff == 0, else 0, without a branch.
        let equal = (u32::from(std::hint::black_box(diff)).wrapping_sub(1) >> 31) as usize;
        found |= equal.wrapping_neg() & (i + 1);
    }
    found.checked_sub(1)
}

#[cfg(test)]
mod tests;
