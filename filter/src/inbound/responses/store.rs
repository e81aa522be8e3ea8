//! The optional response store of the Responses API (`responses.store` in the configuration; off
//! by default, and then the gateway is stateless). With it, a response the client did not send
//! with `store: false` is kept, scoped to the gateway key, for `ttl` seconds; a later request's
//! `previous_response_id` is expanded by the gateway itself (the stored input and output items
//! go before the new input, whatever provider serves it: a provider never gets the id), and
//! `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items` answer from it.
//! Entries live in the local tier of shared data (`crate::cache::local`, under its own names and
//! byte budget), one Envoy's memory: not shared between Envoys, lost on restart.
//!
//! Host-free: the section, the entry's key and value, the expansion, the answers.
//!
//! References: https://platform.openai.com/docs/api-reference/responses/create
//! (`previous_response_id`: "the unique ID of the previous response to the model. Use this to
//! create multi-turn conversations"; `instructions` of the previous response are not carried
//! over), .../responses/get, .../responses/delete (`{"id", "object": "response", "deleted":
//! true}`), .../responses/input-items (a `list` of items with `first_id`, `last_id`,
//! `has_more`). An unknown `previous_response_id` is OpenAI's 400 `invalid_request_error`, code
//! `previous_response_not_found`, param `previous_response_id`, "Previous response with id
//! '...' not found." (as OpenAI answers it, quoted in e.g. github.com/maximhq/bifrost/issues/2441
//! and github.com/router-for-me/CLIProxyAPI/issues/2954); an unknown id on `GET` a 404.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config_error::{err, ConfigError};
use crate::error::GatewayError;

type Object = Map<String, Value>;

const DEFAULT_TTL_SECS: u64 = 3600;
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
const DEFAULT_SLOTS: u32 = 4096;
const MAX_SLOTS: u32 = 1 << 20;
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
const MAX_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;
const MAX_MAX_ENTRY_BYTES: usize = 16 * 1024 * 1024;

/// The shared-data names of the store's slots and byte counter (apart from the cache's).
pub const SHARED_PREFIX: &str = "gw.rstore";

/// The compiled `responses.store` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    pub ttl_secs: u64,
    pub slots: u32,
    /// All entries together.
    pub max_bytes: u64,
    /// One response with its conversation; a larger one is not stored.
    pub max_entry_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    store: Option<RawStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    ttl: Option<u64>,
    slots: Option<u32>,
    max_bytes: Option<u64>,
    max_entry_bytes: Option<usize>,
}

/// Compiles the `responses` section; `None` when it configures no store.
pub fn compile(value: &Value) -> Result<Option<StoreConfig>, ConfigError> {
    let raw = RawSection::deserialize(value).map_err(|e| err("responses", e.to_string()))?;
    let Some(store) = raw.store else {
        return Ok(None);
    };
    let within = |field: &str, v: u64, max: u64| {
        if v == 0 || v > max {
            Err(err(
                format!("responses.store.{field}"),
                format!("must be between 1 and {max}"),
            ))
        } else {
            Ok(())
        }
    };
    let config = StoreConfig {
        ttl_secs: store.ttl.unwrap_or(DEFAULT_TTL_SECS),
        slots: store.slots.unwrap_or(DEFAULT_SLOTS),
        max_bytes: store.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
        max_entry_bytes: store.max_entry_bytes.unwrap_or(DEFAULT_MAX_ENTRY_BYTES),
    };
    within("ttl", config.ttl_secs, MAX_TTL_SECS)?;
    within("slots", u64::from(config.slots), u64::from(MAX_SLOTS))?;
    within("max_bytes", config.max_bytes, MAX_MAX_BYTES)?;
    within(
        "max_entry_bytes",
        config.max_entry_bytes as u64,
        MAX_MAX_ENTRY_BYTES as u64,
    )?;
    if config.max_entry_bytes as u64 > config.max_bytes {
        return Err(err(
            "responses.store.max_entry_bytes",
            "must not exceed responses.store.max_bytes",
        ));
    }
    Ok(Some(config))
}

/// The entry key of a response id for one gateway key: another key's lookup of the same id
/// finds nothing.
pub fn entry_key(gateway_key: &str, response_id: &str) -> [u8; 32] {
    let mut material = Vec::with_capacity(gateway_key.len() + response_id.len() + 16);
    material.extend_from_slice(b"responses-store\0");
    material.extend_from_slice(gateway_key.as_bytes());
    material.push(0);
    material.extend_from_slice(response_id.as_bytes());
    crate::sha256::digest(&material)
}

/// What is kept of one response: the conversation's input items up to it (an earlier
/// response's expanded in) and the response object (its `output` items among them).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub input: Vec<Value>,
    pub response: Value,
}

impl Stored {
    pub fn encode(&self) -> Vec<u8> {
        json!({"input": self.input, "response": self.response})
            .to_string()
            .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        let input = match v.get_mut("input").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => return None,
        };
        let response = v.get_mut("response").map(Value::take)?;
        response.is_object().then_some(Self { input, response })
    }

    pub fn id(&self) -> &str {
        self.response
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// The request's `previous_response_id`, if it names one (a wrong type is the translation's
/// 400 to give).
pub fn previous_id(req: &Object) -> Option<&str> {
    req.get("previous_response_id").and_then(Value::as_str)
}

/// The request's `input` as a list of items (a string is one user message).
pub fn input_items(req: &Object) -> Vec<Value> {
    match req.get("input") {
        Some(Value::String(text)) => {
            vec![json!({"type": "message", "role": "user", "content": text})]
        }
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// `previous_response_id` replaced by what it stands for: the stored input, then the stored
/// response's output items, then the request's own input. The earlier `instructions` are not
/// carried over (as OpenAI does).
pub fn expand(req: &mut Object, previous: &Stored) {
    let mut items = previous.input.clone();
    if let Some(Value::Array(output)) = previous.response.get("output") {
        items.extend(output.iter().cloned());
    }
    items.extend(input_items(req));
    req.insert("input".into(), Value::Array(items));
    req.remove("previous_response_id");
}

/// Whether the client asked that the response not be kept (`store: false`; OpenAI's default is
/// to keep it).
pub fn store_refused(req: &Object) -> bool {
    req.get("store") == Some(&Value::Bool(false))
}

/// The 400 for a `previous_response_id` the store does not hold for this key (unknown, expired,
/// deleted, another key's, or a response that was not stored).
pub fn previous_not_found(id: &str, config: &StoreConfig) -> GatewayError {
    GatewayError::StoreMiss {
        status: 400,
        code: "previous_response_not_found",
        param: Some("previous_response_id"),
        message: format!(
            "Previous response with id '{id}' not found. The gateway keeps responses for {} s, for the gateway key that created them, and only those that fit its store ({} bytes a response with its conversation); send the whole conversation in 'input' instead.",
            config.ttl_secs, config.max_entry_bytes
        ),
    }
}

/// The 404 for a stored response asked for by id.
pub fn not_found(id: &str) -> GatewayError {
    GatewayError::StoreMiss {
        status: 404,
        code: "not_found",
        param: None,
        message: format!("Response with id '{id}' not found."),
    }
}

/// The answer to `DELETE /v1/responses/{id}`.
pub fn deleted(id: &str) -> Vec<u8> {
    json!({"id": id, "object": "response", "deleted": true})
        .to_string()
        .into_bytes()
}

/// The answer to `GET /v1/responses/{id}/input_items`: every input item, oldest first, each with
/// an id (an item sent without one is named by its place).
pub fn input_items_list(stored: &Stored) -> Vec<u8> {
    let base = stored.id().trim_start_matches("resp_").to_string();
    let data: Vec<Value> = stored
        .input
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut item = item.clone();
            if let Some(obj) = item.as_object_mut() {
                obj.entry("id")
                    .or_insert_with(|| Value::from(format!("in_{base}_{i}")));
                obj.entry("type").or_insert_with(|| Value::from("message"));
                // A message's text as the API lists it: a part (`input_text`, or the
                // assistant's `output_text`), not the string a client may send.
                if let Some(Value::String(text)) = obj.get("content").cloned() {
                    let part = match obj.get("role").and_then(Value::as_str) {
                        Some("assistant") => {
                            json!({"type": "output_text", "text": text, "annotations": []})
                        }
                        _ => json!({"type": "input_text", "text": text}),
                    };
                    obj.insert("content".into(), json!([part]));
                }
            }
            item
        })
        .collect();
    let id_at = |v: Option<&Value>| v.and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
    json!({"object": "list", "data": data, "first_id": id_at(data.first()),
           "last_id": id_at(data.last()), "has_more": false})
    .to_string()
    .into_bytes()
}

/// An id the gateway mints for a response it builds (a translated answer): `resp_` and 32 hex
/// digits (128 bits) from a keyed hash the VM seeds from the host's randomness (WASI
/// `random_get`, through the standard library's `RandomState`) over the request's own id and
/// time, so that no client can guess another's ids to look them up.
pub fn mint_id(request_id: &str, now_nanos: u128) -> String {
    use std::hash::BuildHasher;
    let seed = |salt: u8| {
        std::collections::hash_map::RandomState::new().hash_one((salt, request_id, now_nanos))
    };
    let mut material = Vec::with_capacity(64);
    material.extend_from_slice(&seed(1).to_le_bytes());
    material.extend_from_slice(&seed(2).to_le_bytes());
    material.extend_from_slice(request_id.as_bytes());
    material.extend_from_slice(&now_nanos.to_le_bytes());
    let digest = crate::sha256::digest(&material);
    format!(
        "resp_{}",
        crate::sha256::hex(digest.get(..16).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Object {
        match v {
            Value::Object(o) => o,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn the_section_has_defaults_and_bad_values_name_the_field() {
        assert_eq!(compile(&json!({})).unwrap(), None);
        let config = compile(&json!({"store": {}})).unwrap().unwrap();
        assert_eq!(config.ttl_secs, 3600);
        assert_eq!(config.max_entry_bytes, 1024 * 1024);
        for (section, field) in [
            (json!({"store": {"ttl": 0}}), "responses.store.ttl"),
            (json!({"store": {"slots": 0}}), "responses.store.slots"),
            (
                json!({"store": {"max_bytes": 10, "max_entry_bytes": 20}}),
                "responses.store.max_entry_bytes",
            ),
            (json!({"store": {"ttl": 10, "size": 3}}), "responses"),
            (json!({"stores": {}}), "responses"),
        ] {
            let e = compile(&section).expect_err("refused");
            assert_eq!(e.field, field, "{section}: {e}");
        }
    }

    #[test]
    fn entries_are_scoped_to_the_gateway_key() {
        assert_ne!(entry_key("alice", "resp_1"), entry_key("bob", "resp_1"));
        assert_ne!(entry_key("alice", "resp_1"), entry_key("alice", "resp_2"));
        // No ambiguity where the key ends and the id starts.
        assert_ne!(entry_key("a", "bresp"), entry_key("ab", "resp"));
    }

    #[test]
    fn a_previous_response_is_expanded_before_the_new_input() {
        let stored = Stored {
            input: vec![json!({"type": "message", "role": "user", "content": "Hi"})],
            response: json!({"id": "resp_1", "output": [{"type": "message", "id": "msg_1",
                "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}]}),
        };
        let encoded = stored.encode();
        assert_eq!(Stored::decode(&encoded), Some(stored.clone()));
        let mut req = object(json!({"model": "m", "previous_response_id": "resp_1",
            "instructions": "new ones", "input": "And then?"}));
        expand(&mut req, &stored);
        assert_eq!(
            Value::Object(req),
            json!({"model": "m", "instructions": "new ones", "input": [
                {"type": "message", "role": "user", "content": "Hi"},
                {"type": "message", "id": "msg_1", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Hello"}]},
                {"type": "message", "role": "user", "content": "And then?"}]})
        );
        assert_eq!(Stored::decode(b"{\"input\": 3}"), None);
    }

    #[test]
    fn store_false_alone_refuses_storing() {
        assert!(store_refused(&object(json!({"store": false}))));
        assert!(!store_refused(&object(json!({"store": true}))));
        assert!(!store_refused(&object(json!({}))));
    }

    #[test]
    fn minted_ids_are_long_and_never_repeat() {
        let a = mint_id("req-1", 5);
        let b = mint_id("req-1", 5);
        assert_eq!(a.len(), "resp_".len() + 32, "{a}");
        assert!(a.starts_with("resp_") && a[5..].chars().all(|c| c.is_ascii_hexdigit()));
        // The same request id and time still give another id (the seed moves on).
        assert_ne!(a, b);
    }

    #[test]
    fn input_items_are_listed_with_ids() {
        let stored = Stored {
            input: vec![
                json!({"role": "user", "content": "Hi"}),
                json!({"type": "message", "id": "msg_7", "role": "assistant", "content": []}),
            ],
            response: json!({"id": "resp_9"}),
        };
        let v: Value = serde_json::from_slice(&input_items_list(&stored)).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "in_9_0");
        assert_eq!(v["data"][0]["type"], "message");
        assert_eq!(
            v["data"][0]["content"],
            json!([{"type": "input_text", "text": "Hi"}])
        );
        assert_eq!(
            (&v["first_id"], &v["last_id"]),
            (&json!("in_9_0"), &json!("msg_7"))
        );
        assert_eq!(v["has_more"], false);
    }
}
