//! The cache's shared tier in the request (`crate::cache::shared`): a local miss of a model
//! whose entries are shared asks the store for the entry by id, the request paused for at most
//! the tier's `timeout_ms`; a hit is opened (AES-256-GCM, bound to its id), checked (its key,
//! its expiry, the client's `max-age`), copied into the local tier and answered like a local
//! hit; anything else goes on as a miss. An answer stored at its end is also sealed and written
//! to the store, fire-and-forget: the client's answer has already gone, nothing waits for it.
//! A store that fails is counted per call (`gw_cache_shared`) and logged once per worker until
//! it answers again.

use std::cell::Cell;
use std::time::Duration;

use super::Pending;
use crate::cache::entry::Entry;
use crate::cache::shared::seal::{self, NONCE_BYTES};
use crate::cache::shared::{
    collection, namespace_hash, record_id, Record, SharedTier, StoreCall, StoreError,
};
use crate::gateway::Prepared;
use crate::metrics;
use crate::pipeline::{
    unix_seconds, Effect, Flow, Host, HttpCall, Request, MAX_HTTP_CALLOUT_ANSWER,
};

thread_local! {
    /// This worker logged the store failing, and has not seen it answer since.
    static FAILURE_LOGGED: Cell<bool> = const { Cell::new(false) };
}

/// The JSON and base64 around an entry in the store's answer (ids, field names, the sealed
/// entry's own header): an answer longer than the entry cap plus this is not read whole.
const ANSWER_OVERHEAD: usize = 16 * 1024;

/// What the shared tier is doing for one request.
#[derive(Default)]
pub(in crate::pipeline) struct SharedState {
    /// The lookup out, its collection handle, and the request waiting for it.
    lookup: Option<(u32, String)>,
    parked: Option<(Prepared, Vec<u8>)>,
    /// Writes out (token, model, which) whose answers may still come while the request lives.
    writes: Vec<(u32, String, Write)>,
    /// The semantic lookup out (`semantic_shared.rs`).
    pub(super) vector_query: Option<super::semantic_shared::VectorQuery>,
    /// The request was answered from the shared tier.
    pub(super) served: bool,
}

/// Which record a write puts.
#[derive(Clone, Copy)]
pub(super) enum Write {
    /// The sealed entry, under its exact key's id.
    Entry,
    /// The same with its vector, in the vector collection.
    Vector,
}

impl Write {
    /// The `operation` label of the stat.
    fn operation(self) -> &'static str {
        match self {
            Self::Entry => "put",
            Self::Vector => "put_vector",
        }
    }
}

pub(super) fn count(host_effects: &mut Vec<Effect>, model: &str, operation: &str, outcome: &str) {
    host_effects.push(Effect::Count(
        metrics::cache_shared(model, operation, outcome),
        1,
    ));
}

/// A failure of the store: logged once per worker until the store answers again.
pub(super) fn log_failure(what: &str, error: &dyn std::fmt::Display) {
    if !FAILURE_LOGGED.replace(true) {
        log::warn!(
            "cache shared tier: a {what} failed ({error}); requests go on as local misses (logged once until the store answers again)"
        );
    }
}

pub(super) fn store_answered() {
    if FAILURE_LOGGED.replace(false) {
        log::info!("cache shared tier: the store answers again");
    }
}

impl Request {
    /// On a local miss: asks the shared tier; true when the request now waits for its answer
    /// (parked by [`Request::cache_park`]).
    pub(super) fn shared_lookup(&mut self, host: &dyn Host) -> bool {
        let config = std::rc::Rc::clone(&self.config);
        let (Some(tier), Some(pending)) = (
            config.cache.as_ref().and_then(|c| c.shared.as_ref()),
            self.cache.pending.as_ref(),
        ) else {
            return false;
        };
        if !pending.settings.shared {
            return false;
        }
        let model = pending.model.clone();
        let Some(handle) = collection::handle(host.store()) else {
            count(&mut self.effects, &model, "get", "not_ready");
            return false;
        };
        let call = tier.api().get_call(&handle, &record_id(&pending.key));
        let started = call_tier(host, tier, &call, tier.timeout_ms);
        match started {
            Ok(token) => {
                self.cache.shared.lookup = Some((token, handle));
                true
            }
            Err(reason) => {
                log_failure("lookup", &format!("could not start: {reason}"));
                count(&mut self.effects, &model, "get", "unreachable");
                false
            }
        }
    }

    /// Keeps the request while the shared tier is asked.
    pub(in crate::pipeline) fn cache_park(&mut self, prepared: Prepared, body: Vec<u8>) {
        if self.cache.shared.lookup.is_some() {
            self.cache.shared.parked = Some((prepared, body));
        }
    }

    /// How much of a callout's answer to read: a shared entry is larger than other answers.
    pub fn callout_answer_cap(&self, token: u32) -> usize {
        let shared = &self.cache.shared;
        let (entries, vector) = if shared.lookup.as_ref().is_some_and(|(t, _)| *t == token) {
            (1, 0)
        } else if shared
            .vector_query
            .as_ref()
            .is_some_and(|q| q.token() == token)
        {
            // A vector as JSON: at most this many bytes a float.
            const FLOAT_TEXT: usize = 24;
            let dims = self
                .config
                .cache
                .as_ref()
                .map_or(0, |c| usize::from(c.local.semantic.max_dimensions));
            (
                crate::cache::shared::semantic::NEIGHBOURS as usize,
                dims.saturating_mul(FLOAT_TEXT),
            )
        } else {
            return MAX_HTTP_CALLOUT_ANSWER;
        };
        let Some(p) = &self.cache.pending else {
            return MAX_HTTP_CALLOUT_ANSWER;
        };
        // base64 makes 4 bytes of 3.
        let entry = p.settings.max_entry_bytes.saturating_add(ANSWER_OVERHEAD);
        (entry / 3)
            .saturating_mul(4)
            .saturating_add(ANSWER_OVERHEAD)
            .saturating_add(vector)
            .saturating_mul(entries)
    }

    /// A callout's answer, when it is the shared tier's; false when it is another stage's.
    pub(in crate::pipeline) fn on_shared_cache_answer(
        &mut self,
        host: &dyn Host,
        token: u32,
        status: &str,
        answer: &[u8],
    ) -> bool {
        if let Some(at) = self
            .cache
            .shared
            .writes
            .iter()
            .position(|(t, _, _)| *t == token)
        {
            let (_, model, write) = self.cache.shared.writes.remove(at);
            self.on_shared_write_answer(&model, write, status, answer);
            return true;
        }
        if let Some(query) = self.cache.shared.vector_query.take() {
            if query.token() == token {
                self.on_shared_semantic_answer(host, query, status, answer);
                return true;
            }
            self.cache.shared.vector_query = Some(query);
        }
        let handle = match self.cache.shared.lookup.take() {
            Some((t, handle)) if t == token => handle,
            other => {
                self.cache.shared.lookup = other;
                return false;
            }
        };
        let Some((prepared, body)) = self.cache.shared.parked.take() else {
            return true;
        };
        let model = prepared.model.clone();
        match self.shared_entry(host, &handle, status, answer) {
            Ok(entry) => {
                count(&mut self.effects, &model, "get", "hit");
                let now = unix_seconds(host.now());
                if let Some(local) = self.local_tier(host) {
                    // Copied here: the next hits of this Envoy stay local.
                    if let Err(e) = local.put(&entry, now) {
                        log::debug!(
                            "a shared hit was not copied to the local tier: {}",
                            e.name()
                        );
                    }
                }
                self.cache.shared.served = true;
                self.reply_hit(host, &prepared, &body, entry, now);
            }
            Err(outcome) => {
                count(&mut self.effects, &model, "get", outcome);
                self.cache_verdict(&model, "miss");
                if self.classify_and_plan(host, prepared, body) == Flow::Continue {
                    self.emit(Effect::ResumeRequest);
                }
            }
        }
        true
    }

    /// The entry the store answered, opened and checked; else the outcome of the miss.
    fn shared_entry(
        &mut self,
        host: &dyn Host,
        handle: &str,
        status: &str,
        answer: &[u8],
    ) -> Result<Entry, &'static str> {
        let config = std::rc::Rc::clone(&self.config);
        let tier = config
            .cache
            .as_ref()
            .and_then(|c| c.shared.as_ref())
            .ok_or("miss")?;
        let pending = self.cache.pending.as_ref().ok_or("miss")?;
        let found = match tier
            .api()
            .get_answer(&record_id(&pending.key), status, answer)
        {
            Ok(found) => {
                store_answered();
                found.ok_or("miss")?
            }
            Err(e) => {
                if e == StoreError::CollectionGone {
                    collection::forget(host.store(), handle);
                }
                log_failure("lookup", &e);
                return Err(e.name());
            }
        };
        let now = unix_seconds(host.now());
        if found.expires_at <= now {
            return Err("expired");
        }
        let Some(plain) = seal::open(&tier.key, &pending.key, &found.sealed) else {
            // Another key wrote it, or it was changed or moved: never served.
            log_failure("lookup", &"an entry did not open under this gateway's key");
            return Err("unopened");
        };
        let entry = Entry::decode(&plain)
            .filter(|e| e.key == pending.key)
            .ok_or("malformed")?;
        let max_age = self.cache.control.max_age;
        if entry.expires <= now
            || max_age.is_some_and(|max| now.saturating_sub(entry.created) > max)
        {
            return Err("expired");
        }
        Ok(entry)
    }

    /// An answer just stored: sealed and written to the shared tier, answered or not.
    pub(super) fn shared_store(&mut self, host: &dyn Host, pending: &Pending, entry: &Entry) {
        let config = std::rc::Rc::clone(&self.config);
        let Some(tier) = config.cache.as_ref().and_then(|c| c.shared.as_ref()) else {
            return;
        };
        if !pending.settings.shared {
            return;
        }
        let model = pending.model.as_str();
        let Some(handle) = collection::handle(host.store()) else {
            count(&mut self.effects, model, "put", "not_ready");
            return;
        };
        let mut nonce = [0u8; NONCE_BYTES];
        if let Err(e) = host.random_bytes(&mut nonce) {
            // Never a fixed nonce: no randomness, no write.
            log_failure("write", &format!("no random nonce: {e}"));
            count(&mut self.effects, model, "put", "no_randomness");
            return;
        }
        let Some(sealed) = seal::seal(&tier.key, &entry.key, nonce, &entry.encode()) else {
            count(&mut self.effects, model, "put", "too_large");
            return;
        };
        let id = record_id(&entry.key);
        let namespace = namespace_hash(&pending.namespace);
        let record = Record {
            id: &id,
            sealed: &sealed,
            expires_at: entry.expires,
            namespace: &namespace,
            vector: None,
        };
        let call = tier.api().put_call(&handle, &record);
        self.shared_write(host, tier, call, model, Write::Entry);
        self.shared_semantic_store(host, model, entry, record);
    }

    /// Sends a write, fire-and-forget.
    pub(super) fn shared_write(
        &mut self,
        host: &dyn Host,
        tier: &SharedTier,
        call: StoreCall,
        model: &str,
        write: Write,
    ) {
        let started = call_tier(host, tier, &call, tier.write_timeout_ms);
        let operation = write.operation();
        match started {
            Ok(token) => {
                self.cache
                    .shared
                    .writes
                    .push((token, model.to_string(), write));
                count(&mut self.effects, model, operation, "sent");
            }
            Err(reason) => {
                log_failure("write", &format!("could not start: {reason}"));
                count(&mut self.effects, model, operation, "unreachable");
            }
        }
    }

    /// A write's answer that came while its request still lived (most come after it ended and
    /// are dropped unread; `sent` counts every write).
    fn on_shared_write_answer(&mut self, model: &str, write: Write, status: &str, answer: &[u8]) {
        let config = std::rc::Rc::clone(&self.config);
        let Some(tier) = config.cache.as_ref().and_then(|c| c.shared.as_ref()) else {
            return;
        };
        match tier.api().put_answer(status, answer) {
            Ok(()) => {
                store_answered();
                count(&mut self.effects, model, write.operation(), "stored");
            }
            Err(e) => {
                log_failure("write", &e);
                count(&mut self.effects, model, write.operation(), e.name());
            }
        }
    }
}

/// Starts one call to the shared tier's service (a read, a write or a query) through its cluster.
pub(super) fn call_tier(
    host: &dyn Host,
    tier: &SharedTier,
    call: &StoreCall,
    timeout_ms: u64,
) -> Result<u32, String> {
    host.call_http(HttpCall {
        headers: &[],
        cluster: &tier.cluster,
        path: &call.path,
        body: &call.body,
        timeout: Duration::from_millis(timeout_ms),
    })
}
