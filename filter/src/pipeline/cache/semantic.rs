//! The semantic layer of the cache stage, on an exact miss of a chat request, once the request
//! is admitted (its limits and budgets checked, so a refused caller costs no embeddings call):
//! the last user message is embedded by a call to the gateway's own `/v1/embeddings` through a
//! loopback cluster (never a provider's cluster: that runs the provider filter in this VM),
//! with the credential of the gateway key the configuration names; the vector is compared
//! with the bucket of the request's context hash; a close enough entry is served like an exact
//! hit (and copied under this request's exact key), else the request goes on and its vector
//! joins the bucket when its answer is stored. A failed, slow or odd embeddings call is a miss,
//! counted and logged once per worker, never a failed request.
//!
//! No recursion: the embeddings call is an embeddings request, which never enters this layer.

use std::time::Duration;

use super::hit::Asked;
use super::{Effect, Flow, Host, Request};
use crate::cache::entry::{check_chat, Entry};
use crate::cache::semantic::{embeddings_request, parse_embedding, query, EMBEDDINGS_PATH};
use crate::cache::semantic_index::{Index, Item};
use crate::gateway::Plan;
use crate::metrics;
use crate::pipeline::{unix_seconds, HttpCall};
use crate::provider::Operation;
use crate::quota::{self, Actual};

/// The stats' `layer` label.
pub(super) const LAYER: &str = "semantic";

thread_local! {
    /// A failed embeddings call was logged by this worker.
    static EMBEDDINGS_FAILURE_LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What the semantic layer knows of one request.
#[derive(Default)]
pub(in crate::pipeline) struct SemanticState {
    /// The embeddings call out.
    call: Option<u32>,
    /// The admitted request waiting for it.
    waiting: Option<(Plan, Vec<u8>)>,
    /// A similar entry may be served (not with `Cache-Control: no-cache`).
    lookup: bool,
    pub(super) context: [u8; 32],
    /// This request's vector, added to the index when its answer is stored.
    pub(super) vector: Option<Vec<f32>>,
}

impl SemanticState {
    pub(in crate::pipeline) fn owns_call(&self, token: u32) -> bool {
        self.call == Some(token)
    }
}

impl Request {
    /// Starts the embeddings call of an admitted request whose model has a semantic layer
    /// (`Pause` until it answers); else hands the request on at once (no layer, not
    /// comparable, or the call could not start).
    pub(in crate::pipeline) fn semantic_lookup(
        &mut self,
        host: &dyn Host,
        plan: Plan,
        body: Vec<u8>,
    ) -> Flow {
        let settings = self
            .config
            .cache
            .as_ref()
            .and_then(|c| c.model(&plan.model))
            .and_then(|m| m.semantic.clone());
        let Some(settings) = settings else {
            return self.hand_on(host, plan, body);
        };
        if plan.operation != Operation::Chat || self.count_tokens {
            return self.hand_on(host, plan, body);
        }
        // No exact miss to go with (`no-store`, or a guarded answer), or another API's client,
        // whose own body the chat form does not hold whole: not compared.
        let query = match (&self.cache.pending, self.front.is_some()) {
            (None, _) => Err("no exact lookup (no-store, or a guarded answer)"),
            (Some(_), true) => Err("another API"),
            (Some(p), false) => {
                query(&body, &p.namespace, &p.endpoint, settings.max_turns).map_err(|s| s.name())
            }
        };
        let query = match query {
            Ok(q) => q,
            Err(why) => {
                log::debug!("semantic cache bypassed for '{}': {why}", plan.model);
                self.count_semantic(&plan.model, "bypass");
                return self.hand_on(host, plan, body);
            }
        };
        let lookup = self.cache.control.may_read();
        if !lookup {
            // `no-cache`: the vector is still stored with the answer.
            self.count_semantic(&plan.model, "bypass");
        }
        let request = embeddings_request(&settings.embeddings_model, &query.text);
        let credential = settings.credential.as_ref().map(|c| c.expose());
        let headers: Vec<(&str, &str)> = credential
            .map(|c| ("authorization", c))
            .into_iter()
            .collect();
        let started = host.call_http(HttpCall {
            cluster: &settings.cluster,
            path: EMBEDDINGS_PATH,
            headers: &headers,
            body: &request,
            timeout: Duration::from_millis(settings.timeout_ms),
        });
        match started {
            Ok(token) => {
                self.cache.semantic = SemanticState {
                    call: Some(token),
                    waiting: Some((plan, body)),
                    lookup,
                    context: query.context,
                    vector: None,
                };
                Flow::Pause // resumed by on_embeddings_answer
            }
            Err(reason) => {
                self.embeddings_failed(&plan.model, &format!("could not start ({reason})"));
                self.hand_on(host, plan, body)
            }
        }
    }

    /// The embeddings call's answer (`status` empty when Envoy could not reach the cluster).
    pub(in crate::pipeline) fn on_embeddings_answer(
        &mut self,
        host: &dyn Host,
        status: &str,
        answer: &[u8],
    ) {
        self.cache.semantic.call = None;
        let Some((plan, body)) = self.cache.semantic.waiting.take() else {
            return;
        };
        if self.semantic_decide(host, plan, body, status, answer) == Flow::Continue {
            self.emit(Effect::ResumeRequest);
        }
    }

    fn semantic_decide(
        &mut self,
        host: &dyn Host,
        plan: Plan,
        body: Vec<u8>,
        status: &str,
        answer: &[u8],
    ) -> Flow {
        let Some(cache) = self.config.cache.clone() else {
            return self.hand_on(host, plan, body);
        };
        let Some(settings) = cache.model(&plan.model).and_then(|m| m.semantic.clone()) else {
            return self.hand_on(host, plan, body);
        };
        let vector = match (
            status,
            parse_embedding(answer, cache.local.semantic.max_dimensions),
        ) {
            ("200", Ok(v)) => v,
            ("200", Err(why)) => {
                self.embeddings_failed(&plan.model, why.name());
                return self.hand_on(host, plan, body);
            }
            // Envoy answers a callout that ran out of time with its own 504, and one that could
            // not connect with a 503 (or no status at all).
            ("504", _) => {
                self.embeddings_failed(&plan.model, "timed out");
                return self.hand_on(host, plan, body);
            }
            (status, _) => {
                let reason = format!("answered '{status}'");
                self.embeddings_failed(&plan.model, &reason);
                return self.hand_on(host, plan, body);
            }
        };
        if self.cache.semantic.lookup {
            let now = unix_seconds(host.now());
            if let Some((similarity, entry)) =
                self.semantic_search(host, &vector, settings.threshold, now)
            {
                return self.reply_semantic_hit(host, plan, &body, entry, similarity, now);
            }
            // Not in this Envoy: the shared tier's vectors, when the model shares.
            let (plan, body) =
                match self.shared_semantic_lookup(host, plan, body, &vector, settings.threshold) {
                    None => {
                        self.cache.semantic.vector = Some(vector);
                        return Flow::Pause; // resumed by on_shared_semantic_answer
                    }
                    Some(back) => back,
                };
            self.count_semantic(&plan.model, "miss");
            return self.semantic_go_on(host, plan, body, vector);
        }
        self.semantic_go_on(host, plan, body, vector)
    }

    /// No semantic hit: the request goes on, its vector kept for its answer.
    fn semantic_go_on(
        &mut self,
        host: &dyn Host,
        plan: Plan,
        body: Vec<u8>,
        vector: Vec<f32>,
    ) -> Flow {
        self.cache.semantic.vector = Some(vector);
        self.hand_on(host, plan, body)
    }

    /// The stored entry of the most similar request of this context, when at or above the
    /// threshold, still there and young enough for the client's `max-age`.
    fn semantic_search(
        &mut self,
        host: &dyn Host,
        vector: &[f32],
        threshold: f32,
        now: u64,
    ) -> Option<(f32, Entry)> {
        let cache = self.config.cache.as_ref()?;
        let index = Index {
            store: host.store(),
            slots: cache.local.semantic.slots,
            bucket_entries: cache.local.semantic.bucket_entries,
        };
        let bucket = match index.bucket(&self.cache.semantic.context) {
            Ok(b) => b?,
            Err(e) => {
                log::warn!("semantic index lookup failed ({e:?}); a miss");
                return None;
            }
        };
        let (similarity, item) = bucket.best(vector, now)?;
        if similarity < threshold {
            return None;
        }
        let entry = self.local_tier(host)?.get(&item.entry, now).ok()??;
        let max_age = self.cache.control.max_age;
        if max_age.is_some_and(|max| now.saturating_sub(entry.created) > max) {
            return None;
        }
        Some((similarity, entry))
    }

    /// Answers from a similar request's entry: copied under this request's exact key (the next
    /// identical request is an exact hit), the admitted request's reservation settled as a
    /// hit's (the request counts, its tokens and cost are given back), then replied as a hit.
    pub(super) fn reply_semantic_hit(
        &mut self,
        host: &dyn Host,
        plan: Plan,
        body: &[u8],
        entry: Entry,
        similarity: f32,
        now: u64,
    ) -> Flow {
        if let Some(pending) = self.cache.pending.take() {
            let copy = Entry {
                key: pending.key,
                ..entry.clone()
            };
            let outcome = match self.local_tier(host).map(|t| t.put(&copy, now)) {
                Some(Ok(())) | None => "stored",
                Some(Err(e)) => e.name(),
            };
            self.emit(Effect::Count(metrics::cache_store(&plan.model, outcome), 1));
        }
        if let Some(reservation) = self.reservation.take() {
            let settlement = quota::settle(host.store(), now, &reservation, Actual::default());
            self.report_crossings(&settlement.crossings);
        }
        let asked = Asked {
            model: plan.model,
            operation: plan.operation,
            stream: plan.stream,
            client_asked_usage: plan.client_asked_usage,
        };
        self.reply_entry(host, &asked, body, entry, now, Some(similarity))
    }

    /// The answer was stored in the exact tier: its vector joins its context's bucket (not an
    /// answer that called tools: the next turn of an agent loop looks like this one).
    pub(super) fn semantic_store(&mut self, host: &dyn Host, model: &str, entry: &Entry) {
        let Some(vector) = self.cache.semantic.vector.take() else {
            return;
        };
        let plain = serde_json::from_slice(&entry.body)
            .ok()
            .is_some_and(|v| check_chat(&v, false).is_ok());
        let Some(cache) = self.config.cache.as_ref().filter(|_| plain) else {
            return;
        };
        let index = Index {
            store: host.store(),
            slots: cache.local.semantic.slots,
            bucket_entries: cache.local.semantic.bucket_entries,
        };
        let item = Item {
            created: entry.created,
            expires: entry.expires,
            entry: entry.key,
            vector,
        };
        let now = unix_seconds(host.now());
        let outcome = match index.add(&self.cache.semantic.context, item, now) {
            Ok(()) => "semantic_stored",
            Err(e) => {
                log::warn!("a vector of '{model}' was not indexed ({e:?})");
                "semantic_failed"
            }
        };
        self.emit(Effect::Count(metrics::cache_store(model, outcome), 1));
    }

    pub(super) fn count_semantic(&mut self, model: &str, outcome: &str) {
        self.emit(Effect::Count(
            metrics::cache_lookup(model, LAYER, outcome),
            1,
        ));
    }

    /// An embeddings call that gave no vector: a miss, counted, logged once per worker.
    fn embeddings_failed(&mut self, model: &str, reason: &str) {
        if !EMBEDDINGS_FAILURE_LOGGED.replace(true) {
            log::error!(
                "semantic cache: the embeddings call for '{model}' failed ({reason}); answering from the provider (logged once)"
            );
        } else {
            log::debug!("semantic cache: the embeddings call for '{model}' failed ({reason})");
        }
        self.count_semantic(model, "error");
    }
}
