//! The end of a request: what it failed on and whose fault that was, what it used and cost, the
//! settlement of what it reserved, its stats and access-log fields, and the latency
//! observations routing feeds on.

use super::phase::Callback;
use super::{Effect, Host, Request};
use crate::metrics;
use crate::pricing::{cost_micros, format_dollars, Price};
use crate::provider::Operation;
use crate::quota::{self, Actual};
use crate::response::ResponseMode;
use crate::routing::Observed;
use crate::state;
use crate::usage::{charged_usage, UsageSource};

/// Who served the request, as the provider filter of the last attempt told.
#[derive(Clone)]
pub(super) struct Served {
    pub provider: String,
    pub upstream_model: Option<String>,
    pub attempts: u64,
}

impl Request {
    /// The request is over (Envoy writes its access log next).
    pub fn on_log(&mut self, host: &dyn Host) {
        self.enter(Callback::Log);
        if self.operation.is_none() && self.status == 0 {
            return;
        }
        self.guard_log();
        if self.cache.answered() {
            return self.log_cache_hit(host);
        }
        let now = host.now();
        let duration = self.millis_since_start(now);
        // Read when the answer started (no attempt follows then), or now for a local reply.
        let served = match self.served.take() {
            Some(served) => served,
            None => self.read_served(host),
        };
        let provider = served.provider.as_str();
        let model = self
            .plan
            .as_ref()
            .map_or_else(|| "none".to_string(), |p| p.model.clone());
        self.set_property(state::DURATION_MS, duration.to_string());
        self.classify_failure(host);
        let (error_type, fault) = self.error_type(host);
        if error_type != "none" {
            self.set_property(state::ERROR_CODE, error_type);
            self.set_property(state::FAULT, fault);
        }
        let answered = self.plan.is_some() && (200..300).contains(&self.status);
        if self.count_tokens && answered {
            // Anthropic's count costs nothing and reports no usage.
            self.usage.get_or_insert_with(Default::default);
        }
        let embeddings = self.operation == Some(Operation::Embeddings);
        if let Some((usage, source)) =
            charged_usage(self.usage, answered, embeddings, self.estimated_usage)
        {
            self.usage = Some(usage);
            if source != UsageSource::Reported {
                self.set_property(state::USAGE_SOURCE, source.name());
            }
            if source == UsageSource::Missing {
                log::warn!(
                    "usage_missing: the answer of model '{model}' from '{provider}' reported no readable usage; charged the estimate of {} tokens",
                    usage.total
                );
                let stat =
                    metrics::by_model(metrics::USAGE_MISSING, &self.labels(provider, &model));
                self.emit(Effect::Count(stat, 1));
            }
        }
        let cost = self
            .usage
            .and_then(|u| self.served_price(&served).map(|p| cost_micros(&u, &p)));
        self.settle(host, cost);
        let labels = self.labels(provider, &model);
        let mut stats = vec![Effect::Count(
            metrics::requests(&labels, self.status, error_type),
            1,
        )];
        let ok = (200..300).contains(&self.status);
        if served.attempts > 1 && ok {
            stats.push(Effect::Count(
                metrics::by_model(metrics::FALLBACKS, &labels),
                1,
            ));
        }
        if self.status == 429 {
            stats.push(Effect::Count(
                metrics::by_model(metrics::RATE_LIMITED, &labels),
                1,
            ));
        }
        let Some(plan) = &self.plan else {
            self.effects.extend(stats);
            return;
        };
        let stream = plan.stream;
        let chat = plan.operation == Operation::Chat;
        // Latency and tokens only for requests that went to a provider.
        stats.push(Effect::Record(
            metrics::operation_duration(&labels, self.status),
            duration,
        ));
        let ttft = self.first_byte_ms;
        if let (Some(ms), true) = (ttft, stream) {
            stats.push(Effect::Record(
                metrics::by_model(metrics::TIME_TO_FIRST_TOKEN, &labels),
                ms,
            ));
        }
        if let Some(u) = self.usage {
            stats.push(Effect::Record(
                metrics::tokens(metrics::TOKEN_USAGE, &labels, "input"),
                u.prompt,
            ));
            if chat {
                stats.push(Effect::Record(
                    metrics::tokens(metrics::TOKEN_USAGE, &labels, "output"),
                    u.completion,
                ));
            }
            for (token_type, count) in [
                ("input", u.prompt),
                ("output", u.completion),
                ("cached", u.cached_prompt),
                ("cache_write", u.cache_write),
                ("reasoning", u.reasoning),
            ] {
                if count > 0 {
                    stats.push(Effect::Count(
                        metrics::tokens(metrics::TOKENS, &labels, token_type),
                        count,
                    ));
                }
            }
            if let (true, Some(ttft)) = (stream && u.completion > 1, ttft) {
                let per_token_us =
                    duration.saturating_sub(ttft).saturating_mul(1000) / (u.completion - 1);
                stats.push(Effect::Record(
                    metrics::by_model(metrics::TIME_PER_OUTPUT_TOKEN, &labels),
                    per_token_us,
                ));
            }
        }
        match cost {
            Some(cost) => stats.push(Effect::Count(metrics::cost(&labels), cost)),
            None if self.usage.is_some() => {
                stats.push(Effect::Count(
                    metrics::by_model(metrics::COST_UNKNOWN, &labels),
                    1,
                ));
            }
            None => {}
        }
        self.effects.extend(stats);
        // Latency routing feeds on these; without it they would be a shared-data write per
        // request for nothing.
        if ok && self.config.observes_latency {
            if let Some(upstream) = &served.upstream_model {
                let ttft = if stream { ttft } else { None };
                quota::update_entry(host.store(), &Observed::key(provider, upstream), |old| {
                    old.map(Observed::decode)
                        .unwrap_or_default()
                        .with_sample(duration, ttft)
                        .encode()
                });
            }
        }
        if let Some(ms) = ttft {
            self.set_property(state::TTFB_MS, ms.to_string());
        }
        if let Some((request, response)) = self.body_log.take() {
            self.set_property(state::LOG_REQUEST, request);
            self.set_property(state::LOG_RESPONSE, response.unwrap_or_default());
        }
        if let Some(u) = self.usage {
            for (key, value) in [
                (state::PROMPT_TOKENS, u.prompt),
                (state::COMPLETION_TOKENS, u.completion),
                (state::TOTAL_TOKENS, u.total),
                (state::CACHED_TOKENS, u.cached_prompt),
                (state::REASONING_TOKENS, u.reasoning),
            ] {
                self.set_property(key, value.to_string());
            }
        }
        if let Some(cost) = cost {
            self.set_property(state::COST_MICROS, cost.to_string());
            self.set_property(state::COST_USD, format_dollars(cost));
        }
        self.log_decision(&served);
    }

    /// With the provider filter in this VM, the decision was handed over in the VM: its
    /// access-log fields are written once, here, instead of as the provider filter's input.
    fn log_decision(&mut self, served: &Served) {
        let Some((id, _)) = self.handoff.take() else {
            // Filter state holds the decision; its operation was the provider filter's `chat`.
            if self.plan.is_some() && self.api != crate::inbound::Api::OpenAi {
                self.set_property(state::OPERATION, self.api.name());
            }
            return;
        };
        super::handoff::release(id);
        let Some(plan) = self.plan.take() else {
            return;
        };
        self.set_property(state::MODEL, plan.model.clone());
        // The API the client used names the operation (`messages`), as in the stats.
        let operation = match self.api {
            crate::inbound::Api::OpenAi => plan.operation.name(),
            api => api.name(),
        };
        self.set_property(state::OPERATION, operation);
        self.set_property(state::STREAM, super::admit::bool_str(plan.stream));
        self.set_property(state::STRATEGY, plan.strategy);
        self.set_property(state::REASON, plan.reason.clone());
        self.set_property(state::PROVIDER, served.provider.clone());
        if let Some(model) = &served.upstream_model {
            self.set_property(state::UPSTREAM_MODEL, model.clone());
        }
        self.plan = Some(plan);
    }

    /// Who served: from the handoff when the provider filter runs in this VM, else from the
    /// filter state it wrote.
    pub(super) fn read_served(&self, host: &dyn Host) -> Served {
        if let (Some((_, handoff)), Some(plan)) = (&self.handoff, &self.plan) {
            let served = handoff.served.borrow();
            return Served {
                provider: served
                    .as_ref()
                    .map_or_else(|| plan.provider.clone(), |(p, _)| p.clone()),
                upstream_model: served.as_ref().map(|(_, m)| m.clone()),
                attempts: handoff.attempts.get() as u64,
            };
        }
        let provider = host
            .property(&[state::PROVIDER])
            .unwrap_or_else(|| "none".into());
        let (upstream_model, attempts) = if self.plan.is_some() {
            let attempts = host
                .property(&[state::ATTEMPT])
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            (host.property(&[state::UPSTREAM_MODEL]), attempts)
        } else {
            (None, 0)
        };
        Served {
            provider,
            upstream_model,
            attempts,
        }
    }

    /// An answer that started but never ended: Envoy reset the client's stream because the
    /// provider reset or hung up (nothing can be written to it any more), or the client went
    /// away. Envoy's response code details tell which.
    fn classify_failure(&mut self, host: &dyn Host) {
        let unfinished = matches!(
            self.mode,
            Some(ResponseMode::Stream(_) | ResponseMode::Json(_))
        );
        if !unfinished || self.error_code.is_some() {
            return;
        }
        let details = host
            .property(&["response", "code_details"])
            .unwrap_or_default();
        self.error_code = Some(if details.starts_with("upstream") {
            ("upstream_stream_reset", "provider")
        } else {
            ("client_disconnected", "client")
        });
        log::warn!("the answer ended before it was complete: {details}");
    }

    /// The error code (a stat label) and whose fault it was.
    fn error_type(&self, host: &dyn Host) -> (&'static str, &'static str) {
        if let Some(known) = self.error_code {
            return known;
        }
        if self.status < 400 {
            return ("none", "");
        }
        // A provider filter that refused an attempt itself says so; no provider saw it.
        match host.property(&[state::REFUSED]) {
            Some(code) => (
                metrics::known_error_code(&code),
                if self.status >= 500 {
                    "gateway"
                } else {
                    "client"
                },
            ),
            None => ("provider_error", "provider"),
        }
    }

    /// The price of the target that served (provider and model from the attempt).
    fn served_price(&self, served: &Served) -> Option<Price> {
        let plan = self.plan.as_ref()?;
        let upstream = served.upstream_model.as_deref()?;
        let model = self.config.models.get(&plan.model)?;
        model
            .route
            .targets
            .iter()
            .find(|t| {
                t.upstream_model == upstream
                    && self
                        .config
                        .providers
                        .get(t.provider)
                        .is_some_and(|p| p.id == served.provider)
            })
            .and_then(|t| t.price)
    }

    /// Settles the local reservation with what the request really used: its usage (already
    /// the estimate when an answered request reported none), nothing when it failed.
    fn settle(&mut self, host: &dyn Host, cost: Option<u64>) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let actual = match self.usage {
            Some(u) => Actual {
                tokens: u.total,
                cost_micros: cost.unwrap_or(0),
            },
            None => Actual::default(),
        };
        let now = super::unix_seconds(host.now());
        let settlement = quota::settle(host.store(), now, &reservation, actual);
        if settlement.failed > 0 {
            log::warn!("{} quota counters could not be settled", settlement.failed);
        }
        self.report_crossings(&settlement.crossings);
    }
}
