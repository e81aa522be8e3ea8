//! The semantic layer across Envoys, natively (two fake hosts = two Envoys, one store between
//! them played by the test): a stored answer's vector is written to the vector collection with
//! its sealed entry, context and namespace; a semantic local miss asks the store for the
//! nearest vectors of its namespace and context, serves a near enough neighbour as a
//! `semantic-hit` (and fills the local tier); a failed or far answer is a miss that resumes.

use base64::Engine;

use super::*;
use crate::cache::shared::collection::{HANDLE_KEY, VECTORS_HANDLE_KEY};
use crate::quota::SharedStore;

const CLIENT_KEY: &str = "sk-gw-client-0123456789";
const SEMANTIC_KEY: &str = "sk-gw-semantic-0123456789";
const EXACT_UUID: &str = "178cecc5-9217-4806-9b17-9322504895bf";
const VECTORS_UUID: &str = "2a9f1c3e-0b4d-4e8a-9c7f-5d6e7f8a9b0c";
const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"demo-v2","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

fn config() -> Rc<Config> {
    let hash = |k: &str| crate::sha256::hex(&crate::sha256::digest(k.as_bytes()));
    let doc = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2"},
                   "demo-embed": {"provider": "demo", "model": "embed-v1"}},
        "keys": {"client": {"sha256": hash(CLIENT_KEY), "team": "red"},
                 "semantic": {"sha256": hash(SEMANTIC_KEY), "models": ["demo-embed"]}},
        "teams": {"red": {}},
        "cache": {"shared": {"cluster": "chroma", "timeout_ms": 80},
                  "models": {"demo-chat": {"ttl": 60, "semantic": {
            "embeddings_model": "demo-embed", "key_env": "SEM_KEY", "threshold": 0.9}}}}
    });
    let env = |name: &str| match name {
        "SEM_KEY" => Some(SEMANTIC_KEY.to_string()),
        "GATEWAY_CACHE_KEY" => Some(base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
        _ => None,
    };
    Rc::new(Config::from_json(doc.to_string().as_bytes(), &env).expect("config"))
}

/// An Envoy (its own shared data) that knows both collections, asked `text`.
fn envoy(text: &str) -> FakeHost {
    let mut host = chat_host(&json!({"model": "demo-chat", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": text}]}));
    host.request_headers
        .insert("authorization", format!("Bearer {CLIENT_KEY}"));
    host.store
        .set(HANDLE_KEY, EXACT_UUID.as_bytes(), None)
        .unwrap();
    host.store
        .set(VECTORS_HANDLE_KEY, VECTORS_UUID.as_bytes(), None)
        .unwrap();
    host
}

fn collection(uuid: &str, route: &str) -> String {
    format!("/api/v2/tenants/default_tenant/databases/default_database/collections/{uuid}/{route}")
}

/// The last call's path and JSON body.
fn last_call(host: &FakeHost) -> (u32, String, Value) {
    let calls = host.http_calls.borrow();
    let (path, body) = calls.last().unwrap().clone();
    (
        calls.len() as u32,
        path,
        serde_json::from_slice(&body).unwrap(),
    )
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

/// Sends the request through the exact shared miss and the embeddings call (`vector`): the
/// request then waits for the semantic query, whose call is returned.
fn up_to_the_query(host: &FakeHost, vector: &[f32]) -> (Request, u32, Value) {
    let mut request = Request::new(config(), 0, host.now());
    assert_eq!(
        send(&mut request, host),
        Flow::Pause,
        "waits for the exact shared get"
    );
    let (token, path, _) = last_call(host);
    assert_eq!(path, collection(EXACT_UUID, "get"));
    request.on_http_call_answer(host, token, "200", br#"{"ids":[],"metadatas":[]}"#);
    let (token, path, _) = last_call(host);
    assert_eq!(path, "/v1/embeddings");
    let embedding = json!({"object": "list", "data": [{"object": "embedding", "index": 0,
                                                        "embedding": vector}]});
    request.on_http_call_answer(host, token, "200", embedding.to_string().as_bytes());
    let (token, path, body) = last_call(host);
    assert_eq!(
        path,
        collection(VECTORS_UUID, "query"),
        "a semantic local miss asks the store"
    );
    assert!(
        request
            .take_effects()
            .iter()
            .all(|e| *e != Effect::ResumeRequest),
        "the request waits for the store"
    );
    (request, token, body)
}

fn answer(request: &mut Request, host: &mut FakeHost) -> Vec<Effect> {
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
    host.response_body = ANSWER.as_bytes().to_vec();
    request.on_response_headers(host);
    request.on_response_body(host, host.response_body.len(), true);
    request.on_log(host);
    request.take_effects()
}

#[test]
fn the_vector_collection_is_wanted_only_when_a_model_shares_a_semantic_layer() {
    assert!(config().cache.as_ref().unwrap().shares_vectors());
    let mut exact_only = (*config()).clone();
    let cache = exact_only.cache.as_mut().unwrap();
    for model in cache.models.values_mut() {
        model.semantic = None;
    }
    assert!(!cache.shares_vectors());
    let mut not_shared = (*config()).clone();
    let cache = not_shared.cache.as_mut().unwrap();
    for model in cache.models.values_mut() {
        model.shared = false;
    }
    assert!(!cache.shares_vectors());
}

#[test]
fn a_rewording_in_another_envoy_is_served_from_the_stored_vector() {
    // Envoy A: nothing anywhere; the query is filtered on namespace, context and expiry.
    let mut a = envoy("What is the capital of France?");
    let (mut request, token, query) = up_to_the_query(&a, &[1.0, 0.0]);
    assert_eq!(query["query_embeddings"], json!([[1.0, 0.0]]));
    assert_eq!(query["n_results"], 3);
    let filter = &query["where"]["$and"];
    assert_eq!(filter[2], json!({"expires_at": {"$gt": 1_780_000_000u64}}));
    let (ns, ctx) = (
        filter[0]["ns"]["$eq"].clone(),
        filter[1]["ctx"]["$eq"].clone(),
    );
    let empty = json!({"ids": [[]], "metadatas": [[]], "distances": [[]]}).to_string();
    request.on_http_call_answer(&a, token, "200", empty.as_bytes());
    let effects = request.take_effects();
    assert!(effects.contains(&Effect::ResumeRequest), "{effects:?}");
    assert_eq!(shared_count(&effects, "query", "miss"), 1);

    // Its answer: the exact entry, then the vector with the same id and sealed entry.
    let log = answer(&mut request, &mut a);
    assert_eq!(shared_count(&log, "put", "sent"), 1);
    assert_eq!(shared_count(&log, "put_vector", "sent"), 1);
    let calls = a.http_calls.borrow().clone();
    let n = calls.len();
    let (exact_path, exact) = &calls[n - 2];
    let (vector_path, vector) = &calls[n - 1];
    assert_eq!(exact_path, &collection(EXACT_UUID, "upsert"));
    assert_eq!(vector_path, &collection(VECTORS_UUID, "upsert"));
    let exact: Value = serde_json::from_slice(exact).unwrap();
    let stored: Value = serde_json::from_slice(vector).unwrap();
    assert_eq!(stored["ids"], exact["ids"]);
    assert_eq!(stored["embeddings"], json!([[1.0, 0.0]]));
    let metadata = &stored["metadatas"][0];
    assert_eq!(metadata["sealed"], exact["metadatas"][0]["sealed"]);
    assert_eq!((&metadata["ns"], &metadata["ctx"]), (&ns, &ctx));
    assert_eq!(metadata["expires_at"], 1_780_000_060u64);
    let text = String::from_utf8_lossy(&calls[n - 1].1).to_string();
    assert!(
        !text.contains("Paris") && !text.contains("capital"),
        "never the text: {text}"
    );

    // Envoy B, a rewording: cos = 0.96 (distance 0.04) >= 0.9, served from A's sealed entry.
    let b = envoy("capital of France?");
    let (mut request, token, query) = up_to_the_query(&b, &[0.96, 0.28]);
    assert_eq!(query["where"]["$and"][0]["ns"]["$eq"], ns, "same team");
    let found = json!({"ids": [[stored["ids"][0]]], "distances": [[0.04]],
        "metadatas": [[metadata]], "embeddings": [[[1.0, 0.0]]]});
    request.on_http_call_answer(&b, token, "200", found.to_string().as_bytes());
    let effects = request.take_effects();
    let (status, reply) = reply_of(&effects).expect("answered from the store");
    assert_eq!(status, 200);
    assert_eq!(reply["choices"][0]["message"]["content"], "Paris.");
    assert_eq!(shared_count(&effects, "query", "hit"), 1);
    let Some(Effect::Reply { headers, .. }) =
        effects.iter().find(|e| matches!(e, Effect::Reply { .. }))
    else {
        unreachable!()
    };
    assert!(headers.contains(&("x-gateway-cache", "semantic-hit".into())));
    assert!(headers.contains(&("x-gateway-cache-similarity", "0.9600".into())));
    request.on_log(&b);
    assert_eq!(
        property(&request.take_effects(), state::CACHE_TIER),
        Some("shared")
    );

    // B now holds it locally: the same rewording is an exact hit, no call at all.
    let calls = b.http_calls.borrow().len();
    let mut request = Request::new(config(), 0, b.now());
    assert_eq!(send(&mut request, &b), Flow::Pause);
    assert!(reply_of(&request.take_effects()).is_some());
    assert_eq!(b.http_calls.borrow().len(), calls);

    // ... and B's index now holds A's own vector (1, 0), from the query's answer: another
    // rewording, cos((1, 0), (0.95, 0.3122...)) = 0.95 >= 0.9, is a local semantic hit (the
    // exact get and the embeddings call, no query).
    let mut b = b;
    b.request_body = json!({"model": "demo-chat", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "France's capital?"}]})
    .to_string()
    .into_bytes();
    let mut request = Request::new(config(), 0, b.now());
    assert_eq!(send(&mut request, &b), Flow::Pause);
    let (token, _, _) = last_call(&b);
    request.on_http_call_answer(&b, token, "200", br#"{"ids":[],"metadatas":[]}"#);
    let (token, path, _) = last_call(&b);
    assert_eq!(path, "/v1/embeddings");
    let vector = [0.95f32, (1.0f32 - 0.95 * 0.95).sqrt()];
    let embedding = json!({"data": [{"embedding": vector}]}).to_string();
    request.on_http_call_answer(&b, token, "200", embedding.as_bytes());
    let effects = request.take_effects();
    let (_, reply) = reply_of(&effects).expect("a local semantic hit");
    assert_eq!(reply["choices"][0]["message"]["content"], "Paris.");
    assert_eq!(b.http_calls.borrow().len(), calls + 2, "no query");
}

#[test]
fn a_far_neighbour_or_a_failed_query_is_a_miss_that_resumes() {
    let far = json!({"ids": [[crate::sha256::hex(&[1u8; 32])]], "distances": [[0.2]],
        "metadatas": [[{"sealed": "R1dTMQ==", "expires_at": 1_780_000_060u64}]]})
    .to_string();
    for (status, body, outcome) in [
        ("200", far.as_bytes(), "below_threshold"),
        ("504", b"upstream request timeout".as_slice(), "timeout"),
        ("", b"".as_slice(), "unreachable"),
        ("200", b"{}".as_slice(), "malformed"),
    ] {
        let host = envoy("What is the capital of France?");
        let (mut request, token, _) = up_to_the_query(&host, &[1.0, 0.0]);
        request.on_http_call_answer(&host, token, status, body);
        let effects = request.take_effects();
        assert!(
            effects.contains(&Effect::ResumeRequest),
            "{outcome}: {effects:?}"
        );
        assert!(reply_of(&effects).is_none(), "{outcome}");
        assert_eq!(shared_count(&effects, "query", outcome), 1, "{outcome}");
        assert!(counted(&effects, "gw.cache.lookups").contains(&(
            "gw.cache.lookups;model=demo-chat;layer=semantic;outcome=miss".into(),
            1
        )));
    }
    // The vector collection not known yet: no query, the request goes on at once.
    let host = envoy("What is the capital of France?");
    host.store.set(VECTORS_HANDLE_KEY, b"", None).unwrap();
    let mut request = Request::new(config(), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Pause);
    let (token, _, _) = last_call(&host);
    request.on_http_call_answer(&host, token, "200", br#"{"ids":[],"metadatas":[]}"#);
    let (token, _, _) = last_call(&host);
    let embedding = json!({"data": [{"embedding": [1.0, 0.0]}]}).to_string();
    request.on_http_call_answer(&host, token, "200", embedding.as_bytes());
    let effects = request.take_effects();
    assert!(effects.contains(&Effect::ResumeRequest), "{effects:?}");
    assert_eq!(shared_count(&effects, "query", "not_ready"), 1);
}
