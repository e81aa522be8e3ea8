//! The cache stage. On the request body, once the body is valid and the caller known, before
//! routing and limits: a model with a cache looks the request up in the local tier; a hit is
//! answered here (JSON or SSE, as the client asked, whichever way it was stored) and contacts
//! no provider; a miss goes on and its answer is captured as it passes (a JSON body, or a
//! stream reassembled) and stored at the end when it completed. Hits count against the local
//! requests-per-minute limits, not against token limits or budgets. A model without a cache
//! costs nothing here: no host call, no header. What a hit does is in `cache/hit.rs`; the
//! shared tier (asked on a local miss, written with the local tier) in `cache/shared.rs`; the
//! semantic layer, on an exact miss once the request is admitted, in `cache/semantic.rs`.

mod hit;
mod semantic;
mod semantic_shared;
mod shared;

use serde_json::Value;

use super::{unix_seconds, Effect, Flow, Host, Request};
use crate::cache::assemble::Assembler;
use crate::cache::control::Control;
use crate::cache::entry::{check_chat, check_embeddings, Entry, NotStored};
use crate::cache::key::{exact_key, namespace};
use crate::cache::local::Local;
use crate::cache::ModelCache;
use crate::gateway::Prepared;
use crate::metrics;
use crate::provider::Operation;
use crate::response::ResponseMode;
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
    /// The shared tier's lookup and writes.
    shared: shared::SharedState,
    /// The semantic layer's embeddings call and the vector it brought.
    semantic: semantic::SemanticState,
}

struct Pending {
    key: [u8; 32],
    /// The entry's namespace (team, key or global), hashed in the shared tier; and where the
    /// key was computed (the semantic context hash is computed alike).
    namespace: String,
    endpoint: String,
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
        // Boxed: the parser is the larger part of the enum and most answers are JSON.
        parser: Box<SseParser>,
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
    /// A semantic hit's cosine similarity.
    similarity: Option<f32>,
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

    /// The HTTP callout `token` is the semantic layer's embeddings call.
    pub(super) fn owns_call(&self, token: u32) -> bool {
        self.semantic.owns_call(token)
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
        if self.guards_answer() {
            // Its answer is guarded or restored for this caller alone (a restored answer holds
            // this request's own values): never served from, nor stored in, a shared entry.
            self.cache_verdict(&model, "bypass");
            return None;
        }
        let ns = {
            let (id, team) = self.key.as_ref().map_or((None, None), |(id, team)| {
                (Some(id.as_str()), team.as_deref())
            });
            namespace(settings.scope, id, team)
        };
        // A provider the caller pinned may answer otherwise: its entries are apart.
        // Another API's client is keyed on its own body (fields its chat form drops still
        // count) and apart from OpenAI clients; its hits are translated like its answers.
        let api = self.front.as_ref().map_or("", |f| f.api().name());
        let endpoint = match &self.pinned {
            Some(pin) => format!("{}{api}|pinned={pin}", prepared.operation.name()),
            None => format!("{}{api}", prepared.operation.name()),
        };
        let key = exact_key(&ns, &endpoint, self.native_body.as_deref().unwrap_or(body))?;
        let control = self.cache.control;
        let pending = Pending {
            key,
            namespace: ns,
            endpoint,
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
            self.cache.pending = Some(pending);
            if self.shared_lookup(host) {
                return Some(Flow::Pause); // resumed by on_shared_cache_answer
            }
            self.cache_verdict(&model, "miss");
            return None;
        };
        Some(self.reply_hit(host, prepared, body, entry, now))
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
            prefix: crate::cache::local::CACHE_PREFIX,
            slots: local.slots,
            max_bytes: local.max_bytes,
        })
    }

    /// The provider's answer starts: says what the cache did, and captures a successful
    /// answer to store.
    pub(super) fn cache_on_response_headers(&mut self, status: u32) {
        if let Some(verdict) = self.cache.verdict {
            self.emit(Effect::SetResponseHeader(HEADER, Some(verdict.into())));
        }
        let Some(pending) = &self.cache.pending else {
            return;
        };
        // Entries hold the OpenAI answer; a provider that answered in the client's own API
        // (Anthropic to a Messages client) passes untouched and is not stored.
        if status != 200 || matches!(self.outbound, Some(super::Outbound::Native(_))) {
            return;
        }
        let stream = matches!(self.mode, Some(ResponseMode::Stream(_)));
        let cap = pending.settings.max_entry_bytes;
        self.cache.capture = Some(if stream {
            Capture::Stream {
                parser: Box::new(SseParser::fields_only()),
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
                self.shared_store(host, &pending, &entry);
                match self.local_tier(host).map(|t| t.put(&entry, now)) {
                    Some(Ok(())) => {
                        self.semantic_store(host, &pending.model, &entry);
                        "stored"
                    }
                    None => "stored",
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
}
