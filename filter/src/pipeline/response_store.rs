//! The Responses API's response store as a stage (configured by `responses.store`; what it keeps
//! and how: `inbound::responses::store`): `GET`/`DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items` answered from it at the headers; a request's
//! `previous_response_id` expanded at its body, before anything else reads it (so guards,
//! limits, the cache key and every provider see the whole conversation); the response kept at
//! the end of its answer. Entries are scoped to the caller's gateway key (the store requires
//! keys).

use serde_json::Value;

use super::{unix_seconds, Flow, Host, Request};
use crate::cache::entry::Entry;
use crate::cache::local::{Local, PutError};
use crate::error::{parse_object, GatewayError};
use crate::inbound::responses::store::{self, StoreConfig, Stored};
use crate::metrics;

/// The fewest characters (after `resp_`) of an id the store keys a response by.
const MIN_ID_CHARS: usize = 24;

/// A response to keep at the end of its answer: its conversation's input, and what the answer
/// showed of the response so far.
#[derive(Debug, Default)]
pub(super) struct Pending {
    input: Vec<Value>,
    /// A passed-through JSON answer, read whole (up to the entry cap) to keep it.
    json: Vec<u8>,
    /// The answer is larger than an entry may be.
    too_large: bool,
    /// The final `response` object.
    response: Option<Value>,
}

impl Pending {
    /// A passed-through JSON answer's next piece.
    pub(super) fn feed_json(&mut self, piece: &[u8], cap: usize) {
        if self.too_large {
            return;
        }
        if self.json.len().saturating_add(piece.len()) > cap {
            self.too_large = true;
            self.json = Vec::new();
            return;
        }
        self.json.extend_from_slice(piece);
    }

    /// The final response object, from whichever part of the answer showed it.
    pub(super) fn set_response(&mut self, response: Value) {
        self.response = Some(response);
    }

    pub(super) fn set_response_bytes(&mut self, bytes: &[u8]) {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            if v.get("object").and_then(Value::as_str) == Some("response") {
                self.response = Some(v);
            }
        }
    }
}

impl Request {
    fn store_tier<'h>(&self, host: &'h dyn Host, config: &StoreConfig) -> Local<'h> {
        Local {
            store: host.store(),
            prefix: store::SHARED_PREFIX,
            slots: config.slots,
            max_bytes: config.max_bytes,
        }
    }

    fn caller(&self) -> &str {
        self.key.as_ref().map_or("", |(id, _)| id.as_str())
    }

    fn store_stat(&mut self, outcome: &str) {
        self.emit(super::Effect::Count(metrics::response_store(outcome), 1));
    }

    /// The stored response `id` of this caller, if it is still there.
    fn stored(&self, host: &dyn Host, config: &StoreConfig, id: &str) -> Option<Stored> {
        let key = store::entry_key(self.caller(), id);
        let now = unix_seconds(host.now());
        let entry = self.store_tier(host, config).get(&key, now).ok()??;
        Stored::decode(&entry.body)
    }

    /// `/v1/responses/{id}...` with a store: answered here (`None` without a store, or for
    /// another path).
    pub(super) fn stored_response_endpoint(
        &mut self,
        host: &dyn Host,
        method: &str,
        path: &str,
    ) -> Option<Flow> {
        let config = self.config.response_store?;
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let rest = path.strip_prefix("/v1/responses/")?;
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let found = match (method, tail) {
            ("GET", "") | ("GET", "input_items") | ("DELETE", "") => self.stored(host, &config, id),
            (_, "cancel") => {
                return Some(self.reply_error(&crate::error::invalid(
                    "response_id",
                    "Only background responses can be cancelled, and this gateway runs none.",
                )))
            }
            _ => {
                return Some(self.reply_error(&GatewayError::MethodNotAllowed {
                    method: method.into(),
                    path: path.into(),
                }))
            }
        };
        let Some(stored) = found else {
            self.store_stat("not_found");
            return Some(self.reply_error(&store::not_found(id)));
        };
        self.store_stat("found");
        let body = match (method, tail) {
            ("DELETE", _) => {
                let key = store::entry_key(self.caller(), id);
                let now = unix_seconds(host.now());
                let _ = self.store_tier(host, &config).remove(&key, now);
                store::deleted(id)
            }
            (_, "input_items") => store::input_items_list(&stored),
            _ => stored.response.to_string().into_bytes(),
        };
        Some(self.reply_json(body))
    }

    /// A Responses request's body with a store: its `previous_response_id` expanded from the
    /// store (a 400 when the store does not hold it for this caller), and what to keep at the
    /// end noted (unless the client sent `store: false`). Returns the body to go on with.
    pub(super) fn response_store_request(
        &mut self,
        host: &dyn Host,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Flow> {
        let Some(config) = self.config.response_store else {
            return Ok(body);
        };
        // A body that is not an object is the translation's 400 to give.
        let Ok(mut req) = parse_object(&body) else {
            return Ok(body);
        };
        let mut body = body;
        if let Some(id) = store::previous_id(&req).map(str::to_string) {
            let Some(previous) = self.stored(host, &config, &id) else {
                self.store_stat("not_found");
                return Err(self.reply_error(&store::previous_not_found(&id, &config)));
            };
            self.store_stat("found");
            store::expand(&mut req, &previous);
            body = Value::Object(req.clone()).to_string().into_bytes();
        }
        if !store::store_refused(&req) {
            self.response_pending = Some(Pending {
                input: store::input_items(&req),
                ..Pending::default()
            });
        }
        Ok(body)
    }

    /// The answer is over: its response kept, if it is to be and it completed.
    pub(super) fn response_store_end(&mut self, host: &dyn Host) {
        let (Some(config), Some(mut pending)) =
            (self.config.response_store, self.response_pending.take())
        else {
            return;
        };
        if self.status != 200 {
            return;
        }
        if !pending.json.is_empty() {
            let json = std::mem::take(&mut pending.json);
            pending.set_response_bytes(&json);
        }
        let Some(response) = pending.response.take() else {
            if pending.too_large {
                self.store_stat("too_large");
            }
            return;
        };
        let kept = matches!(
            response.get("status").and_then(Value::as_str),
            Some("completed" | "incomplete")
        );
        let Some(id) = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return;
        };
        if !kept {
            return;
        }
        // A provider's own id (a passed-through answer) is the lookup key: one too short to be
        // unguessable (OpenAI's have 48 hex digits, the gateway's 32) is not kept.
        if id.trim_start_matches("resp_").len() < MIN_ID_CHARS {
            self.store_stat("weak_id");
            log::warn!("response {id} not stored: its id is too short to be unguessable");
            return;
        }
        let value = Stored {
            input: pending.input,
            response,
        }
        .encode();
        if value.len() > config.max_entry_bytes {
            self.store_stat("too_large");
            log::info!(
                "response {id} not stored: {} bytes with its conversation, over responses.store.max_entry_bytes ({})",
                value.len(),
                config.max_entry_bytes
            );
            return;
        }
        let now = unix_seconds(host.now());
        let entry = Entry {
            key: store::entry_key(self.caller(), &id),
            created: now,
            expires: now.saturating_add(config.ttl_secs),
            provider: String::new(),
            upstream_model: String::new(),
            body: value,
        };
        let outcome = match self.store_tier(host, &config).put(&entry, now) {
            Ok(()) => "stored",
            Err(e @ (PutError::Full | PutError::Contended | PutError::Store)) => {
                log::warn!(
                    "response {id} not stored: the response store said {}",
                    e.name()
                );
                e.name()
            }
        };
        self.store_stat(outcome);
    }
}
