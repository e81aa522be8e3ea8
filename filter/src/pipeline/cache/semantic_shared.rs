//! The semantic layer across Envoys: a model with both a semantic layer and the shared tier
//! writes each stored answer's vector to the tier's vector collection (with the context hash,
//! the namespace hash, the expiry and the sealed entry, under the exact entry's id; never the
//! text), fire-and-forget like the tier's other writes. A semantic local miss then asks the
//! store for the nearest vectors of its namespace and context (`cache/shared/semantic.rs`
//! picks the one to serve), the request paused for at most the tier's `timeout_ms`; a hit is
//! served as a `semantic-hit` and copied into the local tier (its vector into the local
//! index); anything else is a miss,
//! counted (`gw_cache_shared`, operation `query`) and logged once per worker.

use super::shared::{call_tier, count, log_failure, store_answered, Write};
use super::{Entry, Host, Request};
use crate::cache::entry::check_chat;
use crate::cache::semantic_index::{Index, Item};
use crate::cache::shared::collection::{self, VECTORS_HANDLE_KEY};
use crate::cache::shared::semantic::{serve, Served, NEIGHBOURS};
use crate::cache::shared::{namespace_hash, Record, StoreError};
use crate::gateway::Plan;
use crate::pipeline::{unix_seconds, Effect, Flow};

/// A semantic lookup in the store, out.
pub(in crate::pipeline) struct VectorQuery {
    pub(super) token: u32,
    handle: String,
    plan: Plan,
    body: Vec<u8>,
    threshold: f32,
}

impl VectorQuery {
    pub(super) fn token(&self) -> u32 {
        self.token
    }
}

impl Request {
    /// On a semantic local miss: asks the store for the nearest vectors; `None` when the
    /// request now waits (`plan` and `body` kept until the answer), else they are handed back.
    pub(super) fn shared_semantic_lookup(
        &mut self,
        host: &dyn Host,
        plan: Plan,
        body: Vec<u8>,
        vector: &[f32],
        threshold: f32,
    ) -> Option<(Plan, Vec<u8>)> {
        let config = std::rc::Rc::clone(&self.config);
        let (Some(tier), Some(pending)) = (
            config.cache.as_ref().and_then(|c| c.shared.as_ref()),
            self.cache.pending.as_ref(),
        ) else {
            return Some((plan, body));
        };
        if !pending.settings.shared {
            return Some((plan, body));
        }
        let Some(handle) = collection::handle_at(host.store(), VECTORS_HANDLE_KEY) else {
            count(&mut self.effects, &plan.model, "query", "not_ready");
            return Some((plan, body));
        };
        let call = tier.vectors_api().query_call(
            &handle,
            vector,
            &crate::sha256::hex(&self.cache.semantic.context),
            &namespace_hash(&pending.namespace),
            NEIGHBOURS,
            unix_seconds(host.now()),
        );
        let started = call_tier(host, tier, &call, tier.timeout_ms);
        match started {
            Ok(token) => {
                self.cache.shared.vector_query = Some(VectorQuery {
                    token,
                    handle,
                    plan,
                    body,
                    threshold,
                });
                None
            }
            Err(reason) => {
                log_failure("semantic lookup", &format!("could not start: {reason}"));
                count(&mut self.effects, &plan.model, "query", "unreachable");
                Some((plan, body))
            }
        }
    }

    /// The store's answer to the semantic lookup: served, or the request goes on as a miss.
    pub(super) fn on_shared_semantic_answer(
        &mut self,
        host: &dyn Host,
        query: VectorQuery,
        status: &str,
        answer: &[u8],
    ) {
        let VectorQuery {
            handle,
            plan,
            body,
            threshold,
            ..
        } = query;
        let now = unix_seconds(host.now());
        match self.shared_neighbour(host, &handle, threshold, now, status, answer) {
            Ok(Served {
                similarity,
                entry,
                vector,
            }) => {
                count(&mut self.effects, &plan.model, "query", "hit");
                // Copied here under its own key too: the request that stored it is an exact
                // hit in this Envoy from now on (the reply copies it under this request's key),
                // and its own vector joins this Envoy's index (its own, not this request's:
                // a rewording of a rewording would drift away from the answer).
                if let Some(local) = self.local_tier(host) {
                    match local.put(&entry, now) {
                        Ok(()) => self.index_shared_hit(host, &entry, vector, now),
                        Err(e) => log::debug!("a shared semantic hit was not copied: {}", e.name()),
                    }
                }
                self.cache.shared.served = true;
                self.reply_semantic_hit(host, plan, &body, entry, similarity, now);
            }
            Err(outcome) => {
                count(&mut self.effects, &plan.model, "query", outcome);
                self.count_semantic(&plan.model, "miss");
                if self.hand_on(host, plan, body) == Flow::Continue {
                    self.emit(Effect::ResumeRequest);
                }
            }
        }
    }

    /// A shared hit's own vector, in this Envoy's index under its context (the query was
    /// filtered on this request's context, so it is the neighbour's too).
    fn index_shared_hit(
        &mut self,
        host: &dyn Host,
        entry: &Entry,
        vector: Option<Vec<f32>>,
        now: u64,
    ) {
        let Some(cache) = self.config.cache.as_ref() else {
            return;
        };
        let bounds = cache.local.semantic;
        let Some(vector) =
            vector.filter(|v| !v.is_empty() && v.len() <= usize::from(bounds.max_dimensions))
        else {
            return;
        };
        let index = Index {
            store: host.store(),
            slots: bounds.slots,
            bucket_entries: bounds.bucket_entries,
        };
        let item = Item {
            created: entry.created,
            expires: entry.expires,
            entry: entry.key,
            vector,
        };
        if let Err(e) = index.add(&self.cache.semantic.context, item, now) {
            log::debug!("a shared semantic hit was not indexed ({e:?})");
        }
    }

    fn shared_neighbour(
        &mut self,
        host: &dyn Host,
        handle: &str,
        threshold: f32,
        now: u64,
        status: &str,
        answer: &[u8],
    ) -> Result<Served, &'static str> {
        let config = std::rc::Rc::clone(&self.config);
        let tier = config
            .cache
            .as_ref()
            .and_then(|c| c.shared.as_ref())
            .ok_or("miss")?;
        let neighbours = match tier.vectors_api().query_answer(status, answer) {
            Ok(n) => {
                store_answered();
                n
            }
            Err(e) => {
                if e == StoreError::CollectionGone {
                    collection::forget_at(host.store(), VECTORS_HANDLE_KEY, handle);
                }
                log_failure("semantic lookup", &e);
                return Err(e.name());
            }
        };
        serve(
            &tier.key,
            neighbours,
            threshold,
            now,
            self.cache.control.max_age,
        )
        .map_err(|no| no.name())
    }

    /// An answer just sealed and written to the shared tier under `id`: its vector goes to the
    /// vector collection with the same sealed entry (not an answer that called tools, as in
    /// the local index).
    pub(super) fn shared_semantic_store(
        &mut self,
        host: &dyn Host,
        model: &str,
        entry: &Entry,
        record: Record<'_>,
    ) {
        let config = std::rc::Rc::clone(&self.config);
        let Some(tier) = config.cache.as_ref().and_then(|c| c.shared.as_ref()) else {
            return;
        };
        let Some(vector) = self.cache.semantic.vector.as_deref() else {
            return;
        };
        let plain = serde_json::from_slice(&entry.body)
            .ok()
            .is_some_and(|v| check_chat(&v, false).is_ok());
        if !plain {
            return;
        }
        let Some(handle) = collection::handle_at(host.store(), VECTORS_HANDLE_KEY) else {
            count(&mut self.effects, model, "put_vector", "not_ready");
            return;
        };
        let context = crate::sha256::hex(&self.cache.semantic.context);
        let call = tier.vectors_api().put_call(
            &handle,
            &Record {
                vector: Some((vector, &context)),
                ..record
            },
        );
        self.shared_write(host, tier, call, model, Write::Vector);
    }
}
