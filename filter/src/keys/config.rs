//! Compiling the `keys`, `teams` and `model_limits` sections (described in the module above):
//! unknown fields refused, every reference checked, keys from the environment hashed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::{Budgets, Key, Keys, Limits, Sections, Team, MAX_ID_LEN};
use crate::config_error::{err, is_env_name, ConfigError};
use crate::guard::network::Cidr;
use crate::sha256;

/// Largest budget accepted, in dollars (a typo guard, far above any real budget).
const MAX_BUDGET_USD: f64 = 1_000_000_000.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    sha256: Option<String>,
    key_env: Option<String>,
    team: Option<String>,
    models: Option<Vec<String>>,
    #[serde(default)]
    revoked: bool,
    limits: Option<RawLimits>,
    budgets: Option<RawBudgets>,
    /// This key's request and response bodies go to the body log.
    #[serde(default)]
    log_bodies: bool,
    /// Client networks (CIDR) this key may be used from; absent = anywhere.
    allowed_networks: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    limits: Option<RawLimits>,
    budgets: Option<RawBudgets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgets {
    usd_per_day: Option<f64>,
    usd_per_month: Option<f64>,
}

/// Compiles the `keys`, `teams` and `model_limits` sections. `is_model` tells whether a
/// model (or route) name is configured; `env` reads the environment (the VM's in Envoy).
pub fn compile(
    sections: Sections<'_>,
    is_model: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Keys, ConfigError> {
    let teams = compile_teams(sections.teams)?;
    let model_limits = compile_model_limits(sections.model_limits, is_model)?;
    let Some(raw_keys) = sections.keys else {
        if !teams.is_empty() {
            return Err(err(
                "teams",
                "teams are configured but there is no `keys` section to put keys in them",
            ));
        }
        return Ok(Keys {
            required: false,
            keys: Vec::new(),
            teams,
            model_limits,
        });
    };
    let raw_keys = object(raw_keys, "keys")?;
    if raw_keys.is_empty() {
        return Err(err(
            "keys",
            "at least one key is required; remove the section to run without keys",
        ));
    }
    let mut keys: Vec<Key> = Vec::with_capacity(raw_keys.len());
    for (id, value) in raw_keys {
        let key = compile_key(id, value, &teams, is_model, env)?;
        if let Some(other) = keys.iter().find(|k| k.hash == key.hash) {
            return Err(err(
                format!("keys.{id}"),
                format!("the same key is already configured as '{}'", other.id),
            ));
        }
        keys.push(key);
    }
    Ok(Keys {
        required: true,
        keys,
        teams,
        model_limits,
    })
}

fn object<'a>(
    value: &'a Value,
    at: &str,
) -> Result<&'a serde_json::Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| err(at, "must be an object"))
}

fn check_id(id: &str, at: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(err(
            at,
            format!("ids must be 1 to {MAX_ID_LEN} letters, digits, '_' or '-'"),
        ))
    }
}

fn compile_teams(value: Option<&Value>) -> Result<BTreeMap<String, Team>, ConfigError> {
    let mut teams = BTreeMap::new();
    let Some(value) = value else {
        return Ok(teams);
    };
    for (id, value) in object(value, "teams")? {
        let at = format!("teams.{id}");
        check_id(id, &at)?;
        let raw: RawTeam =
            serde_json::from_value(value.clone()).map_err(|e| err(&at, e.to_string()))?;
        teams.insert(
            id.clone(),
            Team {
                id: id.clone(),
                limits: compile_limits(raw.limits.as_ref(), &format!("{at}.limits"))?,
                budgets: compile_budgets(raw.budgets.as_ref(), &format!("{at}.budgets"))?,
            },
        );
    }
    Ok(teams)
}

fn compile_model_limits(
    value: Option<&Value>,
    is_model: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, Limits>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(value) = value else {
        return Ok(out);
    };
    for (model, value) in object(value, "model_limits")? {
        let at = format!("model_limits.{model}");
        if !is_model(model) {
            return Err(err(&at, format!("no model named '{model}'")));
        }
        let raw: RawLimits =
            serde_json::from_value(value.clone()).map_err(|e| err(&at, e.to_string()))?;
        out.insert(model.clone(), compile_limits(Some(&raw), &at)?);
    }
    Ok(out)
}

fn compile_key(
    id: &str,
    value: &Value,
    teams: &BTreeMap<String, Team>,
    is_model: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Key, ConfigError> {
    let at = format!("keys.{id}");
    check_id(id, &at)?;
    let raw: RawKey = serde_json::from_value(value.clone()).map_err(|e| err(&at, e.to_string()))?;
    let hash = match (&raw.sha256, &raw.key_env) {
        (Some(hex), None) => parse_sha256(hex).ok_or_else(|| {
            err(
                format!("{at}.sha256"),
                "must be 64 hex digits: the SHA-256 of the key (e.g. `printf %s \"$KEY\" | sha256sum`)",
            )
        })?,
        (None, Some(name)) => {
            let field = format!("{at}.key_env");
            if !is_env_name(name) {
                return Err(err(
                    field,
                    format!("'{name}' is not an environment variable name"),
                ));
            }
            let key = env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    err(
                        &field,
                        format!("the environment variable {name} is not set (or is empty)"),
                    )
                })?;
            sha256::digest(key.as_bytes())
        }
        _ => {
            return Err(err(
                &at,
                "needs exactly one of `sha256` (hash of the key) or `key_env` (variable holding the key)",
            ))
        }
    };
    if let Some(team) = &raw.team {
        if !teams.contains_key(team) {
            return Err(err(format!("{at}.team"), format!("no team named '{team}'")));
        }
    }
    let models = match raw.models {
        None => None,
        Some(list) => {
            let mut set = BTreeSet::new();
            for (i, model) in list.into_iter().enumerate() {
                if !is_model(&model) {
                    return Err(err(
                        format!("{at}.models[{i}]"),
                        format!("no model named '{model}'"),
                    ));
                }
                set.insert(model);
            }
            if set.is_empty() {
                return Err(err(
                    format!("{at}.models"),
                    "an empty list allows nothing; omit it to allow every model, or set `revoked`",
                ));
            }
            Some(set)
        }
    };
    let networks =
        match raw.allowed_networks {
            None => None,
            Some(list) if list.is_empty() => return Err(err(
                format!("{at}.allowed_networks"),
                "an empty list allows no client; omit it to allow every network, or set `revoked`",
            )),
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, n)| {
                        Cidr::parse(n).map_err(|e| err(format!("{at}.allowed_networks[{i}]"), e))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
    Ok(Key {
        id: id.to_string(),
        networks,
        team: raw.team,
        models,
        revoked: raw.revoked,
        limits: compile_limits(raw.limits.as_ref(), &format!("{at}.limits"))?,
        budgets: compile_budgets(raw.budgets.as_ref(), &format!("{at}.budgets"))?,
        log_bodies: raw.log_bodies,
        hash,
    })
}

fn compile_limits(raw: Option<&RawLimits>, at: &str) -> Result<Limits, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Limits::default());
    };
    let positive = |field: &str, v: Option<u64>| match v {
        Some(0) => Err(err(
            format!("{at}.{field}"),
            "must be at least 1 (omit it for no limit)",
        )),
        v => Ok(v),
    };
    Ok(Limits {
        requests_per_minute: positive("requests_per_minute", raw.requests_per_minute)?,
        tokens_per_minute: positive("tokens_per_minute", raw.tokens_per_minute)?,
    })
}

fn compile_budgets(raw: Option<&RawBudgets>, at: &str) -> Result<Budgets, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Budgets::default());
    };
    let micros = |field: &str, v: Option<f64>| -> Result<Option<u64>, ConfigError> {
        let Some(usd) = v else { return Ok(None) };
        let micros = (usd * 1_000_000.0).round();
        if !usd.is_finite() || usd > MAX_BUDGET_USD || micros < 1.0 {
            return Err(err(
                format!("{at}.{field}"),
                "must be a number of US dollars, at least 0.000001 (omit it for no budget)",
            ));
        }
        Ok(Some(micros as u64))
    };
    Ok(Budgets {
        micros_per_day: micros("usd_per_day", raw.usd_per_day)?,
        micros_per_month: micros("usd_per_month", raw.usd_per_month)?,
    })
}

pub(super) fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        let (hi, lo) = match pair {
            [h, l] => (digit(*h)?, digit(*l)?),
            _ => return None,
        };
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}
