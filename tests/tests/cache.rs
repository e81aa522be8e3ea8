//! The response cache through the real Envoy (two workers, so a hit may come from the entry the
//! other worker stored): a repeated request is answered without the provider (the fake's
//! request count proves it) in the shape the client asked for, whichever way the answer was
//! stored; embeddings too; another team's key never hits; `Cache-Control`, the TTL and the size
//! caps apply; hits are free in the budget, counted in the stats and logged with the cost they
//! saved. Answers of the other provider families: `cache_providers.rs`. Expected texts and usage come from the fake provider's documented answer
//! (tests/src/fake/README.md), prices from the test's configuration.

use std::thread;
use std::time::Duration;

use gateway_tests::check::{sample, sha256_hex};
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{count_tokens, demo_answer, fake_vector, FakeProvider};
use gateway_tests::http::Response;
use serde_json::{json, Value};

const ALICE: &str = "gw-alice-5e1d";
const CAROL: &str = "gw-carol-77c0";
const BOB: &str = "gw-bob-0a9f";

fn start(plugin: Value) -> (FakeProvider, Envoy) {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(plugin),
        concurrency: 2,
        ..Default::default()
    });
    (fake, gw)
}

/// $2 in / $8 out per million tokens.
fn models() -> Value {
    let price = json!({"input": 2, "output": 8});
    json!({
        "chat": {"provider": "demo", "model": "up-chat", "price": price},
        "short": {"provider": "demo"},
        "tiny": {"provider": "demo"},
        "plain": {"provider": "demo"},
        "embed": {"provider": "demo"}})
}

fn cache_section() -> Value {
    json!({"models": {
        "chat": {"ttl": 300},
        // 2 s, not 1: entries keep their creation time in whole seconds, so a 1 s entry stored
        // late in a second could be expired by the next request (seen under load).
        "short": {"ttl": 2},
        "tiny": {"max_entry_bytes": 100},
        "embed": {}}})
}

fn post(
    gw: &Envoy,
    path: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: &Value,
) -> Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    headers.extend_from_slice(extra);
    gw.request("POST", path, &headers, body.to_string().as_bytes())
}

fn chat(gw: &Envoy, key: Option<&str>, extra: &[(&str, &str)], body: &Value) -> Response {
    post(gw, "/v1/chat/completions", key, extra, body)
}

fn ask(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]})
}

/// The content of an SSE answer, its usage chunk if any, and whether it ended with `[DONE]`.
fn parse_stream(text: &str) -> (String, Option<Value>, bool) {
    let mut content = String::new();
    let mut usage = None;
    let mut done = false;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block.strip_prefix("data: ").expect("an SSE data block");
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("a JSON event");
        assert_eq!(v["object"], "chat.completion.chunk", "{data}");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    (content, usage, done)
}

/// The answer's text, whichever shape it came in.
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

#[test]
fn repeated_requests_are_answered_without_the_provider_in_the_shape_asked() {
    let (fake, gw) = start(
        json!({"providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": models(), "cache": cache_section()}),
    );
    // Stored as JSON or as a stream, asked as JSON or as a stream: four distinct questions.
    let mut hits = 0;
    for (i, (stored_stream, asked_stream)) in
        [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .enumerate()
    {
        let question = format!("question number {i} please");
        let case = format!("stored as stream: {stored_stream}, asked as stream: {asked_stream}");
        let expected = demo_answer(&ask("chat", &question, false));
        let before = fake.received().len();
        let first = chat(&gw, None, &[], &ask("chat", &question, stored_stream));
        assert_eq!(first.status, 200, "{case}: {}", first.text());
        assert_eq!(first.header("x-gateway-cache"), Some("miss"), "{case}");
        assert_eq!(text_of(&first), expected.0, "{case}");
        assert_eq!(
            fake.received().len(),
            before + 1,
            "{case}: the miss reached the provider"
        );
        let mut again = ask("chat", &question, asked_stream);
        if asked_stream {
            again["stream_options"] = json!({"include_usage": true});
        }
        // The answer is stored when its end has passed; the client may be quicker than that.
        thread::sleep(Duration::from_millis(50));
        let second = chat(&gw, None, &[], &again);
        assert_eq!(second.status, 200, "{case}: {}", second.text());
        assert_eq!(second.header("x-gateway-cache"), Some("hit"), "{case}");
        assert!(second.header("age").is_some(), "{case}");
        hits += 1;
        assert_eq!(
            fake.received().len(),
            before + 1,
            "{case}: the hit reached no provider"
        );
        let expected_type = if asked_stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        assert_eq!(second.header("content-type"), Some(expected_type), "{case}");
        assert_eq!(text_of(&second), expected.0, "{case}");
        let usage = if asked_stream {
            parse_stream(&second.text())
                .1
                .expect("the usage chunk the client asked for")
        } else {
            second.json()["usage"].clone()
        };
        assert_eq!(usage["prompt_tokens"], expected.1, "{case}");
        assert_eq!(usage["completion_tokens"], expected.2, "{case}");
        if asked_stream {
            // Without include_usage, no usage chunk.
            let plain = chat(&gw, None, &[], &ask("chat", &question, true));
            assert_eq!(plain.header("x-gateway-cache"), Some("hit"));
            assert_eq!(parse_stream(&plain.text()).1, None);
            hits += 1;
        }
    }
    // Embeddings: stored as JSON and replayed.
    let input = json!({"model": "embed", "input": "cache me if you can"});
    let before = fake.received().len();
    let first = post(&gw, "/v1/embeddings", None, &[], &input);
    assert_eq!(
        (first.status, first.header("x-gateway-cache")),
        (200, Some("miss")),
        "{}",
        first.text()
    );
    thread::sleep(Duration::from_millis(50));
    let second = post(&gw, "/v1/embeddings", None, &[], &input);
    assert_eq!(
        (second.status, second.header("x-gateway-cache")),
        (200, Some("hit"))
    );
    hits += 1;
    assert_eq!(
        second.json()["data"][0]["embedding"],
        json!(fake_vector("cache me if you can"))
    );
    assert_eq!(fake.received().len(), before + 1);
    // A model without a cache: no header, every request reaches the provider.
    let plain = chat(&gw, None, &[], &ask("plain", "hello", false));
    assert_eq!(plain.header("x-gateway-cache"), None);
    chat(&gw, None, &[], &ask("plain", "hello", false));
    assert_eq!(fake.received().len(), before + 3);

    // Stats: hits by layer, and what they saved. The last hit of "chat" (asked as a stream
    // twice) saved its tokens twice; every hit of "chat" saved (prompt * 2 + completion * 8)
    // micro-dollars at the configured price.
    let stats = gw.prometheus();
    let hits_of = |model: &str| {
        sample(
            &stats,
            "gw_cache_lookups",
            &[("model", model), ("layer", "exact"), ("outcome", "hit")],
        )
    };
    assert_eq!(
        hits_of("chat").unwrap_or(0.0) + hits_of("embed").unwrap_or(0.0),
        hits as f64,
        "{stats}"
    );
    assert_eq!(
        sample(
            &stats,
            "gw_cache_lookups",
            &[("model", "chat"), ("layer", "exact"), ("outcome", "miss")]
        ),
        Some(4.0)
    );
    let mut saved_micros = 0u64;
    let mut saved_output = 0u64;
    for (i, (_, asked_stream)) in [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        let (_, prompt, completion) =
            demo_answer(&ask("chat", &format!("question number {i} please"), false));
        let times = if asked_stream { 2 } else { 1 };
        saved_micros += times * (prompt * 2 + completion * 8);
        saved_output += times * completion;
    }
    assert_eq!(
        sample(&stats, "gw_cache_saved_microdollars", &[("model", "chat")]),
        Some(saved_micros as f64),
        "{stats}"
    );
    assert_eq!(
        sample(
            &stats,
            "gw_cache_tokens_saved",
            &[("model", "chat"), ("token_type", "output")]
        ),
        Some(saved_output as f64)
    );
    assert_eq!(
        sample(
            &stats,
            "gw_cache_tokens_saved",
            &[("model", "embed"), ("token_type", "input")]
        ),
        Some(count_tokens("cache me if you can") as f64)
    );

    // The access log: a hit is logged with the model, the original usage, cost 0 and the cost
    // it saved; the provider is "cache".
    let log = gw.access_log(14);
    let hit = log
        .iter()
        .find(|l| l["cache"] == "hit" && l["model"] == "chat")
        .expect("a hit in the access log");
    assert_eq!(hit["provider"], "cache");
    assert_eq!(hit["upstream_model"], "up-chat");
    assert_eq!(hit["cost_microdollars"], "0");
    let (_, prompt, completion) = demo_answer(&ask("chat", "question number 0 please", false));
    assert_eq!(hit["prompt_tokens"], prompt.to_string());
    assert_eq!(
        hit["cache_saved_microdollars"],
        (prompt * 2 + completion * 8).to_string()
    );
    assert!(log
        .iter()
        .any(|l| l["cache"] == "miss" && l["provider"] == "demo"));
}

#[test]
fn ttl_size_caps_and_tool_calls_keep_answers_out() {
    let (fake, gw) = start(
        json!({"providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": models(), "cache": cache_section()}),
    );
    // ttl 2 s: a hit at once, a miss three seconds later.
    let q = ask("short", "short lived", false);
    assert_eq!(
        chat(&gw, None, &[], &q).header("x-gateway-cache"),
        Some("miss")
    );
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        chat(&gw, None, &[], &q).header("x-gateway-cache"),
        Some("hit")
    );
    thread::sleep(Duration::from_millis(3100));
    let expired = chat(&gw, None, &[], &q);
    assert_eq!(
        (expired.status, expired.header("x-gateway-cache")),
        (200, Some("miss"))
    );
    assert_eq!(fake.received().len(), 2);
    // Answers over max_entry_bytes (100; the fake's JSON answer is about 300 bytes) are never
    // stored, streamed or not.
    for stream in [false, true] {
        let q = ask("tiny", "too big to keep", stream);
        for _ in 0..2 {
            let r = chat(&gw, None, &[], &q);
            assert_eq!((r.status, r.header("x-gateway-cache")), (200, Some("miss")));
            thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(fake.received().len(), 6);
    // An answer that calls a tool is not stored by default: an agent loop must not get the
    // previous turn's call again.
    let tools = json!({"model": "chat", "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
    for _ in 0..2 {
        let r = chat(&gw, None, &[], &tools);
        assert_eq!(r.json()["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(r.header("x-gateway-cache"), Some("miss"));
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fake.received().len(), 8);
    let stats = gw.prometheus();
    let stores = |model: &str, outcome: &str| {
        sample(
            &stats,
            "gw_cache_stores",
            &[("model", model), ("outcome", outcome)],
        )
    };
    assert_eq!(stores("tiny", "too_large"), Some(4.0), "{stats}");
    assert_eq!(stores("chat", "tool_calls"), Some(2.0), "{stats}");
    assert_eq!(stores("short", "stored"), Some(2.0), "{stats}");
}

#[test]
fn namespaces_cache_control_and_budgets() {
    let keys = json!({
        "alice": {"sha256": sha256_hex(ALICE), "team": "red", "budgets": {"usd_per_day": 0.0002}},
        "carol": {"sha256": sha256_hex(CAROL), "team": "red"},
        "bob": {"sha256": sha256_hex(BOB)}});
    let (fake, gw) = start(
        json!({"providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": models(), "cache": cache_section(), "keys": keys, "teams": {"red": {}}}),
    );
    let mut q = ask("chat", "who are you", false);
    q["max_tokens"] = json!(20);
    let first = chat(&gw, Some(ALICE), &[], &q);
    assert_eq!(
        (first.status, first.header("x-gateway-cache")),
        (200, Some("miss")),
        "{}",
        first.text()
    );
    thread::sleep(Duration::from_millis(50));
    // Carol is in alice's team: she reads the entry. Bob (no team) never does.
    let carol = chat(&gw, Some(CAROL), &[], &q);
    assert_eq!(carol.header("x-gateway-cache"), Some("hit"));
    let bob = chat(&gw, Some(BOB), &[], &q);
    assert_eq!(
        (bob.status, bob.header("x-gateway-cache")),
        (200, Some("miss"))
    );
    thread::sleep(Duration::from_millis(50));
    // Bob's answer went to his own namespace (a key without a team): he reads it back.
    let bob = chat(&gw, Some(BOB), &[], &q);
    assert_eq!(bob.header("x-gateway-cache"), Some("hit"));
    assert_eq!(
        fake.received().len(),
        2,
        "alice's miss and bob's first miss"
    );

    // Alice's budget ($0.0002 a day) is spent beyond another new request's estimate
    // ((prompt + 20) tokens at $2/$8 per million), so a new question is refused...
    let refused = chat(
        &gw,
        Some(ALICE),
        &[],
        &json!({"model": "chat", "max_tokens": 20, "messages": [{"role": "user", "content": "something new"}]}),
    );
    assert_eq!(refused.status, 429, "{}", refused.text());
    // ...while the cached answer is still served: a hit costs nothing and takes no budget.
    let free = chat(&gw, Some(ALICE), &[], &q);
    assert_eq!(
        (free.status, free.header("x-gateway-cache")),
        (200, Some("hit")),
        "{}",
        free.text()
    );

    // Cache-Control: no-store neither reads nor stores; no-cache does not read but stores;
    // max-age accepts only younger entries.
    let fresh = ask("chat", "control question", false);
    let n = fake.received().len();
    let r = chat(&gw, Some(CAROL), &[("cache-control", "no-store")], &fresh);
    assert_eq!(r.header("x-gateway-cache"), Some("bypass"));
    thread::sleep(Duration::from_millis(50));
    let r = chat(&gw, Some(CAROL), &[], &fresh);
    assert_eq!(
        r.header("x-gateway-cache"),
        Some("miss"),
        "no-store stored nothing"
    );
    thread::sleep(Duration::from_millis(50));
    let r = chat(&gw, Some(CAROL), &[("cache-control", "no-cache")], &fresh);
    assert_eq!(r.header("x-gateway-cache"), Some("bypass"));
    assert_eq!(fake.received().len(), n + 3);
    thread::sleep(Duration::from_millis(1100));
    let r = chat(&gw, Some(CAROL), &[("cache-control", "max-age=0")], &fresh);
    assert_eq!(r.header("x-gateway-cache"), Some("miss"), "older than 0 s");
    thread::sleep(Duration::from_millis(50));
    let r = chat(&gw, Some(CAROL), &[("cache-control", "max-age=60")], &fresh);
    assert_eq!(r.header("x-gateway-cache"), Some("hit"));
    assert_eq!(fake.received().len(), n + 4);
}

#[test]
fn the_local_tier_stays_within_its_slots_and_bytes() {
    let plugin = |local: Value, model: Value| {
        json!({"providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": models(), "cache": {"local": local, "models": {"plain": model}}})
    };
    // Two slots: a third answer replaces the older of the two stored (entries' ages are in
    // whole seconds, hence the pause between the first two).
    let (fake, gw) = start(plugin(json!({"slots": 2}), json!({})));
    let q = |n: &str| ask("plain", &format!("question {n}"), false);
    for (n, pause) in [("a", 1100), ("b", 50), ("c", 50)] {
        assert_eq!(
            chat(&gw, None, &[], &q(n)).header("x-gateway-cache"),
            Some("miss")
        );
        thread::sleep(Duration::from_millis(pause));
    }
    assert_eq!(
        chat(&gw, None, &[], &q("b")).header("x-gateway-cache"),
        Some("hit")
    );
    assert_eq!(
        chat(&gw, None, &[], &q("c")).header("x-gateway-cache"),
        Some("hit")
    );
    assert_eq!(
        chat(&gw, None, &[], &q("a")).header("x-gateway-cache"),
        Some("miss"),
        "the oldest went"
    );
    assert_eq!(fake.received().len(), 4);
    drop(gw);
    // 500 bytes for every entry of this Envoy: one answer of the fake (about 300 bytes with
    // its slot's header) fits, a second is refused and counted, the first stays.
    let (_fake, gw) = start(plugin(
        json!({"max_bytes": 500}),
        json!({"max_entry_bytes": 450}),
    ));
    for n in ["a", "b"] {
        assert_eq!(
            chat(&gw, None, &[], &q(n)).header("x-gateway-cache"),
            Some("miss")
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        chat(&gw, None, &[], &q("a")).header("x-gateway-cache"),
        Some("hit")
    );
    assert_eq!(
        chat(&gw, None, &[], &q("b")).header("x-gateway-cache"),
        Some("miss")
    );
    let stats = gw.prometheus();
    assert_eq!(
        sample(
            &stats,
            "gw_cache_stores",
            &[("model", "plain"), ("outcome", "full")]
        ),
        Some(2.0),
        "{stats}"
    );
    assert_eq!(
        sample(
            &stats,
            "gw_cache_stores",
            &[("model", "plain"), ("outcome", "stored")]
        ),
        Some(1.0),
        "{stats}"
    );
}

/// An Anthropic Messages client is served from the cache in its own shapes (a `message`
/// object, or Anthropic's events), its entries apart from an OpenAI client's identical question.
#[test]
fn a_messages_client_gets_its_hits_in_anthropic_shapes() {
    let (fake, gw) = start(
        json!({"providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": models(), "cache": cache_section()}),
    );
    let question = "a question asked in the messages api";
    let expected = demo_answer(&ask("chat", question, false));
    let messages = |stream: bool| {
        json!({"model": "chat", "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": question}]})
    };
    let before = fake.received().len();
    let first = post(&gw, "/v1/messages", None, &[], &messages(false));
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-gateway-cache"), Some("miss"));
    assert_eq!(fake.received().len(), before + 1);
    thread::sleep(Duration::from_millis(50));
    // Anthropic's Messages API reference: a `message` object whose `content` holds text blocks,
    // usage as input_tokens / output_tokens.
    let json_hit = post(&gw, "/v1/messages", None, &[], &messages(false));
    assert_eq!(
        json_hit.header("x-gateway-cache"),
        Some("hit"),
        "{}",
        json_hit.text()
    );
    let v = json_hit.json();
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["content"][0]["text"], expected.0.as_str(), "{v}");
    assert_eq!(v["usage"]["input_tokens"], expected.1, "{v}");
    assert_eq!(v["usage"]["output_tokens"], expected.2, "{v}");
    // Streamed: message_start ... content_block_delta (text_delta) ... message_stop.
    let stream_hit = post(&gw, "/v1/messages", None, &[], &messages(true));
    assert_eq!(stream_hit.header("x-gateway-cache"), Some("hit"));
    assert_eq!(stream_hit.header("content-type"), Some("text/event-stream"));
    let text = stream_hit.text();
    let mut streamed = String::new();
    let mut names = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let event = block.lines().find_map(|l| l.strip_prefix("event: "));
        names.push(event.unwrap_or_default().to_string());
        let data = block.lines().find_map(|l| l.strip_prefix("data: "));
        let v: Value = serde_json::from_str(data.unwrap_or("null")).unwrap_or(Value::Null);
        if v["delta"]["type"] == "text_delta" {
            streamed.push_str(v["delta"]["text"].as_str().unwrap_or_default());
        }
    }
    assert_eq!(
        names.first().map(String::as_str),
        Some("message_start"),
        "{text}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("message_stop"),
        "{text}"
    );
    assert_eq!(streamed, expected.0, "{text}");
    assert_eq!(
        fake.received().len(),
        before + 1,
        "the hits reached no provider"
    );
    // The same question from an OpenAI client is a miss: the entries are apart.
    let openai = chat(&gw, None, &[], &ask("chat", question, false));
    assert_eq!(openai.header("x-gateway-cache"), Some("miss"));
    assert_eq!(fake.received().len(), before + 2);
}
