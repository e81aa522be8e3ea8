//! The gateway's Envoy stats. Names follow the OpenTelemetry GenAI semantic conventions where
//! one exists (`gen_ai.client.token.usage`, ...; durations carry their unit in the name because
//! Envoy histograms hold integers). Labels are encoded in the stat name as `;label=value` and
//! lifted into Prometheus labels by the `stats_tags` of envoy/envoy.yaml, one regex per label.
//! Label values come from the configuration (model and provider names) or small fixed sets,
//! never from request text, so the number of series stays bounded.

/// `gen_ai.client.token.usage` (histogram): tokens per request, by `token_type` input/output.
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// `gen_ai.client.operation.duration` in milliseconds (histogram).
pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration.milliseconds";
/// `gen_ai.server.time_to_first_token` in milliseconds (histogram; streams).
pub const TIME_TO_FIRST_TOKEN: &str = "gen_ai.server.time_to_first_token.milliseconds";
/// `gen_ai.server.time_per_output_token` in microseconds (histogram; streams).
pub const TIME_PER_OUTPUT_TOKEN: &str = "gen_ai.server.time_per_output_token.microseconds";
/// Exact token totals by `token_type` (counter; Envoy's histogram sums are approximate).
pub const TOKENS: &str = "gw.tokens";
/// Requests by outcome (counter).
pub const REQUESTS: &str = "gw.requests";
/// Requests served by a fallback target, after the first attempt failed (counter).
pub const FALLBACKS: &str = "gw.fallbacks";
/// Requests answered 429, by the provider or the gateway (counter).
pub const RATE_LIMITED: &str = "gw.rate_limited";
/// Cost in micro-dollars (counter).
pub const COST: &str = "gw.cost.microdollars";
/// Calls to the global rate limit service that failed (counter, by `outcome`: allowed or
/// denied per the failure mode).
pub const RATE_LIMIT_SERVICE_FAILURES: &str = "gw.ratelimit_service.failures";
/// A budget or limit crossed 80, 90 or 100 % (counter, by `key_id`, `team`, `threshold`).
pub const THRESHOLD_CROSSINGS: &str = "gw.quota.threshold_crossings";
/// Requests with usage but no price for their model (counter): their cost is not counted.
pub const COST_UNKNOWN: &str = "gw.cost_unknown";
/// Linear memory of the gateway's VMs in bytes (gauge, summed over the workers' VMs; wasm memory
/// only grows, so this is their high-water mark).
pub const VM_MEMORY: &str = "gw.vm_memory_bytes";
/// Answered requests whose usage could not be read (counter): charged at the admission estimate.
pub const USAGE_MISSING: &str = "gw.usage_missing";
/// Guardrail decisions, by guard, action and phase.
pub const GUARDRAIL_DECISIONS: &str = "gw.guardrail.decisions";

/// Cache lookups (counter, by `model`, `layer` (exact) and `outcome`: hit, miss, bypass).
pub const CACHE_LOOKUPS: &str = "gw.cache.lookups";
/// Answers offered to the cache (counter, by `model` and `outcome`: stored, or why not).
pub const CACHE_STORES: &str = "gw.cache.stores";
/// Calls to the cache's shared tier (counter, by `model`, `operation` (`get`, `put`) and
/// `outcome`).
pub const CACHE_SHARED: &str = "gw.cache.shared";
/// What the Responses API's response store did (`outcome`): `stored`, `too_large`, `full`,
/// `contended`, `store_failed`, `weak_id` (a response not kept), `found`, `not_found` (a
/// `previous_response_id` or an id asked for).
pub const RESPONSE_STORE: &str = "gw.responses.store";
/// Tokens of the answers hits replayed, which no provider was paid for (counter, by `model`
/// and `token_type`).
pub const CACHE_TOKENS_SAVED: &str = "gw.cache.tokens_saved";
/// What the hits' answers cost when a provider gave them, in micro-dollars (counter).
pub const CACHE_SAVED_COST: &str = "gw.cache.saved.microdollars";

/// Every label the stat names carry, with the Prometheus label it becomes (the `stats_tags` of
/// envoy/envoy.yaml must list each).
pub const LABELS: &[&str] = &[
    "model",
    "provider",
    "operation",
    "token_type",
    "status_class",
    "error_type",
    "key_id",
    "team",
    "layer",
    "outcome",
];

/// The provider filter's refusals come back as text (filter state); as a stat label they must be
/// one of the gateway's own codes, so a label never holds arbitrary text.
pub fn known_error_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "invalid_json",
        "missing_required_parameter",
        "invalid_parameter",
        "request_too_large",
        "model_not_found",
        "gateway_misconfigured",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("gateway_refused")
}

/// What a request's stats are labelled with.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The model the client asked for ("none" when it never got that far).
    pub model: &'a str,
    pub provider: &'a str,
    pub operation: &'a str,
    pub key_id: &'a str,
    pub team: &'a str,
}

/// Label value safe inside a stat name: the separators `;` and `=` and anything unprintable
/// become `_`.
pub fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    push_label_value(&mut out, v);
    out
}

/// [`label_value`] written onto `out`: a stat name is built per request, without a copy per
/// label when the value needs no change (the usual case).
fn push_label_value(out: &mut String, v: &str) {
    let safe = |c: char| c.is_ascii_graphic() && c != ';' && c != '=';
    if v.is_empty() {
        out.push_str("none");
    } else if v.chars().all(safe) {
        out.push_str(v);
    } else {
        out.extend(v.chars().map(|c| if safe(c) { c } else { '_' }));
    }
}

fn name(metric: &str, labels: &[(&str, &str)]) -> String {
    let len = labels
        .iter()
        .fold(metric.len(), |n, (k, v)| n + k.len() + v.len() + 2);
    let mut out = String::with_capacity(len);
    out.push_str(metric);
    for (k, v) in labels {
        out.push(';');
        out.push_str(k);
        out.push('=');
        push_label_value(&mut out, v);
    }
    out
}

/// `metric` is [`TOKEN_USAGE`] (histogram) or [`TOKENS`] (counter).
pub fn tokens(metric: &str, l: &Labels, token_type: &str) -> String {
    name(
        metric,
        &[
            ("model", l.model),
            ("provider", l.provider),
            ("operation", l.operation),
            ("token_type", token_type),
        ],
    )
}

pub fn operation_duration(l: &Labels, status: u32) -> String {
    name(
        OPERATION_DURATION,
        &[
            ("model", l.model),
            ("provider", l.provider),
            ("operation", l.operation),
            ("status_class", &status_class(status)),
        ],
    )
}

/// A per-model histogram (time to first token, time per output token).
pub fn by_model(metric: &str, l: &Labels) -> String {
    name(metric, &[("model", l.model), ("provider", l.provider)])
}

pub fn requests(l: &Labels, status: u32, error_type: &str) -> String {
    name(
        REQUESTS,
        &[
            ("model", l.model),
            ("provider", l.provider),
            ("operation", l.operation),
            ("status_class", &status_class(status)),
            ("error_type", error_type),
        ],
    )
}

pub fn cost(l: &Labels) -> String {
    name(
        COST,
        &[
            ("model", l.model),
            ("provider", l.provider),
            ("key_id", l.key_id),
            ("team", l.team),
        ],
    )
}

/// One guardrail decision (a guard that matched in a phase).
pub fn guardrail(guard: &str, action: &str, phase: &str) -> String {
    name(
        GUARDRAIL_DECISIONS,
        &[("guard", guard), ("action", action), ("phase", phase)],
    )
}

pub fn ratelimit_service_failure(allowed: bool) -> String {
    name(
        RATE_LIMIT_SERVICE_FAILURES,
        &[("outcome", if allowed { "allowed" } else { "denied" })],
    )
}

pub fn threshold_crossing(l: &Labels, threshold: u8) -> String {
    name(
        THRESHOLD_CROSSINGS,
        &[
            ("key_id", l.key_id),
            ("team", l.team),
            ("threshold", &threshold.to_string()),
        ],
    )
}

/// A cache lookup's outcome.
pub fn cache_lookup(model: &str, layer: &str, outcome: &str) -> String {
    name(
        CACHE_LOOKUPS,
        &[("model", model), ("layer", layer), ("outcome", outcome)],
    )
}

/// An answer stored, or why it was not.
pub fn cache_store(model: &str, outcome: &str) -> String {
    name(CACHE_STORES, &[("model", model), ("outcome", outcome)])
}

/// A call to the cache's shared tier: `operation` `get` or `put`, and how it went.
pub fn cache_shared(model: &str, operation: &str, outcome: &str) -> String {
    name(
        CACHE_SHARED,
        &[
            ("model", model),
            ("operation", operation),
            ("outcome", outcome),
        ],
    )
}

/// One outcome of the Responses API's response store.
pub fn response_store(outcome: &str) -> String {
    name(RESPONSE_STORE, &[("outcome", outcome)])
}

/// What a hit saved: [`CACHE_TOKENS_SAVED`] (with a `token_type`) or [`CACHE_SAVED_COST`].
pub fn cache_saved(metric: &str, model: &str, token_type: Option<&str>) -> String {
    match token_type {
        Some(t) => name(metric, &[("model", model), ("token_type", t)]),
        None => name(metric, &[("model", model)]),
    }
}

fn status_class(status: u32) -> String {
    format!("{}xx", (status / 100).min(9))
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Labels = Labels {
        model: "gpt-4.1",
        provider: "openai",
        operation: "chat",
        key_id: "none",
        team: "none",
    };

    #[test]
    fn names_carry_their_labels_after_semicolons() {
        assert_eq!(tokens(TOKEN_USAGE, &L, "input"), "gen_ai.client.token.usage;model=gpt-4.1;provider=openai;operation=chat;token_type=input");
        assert_eq!(
            requests(&L, 429, "rate_limit_exceeded"),
            "gw.requests;model=gpt-4.1;provider=openai;operation=chat;status_class=4xx;error_type=rate_limit_exceeded"
        );
        assert_eq!(
            by_model(TIME_TO_FIRST_TOKEN, &L),
            "gen_ai.server.time_to_first_token.milliseconds;model=gpt-4.1;provider=openai"
        );
    }

    #[test]
    fn label_values_cannot_break_the_encoding() {
        assert_eq!(label_value("a;b=c d"), "a_b_c_d");
        assert_eq!(label_value(""), "none");
        assert_eq!(label_value("meta/llama-3.1"), "meta/llama-3.1");
        let odd = Labels {
            model: "a;model=b",
            provider: "",
            ..L
        };
        assert_eq!(
            by_model(TIME_TO_FIRST_TOKEN, &odd),
            "gen_ai.server.time_to_first_token.milliseconds;model=a_model_b;provider=none"
        );
    }

    #[test]
    fn every_label_used_is_declared() {
        let all = [
            tokens(TOKEN_USAGE, &L, "input"),
            operation_duration(&L, 200),
            requests(&L, 200, "none"),
            cost(&L),
            cache_lookup("m", "exact", "hit"),
            cache_store("m", "stored"),
            cache_saved(CACHE_TOKENS_SAVED, "m", Some("input")),
        ];
        for n in all {
            for part in n.split(';').skip(1) {
                let label = part.split('=').next().unwrap();
                assert!(LABELS.contains(&label), "{label} in {n}");
            }
        }
    }
}
