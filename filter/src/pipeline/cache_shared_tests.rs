//! The cache's shared tier in the request, natively: a local miss asks the store and waits; a
//! sealed entry of this gateway is a hit (and fills the local tier); an entry of another key,
//! an expired one, a failed or unknown answer is a miss that resumes the request; an answer
//! stored at its end is written sealed; without a known collection nothing is asked.

use base64::Engine;

use super::*;
use crate::cache::entry::Entry;
use crate::cache::shared::collection::HANDLE_KEY;
use crate::cache::shared::seal::{self, SealKey};
use crate::quota::SharedStore;

const UUID: &str = "178cecc5-9217-4806-9b17-9322504895bf";
const NOW: u64 = 1_780_000_000;
const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"demo-v2","choices":[{"index":0,"message":{"role":"assistant","content":"Shared hello"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

fn shared_config(model: Value) -> Rc<Config> {
    config(json!({"cache": {
        "shared": {"cluster": "chroma", "timeout_ms": 80},
        "models": {"demo-chat": model}}}))
}

fn host_with_collection() -> FakeHost {
    let host = chat_host(&hello(false));
    host.store.set(HANDLE_KEY, UUID.as_bytes(), None).unwrap();
    host
}

fn seal_key(byte: u8) -> SealKey {
    SealKey::parse(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

/// The exact key the request asked the store for (its id is the key in hex).
fn asked_key(host: &FakeHost, call: usize) -> [u8; 32] {
    let calls = host.http_calls.borrow();
    let (path, body) = &calls[call];
    assert_eq!(
        path,
        &format!(
            "/api/v2/tenants/default_tenant/databases/default_database/collections/{UUID}/get"
        )
    );
    let id = serde_json::from_slice::<Value>(body).unwrap()["ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// Chroma's `get` answer holding `entry` sealed under `with` (expiry in the metadata too).
fn store_answer(entry: &Entry, with: &SealKey, expires_at: u64) -> Vec<u8> {
    let sealed = seal::seal(with, &entry.key, [1; 12], &entry.encode()).unwrap();
    json!({"ids": [crate::sha256::hex(&entry.key)], "include": ["metadatas"],
           "metadatas": [{"sealed": base64::engine::general_purpose::STANDARD.encode(sealed),
                          "expires_at": expires_at, "ns": "x"}]})
    .to_string()
    .into_bytes()
}

fn entry(key: [u8; 32]) -> Entry {
    Entry {
        key,
        created: NOW - 10,
        expires: NOW + 50,
        provider: "demo".into(),
        upstream_model: "demo-v2".into(),
        body: ANSWER.as_bytes().to_vec(),
    }
}

fn shared_count(effects: &[Effect], operation: &str, outcome: &str) -> u64 {
    let name = crate::metrics::cache_shared("demo-chat", operation, outcome);
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Count(n, by) if *n == name => Some(*by),
            _ => None,
        })
        .sum()
}

/// A request that misses locally: it waits for the store, whose lookup is call `call`.
fn waiting(config: &Rc<Config>, host: &FakeHost, call: usize) -> (Request, [u8; 32]) {
    let mut request = Request::new(Rc::clone(config), 0, host.now());
    assert_eq!(
        send(&mut request, host),
        Flow::Pause,
        "waits for the shared tier"
    );
    assert_eq!(host.http_calls.borrow().len(), call + 1);
    let key = asked_key(host, call);
    assert!(request
        .take_effects()
        .iter()
        .all(|e| !matches!(e, Effect::Reply { .. })));
    (request, key)
}

#[test]
fn a_sealed_entry_of_this_gateway_is_a_hit_and_fills_the_local_tier() {
    let config = shared_config(json!({"ttl": 60}));
    let host = host_with_collection();
    let (mut request, key) = waiting(&config, &host, 0);
    request.on_http_call_answer(
        &host,
        1,
        "200",
        &store_answer(&entry(key), &seal_key(7), NOW + 50),
    );
    let effects = request.take_effects();
    let (status, body) = reply_of(&effects).expect("answered from the shared tier");
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "Shared hello");
    assert_eq!(shared_count(&effects, "get", "hit"), 1);
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::CACHE_TIER), Some("shared"));
    assert_eq!(property(&log, state::PROVIDER), Some("cache"));
    // The next one is a local hit: no other call to the store.
    let mut again = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut again, &host), Flow::Pause);
    assert!(reply_of(&again.take_effects()).is_some());
    assert_eq!(host.http_calls.borrow().len(), 1);
    again.on_log(&host);
    assert_eq!(
        property(&again.take_effects(), state::CACHE_TIER),
        Some("local")
    );
}

/// Chroma's status and body for the lookup of a key.
type StoreReply = Box<dyn Fn([u8; 32]) -> (String, Vec<u8>)>;

#[test]
fn anything_but_an_openable_live_entry_is_a_miss_that_resumes_the_request() {
    let config = shared_config(json!({"ttl": 60}));
    let host = host_with_collection();
    let cases: Vec<(&str, StoreReply)> = vec![
        (
            "miss",
            Box::new(|_| {
                (
                    "200".into(),
                    br#"{"ids":[],"metadatas":[],"include":["metadatas"]}"#.to_vec(),
                )
            }),
        ),
        (
            "unopened",
            Box::new(|k| {
                (
                    "200".into(),
                    store_answer(&entry(k), &seal_key(8), NOW + 50),
                )
            }),
        ),
        (
            "expired",
            Box::new(|k| ("200".into(), store_answer(&entry(k), &seal_key(7), NOW))),
        ),
        (
            "expired",
            Box::new(|k| {
                let mut old = entry(k);
                old.expires = NOW - 1; // the sealed expiry wins over the store's metadata
                ("200".into(), store_answer(&old, &seal_key(7), NOW + 50))
            }),
        ),
        (
            "malformed",
            Box::new(|k| {
                let mut other = entry([9; 32]);
                other.key = [9; 32];
                // Sealed for this id but holding another key's entry.
                let sealed = seal::seal(&seal_key(7), &k, [1; 12], &other.encode()).unwrap();
                let b64 = base64::engine::general_purpose::STANDARD.encode(sealed);
                ("200".into(), json!({"ids": [crate::sha256::hex(&k)], "metadatas": [{"sealed": b64, "expires_at": NOW + 50}]}).to_string().into_bytes())
            }),
        ),
        ("timeout", Box::new(|_| ("504".into(), Vec::new()))),
        ("unreachable", Box::new(|_| ("503".into(), Vec::new()))),
        (
            "malformed",
            Box::new(|_| ("200".into(), b"<html>".to_vec())),
        ),
    ];
    for (i, (outcome, answer)) in cases.iter().enumerate() {
        let (mut request, key) = waiting(&config, &host, i);
        let (status, body) = answer(key);
        request.on_http_call_answer(&host, i as u32 + 1, &status, &body);
        let effects = request.take_effects();
        assert_eq!(
            shared_count(&effects, "get", outcome),
            1,
            "{outcome}: {effects:?}"
        );
        assert!(reply_of(&effects).is_none(), "{outcome}: never served");
        assert_eq!(effects.last(), Some(&Effect::ResumeRequest), "{outcome}");
        assert_eq!(property(&effects, state::CACHE), Some("miss"), "{outcome}");
        assert_eq!(
            property(&effects, state::ROUTE),
            Some("chain1"),
            "{outcome}: routed"
        );
    }
}

#[test]
fn a_gone_collection_is_forgotten_and_an_unknown_one_asks_nothing() {
    let config = shared_config(json!({"ttl": 60}));
    let host = host_with_collection();
    let (mut request, _) = waiting(&config, &host, 0);
    request.on_http_call_answer(&host, 1, "404", br#"{"error":"NotFoundError"}"#);
    let effects = request.take_effects();
    assert_eq!(shared_count(&effects, "get", "collection_gone"), 1);
    assert_eq!(effects.last(), Some(&Effect::ResumeRequest));
    assert_eq!(crate::cache::shared::collection::handle(host.store()), None);
    // Now unknown: the request goes on at once, counted.
    let mut next = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut next, &host), Flow::Continue);
    assert_eq!(shared_count(&next.take_effects(), "get", "not_ready"), 1);
    assert_eq!(host.http_calls.borrow().len(), 1);
    // A model that keeps its entries local never asks.
    let local_only = shared_config(json!({"ttl": 60, "shared": false}));
    let host = host_with_collection();
    let mut request = Request::new(local_only, 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    assert!(host.http_calls.borrow().is_empty());
}

#[test]
fn a_stored_answer_is_written_sealed_to_the_store() {
    let config = shared_config(json!({"ttl": 60}));
    let mut host = host_with_collection();
    let (mut request, key) = waiting(&config, &host, 0);
    request.on_http_call_answer(&host, 1, "200", br#"{"ids":[],"metadatas":[]}"#);
    request.take_effects();
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    host.response_body = ANSWER.as_bytes().to_vec();
    request.on_response_headers(&host);
    request.on_response_body(&host, host.response_body.len(), true);
    let effects = request.take_effects();
    assert_eq!(shared_count(&effects, "put", "sent"), 1, "{effects:?}");
    let calls = host.http_calls.borrow();
    let (path, body) = &calls[1];
    assert!(
        path.ends_with(&format!("/collections/{UUID}/upsert")),
        "{path}"
    );
    let text = String::from_utf8_lossy(body);
    assert!(
        !text.contains("Shared hello") && !text.contains("\"hi\""),
        "{text}"
    );
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["ids"][0], crate::sha256::hex(&key));
    let metadata = &v["metadatas"][0];
    assert_eq!(metadata["expires_at"], NOW + 60);
    assert_eq!(metadata["ns"].as_str().map(str::len), Some(32), "a hash");
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(metadata["sealed"].as_str().unwrap())
        .unwrap();
    let opened = seal::open(&seal_key(7), &key, &sealed).expect("opens under the gateway's key");
    let stored = Entry::decode(&opened).unwrap();
    assert_eq!(stored.body, ANSWER.as_bytes());
    assert_eq!((stored.created, stored.expires), (NOW, NOW + 60));
    assert!(seal::open(&seal_key(8), &key, &sealed).is_none());
}
