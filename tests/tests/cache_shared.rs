//! The cache's shared tier through real Envoys and a real Chroma (tests/src/chroma.rs starts
//! `chroma run`; tests/scripts/chroma.sh installs it once): an answer stored through one Envoy
//! is a hit in another (the fake provider's request count proves no provider was asked),
//! never for another team; what Chroma holds has neither the prompt nor the answer in plain
//! text and does not open under another key; a slow, stopped or reset Chroma makes misses,
//! counted, and every request is still answered; a shared tier without its key, or on a
//! provider's cluster, is refused at start. Expected answers come from the fake provider's
//! documented answer (tests/src/fake/README.md).

use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use gateway_tests::check::{sample, sha256_hex};
use gateway_tests::chroma::{Chroma, SlowProxy};
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider};
use gateway_tests::http::Response;
use serde_json::{json, Value};

const ALICE: &str = "gw-alice-5e1d";
const CAROL: &str = "gw-carol-77c0";
const BOB: &str = "gw-bob-0a9f";
const COLLECTION: &str = "gw_test_cache";

fn seal_key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn plugin(timeout_ms: u64) -> Value {
    json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"chat": {"provider": "demo"}},
        "keys": {
            "alice": {"sha256": sha256_hex(ALICE), "team": "red"},
            "carol": {"sha256": sha256_hex(CAROL), "team": "red"},
            "bob": {"sha256": sha256_hex(BOB), "team": "blue"}},
        "teams": {"red": {}, "blue": {}},
        "cache": {
            "shared": {"cluster": "chroma", "timeout_ms": timeout_ms,
                       "chroma": {"collection": COLLECTION}},
            "models": {"chat": {"ttl": 300}}}})
}

/// An Envoy whose shared tier is Chroma (or the proxy) at `chroma_port`, sealing with `key`;
/// returned once its collection is known.
fn gateway(fake: &FakeProvider, chroma_port: u16, key: &str, timeout_ms: u64) -> Envoy {
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        extra_clusters: vec![("chroma".into(), chroma_port)],
        plugin_config: Some(plugin(timeout_ms)),
        env: vec![("GATEWAY_CACHE_KEY".into(), key.into())],
        concurrency: 1,
        ..Default::default()
    });
    wait_for(&gw, "collection", "ready", 1.0);
    gw
}

fn shared_stat(gw: &Envoy, model: &str, operation: &str, outcome: &str) -> f64 {
    let labels = [
        ("model", model),
        ("operation", operation),
        ("outcome", outcome),
    ];
    sample(&gw.prometheus(), "gw_cache_shared", &labels).unwrap_or(0.0)
}

/// Waits (10 s at most) until a shared-tier stat reaches `at_least`.
fn wait_for(gw: &Envoy, operation: &str, outcome: &str, at_least: f64) {
    let model = if operation == "collection" {
        "none"
    } else {
        "chat"
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared_stat(gw, model, operation, outcome) < at_least {
        assert!(
            Instant::now() < deadline,
            "gw_cache_shared{{operation={operation},outcome={outcome}}} stayed under {at_least}:\n{}",
            gw.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn ask(gw: &Envoy, key: &str, text: &str, stream: bool) -> Response {
    let body = json!({"model": "chat", "stream": stream,
                      "messages": [{"role": "user", "content": text}]});
    let auth = format!("Bearer {key}");
    gw.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body.to_string().as_bytes(),
    )
}

fn expected_text(text: &str) -> String {
    demo_answer(&json!({"model": "chat", "messages": [{"role": "user", "content": text}]})).0
}

/// The content of an SSE answer that ended with `[DONE]`.
fn stream_text(sse: &str) -> String {
    let mut text = String::new();
    let mut done = false;
    for data in sse.split("\n\n").filter_map(|b| b.strip_prefix("data: ")) {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let event: Value = serde_json::from_str(data).expect("a JSON event");
        if let Some(piece) = event["choices"][0]["delta"]["content"].as_str() {
            text.push_str(piece);
        }
    }
    assert!(done, "the stream ends with [DONE]: {sse}");
    text
}

#[test]
fn two_envoys_share_hits_within_a_team_and_chroma_holds_only_sealed_entries() {
    let chroma = Chroma::start();
    let fake = FakeProvider::start(0).unwrap();
    let a = gateway(&fake, chroma.port, &seal_key(1), 2000);
    let b = gateway(&fake, chroma.port, &seal_key(1), 2000);
    let question = "what is the tallest mountain";
    let answer = expected_text(question);

    let first = ask(&a, ALICE, question, false);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-gateway-cache"), Some("miss"));
    assert_eq!(fake.received().len(), 1);
    let records = chroma.wait_for_records(COLLECTION, 1, &a);

    // What Chroma holds: an id (a hash), the sealed entry, its expiry and a namespace hash;
    // neither the question nor the answer nor the team's name, in any field.
    let stored = records.to_string();
    for plain in [question, answer.as_str(), "\"red\"", "team:red"] {
        assert!(!stored.contains(plain), "Chroma holds {plain:?}: {stored}");
    }
    let (first_id, first_metadata) = (records["ids"][0].clone(), records["metadatas"][0].clone());
    let metadata = &records["metadatas"][0];
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(metadata["sealed"].as_str().expect("a sealed entry"))
        .expect("base64");
    assert_eq!(&sealed[..4], b"GWS1");
    let words: Vec<&str> = answer.split_whitespace().filter(|w| w.len() > 4).collect();
    assert!(!words.is_empty());
    for word in words {
        let found = sealed.windows(word.len()).any(|w| w == word.as_bytes());
        assert!(!found, "the sealed entry shows {word:?}");
    }
    assert!(metadata["expires_at"].as_u64().is_some(), "{metadata}");
    assert_eq!(
        records["documents"][0],
        Value::Null,
        "no document: {records}"
    );

    // Envoy B never saw the question: its answer comes from Chroma, the provider is not asked.
    // Stored as JSON, asked as a stream: replayed as SSE.
    let hit = ask(&b, CAROL, question, true);
    assert_eq!(hit.status, 200, "{}", hit.text());
    assert_eq!(hit.header("x-gateway-cache"), Some("hit"), "{}", hit.text());
    assert_eq!(hit.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream_text(&hit.text()), answer);
    assert_eq!(fake.received().len(), 1, "a shared hit asks no provider");
    assert_eq!(shared_stat(&b, "chat", "get", "hit"), 1.0);
    // ... and fills B's local tier: the next one is a local hit (no shared lookup).
    let again = ask(&b, ALICE, question, false);
    assert_eq!(again.header("x-gateway-cache"), Some("hit"));
    assert_eq!(again.json()["choices"][0]["message"]["content"], answer);
    assert_eq!(shared_stat(&b, "chat", "get", "hit"), 1.0);
    assert_eq!(fake.received().len(), 1);
    let log = b.access_log(2);
    let tiers: Vec<&str> = log
        .iter()
        .map(|l| l["cache_tier"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(tiers, ["shared", "local"], "{log:?}");
    assert_eq!(log[0]["provider"], "cache");

    // Bob is in another team: neither tier answers him.
    let bob = ask(&b, BOB, question, false);
    assert_eq!(bob.header("x-gateway-cache"), Some("miss"));
    assert_eq!(fake.received().len(), 2);
    assert_eq!(shared_stat(&b, "chat", "get", "miss"), 1.0);
    // Bob's answer is stored too, under a nonce of its own (WASI random_get in the VM).
    let with_bob = chroma.wait_for_records(COLLECTION, 2, &b);
    let nonces: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let sealed = with_bob["metadatas"][i]["sealed"]
                .as_str()
                .unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(sealed)
                .unwrap();
            bytes[4..16].to_vec()
        })
        .collect();
    assert_ne!(nonces[0], nonces[1]);

    // An Envoy with another key finds the entry but cannot open it: a miss, never served.
    let c = gateway(&fake, chroma.port, &seal_key(2), 2000);
    let other = ask(&c, ALICE, question, false);
    assert_eq!(other.status, 200);
    assert_eq!(other.header("x-gateway-cache"), Some("miss"));
    assert_eq!(fake.received().len(), 3);
    assert_eq!(shared_stat(&c, "chat", "get", "unopened"), 1.0);

    // An entry moved to another id (here: the first answer copied over the record of another
    // question) does not open there: a miss, never the wrong answer.
    let second = "what is the deepest lake";
    assert_eq!(
        ask(&a, ALICE, second, false).header("x-gateway-cache"),
        Some("miss")
    );
    let records = chroma.wait_for_records(COLLECTION, 3, &a);
    let known = with_bob["ids"].as_array().cloned().unwrap_or_default();
    let second_id = records["ids"]
        .as_array()
        .and_then(|ids| ids.iter().find(|id| !known.contains(id)))
        .cloned()
        .expect("the second question's record");
    assert_ne!(second_id, first_id);
    let collection = chroma.collection_id(COLLECTION);
    chroma.post(
        &format!("/api/v2/tenants/default_tenant/databases/default_database/collections/{collection}/upsert"),
        &json!({"ids": [second_id], "embeddings": [[1.0]], "metadatas": [first_metadata]}),
    );
    let moved = ask(&b, CAROL, second, false);
    assert_eq!(moved.header("x-gateway-cache"), Some("miss"));
    assert_eq!(
        moved.json()["choices"][0]["message"]["content"],
        expected_text(second)
    );
    assert_eq!(shared_stat(&b, "chat", "get", "unopened"), 1.0);
    assert_eq!(fake.received().len(), 5);
}

#[test]
fn a_slow_stopped_or_reset_chroma_makes_counted_misses_and_every_request_is_answered() {
    let mut chroma = Chroma::start();
    let proxy = SlowProxy::start(chroma.port);
    let fake = FakeProvider::start(0).unwrap();
    let gw = gateway(&fake, proxy.port, &seal_key(3), 300);
    let asks = |text: &str| {
        let r = ask(&gw, ALICE, text, false);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            expected_text(text)
        );
        r
    };
    assert_eq!(
        asks("first question").header("x-gateway-cache"),
        Some("miss")
    );
    wait_for(&gw, "get", "miss", 1.0);

    // Slow: the lookup gives up after its 300 ms timeout; the request goes on to the provider.
    proxy.set_delay(Duration::from_millis(1500));
    let started = Instant::now();
    assert_eq!(
        asks("slow question").header("x-gateway-cache"),
        Some("miss")
    );
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(shared_stat(&gw, "chat", "get", "timeout"), 1.0);
    proxy.set_delay(Duration::ZERO);

    // Stopped: every lookup fails at once; logged once, counted each time.
    chroma.stop();
    for text in ["while down 1", "while down 2", "while down 3"] {
        assert_eq!(asks(text).header("x-gateway-cache"), Some("miss"));
    }
    assert_eq!(shared_stat(&gw, "chat", "get", "unreachable"), 3.0);
    let logged = gw
        .log()
        .matches("cache shared tier: a lookup failed")
        .count();
    assert_eq!(logged, 1, "{}", gw.log());
    assert_eq!(fake.received().len(), 5);

    // Reset (started empty): the old collection is gone; the gateway finds the new one and
    // shares again.
    chroma.restart_empty();
    // Every VM (the workers' and the main thread's) looked the collection up at start.
    let ready = shared_stat(&gw, "none", "collection", "ready");
    assert_eq!(
        asks("after the reset").header("x-gateway-cache"),
        Some("miss")
    );
    assert_eq!(shared_stat(&gw, "chat", "get", "collection_gone"), 1.0);
    wait_for(&gw, "collection", "ready", ready + 1.0);
    assert_eq!(asks("stored again").header("x-gateway-cache"), Some("miss"));
    chroma.wait_for_records(COLLECTION, 1, &gw);
    assert!(gw.log().contains("the store answers again"), "{}", gw.log());
}

#[test]
fn a_shared_tier_without_its_key_or_on_a_provider_cluster_is_refused_at_start() {
    let refused = |plugin: Value, env: Vec<(String, String)>| {
        let (status, log) = Envoy::start_expecting_exit(Options {
            extra_clusters: vec![("chroma".into(), 9)],
            plugin_config: Some(plugin),
            env,
            concurrency: 1,
            ..Default::default()
        });
        assert_ne!(status, Some(0));
        log
    };
    let log = refused(plugin(50), vec![]);
    assert!(
        log.contains(
            "invalid plugin configuration at `cache.shared.key_env`: GATEWAY_CACHE_KEY is not set"
        ),
        "{log}"
    );
    let mut on_provider = plugin(50);
    on_provider["cache"]["shared"]["cluster"] = json!("provider_demo");
    let log = refused(on_provider, vec![("GATEWAY_CACHE_KEY".into(), seal_key(1))]);
    assert!(
        log.contains("invalid plugin configuration at `cache.shared.cluster`: cluster 'provider_demo' is provider 'demo''s cluster"),
        "{log}"
    );
}

/// The store interface's nearest-neighbour query (for the semantic layer) against the real
/// Chroma: the filter's own codec builds the calls and reads the answers.
#[test]
fn the_chroma_query_finds_neighbours_of_one_namespace_and_context_that_have_not_expired() {
    use ai_gateway::cache::shared::chroma::Chroma as Codec;
    use ai_gateway::cache::shared::{Record, StoreCall, VectorStore};
    let chroma = Chroma::start();
    let codec = Codec {
        tenant: "default_tenant".into(),
        database: "default_database".into(),
        collection: "gw_test_semantic".into(),
    };
    let send = |call: &StoreCall| {
        let r = gateway_tests::http::request(
            chroma.port,
            "POST",
            &call.path,
            &[("content-type", "application/json")],
            &call.body,
        )
        .expect("Chroma answers");
        (r.status.to_string(), r.body)
    };
    let (status, body) = send(&codec.collection_call());
    let collection = codec
        .collection_answer(&status, &body)
        .expect("a collection");
    let now = 1_780_000_000;
    let records: [(&str, [f32; 2], &str, &str, u64); 5] = [
        ("near", [1.0, 0.0], "ns1", "ctx1", now + 100),
        ("farther", [0.8, 0.6], "ns1", "ctx1", now + 100),
        ("other-namespace", [1.0, 0.0], "ns2", "ctx1", now + 100),
        ("other-context", [1.0, 0.0], "ns1", "ctx2", now + 100),
        ("expired", [1.0, 0.0], "ns1", "ctx1", now),
    ];
    for (id, vector, ns, ctx, expires_at) in &records {
        let record = Record {
            id,
            sealed: id.as_bytes(),
            expires_at: *expires_at,
            namespace: ns,
            vector: Some((vector, ctx)),
        };
        let (status, body) = send(&codec.put_call(&collection, &record));
        codec.put_answer(&status, &body).expect("stored");
    }
    let (status, body) = send(&codec.query_call(&collection, &[1.0, 0.0], "ctx1", "ns1", 5, now));
    let found = codec.query_answer(&status, &body).expect("neighbours");
    let ids: Vec<&str> = found.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["near", "farther"]);
    assert_eq!(found[1].sealed, b"farther");
    // Each neighbour's vector comes back (`include: embeddings`), as stored.
    assert_eq!(found[1].vector.as_deref(), Some([0.8f32, 0.6].as_slice()));
    // Cosine distance: 1 - 0.8 for the second, 0 for the first.
    assert!(found[0].distance.abs() < 1e-4, "{found:?}");
    assert!((found[1].distance - 0.2).abs() < 1e-3, "{found:?}");
}
