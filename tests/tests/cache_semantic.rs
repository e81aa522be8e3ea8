//! The semantic cache through the real Envoy (two workers): the embeddings call goes through a
//! loopback cluster to the gateway's own listener (`/v1/embeddings`, with the gateway key the
//! configuration names), the fake provider answers the `bag-of-words` model with a vector that
//! makes texts with the same words similar (tests/src/fake/README.md), so each test computes
//! the similarity it expects from its texts. Similar questions hit above the threshold and miss
//! below it; the context (system prompt), the team and `Cache-Control` are honoured; a turn
//! after a tool result is never served the previous answer; an embeddings call that fails or
//! times out is a miss, counted, and the request is answered.

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use gateway_tests::check::{sample, sha256_hex};
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{
    bag_of_words_vector, cosine, demo_answer, FakeProvider, BAG_OF_WORDS_MODEL,
};
use gateway_tests::http::Response;
use serde_json::{json, Value};

const ALICE: &str = "gw-alice-5e1d";
const BOB: &str = "gw-bob-0a9f";
/// The secret of the gateway key the embeddings calls use (from Envoy's environment).
const SEMANTIC_SECRET: &str = "gw-semantic-41c2";
const THRESHOLD: f64 = 0.9;

struct Gateway {
    fake: FakeProvider,
    gw: Envoy,
    /// Held open, never answered: the slow embeddings cluster.
    _slow: TcpListener,
}

fn start() -> Gateway {
    start_with(json!({}))
}

/// The gateway with `local` as `cache.local`.
fn start_with(local: Value) -> Gateway {
    let fake = FakeProvider::start(0).unwrap();
    // A port nobody listens on, and one that accepts connections and never answers.
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let semantic = |cluster: &str| {
        json!({"embeddings_model": "embed", "key_env": "GW_SEMANTIC_KEY", "threshold": THRESHOLD,
               "max_turns": 4, "timeout_ms": 400, "cluster": cluster})
    };
    let price = json!({"input": 2, "output": 8});
    let plugin = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"chat": {"provider": "demo", "model": "up-chat", "price": price},
                   "chat_dead": {"provider": "demo"},
                   "chat_slow": {"provider": "demo"},
                   "embed": {"provider": "demo", "model": BAG_OF_WORDS_MODEL}},
        "keys": {"alice": {"sha256": sha256_hex(ALICE), "team": "a"},
                 "bob": {"sha256": sha256_hex(BOB), "team": "b"},
                 "semantic": {"sha256": sha256_hex(SEMANTIC_SECRET), "models": ["embed"]}},
        "teams": {"a": {}, "b": {}},
        "cache": {"local": local, "models": {
            "chat": {"ttl": 300, "semantic": semantic("gateway_loopback")},
            "chat_dead": {"semantic": semantic("semantic_dead")},
            "chat_slow": {"semantic": semantic("semantic_slow")}}}
    });
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        loopback_clusters: vec!["gateway_loopback".into()],
        extra_clusters: vec![
            ("semantic_dead".into(), dead_port),
            ("semantic_slow".into(), slow_port),
        ],
        env: vec![("GW_SEMANTIC_KEY".into(), SEMANTIC_SECRET.into())],
        plugin_config: Some(plugin),
        concurrency: 2,
        ..Default::default()
    });
    Gateway {
        fake,
        gw,
        _slow: slow,
    }
}

impl Gateway {
    fn chat(&self, key: &str, extra: &[(&str, &str)], body: &Value) -> Response {
        let auth = format!("Bearer {key}");
        let mut headers = vec![
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ];
        headers.extend_from_slice(extra);
        self.gw.request(
            "POST",
            "/v1/chat/completions",
            &headers,
            body.to_string().as_bytes(),
        )
    }

    /// Requests the fake provider received on a path ending so.
    fn received(&self, path_end: &str) -> usize {
        self.fake
            .received()
            .iter()
            .filter(|r| r.path.ends_with(path_end))
            .count()
    }

    fn chats(&self) -> usize {
        self.received("/chat/completions")
    }

    fn embeddings(&self) -> usize {
        self.received("/embeddings")
    }

    fn lookups(&self, model: &str, outcome: &str) -> f64 {
        sample(
            &self.gw.prometheus(),
            "gw_cache_lookups",
            &[
                ("model", model),
                ("layer", "semantic"),
                ("outcome", outcome),
            ],
        )
        .unwrap_or(0.0)
    }
}

fn ask(model: &str, system: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": text}]})
}

/// The similarity the fake's vectors give two texts.
fn similarity(a: &str, b: &str) -> f64 {
    cosine(&bag_of_words_vector(a), &bag_of_words_vector(b))
}

/// The content of an SSE answer, and whether it carried a usage chunk and ended with `[DONE]`.
fn parse_stream(text: &str) -> (String, bool, bool) {
    let (mut content, mut usage, mut done) = (String::new(), false, false);
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block.strip_prefix("data: ").expect("an SSE data block");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("a JSON event");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        usage |= v["usage"].is_object();
    }
    (content, usage, done)
}

fn text_of(r: &Response) -> String {
    if r.header("content-type") == Some("text/event-stream") {
        let (content, _, done) = parse_stream(&r.text());
        assert!(done, "the stream ends with [DONE]: {}", r.text());
        content
    } else {
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// The answer is stored once its end has passed; the client may be quicker than that.
fn settle() {
    thread::sleep(Duration::from_millis(100));
}

#[test]
fn similar_questions_hit_above_the_threshold_and_nothing_else_does() {
    let g = start();
    let brief = "Answer briefly.";
    // (stored question, stored as a stream, similar question, asked as a stream)
    let cases = [
        (
            "What is the capital of France?",
            false,
            "What is the capital of France, please?",
            true,
        ),
        (
            "How many legs does a spider have?",
            true,
            "how many legs does a spider have please",
            false,
        ),
    ];
    let mut hits = 0.0;
    for (stored, stored_stream, similar, asked_stream) in cases {
        let expected = similarity(stored, similar);
        assert!(expected >= THRESHOLD, "the test's texts: {expected}");
        let (chats, embeddings) = (g.chats(), g.embeddings());
        let first = g.chat(ALICE, &[], &ask("chat", brief, stored, stored_stream));
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(first.header("x-gateway-cache"), Some("miss"));
        assert_eq!((g.chats(), g.embeddings()), (chats + 1, embeddings + 1));
        settle();

        let mut again = ask("chat", brief, similar, asked_stream);
        if asked_stream {
            again["stream_options"] = json!({"include_usage": true});
        }
        let hit = g.chat(ALICE, &[], &again);
        assert_eq!(hit.status, 200, "{}", hit.text());
        assert_eq!(
            hit.header("x-gateway-cache"),
            Some("semantic-hit"),
            "{similar}"
        );
        hits += 1.0;
        let shown: f64 = hit
            .header("x-gateway-cache-similarity")
            .and_then(|s| s.parse().ok())
            .expect("the similarity header");
        assert!((shown - expected).abs() < 1e-3, "{shown} vs {expected}");
        assert!(hit.header("age").is_some());
        let content_type = if asked_stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        assert_eq!(hit.header("content-type"), Some(content_type));
        // The stored answer (it echoes the first wording), not a new one.
        let stored_answer = demo_answer(&ask("chat", brief, stored, false)).0;
        assert_eq!(text_of(&hit), stored_answer);
        if asked_stream {
            assert!(parse_stream(&hit.text()).1, "the usage chunk asked for");
        }
        assert_eq!(g.chats(), chats + 1, "the hit reached no chat provider");
        assert_eq!(
            g.embeddings(),
            embeddings + 2,
            "one embeddings call a lookup"
        );

        // The same wording again is an exact hit now: not even an embeddings call.
        let exact = g.chat(ALICE, &[], &ask("chat", brief, similar, false));
        assert_eq!(exact.header("x-gateway-cache"), Some("hit"));
        assert_eq!(text_of(&exact), stored_answer);
        assert_eq!(g.embeddings(), embeddings + 2);
    }

    let stored = "What is the capital of France?";
    let misses = [
        // Below the threshold.
        (ALICE, brief, "What is the capital of Germany?"),
        // The same question in another context (system prompt).
        (ALICE, "Answer at length.", stored),
        // Another team: its own namespace, even for the very same request.
        (BOB, brief, stored),
    ];
    assert!(similarity(stored, misses[0].2) < THRESHOLD);
    for (key, system, text) in misses {
        let chats = g.chats();
        let r = g.chat(key, &[], &ask("chat", system, text, false));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-gateway-cache"), Some("miss"), "{system} {text}");
        assert_eq!(r.header("x-gateway-cache-similarity"), None);
        assert_eq!(
            text_of(&r),
            demo_answer(&ask("chat", system, text, false)).0
        );
        assert_eq!(g.chats(), chats + 1, "{system} {text}");
    }

    assert_eq!(g.lookups("chat", "hit"), hits);
    assert_eq!(g.lookups("chat", "miss"), 2.0 + 3.0);
    // The semantic key is worth nothing but embeddings.
    let denied = g.chat(SEMANTIC_SECRET, &[], &ask("chat", brief, stored, false));
    assert_eq!(denied.status, 403, "{}", denied.text());

    // The access log: the hit with its layer, similarity and cost 0; the embeddings calls as
    // requests of the semantic key to the embeddings model.
    let log = g.gw.access_log(17);
    let hit = log
        .iter()
        .find(|l| l["cache"] == "semantic-hit")
        .expect("a semantic hit in the access log");
    assert_eq!(hit["provider"], "cache");
    assert_eq!(hit["model"], "chat");
    assert_eq!(hit["cost_microdollars"], "0");
    // What the stored answer cost ($2 in, $8 out per million tokens): what the hit saved.
    let (_, prompt, completion) = demo_answer(&ask("chat", brief, stored, false));
    assert_eq!(
        hit["cache_saved_microdollars"],
        (prompt * 2 + completion * 8).to_string()
    );
    let shown: f64 = hit["cache_similarity"].as_str().unwrap().parse().unwrap();
    assert!(shown >= THRESHOLD, "{hit}");
    assert!(
        log.iter()
            .any(|l| l["key_id"] == "semantic" && l["model"] == "embed" && l["status"] == 200),
        "{log:?}"
    );
}

#[test]
fn cache_control_and_agent_loops_are_honoured() {
    let g = start();
    let sys = "Be exact.";
    let q = "Which planet is the largest?";
    let similar = "Which planet is the largest, please?";
    // no-store: neither looked up nor stored, and no embeddings call.
    let (chats, embeddings) = (g.chats(), g.embeddings());
    let r = g.chat(
        ALICE,
        &[("cache-control", "no-store")],
        &ask("chat", sys, q, false),
    );
    assert_eq!(r.header("x-gateway-cache"), Some("bypass"));
    assert_eq!((g.chats(), g.embeddings()), (chats + 1, embeddings));
    settle();
    let r = g.chat(ALICE, &[], &ask("chat", sys, similar, false));
    assert_eq!(
        r.header("x-gateway-cache"),
        Some("miss"),
        "nothing was stored"
    );
    settle();
    // no-cache: not served from the (now stored) similar entry, but its own vector is stored.
    let (chats, embeddings) = (g.chats(), g.embeddings());
    let r = g.chat(
        ALICE,
        &[("cache-control", "no-cache")],
        &ask("chat", sys, q, false),
    );
    assert_eq!(r.header("x-gateway-cache"), Some("bypass"));
    assert_eq!(text_of(&r), demo_answer(&ask("chat", sys, q, false)).0);
    assert_eq!((g.chats(), g.embeddings()), (chats + 1, embeddings + 1));

    // An agent loop: the turn after a tool result is never served an earlier answer (its last
    // message is no user message: not compared at all, no embeddings call).
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object"}}}]);
    let call = json!({"model": "chat", "tools": tools, "messages": [
        {"role": "user", "content": "weather in Paris?"}]});
    let first = g.chat(ALICE, &[], &call);
    assert_eq!(first.json()["choices"][0]["finish_reason"], "tool_calls");
    settle();
    let (chats, embeddings) = (g.chats(), g.embeddings());
    let bypasses = g.lookups("chat", "bypass");
    let mut turn = call.clone();
    let message = first.json()["choices"][0]["message"].clone();
    let call_id = message["tool_calls"][0]["id"].clone();
    turn["messages"].as_array_mut().unwrap().extend([
        message,
        json!({"role": "tool", "tool_call_id": call_id, "content": "sunny"}),
    ]);
    let next = g.chat(ALICE, &[], &turn);
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.header("x-gateway-cache"), Some("miss"));
    assert_eq!(text_of(&next), "Tool said: sunny");
    assert_eq!((g.chats(), g.embeddings()), (chats + 1, embeddings));
    assert_eq!(g.lookups("chat", "bypass"), bypasses + 1.0);
}

#[test]
fn an_embeddings_call_that_fails_or_times_out_is_a_miss() {
    let g = start();
    for model in ["chat_dead", "chat_slow"] {
        let text = "What is the capital of France?";
        let started = Instant::now();
        let r = g.chat(ALICE, &[], &ask(model, "brief", text, false));
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.header("x-gateway-cache"), Some("miss"), "{model}");
        assert_eq!(
            text_of(&r),
            demo_answer(&ask(model, "brief", text, false)).0
        );
        // The slow one waited for its 400 ms timeout, not for the connection to give up.
        assert!(started.elapsed() < Duration::from_secs(5), "{model}");
        assert_eq!(g.lookups(model, "error"), 1.0, "{model}");
        assert_eq!(g.lookups(model, "miss"), 0.0, "{model}");
    }
    assert!(
        g.gw.log()
            .contains("semantic cache: the embeddings call for"),
        "logged"
    );
}

#[test]
fn a_vector_larger_than_the_index_takes_is_a_miss() {
    // The fake's vectors have 256 dimensions; this index takes 255.
    let g = start_with(json!({"semantic": {"max_dimensions": 255}}));
    let text = "What is the capital of France?";
    for _ in 0..2 {
        let r = g.chat(ALICE, &[], &ask("chat", "brief", text, false));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(r.header("x-gateway-cache"), Some("semantic-hit"));
        settle();
    }
    assert_eq!(g.lookups("chat", "error"), 1.0);
    // The second request was an exact hit: the exact layer works without the semantic one.
    assert_eq!(g.chats(), 1);
}

#[test]
fn a_callout_into_a_provider_cluster_or_an_unlimited_key_is_refused_at_start() {
    let doc = |cluster: &str, key_models: Value| {
        json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"chat": {"provider": "demo"}, "embed": {"provider": "demo"}},
            "keys": {"semantic": {"sha256": sha256_hex(SEMANTIC_SECRET), "models": key_models}},
            "cache": {"models": {"chat": {"semantic": {"embeddings_model": "embed",
                "key_env": "GW_SEMANTIC_KEY", "cluster": cluster}}}}
        })
    };
    let cases = [
        // The provider filter would run in the gateway's VM (it traps: duplicate context id).
        (
            doc("provider_demo", json!(["embed"])),
            "`cache.models.chat.semantic.cluster`",
        ),
        // A key in the configuration's environment must be worth nothing but embeddings.
        (
            doc("gateway_loopback", json!(["embed", "chat"])),
            "`cache.models.chat.semantic.key_env`",
        ),
    ];
    for (config, expected) in cases {
        let (status, log) = Envoy::start_expecting_exit(Options {
            plugin_config: Some(config.clone()),
            env: vec![("GW_SEMANTIC_KEY".into(), SEMANTIC_SECRET.into())],
            ..Default::default()
        });
        assert_ne!(status, Some(0), "Envoy accepted {config}");
        let line = log
            .lines()
            .find(|l| l.contains("invalid plugin configuration"))
            .unwrap_or_else(|| panic!("no refusal line for {config}:\n{log}"));
        assert!(line.contains(expected), "{config}: {line}");
    }
}
