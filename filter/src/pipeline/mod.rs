//! One client request through the gateway, as a state machine free of the host: events in
//! (the request's headers and body, a callout's answer, the response's headers and body, the
//! end), effects out (a local reply, headers, filter state, stats, a body to send instead).
//! The proxy-wasm adapter (`wasm/downstream.rs`) feeds the events and carries out the effects;
//! it decides nothing. What the machine must read from the host while it decides (a header, the
//! body, shared data, the clock) and the callouts it starts go through the small [`Host`] trait,
//! which tests replace with a double.
//!
//! The stages, in the order a request meets them, each in its own file:
//! - `admit`: the caller's key, the endpoint, the body's validation (another API's body, e.g.
//!   Anthropic Messages or OpenAI Responses, first becomes the OpenAI chat form:
//!   `crate::inbound`), routing (with the classifier callout), limits and budgets (with the
//!   rate limit service callouts);
//! - `count_tokens`: Anthropic's token counting, answered here or sent to Anthropic;
//! - `cache`: a model with a cache answers a repeated request from it (no provider), and
//!   stores a successful answer at its end; its semantic layer, after `admit`, answers a
//!   similar request (with an embeddings callout to the gateway itself);
//! - `admit`: the caller's key, the endpoint, the body's validation, routing (with the
//!   classifier callout), limits and budgets (with the rate limit service callouts);
//! - `guard`: a key's client networks; the request's texts guarded before routing (block,
//!   mask, monitor), the answer's after it (restoring masked values), the body log masked;
//! - `answer`: the response's shape (JSON, stream, error), usage read as it passes, secrets
//!   scrubbed, caps enforced, failures turned into OpenAI errors; for another API's client the
//!   answer passed through (from a provider that speaks it) or translated back;
//! - `account`: settlement of the reserved limits, stats, access-log fields, observations for
//!   routing.
//!
//! Adding a stage (a cache lookup, a guard): a module here with its decision as a function of
//! the request's state, called from the event it belongs to, its effects pushed like the
//! others'; README "How it works" says where each stage sits.

mod account;
mod admit;
mod answer;
pub mod attempt;
mod cache;
mod count_tokens;
mod guard;
mod guard_webhook;
pub mod handoff;
mod phase;
mod response_store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_messages;
#[cfg(test)]
mod tests_response_store;
#[cfg(test)]
mod tests_responses;

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::error::GatewayError;
use crate::gateway::{Plan, Prepared};
use crate::inbound::{Api, Front, FrontStream};
use crate::keys::Estimate;
use crate::metrics::Labels;
use crate::provider::Operation;
use crate::quota::{self, Reservation, SharedStore};
use crate::response::ResponseMode;
use crate::scrub::StreamScrub;
use crate::usage::Usage;
use handoff::Handoff;

/// What the host can tell the machine, and the callouts it can start. Everything the machine
/// changes goes out as an [`Effect`] instead.
pub trait Host {
    fn now(&self) -> SystemTime;
    /// Every request header (one host call; names lower-case, pseudo-headers included).
    fn request_headers(&self) -> Result<Vec<(String, String)>, String>;
    fn response_header(&self, name: &str) -> Option<String>;
    /// The first `len` bytes of the buffered request body.
    fn request_body(&self, len: usize) -> Vec<u8>;
    /// The first `len` bytes of the response body piece at hand.
    fn response_body(&self, len: usize) -> Vec<u8>;
    /// A host property (filter state another filter wrote, Envoy's response details, ...).
    fn property(&self, path: &[&str]) -> Option<String>;
    /// A filter-state field as bytes (a body).
    fn property_bytes(&self, name: &str) -> Option<Vec<u8>>;
    /// Shared data: every worker of this Envoy sees the same entries.
    fn store(&self) -> &dyn SharedStore;
    /// Starts a gRPC call; its answer comes back as [`Request::on_rate_limit_answer`].
    fn call_grpc(&self, call: GrpcCall<'_>) -> Result<u32, String>;
    /// Starts an HTTP call; its answer comes back as [`Request::on_http_call_answer`].
    fn call_http(&self, call: HttpCall<'_>) -> Result<u32, String>;
    /// Fills `buf` with random bytes (nonces).
    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), String>;
}

/// Largest callout answer (classifier, rate limit service) read into the VM; their real answers
/// are a few hundred bytes, and a longer one is read only this far.
pub const MAX_CALLOUT_ANSWER: usize = 64 * 1024;
/// Largest HTTP callout answer read into the VM: a guard service's answer grows with the texts
/// it was sent (a moderation result is about 1.3 KB per text, Bedrock's anonymized outputs
/// repeat the texts); an embeddings answer of 3072 dimensions (the semantic index's default cap)
/// is about 70 KB of JSON. A longer one is cut there, unreadable: a failure of its guard, a
/// semantic cache miss.
pub const MAX_HTTP_CALLOUT_ANSWER: usize = 4 * 1024 * 1024;

pub struct GrpcCall<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub method: &'a str,
    pub message: &'a [u8],
    pub timeout: Duration,
}

pub struct HttpCall<'a> {
    pub cluster: &'a str,
    pub path: &'a str,
    /// Headers besides `:method` (POST) and `:path`; `content-type` is JSON and `:authority`
    /// the cluster's name unless given here.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// What the adapter carries out, in order, after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer the client now; the request goes no further.
    Reply {
        status: u32,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    RemoveRequestHeader(&'static str),
    /// Sets (or with `None` removes) a request header.
    SetRequestHeader(String, Option<String>),
    /// The buffered request body is sent as these bytes instead.
    ReplaceRequestBody(Vec<u8>),
    /// Sets (or with `None` removes) a response header.
    SetResponseHeader(&'static str, Option<String>),
    /// Filter state, read by Envoy (routes, access log) and the provider filter.
    SetProperty(&'static str, Vec<u8>),
    /// The route is chosen again from the filter state just written.
    ClearRouteCache,
    /// The response body piece at hand is sent as these bytes instead.
    ReplaceResponseBody(Vec<u8>),
    /// The paused request goes on (every callout has answered).
    ResumeRequest,
    /// The paused (buffered) answer goes on (every callout has answered).
    ResumeResponse,
    Count(String, u64),
    Record(String, u64),
}

/// Whether the host goes on with the request or response, or waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Buffer the body (or wait for a callout, or for a local reply to go out).
    Pause,
}

/// One client request, from its headers to its access-log line.
pub struct Request {
    config: Rc<Config>,
    /// When the plugin started (the `created` of `/v1/models`).
    started_unix: u64,
    start: SystemTime,
    effects: Vec<Effect>,
    /// Set for the endpoints that go to a provider.
    operation: Option<Operation>,
    plan: Option<Plan>,
    status: u32,
    /// The OpenAI error code of a failed request, and whose fault it was.
    error_code: Option<(&'static str, &'static str)>,
    mode: Option<ResponseMode>,
    first_byte_ms: Option<u64>,
    usage: Option<Usage>,
    /// Body log of this request (its model or key has `log_bodies`): the request, then the
    /// response.
    body_log: Option<(String, Option<String>)>,
    /// A provider the caller pinned with `x-gateway-provider`.
    pinned: Option<String>,
    /// A request waiting for the classifier's answer, with its body.
    classifying: Option<(Prepared, Vec<u8>)>,
    /// The caller's key id and team, once authenticated.
    key: Option<(String, Option<String>)>,
    /// What the request holds of the local limits and budgets, settled at the end.
    reservation: Option<Reservation>,
    estimate: Estimate,
    /// The usage reserved at admission; charged when the answer reports none.
    estimated_usage: Usage,
    /// Calls to the global rate limit service still out: (token, unit).
    rls_pending: Vec<(u32, quota::Kind)>,
    /// `x-ratelimit-*` headers for the response.
    limit_headers: Vec<(&'static str, String)>,
    /// Keeps provider secrets out of the response body (and so out of the body log).
    scrub: StreamScrub,
    /// The decision handed to the provider filter in this VM, and its id.
    handoff: Option<(u32, Rc<Handoff>)>,
    /// Who served, read once when the answer started.
    served: Option<account::Served>,
    /// What the response cache did with this request.
    cache: cache::CacheState,
    /// The API the client used (its answers and errors take that API's shape).
    api: Api,
    /// For an API other than OpenAI's: what its answer needs, and the client's own body until
    /// it is handed to the provider filter.
    front: Option<Front>,
    native_body: Option<Vec<u8>>,
    /// `POST /v1/messages/count_tokens`: answered with the gateway's estimate.
    count_tokens: bool,
    /// How the answer reaches a client of another API, chosen when it starts.
    outbound: Option<Outbound>,
    /// The guardrails of this request: its guards, decisions and masked values.
    guard: Option<crate::guard::Session>,
    /// A request waiting for its guard webhooks' verdicts, with its body.
    guard_waiting: Option<(Prepared, Vec<u8>)>,
    /// The sliding window over a guarded streamed answer.
    guard_stream: Option<crate::guard::stream::GuardStream>,
    /// A Responses API response to keep in the response store at the end of its answer.
    response_pending: Option<response_store::Pending>,
    /// Which callback each effect came from, checked by the native tests.
    #[cfg(test)]
    callbacks: phase::Tracker,
}

/// How the answer of a provider reaches a client whose API is not OpenAI's.
#[derive(Debug)]
enum Outbound {
    /// The provider speaks the client's API: its answer passes untouched (a stream observed
    /// for usage and breaks).
    Native(Option<Box<crate::inbound::NativeStream>>),
    /// The OpenAI answer is translated: a JSON answer whole, a stream piece by piece.
    Translate(Option<Box<FrontStream>>),
}

impl Request {
    pub fn new(config: Rc<Config>, started_unix: u64, now: SystemTime) -> Self {
        Self {
            config,
            started_unix,
            start: now,
            effects: Vec::new(),
            operation: None,
            plan: None,
            status: 0,
            error_code: None,
            mode: None,
            first_byte_ms: None,
            usage: None,
            body_log: None,
            pinned: None,
            classifying: None,
            key: None,
            reservation: None,
            estimate: Estimate::default(),
            estimated_usage: Usage::default(),
            rls_pending: Vec::new(),
            limit_headers: Vec::new(),
            scrub: StreamScrub::default(),
            handoff: None,
            served: None,
            cache: cache::CacheState::default(),
            api: Api::OpenAi,
            front: None,
            native_body: None,
            count_tokens: false,
            outbound: None,
            guard: None,
            guard_waiting: None,
            guard_stream: None,
            response_pending: None,
            #[cfg(test)]
            callbacks: phase::Tracker::new(),
        }
    }

    /// Notes the event being handled: the native tests check its effects against it.
    #[cfg_attr(not(test), inline(always))]
    fn enter(&mut self, _callback: phase::Callback) {
        #[cfg(test)]
        self.callbacks.enter(_callback, &self.effects);
    }

    /// The effects of the last event, for the adapter to carry out.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        #[cfg(test)]
        self.callbacks.taken(&self.effects);
        std::mem::take(&mut self.effects)
    }

    fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn set_property(&mut self, name: &'static str, value: impl Into<String>) {
        self.emit(Effect::SetProperty(name, value.into().into_bytes()));
    }

    /// Answers the client with an OpenAI-shaped error (and the `x-ratelimit-*` headers).
    fn reply_error(&mut self, error: &GatewayError) -> Flow {
        self.status = error.status();
        self.error_code = Some((error.code(), error.fault()));
        let mut headers = vec![("content-type", "application/json".to_string())];
        headers.extend(self.limit_headers.iter().cloned());
        if matches!(error, GatewayError::Auth { status: 401, .. }) {
            headers.push(("www-authenticate", "Bearer".into()));
        }
        self.emit(Effect::Reply {
            status: error.status(),
            headers,
            body: self.api.error_body(error.status(), error.to_json()),
        });
        Flow::Pause
    }

    fn reply_json(&mut self, body: Vec<u8>) -> Flow {
        self.status = 200;
        self.emit(Effect::Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body,
        });
        Flow::Pause
    }

    fn labels<'a>(&'a self, provider: &'a str, model: &'a str) -> Labels<'a> {
        Labels {
            model,
            provider,
            operation: match (self.api, self.operation) {
                (api @ (Api::Messages | Api::Responses), _) => api.name(),
                (Api::OpenAi, o) => o.map_or("none", |o| o.name()),
            },
            key_id: self.key.as_ref().map_or("none", |(id, _)| id.as_str()),
            team: self
                .key
                .as_ref()
                .and_then(|(_, t)| t.as_deref())
                .unwrap_or("none"),
        }
    }

    fn millis_since_start(&self, now: SystemTime) -> u64 {
        let elapsed = now.duration_since(self.start).unwrap_or(Duration::ZERO);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // Also when Envoy ends a request before its log (the handoff must not outlive it).
        if let Some((id, _)) = self.handoff.take() {
            handoff::release(id);
        }
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
