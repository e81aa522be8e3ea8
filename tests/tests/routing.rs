//! Routing and resilience through the real Envoy: several fake providers of different wire
//! formats behind one model; weighted splits, fallback on every failure kind (the next attempt
//! translated for the next provider), cost and latency picks that follow what the gateway
//! observes, content rules, the classifier callout, pinning, and outlier ejection.

use std::time::Duration;

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider, Reply};
use serde_json::{json, Value};

struct Providers {
    openai: FakeProvider,
    anthropic: FakeProvider,
    gemini: FakeProvider,
}

fn providers() -> Providers {
    Providers {
        openai: FakeProvider::start(0).unwrap(),
        anthropic: FakeProvider::start(0).unwrap(),
        gemini: FakeProvider::start(0).unwrap(),
    }
}

const PROVIDER_CONFIG: &str = r#"{
    "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
    "anthropic": {"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
    "gemini": {"type": "gemini", "api_key_env": "GEMINI_API_KEY"}}"#;

fn start(p: &Providers, models: Value, tweak: impl FnOnce(&mut Options)) -> Envoy {
    let mut options = Options {
        upstreams: vec![
            ("openai".into(), p.openai.port),
            ("anthropic".into(), p.anthropic.port),
            ("gemini".into(), p.gemini.port),
        ],
        plugin_config: Some(json!({
            "providers": serde_json::from_str::<Value>(PROVIDER_CONFIG).unwrap(),
            "models": models})),
        env: vec![
            ("OPENAI_API_KEY".into(), "k-openai".into()),
            ("ANTHROPIC_API_KEY".into(), "k-anthropic".into()),
            ("GEMINI_API_KEY".into(), "k-gemini".into()),
        ],
        concurrency: 2,
        ..Default::default()
    };
    tweak(&mut options);
    Envoy::start(options)
}

/// openai first, then anthropic, then gemini (weights 0 are never the first pick).
fn chain_model() -> Value {
    json!({"chain": {"targets": [
        {"provider": "openai", "model": "gpt-4o-mini", "weight": 1},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "weight": 0},
        {"provider": "gemini", "model": "gemini-2.5-flash", "weight": 0}]}})
}

fn ask(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]})
}

fn content(r: &gateway_tests::http::Response, stream: bool) -> String {
    if !stream {
        return r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    r.text()
        .split("\n\n")
        .filter_map(|b| b.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

#[test]
fn weighted_split_holds_within_tolerance() {
    let p = providers();
    let gw = start(
        &p,
        json!({"ab": {"targets": [
        {"provider": "openai", "model": "gpt-4o-mini", "weight": 3},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "weight": 1}]}}),
        |_| {},
    );
    let n = 200;
    for i in 0..n {
        assert_eq!(
            gw.chat(&ask("ab", &format!("split {i}"), false)).status,
            200
        );
    }
    let to_openai = p.openai.received().len();
    assert_eq!(to_openai + p.anthropic.received().len(), n);
    // 3:1 over 200 requests: 150 expected; 120..=180 is beyond four standard deviations.
    assert!(
        (120..=180).contains(&to_openai),
        "openai got {to_openai} of {n}"
    );
    let log = &gw.access_log(1)[0];
    assert_eq!(log["strategy"], "weighted");
    assert!(
        log["reason"].as_str().unwrap().contains("weighted"),
        "{log}"
    );
}

#[test]
fn sticky_users_stay_on_one_provider() {
    let p = providers();
    let gw = start(
        &p,
        json!({"ab": {"sticky": "user", "targets": [
        {"provider": "openai", "model": "gpt-4o-mini", "weight": 1},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "weight": 1}]}}),
        |_| {},
    );
    let mut first = None;
    for i in 0..20 {
        let mut body = ask("ab", &format!("sticky {i}"), false);
        body["user"] = "alice".into();
        let r = gw.chat(&body);
        let provider = r
            .header("x-gateway-provider")
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            *first.get_or_insert(provider.clone()),
            provider,
            "alice moved"
        );
    }
}

/// Every kind of failure on the first provider: the next provider, in its own wire format,
/// answers, and the client sees one correct OpenAI answer; streamed and not.
#[test]
fn each_failure_kind_falls_back_to_a_provider_of_another_format() {
    let p = providers();
    let gw = start(&p, chain_model(), |o| o.per_try_timeout = Some("1s".into()));
    let error = |status| {
        Reply::json(
            status,
            &json!({"error": {"message": "no", "type": "server_error"}}),
        )
    };
    let mut rate_limited = error(429);
    rate_limited
        .headers
        .push(("retry-after".into(), "30".into()));
    let failures: Vec<(&str, Reply)> = vec![
        ("500", error(500)),
        ("503", error(503)),
        ("429 with retry-after", rate_limited),
        ("reset", Reply::reset()),
        (
            "per-try timeout",
            Reply::default_after(Duration::from_secs(3)),
        ),
    ];
    for (kind, failure) in failures {
        for stream in [false, true] {
            p.openai.push_reply(failure.clone());
            let text = format!("fallback after {kind} stream {stream}");
            let request = ask("chain", &text, stream);
            let started = std::time::Instant::now();
            let r = gw.chat(&request);
            assert_eq!(r.status, 200, "{kind}: {}", r.text());
            assert_eq!(r.header("x-gateway-provider"), Some("anthropic"), "{kind}");
            assert_eq!(r.header("x-gateway-attempts"), Some("2"), "{kind}");
            assert_eq!(
                content(&r, stream),
                demo_answer(&request).0,
                "{kind} stream={stream}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{kind}: a retry-after of another provider was waited for"
            );
            let sent = p
                .anthropic
                .received()
                .into_iter()
                .find(|r| String::from_utf8_lossy(&r.body).contains(&text));
            assert_eq!(
                sent.map(|r| r.path),
                Some("/v1/messages".to_string()),
                "{kind}: translated for Anthropic"
            );
        }
    }
    // Both fail: the third provider (Gemini's format) answers.
    p.openai.push_reply(error(500));
    p.anthropic.push_reply(error(529));
    let r = gw.chat(&ask("chain", "third time lucky", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.header("x-gateway-provider"),
            r.header("x-gateway-attempts")
        ),
        (Some("gemini"), Some("3"))
    );
    // All three fail: the client gets the last provider's error, in the OpenAI shape.
    for fake in [&p.openai, &p.anthropic, &p.gemini] {
        fake.push_reply(error(500));
    }
    let r = gw.chat(&ask("chain", "nobody home", false));
    assert_eq!(r.status, 500);
    assert!(r.json()["error"]["message"].is_string());
}

#[test]
fn a_connect_failure_falls_back_too() {
    let p = providers();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = start(&p, chain_model(), |o| o.upstreams[0].1 = closed);
    let r = gw.chat(&ask("chain", "is anyone there", true));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-gateway-provider"), Some("anthropic"));
}

#[test]
fn a_failure_after_the_first_byte_ends_the_stream_with_an_error_event() {
    let p = providers();
    let gw = start(&p, chain_model(), |_| {});
    let r = gw.chat(&ask("chain", "FAIL STREAM", true));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"error\""), "{}", r.text());
    assert!(
        p.anthropic.received().is_empty(),
        "no fallback once the client has bytes"
    );
}

#[test]
fn cost_picks_the_cheaper_target_and_avoids_a_rate_limited_one() {
    let p = providers();
    let targets = |openai: f64, gemini: f64| {
        json!([
            {"provider": "openai", "model": "gpt-4o-mini", "price": {"input": openai, "output": openai}},
            {"provider": "gemini", "model": "gemini-2.5-flash", "price": {"input": gemini, "output": gemini}}])
    };
    let gw = start(
        &p,
        json!({
        "cheap-gemini": {"strategy": "cost", "targets": targets(1.0, 0.1)},
        "cheap-openai": {"strategy": "cost", "targets": targets(0.1, 1.0)}}),
        |_| {},
    );
    let r = gw.chat(&ask("cheap-gemini", "price a", false));
    assert_eq!(r.header("x-gateway-provider"), Some("gemini"));
    let r = gw.chat(&ask("cheap-openai", "price b", false));
    assert_eq!(
        r.header("x-gateway-provider"),
        Some("openai"),
        "other prices, other pick"
    );
    // OpenAI answers 429 (and the fallback serves); it is then avoided until its retry-after.
    let mut limited = Reply::json(
        429,
        &json!({"error": {"message": "slow down", "type": "requests"}}),
    );
    limited.headers.push(("retry-after".into(), "60".into()));
    p.openai.push_reply(limited);
    let r = gw.chat(&ask("cheap-openai", "price c", false));
    assert_eq!(r.header("x-gateway-provider"), Some("gemini"));
    let before = p.openai.received().len();
    let r = gw.chat(&ask("cheap-openai", "price d", false));
    assert_eq!(
        r.header("x-gateway-provider"),
        Some("gemini"),
        "openai is rate-limited for 60 s"
    );
    assert_eq!(p.openai.received().len(), before, "not even tried");
    let log = gw.access_log(4).pop().unwrap();
    assert_eq!(log["strategy"], "cost");
    assert!(
        log["reason"]
            .as_str()
            .unwrap()
            .contains("rate-limited skipped"),
        "{log}"
    );
}

#[test]
fn latency_follows_the_observed_response_times() {
    let p = providers();
    let gw = start(
        &p,
        json!({"fast": {"strategy": "latency", "exploration": 0, "targets": [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "anthropic", "model": "claude-haiku-4-5"}]}}),
        |o| o.concurrency = 1,
    );
    let slow = Duration::from_millis(400);
    // Unmeasured targets go first: openai (slow), then anthropic (fast).
    p.openai.push_reply(Reply::default_after(slow));
    let served: Vec<String> = (0..4)
        .map(|i| {
            gw.chat(&ask("fast", &format!("lat {i}"), false))
                .header("x-gateway-provider")
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(served, ["openai", "anthropic", "anthropic", "anthropic"]);
    // Anthropic slows down: its average climbs past openai's and the pick moves.
    let mut moved = None;
    for i in 0..10 {
        p.anthropic
            .push_reply(Reply::default_after(Duration::from_millis(900)));
        let r = gw.chat(&ask("fast", &format!("slow {i}"), false));
        if r.header("x-gateway-provider") == Some("openai") {
            moved = Some(i);
            break;
        }
    }
    assert!(moved.is_some(), "the pick never left the slowed provider");
}

#[test]
fn content_rules_route_by_what_the_request_holds() {
    let p = providers();
    let gw = start(
        &p,
        json!({"smart": {
        "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "tier": "small"},
            {"provider": "anthropic", "model": "claude-sonnet-4-5", "tier": "big"}],
        "rules": [
            {"when": {"images": true}, "tier": "big"},
            {"when": {"min_tokens": 500}, "tier": "big"},
            {"when": {"keywords": ["contract"]}, "tier": "big"},
            {"when": {"regex": "(?i)\\bINV-[0-9]{6}\\b"}, "tier": "big"}],
        "default_tier": "small"}}),
        |_| {},
    );
    let served = |body: Value| {
        gw.chat(&body)
            .header("x-gateway-provider")
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(served(ask("smart", "hello", false)), "openai");
    assert_eq!(
        served(ask("smart", "review this Contract please", false)),
        "anthropic"
    );
    assert_eq!(
        served(ask("smart", &"word ".repeat(600), false)),
        "anthropic"
    );
    assert_eq!(
        served(ask("smart", "what about inv-123456?", false)),
        "anthropic"
    );
    assert_eq!(served(ask("smart", "what about INV-12?", false)), "openai");
    let image = json!({"model": "smart", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    assert_eq!(served(image), "anthropic");
}

#[test]
fn the_classifier_decides_and_its_timeout_falls_back_to_the_default() {
    let p = providers();
    let classifier = FakeProvider::start(0).unwrap();
    let gw = start(
        &p,
        json!({"routed": {
        "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "tier": "default"},
            {"provider": "gemini", "model": "gemini-2.5-flash", "tier": "other"}],
        "classifier": {"cluster": "classifier", "path": "/v2/modelRouter/modelSelect", "timeout_ms": 300, "default_tier": "default"}}}),
        |o| o.extra_clusters = vec![("classifier".into(), classifier.port)],
    );
    classifier.push_reply(Reply::json(200, &json!({"providers": [{"provider": "gemini", "model": "gemini-2.5-flash"}], "session_id": "s"})));
    let r = gw.chat(&ask("routed", "classify me", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-gateway-provider"), Some("gemini"));
    let asked = classifier.received()[0].json();
    assert_eq!(
        asked["llm_providers"],
        json!([{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "gemini", "model": "gemini-2.5-flash"}])
    );
    assert_eq!(asked["messages"][0]["content"], "classify me");
    // Too slow (2 s against a 300 ms timeout): the default tier serves, and the request is not
    // lost.
    classifier.push_reply(Reply::default_after(Duration::from_secs(2)));
    let started = std::time::Instant::now();
    let r = gw.chat(&ask("routed", "classify me again", false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-gateway-provider"),
        Some("openai"),
        "the default tier"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the classifier was waited for"
    );
    let log = gw.access_log(2).pop().unwrap();
    assert!(
        log["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("classifier timed out"),
        "{log}"
    );
    // Unreachable: the same.
    drop(classifier);
}

#[test]
fn a_caller_can_pin_a_provider() {
    let p = providers();
    let gw = start(&p, chain_model(), |_| {});
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("x-gateway-provider", "gemini"),
        ],
        ask("chain", "pinned", false).to_string().as_bytes(),
    );
    assert_eq!(r.header("x-gateway-provider"), Some("gemini"));
    assert!(
        p.gemini
            .received()
            .iter()
            .all(|r| r.header("x-gateway-provider").is_none()),
        "the pin header stays in the gateway"
    );
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("x-gateway-provider", "cohere"),
        ],
        ask("chain", "pinned", false).to_string().as_bytes(),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_failing_endpoint_is_ejected_by_outlier_detection() {
    let p = providers();
    let broken = FakeProvider::start(0).unwrap();
    for _ in 0..100 {
        broken.push_reply(Reply::json(
            500,
            &json!({"error": {"message": "broken key", "type": "server_error"}}),
        ));
    }
    // Two endpoints for openai (say, two API keys' endpoints): one always fails.
    let gw = start(
        &p,
        json!({"gpt": {"provider": "openai", "model": "gpt-4o-mini"}}),
        |o| {
            o.upstreams.push(("openai".into(), broken.port));
        },
    );
    for i in 0..12 {
        let r = gw.chat(&ask("gpt", &format!("eject {i}"), false));
        assert_eq!(
            r.status,
            200,
            "the retry reaches the healthy endpoint: {}",
            r.text()
        );
    }
    let stats = gateway_tests::http::request(
        gw.admin_port,
        "GET",
        "/stats?filter=outlier_detection",
        &[],
        b"",
    )
    .unwrap()
    .text();
    let ejected = stats
        .lines()
        .find(|l| l.starts_with("cluster.openai.outlier_detection.ejections_enforced_total:"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(ejected >= 1, "no ejection: {stats}");
}

#[test]
fn several_api_keys_of_one_provider_are_balanced_by_envoy() {
    let p = providers();
    let second = FakeProvider::start(0).unwrap();
    let gw = start(
        &p,
        json!({"gpt": {"provider": "openai", "model": "gpt-4o-mini"}}),
        |o| {
            // Two endpoints of the openai cluster; each names the key its attempts use.
            o.upstreams.push(("openai".into(), second.port));
            if let Some(Value::Object(plugin)) = o.plugin_config.as_mut() {
                plugin["providers"]["openai"]["api_key_env"] =
                    json!(["OPENAI_KEY_A", "OPENAI_KEY_B"]);
            }
            o.env.push(("OPENAI_KEY_A".into(), "sk-key-a".into()));
            o.env.push(("OPENAI_KEY_B".into(), "sk-key-b".into()));
        },
    );
    for i in 0..10 {
        assert_eq!(
            gw.chat(&ask("gpt", &format!("keys {i}"), false)).status,
            200
        );
    }
    let (first, other) = (p.openai.received(), second.received());
    assert!(
        !first.is_empty() && !other.is_empty(),
        "both keys carried traffic: {} / {}",
        first.len(),
        other.len()
    );
    assert!(first
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sk-key-a")));
    assert!(other
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sk-key-b")));
}
