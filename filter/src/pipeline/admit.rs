//! The way in: who calls (gateway key), which endpoint, whether the body is acceptable, where it
//! goes (routing, with the classifier callout), and whether it fits the limits and budgets (local
//! counters in shared data, then the global rate limit service callouts).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::handoff::{self, Handoff};
use super::phase::Callback;
use super::{unix_seconds, Effect, Flow, GrpcCall, Host, HttpCall, Request};
use crate::error::GatewayError;
use crate::gateway::{
    api_of, endpoint_for, model_retrieve, models_list, plan, prepare, Endpoint, Plan, Prepared,
};
use crate::keys::Estimate;
use crate::metrics;
use crate::pricing::cost_micros;
use crate::provider::Operation;
use crate::quota::{self, Actual, QuotaError};
use crate::ratelimit::{Subject, Verdict, GRPC_METHOD, GRPC_SERVICE};
use crate::response::log_excerpt;
use crate::routing::{self, Classified, Inputs, Observed};
use crate::state;
use crate::usage::Usage;

/// Client headers that must never reach a provider (the provider filter's allow-list drops the
/// rest; these go at once, so no other filter sees them either).
const CLIENT_CREDENTIALS: &[&str] = &["authorization", "x-api-key"];

/// Header a caller may pin a provider with (it does not go further).
const PIN_HEADER: &str = "x-gateway-provider";

/// Completion tokens reserved when the client sets no `max_tokens` (settled to the real usage).
const QUOTA_COMPLETION_ALLOWANCE: u64 = 1024;

/// The gRPC status the rate limit service's verdict reads as "unavailable" when the call could
/// not even start.
const GRPC_UNAVAILABLE: u32 = 14;

impl Request {
    /// The request's headers: authenticates the caller and answers what needs no provider.
    pub fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        self.enter(Callback::RequestHeaders);
        self.start = host.now();
        let config = Rc::clone(&self.config);
        // All of them in one host call: most requests carry few headers, and the credentials are
        // removed only where present.
        let headers = host.request_headers().unwrap_or_default();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        self.api = api_of(header(":path").unwrap_or_default());
        if config.keys.required() {
            match config
                .keys
                .authenticate(header("authorization"), header("x-api-key"))
            {
                Ok(key) => self.key = Some((key.id.clone(), key.team.clone())),
                Err(e) => {
                    if let Some(id) = e.key_id() {
                        self.set_property(state::KEY_ID, id);
                    }
                    return self.reply_error(&e.into());
                }
            }
            if let Some((id, team)) = self.key.clone() {
                self.set_property(state::KEY_ID, id);
                if let Some(team) = team {
                    self.set_property(state::TEAM, team);
                }
            }
        }
        if let Err(flow) = self.guard_client_network(host) {
            return flow;
        }
        if self.guard_may_rewrite_request() && header("content-length").is_some() {
            // A masked body has another length; the buffer filter after this one sets it.
            self.emit(Effect::RemoveRequestHeader("content-length"));
        }
        let method = header(":method").unwrap_or_default();
        let path = header(":path").unwrap_or_default();
        if let Some(flow) = self.stored_response_endpoint(host, method, path) {
            return flow;
        }
        let operation = match endpoint_for(method, path) {
            Err(e) => return self.reply_error(&e),
            Ok(Endpoint::ListModels) => {
                return self.reply_json(models_list(&config, self.started_unix))
            }
            Ok(Endpoint::RetrieveModel(id)) => {
                return match model_retrieve(&config, &id, self.started_unix) {
                    Ok(body) => self.reply_json(body),
                    Err(e) => self.reply_error(&e),
                }
            }
            Ok(Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses) => {
                Operation::Chat
            }
            Ok(Endpoint::CountTokens) => {
                self.count_tokens = true;
                Operation::Chat
            }
            Ok(Endpoint::Embeddings) => Operation::Embeddings,
        };
        self.note_cache_control(header("cache-control"));
        self.pinned = header(PIN_HEADER)
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        for name in CLIENT_CREDENTIALS.iter().chain([&PIN_HEADER]) {
            if header(name).is_some() {
                self.emit(Effect::RemoveRequestHeader(name));
            }
        }
        if end_of_stream {
            return self.reply_error(&GatewayError::InvalidJson("the request has no body".into()));
        }
        self.operation = Some(operation);
        Flow::Continue
    }

    /// The request body so far: buffered to its end, then validated and routed.
    pub fn on_request_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        self.enter(Callback::RequestBody);
        let Some(operation) = self.operation else {
            return Flow::Continue;
        };
        if self.plan.is_some() {
            return Flow::Continue;
        }
        if size > self.config.max_request_bytes {
            let limit = self.config.max_request_bytes;
            return self.reply_error(&GatewayError::BodyTooLarge { limit });
        }
        if !end_of_stream {
            return Flow::Pause; // buffer until the whole body is here
        }
        let mut body = host.request_body(size);
        if self.api == crate::inbound::Api::Responses && self.config.response_store.is_some() {
            // `previous_response_id` expanded before anything reads the conversation.
            body = match self.response_store_request(host, body) {
                Ok(body) => body,
                Err(flow) => return flow,
            };
        }
        // Another API's body becomes the OpenAI chat body every later stage reads.
        let converted = if self.count_tokens {
            crate::inbound::messages::count_tokens_to_chat(&body)
                .map(|(chat, ctx)| Some((chat, crate::inbound::Front::Messages(ctx))))
        } else {
            self.api.to_chat(&body)
        };
        let body = match converted {
            Err(e) => return self.reply_error(&e),
            Ok(None) => body,
            Ok(Some((chat, mut front))) => {
                let request_id = host.property(&["request", "id"]).unwrap_or_default();
                front.set_identity(super::unix_seconds(host.now()), &request_id);
                if self.response_pending.is_some() {
                    let nanos = host
                        .now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    front.set_stored_id(crate::inbound::responses::store::mint_id(
                        &request_id,
                        nanos,
                    ));
                }
                self.front = Some(front);
                self.native_body = Some(body);
                chat
            }
        };
        let prepared = match prepare(&self.config, operation, &body) {
            Ok(p) => p,
            Err(e) => return self.reply_error(&e),
        };
        // A key that may not use the model is refused before any stage pays for it (a guard's
        // callout, the cache's lookups, an embeddings call).
        let config = Rc::clone(&self.config);
        if let Some(key) = self.key.as_ref().and_then(|(id, _)| config.keys.key(id)) {
            if let Err(e) = config.keys.authorize(key, &prepared.model) {
                return self.reply_error(&e.into());
            }
        }
        let body = match self.guard_request(&prepared, body) {
            Ok(body) => body,
            Err(flow) => return flow,
        };
        if self.guard.is_some() {
            // Guards read and mask the chat form: a guarded request goes to every provider in
            // it (never the client's own body past them), and its answer comes back through it.
            self.native_body = None;
        }
        match self.ask_guard_webhooks(host, &prepared, &body) {
            Err(flow) => return flow,
            Ok(true) => {
                self.guard_waiting = Some((prepared, body));
                return Flow::Pause; // resumed by on_http_call_answer
            }
            Ok(false) => {}
        }
        self.route_request(host, prepared, body)
    }

    /// Routes a request its guards let through: asks the route's classifier, if any, then
    /// plans and admits it.
    pub(super) fn route_request(
        &mut self,
        host: &dyn Host,
        prepared: Prepared,
        body: Vec<u8>,
    ) -> Flow {
        if self.count_tokens {
            if !self.counts_at_anthropic(&prepared.model) {
                return self.reply_token_count(&prepared);
            }
        } else if let Some(flow) = self.cache_lookup(host, &prepared, &body) {
            self.cache_park(prepared, body); // while the shared tier is asked
            return flow; // answered from the cache, or waiting for its shared tier
        }
        self.classify_and_plan(host, prepared, body)
    }

    /// Asks the route's classifier, if any, then plans and admits the request.
    pub(in crate::pipeline) fn classify_and_plan(
        &mut self,
        host: &dyn Host,
        prepared: Prepared,
        body: Vec<u8>,
    ) -> Flow {
        let classifier = self
            .config
            .models
            .get(&prepared.model)
            .and_then(|m| m.route.classifier.clone());
        if let Some(classifier) = classifier {
            let call = self.classifier_call(&prepared, &body);
            let started = host.call_http(HttpCall {
                cluster: &classifier.cluster,
                path: &classifier.path,
                headers: &[],
                body: &call,
                timeout: Duration::from_millis(classifier.timeout_ms),
            });
            match started {
                Ok(_) => {
                    self.classifying = Some((prepared, body));
                    return Flow::Pause; // resumed by on_classifier_answer
                }
                Err(reason) => {
                    let failed = Classified::Failed(format!("unreachable ({reason})"));
                    return self.finish_plan(host, prepared, body, Some(failed));
                }
            }
        }
        self.finish_plan(host, prepared, body, None)
    }

    /// The classifier's answer (`status` empty when Envoy could not reach it).
    pub fn on_classifier_answer(&mut self, host: &dyn Host, status: &str, answer: &[u8]) {
        self.enter(Callback::CalloutAnswer);
        let Some((prepared, body)) = self.classifying.take() else {
            return;
        };
        let classified = match (status, routing::classifier_choice(answer)) {
            ("200", Some((provider, model))) => Classified::Target { provider, model },
            // Envoy answers a callout that ran out of time with its own 504, and one that could
            // not connect with a 503.
            ("504", _) => Classified::Failed("timed out".into()),
            ("" | "503", _) => Classified::Failed("unreachable".into()),
            (status, _) => Classified::Failed(format!("answered {status} without a choice")),
        };
        if self.finish_plan(host, prepared, body, Some(classified)) == Flow::Continue {
            self.emit(Effect::ResumeRequest);
        }
    }

    /// One answer of the global rate limit service (`body` is the gRPC message).
    pub fn on_rate_limit_answer(
        &mut self,
        host: &dyn Host,
        token: u32,
        grpc_status: u32,
        body: Option<&[u8]>,
    ) {
        self.enter(Callback::CalloutAnswer);
        let Some(pos) = self.rls_pending.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, kind) = self.rls_pending.remove(pos);
        let Some(service) = self.config.rate_limit_service.clone() else {
            return;
        };
        let refusal = match service.verdict(kind, grpc_status, body) {
            Verdict::Allowed { .. } => None,
            Verdict::OverLimit { headers, .. } => {
                self.limit_headers = headers;
                Some(GatewayError::Quota {
                    kind: kind.name(),
                    message: format!("The gateway-wide {} limit is reached for this key, team or model. Retry later.", kind.name()),
                })
            }
            Verdict::Failed { allowed, reason } => {
                log::warn!(
                    "rate limit service call failed ({reason}); {}",
                    if allowed { "allowing" } else { "denying" }
                );
                self.emit(Effect::Count(
                    metrics::ratelimit_service_failure(allowed),
                    1,
                ));
                (!allowed).then_some(GatewayError::RateLimitServiceDown)
            }
        };
        if let Some(e) = refusal {
            self.rls_pending.clear();
            // The local reservation is given back: the request never ran.
            if let Some(reservation) = self.reservation.take() {
                let now = unix_seconds(host.now());
                quota::settle(host.store(), now, &reservation, Actual::default());
            }
            self.reply_error(&e);
            return;
        }
        if self.rls_pending.is_empty() {
            self.emit(Effect::ResumeRequest);
        }
    }

    /// Decides the targets, admits the request and hands it on, or answers the error.
    fn finish_plan(
        &mut self,
        host: &dyn Host,
        prepared: Prepared,
        body: Vec<u8>,
        classified: Option<Classified>,
    ) -> Flow {
        let facts = prepared.facts.clone();
        let config = Rc::clone(&self.config);
        let observed = |t: &routing::Target| {
            let provider = config
                .providers
                .get(t.provider)
                .map_or("", |p| p.id.as_str());
            host.store()
                .get(&Observed::key(provider, &t.upstream_model))
                .ok()
                .flatten()
                .map(|(v, _)| Observed::decode(&v))
                .unwrap_or_default()
        };
        let now = host
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let inputs = Inputs {
            providers: &config.providers,
            facts: &facts,
            observed: &observed,
            random: routing::mix(now.as_nanos() as u64 ^ u64::from(next_nonce())),
            now_unix: now.as_secs(),
            pinned: self.pinned.as_deref(),
            classified,
        };
        let mut plan = match plan(&config, prepared, &inputs) {
            Ok(plan) => plan,
            Err(e) => return self.reply_error(&e),
        };
        if self.count_tokens {
            if let Err(e) = self.keep_anthropic_targets(&mut plan) {
                return self.reply_error(&e);
            }
        }
        if let Err(e) = self.admit(host, &plan, facts.prompt_tokens, facts.max_tokens) {
            return self.reply_error(&e);
        }
        let key_logs = self
            .key
            .as_ref()
            .and_then(|(id, _)| config.keys.key(id))
            .is_some_and(|k| k.log_bodies);
        if key_logs || config.models.get(&plan.model).is_some_and(|m| m.log_bodies) {
            let logged = self.native_body.as_deref().unwrap_or(&body);
            self.body_log = Some((log_excerpt(logged, config.body_log_max_bytes), None));
        }
        // A model with a semantic cache may first ask for the request's embedding (and pause).
        self.semantic_lookup(host, plan, body)
    }

    /// Hands an admitted request on: records the decision and asks the global rate limit
    /// service.
    pub(super) fn hand_on(&mut self, host: &dyn Host, plan: Plan, body: Vec<u8>) -> Flow {
        self.record_plan(&plan, body);
        let asked = self.ask_rate_limit_service(host, &plan.model);
        self.plan = Some(plan);
        if asked {
            return Flow::Pause; // resumed when every call has answered
        }
        Flow::Continue
    }

    /// The decision: the route and first cluster for Envoy, and the request for the provider
    /// filter (in this VM when it runs here, else as filter state).
    fn record_plan(&mut self, plan: &Plan, body: Vec<u8>) {
        self.set_property(state::ROUTE, plan.route.clone());
        self.set_property(state::TARGET, plan.cluster.clone());
        let native = self.native_body.take();
        let untranslatable = self
            .front
            .as_ref()
            .and_then(|f| f.untranslatable().map(str::to_string));
        if handoff::provider_filter_here() {
            let small =
                body.len().max(native.as_ref().map_or(0, Vec::len)) <= handoff::MAX_BODY_IN_VM;
            let (id, shared) = handoff::register(Handoff {
                model: plan.model.clone(),
                operation: plan.operation,
                stream: plan.stream,
                client_asked_usage: plan.client_asked_usage,
                chain: plan.chain.clone(),
                body: RefCell::new(None),
                api: self.api,
                count_tokens: self.count_tokens,
                native_body: RefCell::new(None),
                untranslatable,
                attempts: Cell::new(0),
                served: RefCell::new(None),
            });
            self.set_property(state::HANDOFF, id.to_string());
            if small {
                *shared.body.borrow_mut() = Some(Rc::from(body));
                *shared.native_body.borrow_mut() = native.map(Rc::from);
            } else {
                // Handed to Envoy (moved, not copied): the VM keeps no large body while the
                // provider works.
                self.emit(Effect::SetProperty(state::BODY, body));
                if let Some(native) = native {
                    self.emit(Effect::SetProperty(state::NATIVE_BODY, native));
                }
            }
            self.handoff = Some((id, shared));
        } else {
            let chain: Vec<String> = plan.chain.iter().map(ToString::to_string).collect();
            self.set_property(state::CHAIN, chain.join(","));
            self.set_property(state::OPERATION, plan.operation.name());
            self.set_property(state::MODEL, plan.model.clone());
            self.set_property(state::STREAM, bool_str(plan.stream));
            self.set_property(state::USAGE_ASKED, bool_str(plan.client_asked_usage));
            self.set_property(state::STRATEGY, plan.strategy);
            self.set_property(state::REASON, plan.reason.clone());
            // The provider filter overwrites this with the provider that really served.
            self.set_property(state::PROVIDER, plan.provider.clone());
            self.emit(Effect::SetProperty(state::BODY, body));
            if let Some(native) = native {
                self.set_property(state::API, self.api.name());
                self.emit(Effect::SetProperty(state::NATIVE_BODY, native));
            }
            if let Some(reason) = untranslatable {
                self.set_property(state::UNTRANSLATABLE, reason);
            }
            if self.count_tokens {
                self.set_property(state::COUNT_TOKENS, "true");
            }
        }
        self.emit(Effect::ClearRouteCache);
    }

    /// The key may use the model, and the request fits the key's, team's and model's limits and
    /// budgets: reserves the estimate (prompt + `max_tokens`, and its cost at the primary
    /// target's price), settled with the real usage at the end.
    fn admit(
        &mut self,
        host: &dyn Host,
        plan: &Plan,
        prompt_tokens: u64,
        max_tokens: Option<u64>,
    ) -> Result<(), GatewayError> {
        let config = Rc::clone(&self.config);
        let key = self.key.as_ref().and_then(|(id, _)| config.keys.key(id));
        if let Some(key) = key {
            config.keys.authorize(key, &plan.model)?;
        }
        let completion = max_tokens.unwrap_or(QUOTA_COMPLETION_ALLOWANCE);
        let price = config
            .models
            .get(&plan.model)
            .and_then(|m| plan.chain.first().and_then(|&i| m.route.targets.get(i)))
            .and_then(|t| t.price);
        // Client-sent numbers: the sum saturates rather than wraps to a tiny estimate.
        let usage = Usage {
            prompt: prompt_tokens,
            completion,
            total: prompt_tokens.saturating_add(completion),
            ..Default::default()
        };
        self.estimated_usage = usage;
        self.estimate = Estimate {
            tokens: usage.total,
            cost_micros: price.map(|p| cost_micros(&usage, &p)),
        };
        let charges = config.keys.charges(key, &plan.model, &self.estimate);
        if charges.is_empty() {
            return Ok(());
        }
        let now = unix_seconds(host.now());
        match quota::reserve(host.store(), now, &charges) {
            Ok(reservation) => {
                self.report_crossings(&reservation.crossings);
                self.limit_headers = reservation.headers(now);
                self.reservation = Some(reservation);
                Ok(())
            }
            Err(QuotaError::Refused(refusal)) => {
                self.report_crossings(&refusal.crossings);
                self.limit_headers = refusal.headers();
                Err((&refusal).into())
            }
            Err(QuotaError::Contention { key } | QuotaError::Store { key }) => {
                log::error!("quota counter {key} could not be updated; refusing the request");
                Err(GatewayError::RateLimitServiceDown)
            }
        }
    }

    pub(super) fn report_crossings(&mut self, crossings: &[quota::Crossing]) {
        for c in crossings {
            log::warn!("{} crossed {}% ({} used)", c.counter, c.percent, c.used);
            let stat = metrics::threshold_crossing(&self.labels("none", "none"), c.percent);
            self.emit(Effect::Count(stat, 1));
        }
    }

    /// Asks the global rate limit service about every configured unit; true when calls are out.
    fn ask_rate_limit_service(&mut self, host: &dyn Host, model: &str) -> bool {
        let Some(service) = self.config.rate_limit_service.clone() else {
            return false;
        };
        let subject = Subject {
            key_id: self.key.as_ref().map(|(id, _)| id.as_str()),
            team: self.key.as_ref().and_then(|(_, t)| t.as_deref()),
            model,
        };
        let mut failures = Vec::new();
        for &kind in &service.units {
            let amount = match kind {
                quota::Kind::Requests => 1,
                quota::Kind::Tokens => self.estimate.tokens,
                quota::Kind::Cost => self.estimate.cost_micros.unwrap_or(0),
            };
            let message = service.request(kind, subject, amount).encode();
            match host.call_grpc(GrpcCall {
                cluster: &service.cluster,
                service: GRPC_SERVICE,
                method: GRPC_METHOD,
                message: &message,
                timeout: Duration::from_millis(service.timeout_ms),
            }) {
                Ok(token) => self.rls_pending.push((token, kind)),
                Err(reason) => {
                    log::warn!("rate limit service unreachable ({reason})");
                    failures.push(kind);
                }
            }
        }
        for kind in failures {
            if let Verdict::Failed { allowed, .. } = service.verdict(kind, GRPC_UNAVAILABLE, None) {
                self.emit(Effect::Count(
                    metrics::ratelimit_service_failure(allowed),
                    1,
                ));
            }
        }
        !self.rls_pending.is_empty()
    }

    /// The request to the route's classifier (a Not Diamond-style model-select API).
    fn classifier_call(&self, prepared: &Prepared, body: &[u8]) -> Vec<u8> {
        let messages = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("messages").cloned())
            .unwrap_or_default();
        let candidates: Vec<serde_json::Value> = self
            .config
            .models
            .get(&prepared.model)
            .map(|m| {
                m.route
                    .targets
                    .iter()
                    .filter_map(|t| {
                        let p = self.config.providers.get(t.provider)?;
                        Some(serde_json::json!({"provider": p.id, "model": t.upstream_model}))
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({"messages": messages, "llm_providers": candidates})
            .to_string()
            .into_bytes()
    }
}

/// A number that differs between the requests of one VM, mixed into the random seed.
fn next_nonce() -> u32 {
    thread_local!(static COUNTER: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    COUNTER.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    })
}

pub(super) fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
