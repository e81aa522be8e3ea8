//! The client-facing filter (root_id `gateway`). Moves bytes and headers between Envoy and the
//! pure decisions of `gateway` and `response`.

use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::host;
use crate::config::Config;
use crate::error::GatewayError;
use crate::gateway::{
    endpoint_for, model_retrieve, models_list, plan, prepare, Endpoint, Plan, Prepared,
};
use crate::keys::Estimate;
use crate::metrics::{self, Labels};
use crate::pricing::{cost_micros, format_dollars};
use crate::provider::Operation;
use crate::quota::{self, Actual, QuotaError, Reservation};
use crate::ratelimit_proto::{Subject, Verdict, GRPC_METHOD, GRPC_SERVICE};
use crate::response::{log_excerpt, normalize_error_body, ResponseMode, MAX_ERROR_BODY};
use crate::routing::{self, Classified, Inputs, Observed};
use crate::scrub::StreamScrub;
use crate::state;
use crate::usage::{charged_usage, Usage, UsageSource};

/// Client headers that must never reach a provider; the upstream filter removes the rest.
const CLIENT_CREDENTIALS: &[&str] = &["authorization", "x-api-key"];

pub struct GatewayFilter {
    config: Rc<Config>,
    started_unix: u64,
    start: SystemTime,
    /// Set for the endpoints that go to a provider.
    operation: Option<Operation>,
    plan: Option<Plan>,
    status: u32,
    /// The OpenAI error code of a failed request, and whose fault it was.
    error_code: Option<(&'static str, &'static str)>,
    mode: Option<ResponseMode>,
    first_byte_ms: Option<u64>,
    usage: Option<Usage>,
    /// Body log of this request (its model has `log_bodies`): the request, then the response.
    body_log: Option<(String, Option<String>)>,
    /// A provider the caller pinned with `x-gateway-provider`.
    pinned: Option<String>,
    /// A request waiting for the classifier's answer, with its body.
    classifying: Option<(Prepared, Vec<u8>)>,
    /// The caller's key id and team, once authenticated.
    key: Option<(String, Option<String>)>,
    /// What the request holds of the local limits and budgets, settled in `on_log`.
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
}

/// Header a caller may pin a provider with (it does not go further).
const PIN_HEADER: &str = "x-gateway-provider";

impl GatewayFilter {
    pub fn new(config: Rc<Config>, started_unix: u64) -> Self {
        Self {
            config,
            started_unix,
            start: host::now(),
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
        }
    }

    fn reply_error(&mut self, error: &GatewayError) -> Action {
        self.status = error.status();
        self.error_code = Some((error.code(), error.fault()));
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(self.limit_headers.iter().map(|(k, v)| (*k, v.as_str())));
        if matches!(error, GatewayError::Auth { status: 401, .. }) {
            headers.push(("www-authenticate", "Bearer"));
        }
        if let Err(s) = proxy_wasm::hostcalls::send_http_response(
            error.status(),
            headers,
            Some(&error.to_json()),
        ) {
            log::error!("sending a local reply failed: {s:?}");
        }
        Action::Pause
    }

    fn reply_json(&mut self, body: &[u8]) -> Action {
        self.status = 200;
        host::send_json(200, body);
        Action::Pause
    }

    fn record_plan(&self, plan: &Plan, body: &[u8]) {
        host::set_property(state::ROUTE, &plan.route);
        host::set_property(state::TARGET, &plan.cluster);
        let chain: Vec<String> = plan.chain.iter().map(ToString::to_string).collect();
        host::set_property(state::CHAIN, &chain.join(","));
        host::set_property(state::STRATEGY, plan.strategy);
        host::set_property(state::REASON, &plan.reason);
        host::set_property(state::OPERATION, plan.operation.name());
        host::set_property(state::MODEL, &plan.model);
        host::set_property(state::STREAM, bool_str(plan.stream));
        host::set_property(state::USAGE_ASKED, bool_str(plan.client_asked_usage));
        host::set_property_bytes(state::BODY, body);
        // The upstream filter overwrites this with the provider that really served.
        host::set_property(state::PROVIDER, &plan.provider);
        host::clear_route_cache();
    }

    fn on_response_end(&mut self, last_body: Option<&[u8]>) {
        let cap = self.config.body_log_max_bytes;
        let logged = match self.mode.take() {
            Some(ResponseMode::Json(window)) => {
                self.usage = window.usage();
                window.excerpt(cap)
            }
            Some(ResponseMode::Stream(observer)) => {
                self.usage = observer.usage;
                if let Some(code) = observer.failure {
                    self.error_code = Some((code, "provider"));
                } else if observer.error {
                    self.error_code = Some(("stream_error", "provider"));
                }
                observer
                    .transcript
                    .map(|t| log_excerpt(t.to_json().as_bytes(), cap))
                    .unwrap_or_default()
            }
            _ => log_excerpt(last_body.unwrap_or_default(), cap),
        };
        if let Some((_, response)) = self.body_log.as_mut() {
            *response = Some(logged);
        }
    }

    /// Decides the targets and hands the request on, or answers the error.
    fn finish_plan(
        &mut self,
        prepared: Prepared,
        body: &[u8],
        classified: Option<Classified>,
    ) -> Action {
        let facts = prepared.facts.clone();
        let config = Rc::clone(&self.config);
        let observed = |t: &routing::Target| {
            let provider = config
                .providers
                .get(t.provider)
                .map_or("", |p| p.id.as_str());
            host::shared(&Observed::key(provider, &t.upstream_model))
                .0
                .map(|v| Observed::decode(&v))
                .unwrap_or_default()
        };
        let now = host::now()
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
        let max_tokens = facts.max_tokens;
        match plan(&config, prepared, &inputs) {
            Ok(plan) => {
                if let Err(e) = self.admit(&plan, facts.prompt_tokens, max_tokens) {
                    return self.reply_error(&e);
                }
                self.record_plan(&plan, body);
                let key_logs = self
                    .key
                    .as_ref()
                    .and_then(|(id, _)| config.keys.key(id))
                    .is_some_and(|k| k.log_bodies);
                if key_logs || config.models.get(&plan.model).is_some_and(|m| m.log_bodies) {
                    self.body_log = Some((log_excerpt(body, config.body_log_max_bytes), None));
                }
                let ask_service = self.ask_rate_limit_service(&plan.model);
                self.plan = Some(plan);
                if ask_service {
                    return Action::Pause; // resumed when every call has answered
                }
                Action::Continue
            }
            Err(e) => self.reply_error(&e),
        }
    }

    /// The key may use the model, and the request fits the key's, team's and model's limits and
    /// budgets: reserves the estimate (prompt + `max_tokens`, and its cost at the primary
    /// target's price), settled with the real usage in `on_log`.
    fn admit(
        &mut self,
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
        // Client-sent numbers: the sum saturates rather than wraps to a tiny estimate.
        let price = config
            .models
            .get(&plan.model)
            .and_then(|m| plan.chain.first().and_then(|&i| m.route.targets.get(i)))
            .and_then(|t| t.price);
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
        let now = unix_now();
        match quota::reserve(&host::HostStore, now, &charges) {
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

    fn report_crossings(&self, crossings: &[quota::Crossing]) {
        for c in crossings {
            log::warn!("{} crossed {}% ({} used)", c.counter, c.percent, c.used);
            let labels = self.labels("none", "none");
            host::count(&metrics::threshold_crossing(&labels, c.percent), 1);
        }
    }

    fn labels<'a>(&'a self, provider: &'a str, model: &'a str) -> Labels<'a> {
        Labels {
            model,
            provider,
            operation: self.operation.map_or("none", |o| o.name()),
            key_id: self.key.as_ref().map_or("none", |(id, _)| id.as_str()),
            team: self
                .key
                .as_ref()
                .and_then(|(_, t)| t.as_deref())
                .unwrap_or("none"),
        }
    }

    /// Asks the global rate limit service about every configured unit; true when calls are out.
    fn ask_rate_limit_service(&mut self, model: &str) -> bool {
        let Some(service) = self.config.rate_limit_service.clone() else {
            return false;
        };
        let subject = Subject {
            key_id: self.key.as_ref().map(|(id, _)| id.as_str()),
            team: self.key.as_ref().and_then(|(_, t)| t.as_deref()),
            model,
        };
        for &kind in &service.units {
            let amount = match kind {
                quota::Kind::Requests => 1,
                quota::Kind::Tokens => self.estimate.tokens,
                quota::Kind::Cost => self.estimate.cost_micros.unwrap_or(0),
            };
            let message = service.request(kind, subject, amount).encode();
            let timeout = std::time::Duration::from_millis(service.timeout_ms);
            match proxy_wasm::hostcalls::dispatch_grpc_call(
                &service.cluster,
                GRPC_SERVICE,
                GRPC_METHOD,
                vec![],
                Some(&message),
                timeout,
            ) {
                Ok(token) => self.rls_pending.push((token, kind)),
                Err(s) => {
                    let verdict = service.verdict(kind, 14, None);
                    log::warn!("rate limit service unreachable ({s:?})");
                    if let Verdict::Failed { allowed, .. } = verdict {
                        host::count(&metrics::ratelimit_service_failure(allowed), 1);
                    }
                }
            }
        }
        !self.rls_pending.is_empty()
    }

    /// Sends the request to the route's classifier (a Not Diamond-style model-select API).
    fn ask_classifier(
        &self,
        classifier: &routing::Classifier,
        prepared: &Prepared,
        body: &[u8],
    ) -> Result<(), String> {
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
        let request =
            serde_json::json!({"messages": messages, "llm_providers": candidates}).to_string();
        let headers = vec![
            (":method", "POST"),
            (":path", classifier.path.as_str()),
            (":authority", classifier.cluster.as_str()),
            ("content-type", "application/json"),
        ];
        let timeout = std::time::Duration::from_millis(classifier.timeout_ms);
        proxy_wasm::hostcalls::dispatch_http_call(
            &classifier.cluster,
            headers,
            Some(request.as_bytes()),
            vec![],
            timeout,
        )
        .map(|_| ())
        .map_err(|s| format!("unreachable ({s:?})"))
    }

    fn logs_bodies(&self) -> bool {
        self.body_log.is_some()
    }
}

/// Completion tokens reserved when the client sets no `max_tokens` (settled to the real usage).
const QUOTA_COMPLETION_ALLOWANCE: u64 = 1024;

fn unix_now() -> u64 {
    host::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A number that differs between the requests of one VM, mixed into the random seed.
fn next_nonce() -> u32 {
    thread_local!(static COUNTER: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    COUNTER.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    })
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl Context for GatewayFilter {
    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        let Some(pos) = self.rls_pending.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, kind) = self.rls_pending.remove(pos);
        let Some(service) = self.config.rate_limit_service.clone() else {
            return;
        };
        let body =
            proxy_wasm::hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, response_size)
                .ok()
                .flatten();
        let refusal = match service.verdict(kind, status_code, body.as_deref()) {
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
                host::count(&metrics::ratelimit_service_failure(allowed), 1);
                (!allowed).then_some(GatewayError::RateLimitServiceDown)
            }
        };
        if let Some(e) = refusal {
            self.rls_pending.clear();
            // The local reservation is given back: the request never ran.
            if let Some(reservation) = self.reservation.take() {
                quota::settle(
                    &host::HostStore,
                    unix_now(),
                    &reservation,
                    Actual::default(),
                );
            }
            let headers: Vec<(&str, &str)> = self
                .limit_headers
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect();
            self.status = e.status();
            self.error_code = Some((e.code(), e.fault()));
            let mut all = vec![("content-type", "application/json")];
            all.extend(headers);
            if let Err(s) =
                proxy_wasm::hostcalls::send_http_response(e.status(), all, Some(&e.to_json()))
            {
                log::error!("sending the rate-limit answer failed: {s:?}");
            }
            return;
        }
        if self.rls_pending.is_empty() {
            if let Err(s) = proxy_wasm::hostcalls::resume_http_request() {
                log::error!("resuming after the rate limit service failed: {s:?}");
            }
        }
    }

    fn on_http_call_response(&mut self, _: u32, _: usize, body_size: usize, _: usize) {
        let Some((prepared, body)) = self.classifying.take() else {
            return;
        };
        let status =
            proxy_wasm::hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .unwrap_or_default();
        let answer =
            proxy_wasm::hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
        let classified = match (status.as_str(), routing::classifier_choice(&answer)) {
            ("200", Some((provider, model))) => Classified::Target { provider, model },
            // Envoy answers a callout that ran out of time with its own 504, and one that could
            // not connect with a 503.
            ("504", _) => Classified::Failed("timed out".into()),
            ("" | "503", _) => Classified::Failed("unreachable".into()),
            (status, _) => Classified::Failed(format!("answered {status} without a choice")),
        };
        let action = self.finish_plan(prepared, &body, Some(classified));
        if matches!(action, Action::Continue) {
            if let Err(s) = proxy_wasm::hostcalls::resume_http_request() {
                log::error!("resuming after the classifier failed: {s:?}");
            }
        }
    }
}

impl HttpContext for GatewayFilter {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        self.start = host::now();
        if self.config.keys.required() {
            let authorization = host::header(MapType::HttpRequestHeaders, "authorization");
            let x_api_key = host::header(MapType::HttpRequestHeaders, "x-api-key");
            match self
                .config
                .keys
                .authenticate(authorization.as_deref(), x_api_key.as_deref())
            {
                Ok(key) => self.key = Some((key.id.clone(), key.team.clone())),
                Err(e) => {
                    if let Some(id) = e.key_id() {
                        host::set_property(state::KEY_ID, id);
                    }
                    return self.reply_error(&e.into());
                }
            }
            if let Some((id, team)) = &self.key {
                host::set_property(state::KEY_ID, id);
                if let Some(team) = team {
                    host::set_property(state::TEAM, team);
                }
            }
        }
        let method = host::header(MapType::HttpRequestHeaders, ":method").unwrap_or_default();
        let path = host::header(MapType::HttpRequestHeaders, ":path").unwrap_or_default();
        let operation = match endpoint_for(&method, &path) {
            Err(e) => return self.reply_error(&e),
            Ok(Endpoint::ListModels) => {
                return self.reply_json(&models_list(&self.config, self.started_unix))
            }
            Ok(Endpoint::RetrieveModel(id)) => {
                return match model_retrieve(&self.config, &id, self.started_unix) {
                    Ok(body) => self.reply_json(&body),
                    Err(e) => self.reply_error(&e),
                }
            }
            Ok(Endpoint::ChatCompletions) => Operation::Chat,
            Ok(Endpoint::Embeddings) => Operation::Embeddings,
        };
        for name in CLIENT_CREDENTIALS {
            host::set_header(MapType::HttpRequestHeaders, name, None);
        }
        self.pinned =
            host::header(MapType::HttpRequestHeaders, PIN_HEADER).filter(|p| !p.is_empty());
        host::set_header(MapType::HttpRequestHeaders, PIN_HEADER, None);
        if end_of_stream {
            return self.reply_error(&GatewayError::InvalidJson("the request has no body".into()));
        }
        self.operation = Some(operation);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(operation) = self.operation else {
            return Action::Continue;
        };
        if self.plan.is_some() {
            return Action::Continue;
        }
        if body_size > self.config.max_request_bytes {
            let limit = self.config.max_request_bytes;
            return self.reply_error(&GatewayError::BodyTooLarge { limit });
        }
        if !end_of_stream {
            return Action::Pause; // buffer until the whole body is here
        }
        let body = host::body(BufferType::HttpRequestBody, body_size);
        let prepared = match prepare(&self.config, operation, &body) {
            Ok(p) => p,
            Err(e) => return self.reply_error(&e),
        };
        let classifier = self
            .config
            .models
            .get(&prepared.model)
            .and_then(|m| m.route.classifier.clone());
        if let Some(classifier) = classifier {
            match self.ask_classifier(&classifier, &prepared, &body) {
                Ok(()) => {
                    self.classifying = Some((prepared, body));
                    return Action::Pause; // resumed by on_http_call_response
                }
                Err(reason) => {
                    return self.finish_plan(prepared, &body, Some(Classified::Failed(reason)))
                }
            }
        }
        self.finish_plan(prepared, &body, None)
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let status = host::header(MapType::HttpResponseHeaders, ":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.status = status;
        // Errors of every origin (Envoy's own 413/503 text replies too) get the OpenAI shape;
        // the gateway's own replies already have it and pass unchanged.
        if self.operation.is_none() && status < 400 {
            return Action::Continue;
        }
        let content_type = host::header(MapType::HttpResponseHeaders, "content-type");
        let strip = self
            .plan
            .as_ref()
            .is_some_and(|p| p.stream && !p.client_asked_usage);
        let provider = host::property(state::PROVIDER);
        let mode = match (&self.plan, &provider, status) {
            (Some(_), Some(provider), 401 | 403) => {
                let e = GatewayError::ProviderAuth {
                    provider: provider.clone(),
                    status,
                };
                self.status = e.status();
                self.error_code = Some((e.code(), e.fault()));
                host::set_header(MapType::HttpResponseHeaders, ":status", Some("502"));
                host::set_header(
                    MapType::HttpResponseHeaders,
                    "content-type",
                    Some("application/json"),
                );
                ResponseMode::Replace(e.to_json())
            }
            _ => ResponseMode::choose(
                status,
                content_type.as_deref(),
                strip,
                self.logs_bodies(),
                self.config.body_log_max_bytes,
            ),
        };
        if !matches!(mode, ResponseMode::Json { .. }) {
            // The body may be rewritten: its length is not known in advance.
            host::set_header(MapType::HttpResponseHeaders, "content-length", None);
        }
        self.mode = Some(mode);
        if self.plan.is_none() {
            return Action::Continue;
        }
        if let Some(provider) = &provider {
            host::set_header(
                MapType::HttpResponseHeaders,
                "x-gateway-provider",
                Some(provider),
            );
        }
        if let Some(model) = host::property(state::UPSTREAM_MODEL) {
            host::set_header(
                MapType::HttpResponseHeaders,
                "x-gateway-model",
                Some(&model),
            );
        }
        for (name, value) in &self.limit_headers {
            host::set_header(MapType::HttpResponseHeaders, name, Some(value));
        }
        if let Some(attempts) = host::property(state::ATTEMPT) {
            host::set_header(
                MapType::HttpResponseHeaders,
                "x-gateway-attempts",
                Some(&attempts),
            );
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.first_byte_ms.is_none() && body_size > 0 {
            self.first_byte_ms = Some(host::millis_since(self.start));
        }
        let response = BufferType::HttpResponseBody;
        match &mut self.mode {
            None => {}
            Some(ResponseMode::Error { .. } | ResponseMode::Replace(_))
                if !end_of_stream && body_size <= MAX_ERROR_BODY =>
            {
                return Action::Pause; // errors are small: read them whole
            }
            Some(ResponseMode::Error { status }) => {
                // An error body past the cap is read only up to it; the rest is dropped.
                let body = host::body(response, body_size.min(MAX_ERROR_BODY));
                // Scrubbed before the message is shortened, which could cut a secret in two.
                let scrubbed = self.config.scrubber.scrub(&body);
                let clean = scrubbed.as_deref().unwrap_or(&body);
                let sent = match normalize_error_body(*status, clean) {
                    Some(shaped) => shaped,
                    None if body_size > MAX_ERROR_BODY => {
                        normalize_error_body(*status, b"").unwrap_or_default()
                    }
                    None => scrubbed.unwrap_or(body),
                };
                host::replace_body(response, body_size, &sent);
                self.on_response_end(Some(&sent));
                self.mode = Some(ResponseMode::Replace(Vec::new()));
                return Action::Continue;
            }
            Some(ResponseMode::Replace(replacement)) => {
                // Sent once, in place of the first (buffered) body; later pieces are dropped.
                host::replace_body(response, body_size, replacement);
                let sent = std::mem::take(replacement);
                if self.body_log.as_ref().is_some_and(|(_, r)| r.is_none()) {
                    self.on_response_end(Some(&sent));
                }
                self.mode = Some(ResponseMode::Replace(Vec::new()));
                return Action::Continue;
            }
            Some(ResponseMode::Json(window)) => {
                let chunk = host::body(response, body_size);
                let scrubbed = self
                    .scrub
                    .feed(&self.config.scrubber, &chunk, end_of_stream);
                if let Some(clean) = &scrubbed {
                    host::replace_body(response, body_size, clean);
                }
                window.push(scrubbed.as_deref().unwrap_or(&chunk));
            }
            Some(ResponseMode::Stream(observer)) => {
                let chunk = host::body(response, body_size);
                let scrubbed = self
                    .scrub
                    .feed(&self.config.scrubber, &chunk, end_of_stream);
                let clean = scrubbed.as_deref().unwrap_or(&chunk);
                if let Some(replacement) = observer.on_chunk(clean, end_of_stream).or(scrubbed) {
                    host::replace_body(response, body_size, &replacement);
                }
            }
        }
        if end_of_stream {
            self.on_response_end(None);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        host::note_vm_memory();
        if self.operation.is_none() && self.status == 0 {
            return;
        }
        let duration = host::millis_since(self.start);
        let provider = host::property(state::PROVIDER).unwrap_or_else(|| "none".into());
        let model = self
            .plan
            .as_ref()
            .map_or_else(|| "none".to_string(), |p| p.model.clone());
        host::set_property(state::DURATION_MS, &duration.to_string());
        // An answer that started but never ended: Envoy reset the client's stream because the
        // provider's reset or hung up (nothing can be written to it any more), or the client
        // went away. Envoy's response code details tell which.
        if matches!(
            self.mode,
            Some(ResponseMode::Stream(_) | ResponseMode::Json(_))
        ) && self.error_code.is_none()
        {
            let details = host::property_path(&["response", "code_details"]).unwrap_or_default();
            self.error_code = Some(if details.starts_with("upstream") {
                ("upstream_stream_reset", "provider")
            } else {
                ("client_disconnected", "client")
            });
            log::warn!("the answer ended before it was complete: {details}");
        }
        // A provider filter that refused an attempt itself says so; no provider saw it.
        let refused = (self.error_code.is_none() && self.status >= 400)
            .then(|| host::property(state::REFUSED))
            .flatten();
        let (error_type, fault) = match (self.error_code, &refused, self.status) {
            (Some((code, fault)), _, _) => (code, fault),
            (None, Some(code), status) => (
                metrics::known_error_code(code),
                if status >= 500 { "gateway" } else { "client" },
            ),
            (None, None, 400..) => ("provider_error", "provider"),
            (None, None, _) => ("none", ""),
        };
        if error_type != "none" {
            host::set_property(state::ERROR_CODE, error_type);
            host::set_property(state::FAULT, fault);
        }
        let answered = self.plan.is_some() && (200..300).contains(&self.status);
        let embeddings = self.operation == Some(Operation::Embeddings);
        if let Some((usage, source)) =
            charged_usage(self.usage, answered, embeddings, self.estimated_usage)
        {
            self.usage = Some(usage);
            if source != UsageSource::Reported {
                host::set_property(state::USAGE_SOURCE, source.name());
            }
            if source == UsageSource::Missing {
                log::warn!(
                    "usage_missing: the answer of model '{model}' from '{provider}' reported no readable usage; charged the estimate of {} tokens",
                    usage.total
                );
                let labels = self.labels(&provider, &model);
                host::count(&metrics::by_model(metrics::USAGE_MISSING, &labels), 1);
            }
        }
        let cost = self
            .usage
            .and_then(|u| self.served_price().map(|p| cost_micros(&u, &p)));
        self.settle(cost);
        let labels = self.labels(&provider, &model);
        host::count(&metrics::requests(&labels, self.status, error_type), 1);
        let attempts = host::property(state::ATTEMPT)
            .and_then(|a| a.parse::<u64>().ok())
            .unwrap_or(0);
        if attempts > 1 && (200..300).contains(&self.status) {
            host::count(&metrics::by_model(metrics::FALLBACKS, &labels), 1);
        }
        if self.status == 429 {
            host::count(&metrics::by_model(metrics::RATE_LIMITED, &labels), 1);
        }
        let Some(plan) = &self.plan else { return };
        // Latency and tokens only for requests that went to a provider.
        host::record(&metrics::operation_duration(&labels, self.status), duration);
        // Latency routing feeds on these; without it they would be a shared-data write per
        // request for nothing.
        if (200..300).contains(&self.status) && self.config.observes_latency {
            if let Some(upstream) = host::property(state::UPSTREAM_MODEL) {
                let ttft = if plan.stream {
                    self.first_byte_ms
                } else {
                    None
                };
                host::update_shared(&Observed::key(&provider, &upstream), |old| {
                    old.map(Observed::decode)
                        .unwrap_or_default()
                        .with_sample(duration, ttft)
                        .encode()
                });
            }
        }
        if let Some(ms) = self.first_byte_ms {
            host::set_property(state::TTFB_MS, &ms.to_string());
            if plan.stream {
                host::record(
                    &metrics::by_model(metrics::TIME_TO_FIRST_TOKEN, &labels),
                    ms,
                );
            }
        }
        if let Some((request, response)) = &self.body_log {
            host::set_property(state::LOG_REQUEST, request);
            host::set_property(state::LOG_RESPONSE, response.as_deref().unwrap_or_default());
        }
        let Some(u) = self.usage else { return };
        for (key, value) in [
            (state::PROMPT_TOKENS, u.prompt),
            (state::COMPLETION_TOKENS, u.completion),
            (state::TOTAL_TOKENS, u.total),
            (state::CACHED_TOKENS, u.cached_prompt),
            (state::REASONING_TOKENS, u.reasoning),
        ] {
            host::set_property(key, &value.to_string());
        }
        host::record(
            &metrics::tokens(metrics::TOKEN_USAGE, &labels, "input"),
            u.prompt,
        );
        if plan.operation == Operation::Chat {
            host::record(
                &metrics::tokens(metrics::TOKEN_USAGE, &labels, "output"),
                u.completion,
            );
        }
        for (token_type, count) in [
            ("input", u.prompt),
            ("output", u.completion),
            ("cached", u.cached_prompt),
            ("cache_write", u.cache_write),
            ("reasoning", u.reasoning),
        ] {
            if count > 0 {
                host::count(
                    &metrics::tokens(metrics::TOKENS, &labels, token_type),
                    count,
                );
            }
        }
        if let (true, Some(ttft)) = (plan.stream && u.completion > 1, self.first_byte_ms) {
            let per_token_us = duration.saturating_sub(ttft) * 1000 / (u.completion - 1);
            host::record(
                &metrics::by_model(metrics::TIME_PER_OUTPUT_TOKEN, &labels),
                per_token_us,
            );
        }
        match cost {
            Some(cost) => {
                host::set_property(state::COST_MICROS, &cost.to_string());
                host::set_property(state::COST_USD, &format_dollars(cost));
                host::count(&metrics::cost(&labels), cost);
            }
            None => host::count(&metrics::by_model(metrics::COST_UNKNOWN, &labels), 1),
        }
    }
}

impl GatewayFilter {
    /// The price of the target that served (provider and model from the attempt).
    fn served_price(&self) -> Option<crate::pricing::Price> {
        let plan = self.plan.as_ref()?;
        let provider = host::property(state::PROVIDER)?;
        let served = host::property(state::UPSTREAM_MODEL)?;
        let model = self.config.models.get(&plan.model)?;
        model
            .route
            .targets
            .iter()
            .find(|t| {
                t.upstream_model == served
                    && self
                        .config
                        .providers
                        .get(t.provider)
                        .is_some_and(|p| p.id == provider)
            })
            .and_then(|t| t.price)
    }

    /// Settles the local reservation with what the request really used: its usage (the
    /// estimate when a successful answer reported none), nothing when it failed.
    fn settle(&mut self, cost: Option<u64>) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let actual = match (self.usage, (200..300).contains(&self.status)) {
            (Some(u), _) => Actual {
                tokens: u.total,
                cost_micros: cost.unwrap_or(0),
            },
            (None, true) => Actual {
                tokens: self.estimate.tokens,
                cost_micros: self.estimate.cost_micros.unwrap_or(0),
            },
            (None, false) => Actual::default(),
        };
        let settlement = quota::settle(&host::HostStore, unix_now(), &reservation, actual);
        if settlement.failed > 0 {
            log::warn!("{} quota counters could not be settled", settlement.failed);
        }
        self.report_crossings(&settlement.crossings);
    }
}
