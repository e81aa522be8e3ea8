//! What the gateway does with the service's answer to one call: allowed, over the limit (the
//! 429's headers), or failed (per the failure mode); and the budget thresholds a call crossed.

use super::codec::{Code, DescriptorStatus, RateLimitResponse};
use super::config::{FailureMode, Service};
use crate::quota::{self, Kind};

impl Service {
    /// The verdict for a call's outcome: `grpc_status` as given to `on_grpc_call_response`
    /// (0 = OK) and the response body. `UNKNOWN` counts as allowed, as in Envoy's own rate
    /// limit filter; transport errors, non-zero statuses and undecodable bodies follow the
    /// failure mode.
    pub fn verdict(&self, kind: Kind, grpc_status: u32, body: Option<&[u8]>) -> Verdict {
        let failed = |reason: String| Verdict::Failed {
            allowed: self.failure_mode == FailureMode::Allow,
            reason,
        };
        if grpc_status != 0 {
            return failed(format!("gRPC status {grpc_status}"));
        }
        let response = match RateLimitResponse::decode(body.unwrap_or_default()) {
            Ok(r) => r,
            Err(e) => return failed(e.to_string()),
        };
        match response.overall_code {
            Code::OverLimit => {
                let over = response
                    .statuses
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.code == Code::OverLimit);
                let retry_after = over
                    .clone()
                    .filter_map(|(_, s)| {
                        s.duration_until_reset
                            .map(|d| d.ceil_seconds())
                            .or_else(|| s.current_limit.as_ref()?.unit.seconds())
                    })
                    .max()
                    .unwrap_or(60)
                    .max(1);
                let descriptor = over.clone().map(|(i, _)| i).next();
                let mut headers = vec![("retry-after", retry_after.to_string())];
                if let Some((_, s)) = over.min_by_key(|(_, s)| s.limit_remaining) {
                    push_openai_headers(&mut headers, kind, s);
                }
                Verdict::OverLimit {
                    retry_after,
                    descriptor,
                    headers,
                    service_headers: response.response_headers_to_add,
                }
            }
            Code::Ok | Code::Unknown => Verdict::Allowed {
                statuses: response.statuses,
                service_headers: response.response_headers_to_add,
            },
            Code::Other(n) => failed(format!("unknown overall_code {n}")),
        }
    }
}

fn push_openai_headers(out: &mut Vec<(&'static str, String)>, kind: Kind, s: &DescriptorStatus) {
    let names = match kind {
        Kind::Requests => [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ],
        Kind::Tokens => [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ],
        Kind::Cost => return,
    };
    let [l, r, t] = names;
    if let Some(limit) = &s.current_limit {
        out.push((l, limit.requests_per_unit.to_string()));
    }
    out.push((r, s.limit_remaining.to_string()));
    if let Some(d) = s.duration_until_reset {
        out.push((t, quota::duration_text(d.ceil_seconds())));
    }
}

/// What the gateway does with a call's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limits (or none applies).
    Allowed {
        statuses: Vec<DescriptorStatus>,
        service_headers: Vec<(String, String)>,
    },
    /// Over a limit: answer 429 with `headers` (`retry-after` and, for requests and tokens,
    /// `x-ratelimit-*` of the tightest descriptor over its limit).
    OverLimit {
        retry_after: u64,
        /// Index in the request's descriptors of the first one over its limit.
        descriptor: Option<usize>,
        headers: Vec<(&'static str, String)>,
        service_headers: Vec<(String, String)>,
    },
    /// The service failed: `allowed` per the failure mode. Count it in a stat.
    Failed { allowed: bool, reason: String },
}

/// Budget thresholds (80/90/100 %) that a call of `hits` moved a descriptor across, from what
/// the service reports after counting them (`requests_per_unit`, `limit_remaining`). The
/// service counts atomically, so exactly one caller sees each crossing. Only `OK` statuses
/// count (an over-limit call was not admitted).
pub fn crossed_thresholds(status: &DescriptorStatus, hits: u32) -> Vec<u8> {
    if status.code != Code::Ok {
        return Vec::new();
    }
    let Some(limit) = status
        .current_limit
        .as_ref()
        .map(|l| u64::from(l.requests_per_unit))
    else {
        return Vec::new();
    };
    let after = limit.saturating_sub(u64::from(status.limit_remaining));
    let before = after.saturating_sub(u64::from(hits));
    quota::THRESHOLDS
        .into_iter()
        .filter(|p| {
            let line = u128::from(*p) * u128::from(limit);
            u128::from(before) * 100 < line && line <= u128::from(after) * 100
        })
        .collect()
}
