//! A request answered from the cache: the checks a hit still passes (the key may use the model,
//! the request fits the requests-per-minute limits), the reply in the shape the client asked
//! for, and its access-log fields and stats (cost 0, and what it saved). A semantic hit
//! (`semantic.rs`) was admitted already and goes to the reply (`reply_entry`) at once.

use serde_json::Value;

use super::{Hit, HEADER, LAYER};
use crate::cache::entry::Entry;
use crate::cache::replay::to_sse;
use crate::error::GatewayError;
use crate::gateway::Prepared;
use crate::keys::Estimate;
use crate::metrics;
use crate::pipeline::{Effect, Flow, Host, Request};
use crate::pricing::{cost_micros, format_dollars};
use crate::provider::Operation;
use crate::quota::{self, Kind, QuotaError};
use crate::response::log_excerpt;
use crate::state;

/// What the client asked for, as far as a hit's reply needs it.
pub(super) struct Asked {
    pub model: String,
    pub operation: Operation,
    pub stream: bool,
    pub client_asked_usage: bool,
}

/// The response header with a semantic hit's similarity.
const SIMILARITY_HEADER: &str = "x-gateway-cache-similarity";

impl Request {
    /// Answers from a stored entry when the request fits the requests-per-minute limits (a hit
    /// uses no tokens and costs nothing); whether the key may use the model was checked when the
    /// request was read (`on_request_body`), before the lookup.
    pub(super) fn reply_hit(
        &mut self,
        host: &dyn Host,
        prepared: &Prepared,
        request_body: &[u8],
        entry: Entry,
        now: u64,
    ) -> Flow {
        let config = std::rc::Rc::clone(&self.config);
        let key = self.key.as_ref().and_then(|(id, _)| config.keys.key(id));
        let charges: Vec<_> = config
            .keys
            .charges(key, &prepared.model, &Estimate::default())
            .into_iter()
            .filter(|c| c.counter.kind == Kind::Requests)
            .collect();
        if !charges.is_empty() {
            match quota::reserve(host.store(), now, &charges) {
                Ok(reservation) => {
                    self.report_crossings(&reservation.crossings);
                    self.limit_headers = reservation.headers(now);
                }
                Err(QuotaError::Refused(refusal)) => {
                    self.report_crossings(&refusal.crossings);
                    self.limit_headers = refusal.headers();
                    return self.reply_error(&(&refusal).into());
                }
                Err(QuotaError::Contention { key } | QuotaError::Store { key }) => {
                    log::error!("quota counter {key} could not be updated; refusing the request");
                    return self.reply_error(&GatewayError::RateLimitServiceDown);
                }
            }
        }
        let asked = Asked {
            model: prepared.model.clone(),
            operation: prepared.operation,
            stream: prepared.stream,
            client_asked_usage: prepared.client_asked_usage,
        };
        self.reply_entry(host, &asked, request_body, entry, now, None)
    }

    /// The reply of a hit (exact, or semantic with its `similarity`), in the shape asked.
    pub(super) fn reply_entry(
        &mut self,
        host: &dyn Host,
        prepared: &Asked,
        request_body: &[u8],
        entry: Entry,
        now: u64,
        similarity: Option<f32>,
    ) -> Flow {
        let config = std::rc::Rc::clone(&self.config);
        let key = self.key.as_ref().and_then(|(id, _)| config.keys.key(id));
        let usage = entry.usage();
        let saved_micros = usage.and_then(|u| {
            let target = config
                .models
                .get(&prepared.model)?
                .route
                .targets
                .iter()
                .find(|t| {
                    t.upstream_model == entry.upstream_model
                        && config
                            .providers
                            .get(t.provider)
                            .is_some_and(|p| p.id == entry.provider)
                })?;
            Some(cost_micros(&u, &target.price?))
        });
        let key_logs = key.is_some_and(|k| k.log_bodies);
        if key_logs
            || config
                .models
                .get(&prepared.model)
                .is_some_and(|m| m.log_bodies)
        {
            let cap = config.body_log_max_bytes;
            self.body_log = Some((
                log_excerpt(request_body, cap),
                Some(log_excerpt(&entry.body, cap)),
            ));
        }
        let (content_type, body) = if prepared.stream {
            let Ok(completion) = serde_json::from_slice::<Value>(&entry.body) else {
                return self.reply_error(&GatewayError::Misconfigured(
                    "a cached answer could not be read".into(),
                ));
            };
            (
                "text/event-stream",
                to_sse(&completion, prepared.client_asked_usage),
            )
        } else {
            ("application/json", entry.body)
        };
        let mut finished = None;
        let body = match (&self.front, prepared.stream) {
            (None, _) => body,
            (Some(front), true) => {
                let mut stream = front.stream();
                let events = stream.push(&body, true);
                finished = stream.finished_response();
                events
            }
            (Some(front), false) => front.answer_from_chat(&body),
        };
        self.cache.verdict = None;
        let layer = if similarity.is_some() {
            super::semantic::LAYER
        } else {
            LAYER
        };
        self.emit(Effect::Count(
            metrics::cache_lookup(&prepared.model, layer, "hit"),
            1,
        ));
        let mut headers = vec![
            ("content-type", content_type.to_string()),
            (HEADER, verdict(similarity).to_string()),
            ("age", now.saturating_sub(entry.created).to_string()),
        ];
        if let Some(s) = similarity {
            headers.push((SIMILARITY_HEADER, similarity_text(s)));
        }
        headers.extend(self.limit_headers.iter().cloned());
        self.status = 200;
        self.cache.hit = Some(Hit {
            model: prepared.model.clone(),
            operation: prepared.operation,
            stream: prepared.stream,
            usage,
            provider: entry.provider,
            upstream_model: entry.upstream_model,
            saved_micros,
            similarity,
        });
        // A Responses client's answer is kept in the response store like one from a provider.
        if let Some(pending) = self.response_pending.as_mut() {
            match finished {
                Some(response) => pending.set_response(response),
                None => pending.set_response_bytes(&body),
            }
            self.response_store_end(host);
        }
        self.emit(Effect::Reply {
            status: 200,
            headers,
            body,
        });
        Flow::Pause
    }

    /// The access-log fields and stats of a request answered from the cache.
    pub(in crate::pipeline) fn log_cache_hit(&mut self, host: &dyn Host) {
        let Some(hit) = self.cache.hit.take() else {
            return;
        };
        let duration = self.millis_since_start(host.now());
        self.set_property(state::DURATION_MS, duration.to_string());
        self.set_property(state::CACHE, verdict(hit.similarity));
        if let Some(s) = hit.similarity {
            self.set_property(state::CACHE_SIMILARITY, similarity_text(s));
        }
        let tier = if self.cache.shared.served {
            "shared"
        } else {
            "local"
        };
        self.set_property(state::CACHE_TIER, tier);
        self.set_property(state::MODEL, hit.model.clone());
        self.set_property(state::OPERATION, hit.operation.name());
        self.set_property(state::STREAM, crate::pipeline::admit::bool_str(hit.stream));
        self.set_property(state::PROVIDER, "cache");
        self.set_property(state::UPSTREAM_MODEL, hit.upstream_model.clone());
        self.set_property(state::COST_MICROS, "0");
        self.set_property(state::COST_USD, format_dollars(0));
        let labels = self.labels("cache", &hit.model);
        let mut stats = vec![Effect::Count(metrics::requests(&labels, 200, "none"), 1)];
        if let Some(u) = hit.usage {
            for (key, value) in [
                (state::PROMPT_TOKENS, u.prompt),
                (state::COMPLETION_TOKENS, u.completion),
                (state::TOTAL_TOKENS, u.total),
            ] {
                self.set_property(key, value.to_string());
            }
            for (token_type, count) in [("input", u.prompt), ("output", u.completion)] {
                if count > 0 {
                    let stat = metrics::cache_saved(
                        metrics::CACHE_TOKENS_SAVED,
                        &hit.model,
                        Some(token_type),
                    );
                    stats.push(Effect::Count(stat, count));
                }
            }
        }
        if let Some(saved) = hit.saved_micros {
            self.set_property(state::CACHE_SAVED_MICROS, saved.to_string());
            let stat = metrics::cache_saved(metrics::CACHE_SAVED_COST, &hit.model, None);
            stats.push(Effect::Count(stat, saved));
        }
        log::debug!(
            "answered from the cache: model '{}' (first served by '{}')",
            hit.model,
            hit.provider
        );
        self.effects.extend(stats);
        if let Some((request, response)) = self.body_log.take() {
            self.set_property(state::LOG_REQUEST, request);
            self.set_property(state::LOG_RESPONSE, response.unwrap_or_default());
        }
    }
}

/// `hit`, or `semantic-hit` for a hit found by similarity.
fn verdict(similarity: Option<f32>) -> &'static str {
    if similarity.is_some() {
        "semantic-hit"
    } else {
        "hit"
    }
}

/// A similarity as the header and the access log show it: 4 decimals.
fn similarity_text(s: f32) -> String {
    format!("{s:.4}")
}
