//! Which provider serves a request: a model name maps to a route, a set of targets (provider +
//! that provider's model + weight, quality, tier, price) and a strategy. Content rules pick a
//! tier, the strategy (weighted, cost, latency) picks the primary target within it, and the
//! fallback chain is the primary followed by the tier's other targets in configured order.
//! Envoy carries the chain out through its retries (see `wasm/upstream.rs`).
//!
//! Pure: what the gateway has observed of each target (latency, rate-limit headroom) and a
//! random number come in as arguments.

use serde_json::Value;

use crate::error::{invalid, GatewayError};
use crate::pricing::{self, Price};
use crate::provider::Provider;

mod config;

pub use config::{compile_model, Model};

/// Longest fallback chain; `envoy/envoy.yaml` has a route `chain1` … `chain4` for each length.
pub const MAX_CHAIN: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Index into `Config::providers`.
    pub provider: usize,
    /// The name the provider knows the model by.
    pub upstream_model: String,
    pub weight: u32,
    /// Higher is better; the cost strategy's floor compares against it.
    pub quality: u32,
    pub tier: Option<String>,
    pub price: Option<Price>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyMetric {
    Total,
    FirstToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// By weight (random, or sticky per user).
    Weighted,
    /// The cheapest estimated cost at or above a quality floor, with rate-limit headroom.
    Cost { min_quality: u32 },
    /// The lowest observed latency, with a share of requests exploring the others.
    Latency {
        metric: LatencyMetric,
        exploration_permille: u32,
    },
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Cost { .. } => "cost",
            Self::Latency { .. } => "latency",
        }
    }
}

/// A content rule: when every stated condition holds, the request goes to a tier.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Condition {
    pub min_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
    pub images: Option<bool>,
    pub tools: Option<bool>,
    pub code: Option<bool>,
    /// Lowercase; any one matches.
    pub keywords: Vec<String>,
    /// Matched against the message texts as sent (use `(?i)` for any case).
    pub regex: Option<Pattern>,
}

/// A compiled regular expression, compared by its source.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex_lite::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub when: Condition,
    pub tier: String,
}

/// An external router consulted before the pick (a Not Diamond-style API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classifier {
    /// The Envoy cluster that reaches it.
    pub cluster: String,
    pub path: String,
    pub timeout_ms: u64,
    /// Used when it fails, is slow, or answers a target the route does not have.
    pub default_tier: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub targets: Vec<Target>,
    pub strategy: Strategy,
    /// Hash the request's `user` so one user stays on one target.
    pub sticky_user: bool,
    pub rules: Vec<Rule>,
    /// The tier when no rule matches (else every target).
    pub default_tier: Option<String>,
    pub fallback: bool,
    pub classifier: Option<Classifier>,
}

impl Route {
    /// Some rule reads the message texts (keywords, a regular expression, code): only then
    /// does parsing gather them ([`Facts::text`]).
    pub fn reads_text(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.when.code.is_some() || !r.when.keywords.is_empty() || r.when.regex.is_some())
    }
}

/// What routing may know of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    pub images: bool,
    pub tools: bool,
    pub code: bool,
    /// Every message text, lowercase (for keyword rules).
    pub text: String,
    /// Every message text as sent (for regex rules).
    pub raw_text: String,
    pub user: Option<String>,
}

/// What the gateway has observed of a target (kept in shared data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    pub latency_ms: Option<u64>,
    pub first_token_ms: Option<u64>,
    /// Unix seconds until which the provider said (429, `retry-after`, remaining 0) not to send.
    pub limited_until: u64,
}

impl Observed {
    /// The shared-data key of a target's observations.
    pub fn key(provider: &str, model: &str) -> String {
        format!("gw.observed.{provider}.{model}")
    }

    /// `latency_ms,first_token_ms,limited_until`, empty fields for unknown.
    pub fn encode(&self) -> Vec<u8> {
        let f = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{},{},{}",
            f(self.latency_ms),
            f(self.first_token_ms),
            self.limited_until
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let mut fields = text.split(',').map(|f| f.parse::<u64>().ok());
        Self {
            latency_ms: fields.next().flatten(),
            first_token_ms: fields.next().flatten(),
            limited_until: fields.next().flatten().unwrap_or(0),
        }
    }

    /// Folds one response in: a moving average weighing the newest sample one fifth.
    pub fn with_sample(self, latency_ms: u64, first_token_ms: Option<u64>) -> Self {
        let ewma = |old: Option<u64>, new: u64| Some(old.map_or(new, |o| (o * 4 + new) / 5));
        Self {
            latency_ms: ewma(self.latency_ms, latency_ms),
            first_token_ms: match first_token_ms {
                Some(t) => ewma(self.first_token_ms, t),
                None => self.first_token_ms,
            },
            limited_until: self.limited_until,
        }
    }
}

/// The outcome: the chain of target indices, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub chain: Vec<usize>,
    pub strategy: &'static str,
    pub reason: String,
}

/// Everything a decision depends on besides the route.
pub struct Inputs<'a> {
    pub providers: &'a [Provider],
    pub facts: &'a Facts,
    pub observed: &'a dyn Fn(&Target) -> Observed,
    pub random: u64,
    pub now_unix: u64,
    /// A provider id the caller pinned with the `x-gateway-provider` header.
    pub pinned: Option<&'a str>,
    /// The classifier's choice: a tier, or a target given as (provider id, model).
    pub classified: Option<Classified>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Target {
        provider: String,
        model: String,
    },
    /// It failed or was slow: its default applies.
    Failed(String),
}

/// `eligible` says which targets may serve at all (provider switched on, operation offered).
pub fn decide(
    route: &Route,
    inp: &Inputs,
    eligible: &dyn Fn(&Target) -> bool,
) -> Result<Decision, GatewayError> {
    let mut why = Vec::new();
    let mut candidates: Vec<usize> = (0..route.targets.len())
        .filter(|&i| route.targets.get(i).is_some_and(eligible))
        .collect();
    if let Some(pin) = inp.pinned {
        candidates.retain(|&i| provider_id(route, inp, i) == Some(pin));
        if candidates.is_empty() {
            return Err(invalid(
                "x-gateway-provider",
                format!("This model has no target on provider '{pin}'."),
            ));
        }
        why.push(format!("pinned to {pin}"));
    }
    let mut tier = None;
    match &inp.classified {
        Some(Classified::Target { provider, model }) => {
            let chosen = candidates.iter().copied().find(|&i| {
                provider_id(route, inp, i) == Some(provider.as_str())
                    && route
                        .targets
                        .get(i)
                        .is_some_and(|t| &t.upstream_model == model)
            });
            match chosen {
                Some(i) => {
                    return Ok(chain_from(
                        route,
                        &candidates,
                        i,
                        "classifier",
                        why_with(why, format!("classifier chose {provider}/{model}")),
                    ))
                }
                None => {
                    tier = route
                        .classifier
                        .as_ref()
                        .and_then(|c| c.default_tier.clone());
                    why.push(format!(
                        "classifier chose {provider}/{model}, not a target: default"
                    ));
                }
            }
        }
        Some(Classified::Failed(reason)) => {
            tier = route
                .classifier
                .as_ref()
                .and_then(|c| c.default_tier.clone());
            why.push(format!("classifier {reason}: default"));
        }
        None => {}
    }
    if tier.is_none() {
        if let Some((n, rule)) = route
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| matches(&r.when, inp.facts))
        {
            tier = Some(rule.tier.clone());
            why.push(format!("rule {} -> tier {}", n + 1, rule.tier));
        } else if let Some(default) = &route.default_tier {
            tier = Some(default.clone());
            why.push(format!("default tier {default}"));
        }
    }
    if let Some(tier) = &tier {
        let in_tier: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| route.targets.get(i).and_then(|t| t.tier.as_ref()) == Some(tier))
            .collect();
        if in_tier.is_empty() {
            why.push(format!("no target in tier {tier}: all"));
        } else {
            candidates = in_tier;
        }
    }
    let (primary, reason) = match &route.strategy {
        Strategy::Weighted => pick_weighted(route, &candidates, inp),
        Strategy::Cost { min_quality } => pick_cheapest(route, &candidates, inp, *min_quality),
        Strategy::Latency {
            metric,
            exploration_permille,
        } => pick_fastest(route, &candidates, inp, *metric, *exploration_permille),
    };
    why.push(reason);
    Ok(chain_from(
        route,
        &candidates,
        primary,
        route.strategy.name(),
        why,
    ))
}

fn why_with(mut why: Vec<String>, more: String) -> Vec<String> {
    why.push(more);
    why
}

fn chain_from(
    route: &Route,
    candidates: &[usize],
    primary: usize,
    strategy: &'static str,
    why: Vec<String>,
) -> Decision {
    let mut chain = vec![primary];
    if route.fallback {
        chain.extend(candidates.iter().copied().filter(|&i| i != primary));
    }
    chain.truncate(MAX_CHAIN);
    Decision {
        chain,
        strategy,
        reason: why.join("; "),
    }
}

fn provider_id<'a>(route: &Route, inp: &Inputs<'a>, i: usize) -> Option<&'a str> {
    route
        .targets
        .get(i)
        .and_then(|t| inp.providers.get(t.provider))
        .map(|p| p.id.as_str())
}

fn matches(c: &Condition, f: &Facts) -> bool {
    c.min_tokens.is_none_or(|m| f.prompt_tokens >= m)
        && c.max_tokens.is_none_or(|m| f.prompt_tokens <= m)
        && c.images.is_none_or(|b| b == f.images)
        && c.tools.is_none_or(|b| b == f.tools)
        && c.code.is_none_or(|b| b == f.code)
        && (c.keywords.is_empty() || c.keywords.iter().any(|k| f.text.contains(k.as_str())))
        && c.regex.as_ref().is_none_or(|r| r.0.is_match(&f.raw_text))
}

fn pick_weighted(route: &Route, candidates: &[usize], inp: &Inputs) -> (usize, String) {
    let weight = |i: &usize| u64::from(route.targets.get(*i).map_or(0, |t| t.weight));
    let total: u64 = candidates.iter().map(weight).sum();
    let (roll, how) = match (&inp.facts.user, route.sticky_user) {
        (Some(user), true) => (hash(user.as_bytes()), "sticky by user"),
        _ => (inp.random, "random"),
    };
    let first = candidates.first().copied().unwrap_or(0);
    if total == 0 {
        return (first, "weighted: all weights 0, first".into());
    }
    let mut point = roll % total;
    for &i in candidates {
        let w = weight(&i);
        if point < w {
            return (i, format!("weighted {w}/{total} ({how})"));
        }
        point -= w;
    }
    (first, "weighted".into())
}

/// Estimated micro-dollars of the request on a target: prompt tokens at the input price and
/// `max_tokens` (or 256) at the output price.
fn estimated_cost(t: &Target, facts: &Facts) -> Option<u64> {
    let price = t.price?;
    let output = facts.max_tokens.unwrap_or(256);
    let usage = crate::usage::Usage {
        prompt: facts.prompt_tokens,
        completion: output,
        total: facts.prompt_tokens + output,
        ..Default::default()
    };
    Some(pricing::cost_micros(&usage, &price))
}

fn pick_cheapest(
    route: &Route,
    candidates: &[usize],
    inp: &Inputs,
    min_quality: u32,
) -> (usize, String) {
    let mut best: Option<(u64, usize)> = None;
    let mut skipped = 0;
    for &i in candidates {
        let Some(t) = route.targets.get(i) else {
            continue;
        };
        if t.quality < min_quality {
            continue;
        }
        if (inp.observed)(t).limited_until > inp.now_unix {
            skipped += 1;
            continue;
        }
        // A target without a price is never the "cheapest".
        let Some(cost) = estimated_cost(t, inp.facts) else {
            continue;
        };
        if best.is_none_or(|(b, _)| cost < b) {
            best = Some((cost, i));
        }
    }
    match best {
        Some((cost, i)) => {
            let note = if skipped > 0 {
                format!(", {skipped} rate-limited skipped")
            } else {
                String::new()
            };
            (
                i,
                format!("cheapest est ${}{note}", pricing::format_dollars(cost)),
            )
        }
        // Nothing qualifies (all limited, or below the floor): the first candidate still tries.
        None => (
            candidates.first().copied().unwrap_or(0),
            "no target qualifies: first".into(),
        ),
    }
}

fn pick_fastest(
    route: &Route,
    candidates: &[usize],
    inp: &Inputs,
    metric: LatencyMetric,
    exploration_permille: u32,
) -> (usize, String) {
    // One shared-data read per candidate: (index, latency, limited until).
    let observed: Vec<(usize, Option<u64>, u64)> = candidates
        .iter()
        .filter_map(|&i| {
            let o = (inp.observed)(route.targets.get(i)?);
            let latency = match metric {
                LatencyMetric::Total => o.latency_ms,
                LatencyMetric::FirstToken => o.first_token_ms,
            };
            Some((i, latency, o.limited_until))
        })
        .collect();
    let live: Vec<_> = observed
        .iter()
        .filter(|(_, _, until)| *until <= inp.now_unix)
        .copied()
        .collect();
    let pool = if live.is_empty() { &observed } else { &live };
    if pool.len() > 1 && inp.random % 1000 < u64::from(exploration_permille) {
        let pick = pool.get(((inp.random / 1000) % pool.len() as u64) as usize);
        return (pick.map_or(0, |(i, _, _)| *i), "exploring".into());
    }
    // A target never measured goes first: that is how it gets measured.
    match pool
        .iter()
        .min_by_key(|(_, latency, _)| latency.unwrap_or(0))
    {
        Some((i, Some(ms), _)) => (*i, format!("fastest {ms} ms")),
        Some((i, None, _)) => (*i, "not measured yet".into()),
        None => (
            candidates.first().copied().unwrap_or(0),
            "no target measured".into(),
        ),
    }
}

/// The classifier's choice from its answer: `{"providers": [{"provider", "model"}, ...]}`, the
/// first entry (Not Diamond's model-select shape).
pub fn classifier_choice(answer: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    let first = v.get("providers")?.get(0)?;
    Some((
        first.get("provider")?.as_str()?.to_string(),
        first.get("model")?.as_str()?.to_string(),
    ))
}

/// FNV-1a, for sticky picks: stable across VMs and restarts.
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Mixes a seed into a well-spread random number (splitmix64).
pub fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
