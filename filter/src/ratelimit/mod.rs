//! Talking to a rate limit service over Envoy's standard API,
//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` (so envoyproxy/ratelimit,
//! Limitador and others work unchanged): the request for one unit (requests, tokens or cost)
//! with descriptors for key, team and model. Parts: [`config`] (the `rate_limit_service`
//! section), [`codec`] (the protobuf messages, written here: no protobuf crate in the .wasm) and
//! [`verdict`] (what an answer means, failure mode included).
//!
//! Descriptors the gateway sends, one call per unit because `hits_addend` counts for the whole
//! request: `[("unit", "requests"|"tokens"|"cost"), ("key", <key id>)]`, the same with
//! `("team", <team>)` and with `("model", <model>)`. `hits_addend` is 1 for requests, the token
//! estimate for tokens, and the cost in units of `cost_unit_usd` (default $0.0001) for cost.

pub mod codec;
pub mod config;
#[cfg(test)]
mod prost_messages;
pub mod verdict;

pub use codec::*;
pub use config::{compile_service, FailureMode, Service};
pub use verdict::{crossed_thresholds, Verdict};

use crate::quota::Kind;

/// The gRPC service and method of `dispatch_grpc_call`.
pub const GRPC_SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const GRPC_METHOD: &str = "ShouldRateLimit";

/// Who a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub key_id: Option<&'a str>,
    pub team: Option<&'a str>,
    pub model: &'a str,
}

impl Service {
    /// The hits of one call: 1 for requests, the tokens, or the cost in cost units (rounded
    /// up); at least 1 (0 means 1 to the service anyway) and at most `u32::MAX`.
    pub fn hits(&self, kind: Kind, amount: u64) -> u32 {
        let hits = match kind {
            Kind::Requests => 1,
            Kind::Tokens => amount,
            Kind::Cost => amount.div_ceil(self.cost_unit_micros.max(1)),
        };
        u32::try_from(hits.max(1)).unwrap_or(u32::MAX)
    }

    /// The request for one unit: descriptors `[unit, key]`, `[unit, team]`, `[unit, model]`
    /// (those that are known).
    pub fn request(&self, kind: Kind, subject: Subject<'_>, amount: u64) -> RateLimitRequest {
        let dims = [
            ("key", subject.key_id),
            ("team", subject.team),
            ("model", Some(subject.model)),
        ];
        let descriptors = dims
            .into_iter()
            .filter_map(|(name, value)| {
                let value = value.filter(|v| !v.is_empty())?;
                Some(Descriptor {
                    entries: vec![
                        ("unit".to_string(), kind.name().to_string()),
                        (name.to_string(), value.to_string()),
                    ],
                })
            })
            .collect();
        RateLimitRequest {
            domain: self.domain.clone(),
            descriptors,
            hits_addend: self.hits(kind, amount),
        }
    }
}

#[cfg(test)]
mod tests;
