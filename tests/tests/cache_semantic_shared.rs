//! The semantic cache index shared across Envoys through a real Chroma (tests/src/chroma.rs
//! starts `chroma run`): a question stored through Envoy A is a `semantic-hit` in Envoy B for
//! a rewording (B's own index is empty; the similarity comes from the fake provider's
//! bag-of-words vectors, tests/src/fake/README.md, computed here from the texts), and the
//! fake provider's chat counter proves no provider was asked; another team or another system
//! prompt is a miss; Chroma stopped is a counted miss, answered. Chroma's vector collection
//! holds vectors, hashes and sealed entries, never the text. Each Envoy embeds through its own
//! loopback cluster.

use std::thread;
use std::time::{Duration, Instant};

use gateway_tests::check::{sample, sha256_hex};
use gateway_tests::chroma::Chroma;
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{
    bag_of_words_vector, cosine, demo_answer, FakeProvider, BAG_OF_WORDS_MODEL,
};
use gateway_tests::http::Response;
use serde_json::json;

const ALICE: &str = "gw-alice-5e1d";
const CAROL: &str = "gw-carol-77c0";
const BOB: &str = "gw-bob-0a9f";
const SEMANTIC_SECRET: &str = "gw-semantic-41c2";
const COLLECTION: &str = "gw_test_semshared";
const VECTORS: &str = "gw_test_semshared_vectors";
const THRESHOLD: f64 = 0.9;
/// 32 bytes of base64 (`openssl rand -base64 32` shape), the same for both Envoys.
const SEAL_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

fn gateway(fake: &FakeProvider, chroma: &Chroma) -> Envoy {
    let plugin = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"chat": {"provider": "demo"},
                   "embed": {"provider": "demo", "model": BAG_OF_WORDS_MODEL}},
        "keys": {"alice": {"sha256": sha256_hex(ALICE), "team": "red"},
                 "carol": {"sha256": sha256_hex(CAROL), "team": "red"},
                 "bob": {"sha256": sha256_hex(BOB), "team": "blue"},
                 "semantic": {"sha256": sha256_hex(SEMANTIC_SECRET), "models": ["embed"]}},
        "teams": {"red": {}, "blue": {}},
        "cache": {
            "shared": {"cluster": "chroma", "timeout_ms": 2000,
                       "chroma": {"collection": COLLECTION}},
            "models": {"chat": {"ttl": 300, "semantic": {
                "embeddings_model": "embed", "key_env": "GW_SEMANTIC_KEY",
                "threshold": THRESHOLD, "timeout_ms": 2000, "cluster": "gateway_loopback"}}}}
    });
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        loopback_clusters: vec!["gateway_loopback".into()],
        extra_clusters: vec![("chroma".into(), chroma.port)],
        env: vec![
            ("GW_SEMANTIC_KEY".into(), SEMANTIC_SECRET.into()),
            ("GATEWAY_CACHE_KEY".into(), SEAL_KEY.into()),
        ],
        plugin_config: Some(plugin),
        concurrency: 1,
        ..Default::default()
    });
    // Both collections known (each VM looks each up).
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(&gw, "none", "collection", "ready") < 2.0 {
        assert!(
            Instant::now() < deadline,
            "collections not ready:\n{}",
            gw.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
    gw
}

fn stat(gw: &Envoy, model: &str, operation: &str, outcome: &str) -> f64 {
    let labels = [
        ("model", model),
        ("operation", operation),
        ("outcome", outcome),
    ];
    sample(&gw.prometheus(), "gw_cache_shared", &labels).unwrap_or(0.0)
}

fn ask(gw: &Envoy, key: &str, system: &str, text: &str) -> Response {
    let body = json!({"model": "chat", "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": text}]});
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

fn chats(fake: &FakeProvider) -> usize {
    fake.received()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

#[test]
fn a_rewording_asked_in_another_envoy_is_a_semantic_hit_only_in_the_same_team_and_context() {
    let mut chroma = Chroma::start();
    let fake = FakeProvider::start(0).unwrap();
    let a = gateway(&fake, &chroma);
    let b = gateway(&fake, &chroma);
    let (system, stored, reworded) = (
        "Answer briefly.",
        "What is the capital of France?",
        "What is the capital of France, please?",
    );
    let expected = cosine(&bag_of_words_vector(stored), &bag_of_words_vector(reworded));
    assert!(
        (THRESHOLD..0.999).contains(&expected),
        "the test's texts: {expected}"
    );
    let answer = demo_answer(&json!({"model": "chat", "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": stored}]}))
    .0;

    let first = ask(&a, ALICE, system, stored);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-gateway-cache"), Some("miss"));
    assert_eq!(chats(&fake), 1);
    let records = chroma.wait_for_records(VECTORS, 1, &a);
    // The vector collection: the vector, hashes, expiry and the sealed entry; never the text.
    let held = records.to_string();
    for plain in [stored, answer.as_str(), "\"red\""] {
        assert!(!held.contains(plain), "Chroma holds {plain:?}: {held}");
    }
    let metadata = &records["metadatas"][0];
    for field in ["sealed", "ns", "ctx", "expires_at"] {
        assert!(!metadata[field].is_null(), "{field}: {metadata}");
    }
    let exact = chroma.wait_for_records(COLLECTION, 1, &a);
    assert_eq!(
        records["ids"][0], exact["ids"][0],
        "under the exact entry's id"
    );

    // Envoy B has never seen either wording: its local index is empty, Chroma answers.
    let hit = ask(&b, CAROL, system, reworded);
    assert_eq!(hit.status, 200, "{}", hit.text());
    assert_eq!(
        hit.header("x-gateway-cache"),
        Some("semantic-hit"),
        "{}",
        b.log()
    );
    let similarity: f64 = hit
        .header("x-gateway-cache-similarity")
        .expect("the similarity")
        .parse()
        .unwrap();
    // Chroma computes the distance in f32: equal to 3 decimals.
    assert!(
        (similarity - expected).abs() < 1e-3,
        "{similarity} vs {expected}"
    );
    assert_eq!(hit.json()["choices"][0]["message"]["content"], answer);
    assert_eq!(chats(&fake), 1, "a shared semantic hit asks no provider");
    assert_eq!(stat(&b, "chat", "query", "hit"), 1.0);
    // Its access-log line (the embeddings call through the loopback has its own).
    let log = b.access_log(2);
    let line = log.iter().find(|l| l["cache"] == "semantic-hit");
    assert_eq!(
        line.map(|l| &l["cache_tier"]),
        Some(&json!("shared")),
        "{log:?}"
    );
    // ... and B keeps it: the same rewording again is a local exact hit, no query.
    let again = ask(&b, ALICE, system, reworded);
    assert_eq!(again.header("x-gateway-cache"), Some("hit"));
    assert_eq!(stat(&b, "chat", "query", "hit"), 1.0);

    // B's index holds A's own vector now (from the query's answer): another wording with the
    // stored question's words (similarity 1 to it) is a semantic hit in B with no query.
    let same_words = "what is the capital of france";
    let to_stored = cosine(
        &bag_of_words_vector(stored),
        &bag_of_words_vector(same_words),
    );
    assert!(to_stored > 0.999, "the test's texts: {to_stored}");
    let local = ask(&b, CAROL, system, same_words);
    assert_eq!(local.header("x-gateway-cache"), Some("semantic-hit"));
    assert_eq!(local.json()["choices"][0]["message"]["content"], answer);
    assert_eq!(
        stat(&b, "chat", "query", "hit"),
        1.0,
        "served from B's own index"
    );
    assert_eq!(chats(&fake), 1);

    // Another team: the same rewording is a miss in B (the namespace filter), answered.
    let bob = ask(&b, BOB, system, reworded);
    assert_eq!(bob.status, 200);
    assert_eq!(bob.header("x-gateway-cache"), Some("miss"));
    assert_eq!(chats(&fake), 2);
    // Another system prompt: another context, a miss.
    let verbose = ask(&b, CAROL, "Answer at length.", reworded);
    assert_eq!(verbose.header("x-gateway-cache"), Some("miss"));
    assert_eq!(chats(&fake), 3);
    assert_eq!(stat(&b, "chat", "query", "miss"), 2.0);

    // Chroma stopped: A's rewording (A's index has only the stored wording) is answered by
    // the provider, the failed query counted; a failure of the tier is logged once.
    chroma.stop();
    let down = ask(&a, ALICE, system, "Capital of France? Tell me please.");
    assert_eq!(down.status, 200, "{}", down.text());
    assert_eq!(down.header("x-gateway-cache"), Some("miss"));
    assert_eq!(chats(&fake), 4);
    assert_eq!(stat(&a, "chat", "query", "unreachable"), 1.0, "{}", a.log());
    assert_eq!(
        a.log().matches("cache shared tier: a ").count(),
        1,
        "{}",
        a.log()
    );
}
