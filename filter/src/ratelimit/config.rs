//! The `rate_limit_service` section: which cluster and domain to ask, how long to wait, what
//! to do when the service cannot answer, and which units to ask about.
//!
//! ```json
//! "rate_limit_service": {"cluster": "ratelimit", "domain": "ai-gateway", "timeout_ms": 200,
//!                        "failure_mode": "deny", "units": ["requests", "tokens", "cost"],
//!                        "cost_unit_usd": 0.0001}
//! ```

use serde::Deserialize;
use serde_json::Value;

use crate::config_error::{err, ConfigError};
use crate::quota::Kind;

const DEFAULT_TIMEOUT_MS: u64 = 200;
const MAX_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_COST_UNIT_MICROS: u64 = 100;

/// What to do when the service cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Let the request through (local limits still apply).
    Allow,
    /// Refuse the request.
    Deny,
}

/// The compiled `rate_limit_service` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The Envoy cluster (HTTP/2) of the service.
    pub cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
    pub failure_mode: FailureMode,
    /// The units asked about, one call each, in this order.
    pub units: Vec<Kind>,
    /// Micro-dollars per hit of a cost call.
    pub cost_unit_micros: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    cluster: String,
    domain: String,
    timeout_ms: Option<u64>,
    failure_mode: Option<String>,
    units: Option<Vec<String>>,
    cost_unit_usd: Option<f64>,
}

/// Compiles the `rate_limit_service` section found at `at` (its field path).
pub fn compile_service(value: &Value, at: &str) -> Result<Service, ConfigError> {
    let raw: RawService = RawService::deserialize(value).map_err(|e| err(at, e.to_string()))?;
    if raw.cluster.is_empty() {
        return Err(err(format!("{at}.cluster"), "must not be empty"));
    }
    if raw.domain.is_empty() {
        return Err(err(format!("{at}.domain"), "must not be empty"));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(err(
            format!("{at}.timeout_ms"),
            format!("must be between 1 and {MAX_TIMEOUT_MS}"),
        ));
    }
    let failure_mode = match raw.failure_mode.as_deref() {
        None | Some("allow") => FailureMode::Allow,
        Some("deny") => FailureMode::Deny,
        Some(other) => {
            return Err(err(
                format!("{at}.failure_mode"),
                format!("'{other}' is neither 'allow' nor 'deny'"),
            ))
        }
    };
    let units = match raw.units {
        None => vec![Kind::Requests, Kind::Tokens, Kind::Cost],
        Some(list) => {
            let mut units = Vec::new();
            for (i, name) in list.iter().enumerate() {
                let kind = [Kind::Requests, Kind::Tokens, Kind::Cost]
                    .into_iter()
                    .find(|k| k.name() == name)
                    .ok_or_else(|| {
                        err(
                            format!("{at}.units[{i}]"),
                            format!("'{name}' is not one of requests, tokens, cost"),
                        )
                    })?;
                if units.contains(&kind) {
                    return Err(err(
                        format!("{at}.units[{i}]"),
                        format!("'{name}' is repeated"),
                    ));
                }
                units.push(kind);
            }
            if units.is_empty() {
                return Err(err(format!("{at}.units"), "must name at least one unit"));
            }
            units
        }
    };
    let cost_unit_micros = match raw.cost_unit_usd {
        None => DEFAULT_COST_UNIT_MICROS,
        Some(usd) => {
            let micros = (usd * 1_000_000.0).round();
            if !usd.is_finite() || !(1.0..=1_000_000.0).contains(&micros) {
                return Err(err(
                    format!("{at}.cost_unit_usd"),
                    "must be between 0.000001 and 1 US dollar",
                ));
            }
            micros as u64
        }
    };
    Ok(Service {
        cluster: raw.cluster,
        domain: raw.domain,
        timeout_ms,
        failure_mode,
        units,
        cost_unit_micros,
    })
}
