//! The cache stage. On the request body, once the body is valid and the caller known, before
//! routing and limits: a model with a cache looks the request up in the local tier; a hit is
//! answered here (JSON or SSE, as the client asked, whichever way it was stored) and contacts
//! no provider; a miss goes on and its answer is captured as it passes (a JSON body, or a
//! stream reassembled) and stored at the end when it completed. Hits count against the local
//! requests-per-minute limits, not against token limits or budgets. A model without a cache
//! costs nothing here: no host call, no header.

use serde_json::Value;

use super::{unix_seconds, Effect, Flow, Host, Request};
use crate::cache::assemble::Assembler;
use crate::cache::control::Control;
use crate::cache::entry::{check_chat, check_embeddings, Entry, NotStored};
use crate::cache::key::{exact_key, namespace};
use crate::cache::local::Local;
use crate::cache::replay::to_sse;
use crate::cache::ModelCache;
use crate::error::GatewayError;
use crate::gateway::Prepared;
use crate::keys::Estimate;
use crate::metrics;
use crate::pricing::{cost_micros, format_dollars};
use crate::provider::Operation;
use crate::quota::{self, Kind, QuotaError};
use crate::sse::{SseEvent, SseParser};
use crate::state;
use crate::usage::Usage;

/// The only layer so far: the exact key in the local tier.
const LAYER: &str = "exact";

/// The response header that tells the client what the cache did.
const HEADER: &str = "x-gateway-cache";

thread_local! {
    /// A failed lookup was logged by this worker.
    static LOOKUP_FAILURE_LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What the stage knows of one request.
#[derive(Default)]
pub(super) struct CacheState {
    control: Control,
    /// `miss` or `bypass` for the response header, once looked up.
    verdict: Option<&'static str>,
    /// A miss whose answer may be stored.
    pending: Option<Pending>,
    capture: Option<Capture>,
    /// The request was answered from the cache.
    hit: Option<Hit>,
}

struct Pending {
    key: [u8; 32],
    model: String,
    settings: ModelCache,
    operation: Operation,
}

/// The answer as it passes, bounded by the model's `max_entry_bytes`.
enum Capture {
    Json {
        body: Vec<u8>,
        cap: usize,
        too_large: bool,
    },
    Stream {
        parser: SseParser,
        events: Vec<SseEvent>,
        assembler: Assembler,
    },
}

struct Hit {
    model: String,
    operation: Operation,
    stream: bool,
    usage: Option<Usage>,
    provider: String,
    upstream_model: String,
    saved_micros: Option<u64>,
}

impl CacheState {
    /// A piece of the answer (after secrets were scrubbed).
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        match &mut self.capture {
            None => {}
            Some(Capture::Json {
                body,
                cap,
                too_large,
            }) => {
                if *too_large || body.len().saturating_add(bytes.len()) > *cap {
                    *too_large = true;
                    *body = Vec::new();
                } else {
                    body.extend_from_slice(bytes);
                }
            }
            Some(Capture::Stream {
                parser,
                events,
                assembler,
            }) => {
                parser.feed(bytes, events);
                for event in events.drain(..) {
                    if let Some(data) = event.data {
                        assembler.add(&data);
                    }
                }
            }
        }
    }

    /// A captured stream has passed its `[DONE]`: it can be stored now, before the client,
    /// which may send its next request as soon as it reads `[DONE]`, could ask for it again.
    pub(super) fn stream_ended(&self) -> bool {
        matches!(&self.capture, Some(Capture::Stream { assembler, .. }) if assembler.done())
    }

    pub(super) fn answered(&self) -> bool {
        self.hit.is_some()
    }
}

impl Request {
    /// The client's `Cache-Control`, kept for the lookup (only when some model has a cache).
    pub(super) fn note_cache_control(&mut self, header: Option<&str>) {
        if self.config.cache.is_some() {
            self.cache.control = Control::parse(header);
        }
    }

    /// Looks the request up; `Some` when it was answered here (a hit, or a refusal of it).
    pub(super) fn cache_lookup(
        &mut self,
        host: &dyn Host,
        prepared: &Prepared,
        body: &[u8],
    ) -> Option<Flow> {
        let settings = self.config.cache.as_ref()?.model(&prepared.model)?.clone();
        let model = prepared.model.clone();
        let ns = {
            let (id, team) = self.key.as_ref().map_or((None, None), |(id, team)| {
                (Some(id.as_str()), team.as_deref())
            });
            namespace(settings.scope, id, team)
        };
        // A provider the caller pinned may answer otherwise: its entries are apart.
        let endpoint = match &self.pinned {
            Some(pin) => format!("{}|pinned={pin}", prepared.operation.name()),
            None => prepared.operation.name().to_string(),
        };
        let key = exact_key(&ns, &endpoint, body)?;
        let control = self.cache.control;
        let pending = Pending {
            key,
            model: model.clone(),
            settings,
            operation: prepared.operation,
        };
        if !control.may_read() {
            self.cache_verdict(&model, "bypass");
            self.cache.pending = control.may_store().then_some(pending);
            return None;
        }
        let now = unix_seconds(host.now());
        let entry = match self.local_tier(host).map(|tier| tier.get(&key, now)) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                // A miss, counted; logged once per worker (a failing store fails every time).
                if !LOOKUP_FAILURE_LOGGED.replace(true) {
                    log::error!(
                        "cache lookup failed ({e:?}); answering from the provider (logged once)"
                    );
                }
                self.emit(Effect::Count(
                    metrics::cache_lookup(&model, LAYER, "error"),
                    1,
                ));
                None
            }
            None => None,
        };
        let entry = entry.filter(|e| {
            control
                .max_age
                .is_none_or(|max| now.saturating_sub(e.created) <= max)
        });
        let Some(entry) = entry else {
            self.cache_verdict(&model, "miss");
            self.cache.pending = Some(pending);
            return None;
        };
        Some(self.reply_hit(host, prepared, entry, now))
    }

    fn cache_verdict(&mut self, model: &str, verdict: &'static str) {
        self.cache.verdict = Some(verdict);
        self.set_property(state::CACHE, verdict);
        self.emit(Effect::Count(
            metrics::cache_lookup(model, LAYER, verdict),
            1,
        ));
    }

    fn local_tier<'h>(&self, host: &'h dyn Host) -> Option<Local<'h>> {
        let local = self.config.cache.as_ref()?.local;
        Some(Local {
            store: host.store(),
            slots: local.slots,
            max_bytes: local.max_bytes,
        })
    }

    /// Answers from a stored entry: the key may use the model, and the request fits the
    /// requests-per-minute limits (a hit uses no tokens and costs nothing).
    fn reply_hit(&mut self, host: &dyn Host, prepared: &Prepared, entry: Entry, now: u64) -> Flow {
        let config = std::rc::Rc::clone(&self.config);
        let key = self.key.as_ref().and_then(|(id, _)| config.keys.key(id));
        if let Some(key) = key {
            if let Err(e) = config.keys.authorize(key, &prepared.model) {
                return self.reply_error(&e.into());
            }
        }
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
        self.cache.verdict = None;
        self.emit(Effect::Count(
            metrics::cache_lookup(&prepared.model, LAYER, "hit"),
            1,
        ));
        let mut headers = vec![
            ("content-type", content_type.to_string()),
            (HEADER, "hit".to_string()),
            ("age", now.saturating_sub(entry.created).to_string()),
        ];
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
        });
        self.emit(Effect::Reply {
            status: 200,
            headers,
            body,
        });
        Flow::Pause
    }

    /// The provider's answer starts: says what the cache did, and captures a successful
    /// answer to store.
    pub(super) fn cache_on_response_headers(&mut self, status: u32, stream: bool) {
        if let Some(verdict) = self.cache.verdict {
            self.emit(Effect::SetResponseHeader(HEADER, Some(verdict.into())));
        }
        let Some(pending) = &self.cache.pending else {
            return;
        };
        if status != 200 {
            return;
        }
        let cap = pending.settings.max_entry_bytes;
        self.cache.capture = Some(if stream {
            Capture::Stream {
                parser: SseParser::new(),
                events: Vec::new(),
                assembler: Assembler::new(cap),
            }
        } else {
            Capture::Json {
                body: Vec::new(),
                cap,
                too_large: false,
            }
        });
    }

    /// The answer ended: stores it when it completed and may be stored.
    pub(super) fn cache_store(&mut self, host: &dyn Host) {
        let (Some(pending), Some(capture)) = (self.cache.pending.take(), self.cache.capture.take())
        else {
            return;
        };
        let outcome = match self.cache_entry_body(&pending, capture) {
            Err(why) => why.name(),
            Ok(body) => {
                let now = unix_seconds(host.now());
                let served = self.served.as_ref();
                let entry = Entry {
                    key: pending.key,
                    created: now,
                    expires: now.saturating_add(pending.settings.ttl_secs),
                    provider: served.map(|s| s.provider.clone()).unwrap_or_default(),
                    upstream_model: served
                        .and_then(|s| s.upstream_model.clone())
                        .unwrap_or_default(),
                    body,
                };
                match self.local_tier(host).map(|t| t.put(&entry, now)) {
                    Some(Ok(())) | None => "stored",
                    Some(Err(e)) => {
                        log::warn!(
                            "an answer of '{}' was not cached: {}",
                            pending.model,
                            e.name()
                        );
                        e.name()
                    }
                }
            }
        };
        self.emit(Effect::Count(
            metrics::cache_store(&pending.model, outcome),
            1,
        ));
    }

    fn cache_entry_body(&self, pending: &Pending, capture: Capture) -> Result<Vec<u8>, NotStored> {
        if self.error_code.is_some() || self.status != 200 {
            return Err(NotStored::Malformed);
        }
        let cap = pending.settings.max_entry_bytes;
        let body = match capture {
            Capture::Json {
                too_large: true, ..
            } => return Err(NotStored::TooLarge),
            Capture::Json { body, .. } => {
                let value: Value =
                    serde_json::from_slice(&body).map_err(|_| NotStored::Malformed)?;
                match pending.operation {
                    Operation::Chat => check_chat(&value, pending.settings.tool_calls)?,
                    Operation::Embeddings => check_embeddings(&value)?,
                }
                body
            }
            Capture::Stream {
                mut parser,
                mut events,
                assembler,
            } => {
                let mut assembler = assembler;
                parser.finish(&mut events);
                for event in events {
                    if let Some(data) = event.data {
                        assembler.add(&data);
                    }
                }
                assembler
                    .finish(pending.settings.tool_calls)?
                    .to_string()
                    .into_bytes()
            }
        };
        if body.len() > cap {
            return Err(NotStored::TooLarge);
        }
        Ok(body)
    }

    /// The access-log fields and stats of a request answered from the cache.
    pub(super) fn log_cache_hit(&mut self, host: &dyn Host) {
        let Some(hit) = self.cache.hit.take() else {
            return;
        };
        let duration = self.millis_since_start(host.now());
        self.set_property(state::DURATION_MS, duration.to_string());
        self.set_property(state::CACHE, "hit");
        self.set_property(state::MODEL, hit.model.clone());
        self.set_property(state::OPERATION, hit.operation.name());
        self.set_property(state::STREAM, super::admit::bool_str(hit.stream));
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
    }
}
