//! Filter-state keys: how the downstream filter, the upstream filter and Envoy's access log
//! talk. `set_property(["gw_model"])` is read in Envoy as `%FILTER_STATE(wasm.gw_model:PLAIN)%`
//! and routes match on `wasm.gw_route`. README lists them as access-log fields.

/// Route key the Envoy routes match on: `chain<N>` for a fallback chain of N targets.
pub const ROUTE: &str = "gw_route";
/// The cluster of the attempt to come: the route's cluster matches on it, and every attempt
/// points it at the next target before it starts, so a retry lands on the next provider.
pub const TARGET: &str = "gw_target";
/// The chain: indices of the model's targets, comma-separated (`2,0,1`).
pub const CHAIN: &str = "gw_chain";
/// Attempts started so far (the upstream filter counts them).
pub const ATTEMPT: &str = "gw_attempt";
/// How the primary target was picked, and why.
pub const STRATEGY: &str = "gw_strategy";
pub const REASON: &str = "gw_reason";
/// `chat` or `embeddings`.
pub const OPERATION: &str = "gw_operation";
/// The client's validated OpenAI body: every upstream attempt translates it in its headers
/// phase (headers can no longer change once the body flows, and SigV4 signs the body).
pub const BODY: &str = "gw_body";
/// The API the client used when it is not OpenAI's (`messages`): the provider filter then
/// sends a provider that speaks it the client's own body (`NATIVE_BODY`).
pub const API: &str = "gw_api";
/// The client's body in its own API's format (BODY holds its OpenAI translation).
pub const NATIVE_BODY: &str = "gw_native_body";
/// Why the request cannot go to a provider that does not speak the client's API, if it cannot.
pub const UNTRANSLATABLE: &str = "gw_untranslatable";
/// "true" for a `count_tokens` request, which goes to Anthropic's counting endpoint.
pub const COUNT_TOKENS: &str = "gw_count_tokens";
/// The id of the request's handoff, when the provider filter runs in the same VM
/// (`pipeline::handoff`): it replaces the decision's other fields for the provider filter.
pub const HANDOFF: &str = "gw_handoff";
/// The model the client asked for.
pub const MODEL: &str = "gw_model";
/// "true" when the client asked for a stream.
pub const STREAM: &str = "gw_stream";
/// "true" when the client asked for `stream_options.include_usage` itself.
pub const USAGE_ASKED: &str = "gw_usage_asked";
/// The provider that served the request (set per attempt by the upstream filter).
pub const PROVIDER: &str = "gw_provider";
/// The model name sent to that provider.
pub const UPSTREAM_MODEL: &str = "gw_upstream_model";
pub const PROMPT_TOKENS: &str = "gw_prompt_tokens";
pub const COMPLETION_TOKENS: &str = "gw_completion_tokens";
pub const TOTAL_TOKENS: &str = "gw_total_tokens";
pub const CACHED_TOKENS: &str = "gw_cached_tokens";
pub const REASONING_TOKENS: &str = "gw_reasoning_tokens";
/// Milliseconds from request start to the end of the response.
pub const DURATION_MS: &str = "gw_duration_ms";
/// Milliseconds from request start to the first response byte.
pub const TTFB_MS: &str = "gw_ttfb_ms";
/// Cost in micro-dollars, and the same in dollars (`0.001234`) for people.
pub const COST_MICROS: &str = "gw_cost_microdollars";
pub const COST_USD: &str = "gw_cost_usd";
/// Body log (only for models with `log_bodies`): the request and the response (a stream
/// reassembled), each capped at `body_log_max_bytes`. Their presence selects the body-log sink.
pub const LOG_REQUEST: &str = "gw_log_request";
pub const LOG_RESPONSE: &str = "gw_log_response";
/// The caller's gateway key id and team (never the key).
pub const KEY_ID: &str = "gw_key_id";
pub const TEAM: &str = "gw_team";
/// The OpenAI error code when the request failed.
pub const ERROR_CODE: &str = "gw_error";
/// Whose fault the failure was: `client`, `gateway` or `provider`.
pub const FAULT: &str = "gw_fault";
/// Set by the provider filter when it answered an attempt itself (a request that provider
/// cannot take): the error code, so the request is logged as refused, not as a provider error.
pub const REFUSED: &str = "gw_refused";
/// Where the logged usage came from: `reported`, `estimated` or `missing` (see
/// `usage::UsageSource`).
pub const USAGE_SOURCE: &str = "gw_usage";
/// The response cache's verdict: `hit`, `semantic-hit`, `miss` or `bypass` (models with a
/// cache only).
pub const CACHE: &str = "gw_cache";
/// Which tier answered a hit: `local` (this Envoy) or `shared` (the store every Envoy sees).
pub const CACHE_TIER: &str = "gw_cache_tier";
/// A semantic cache hit's cosine similarity (4 decimals).
pub const CACHE_SIMILARITY: &str = "gw_cache_similarity";
/// What a cache hit saved: the cost of the stored answer when a provider gave it.
pub const CACHE_SAVED_MICROS: &str = "gw_cache_saved_microdollars";
/// The guardrails that fired: `guard:action:phase`, comma-separated (never the matched text).
pub const GUARDRAILS: &str = "gw_guardrails";
