//! Virtual keys, limits and budgets through the real Envoy (`--concurrency 2`, so two worker
//! VMs share the counters): 401/403 in the OpenAI shape, exact limits and budgets under
//! parallel requests, and the global limit through a real RateLimitService (limitador on
//! Redis) shared by two Envoys, with its failure modes.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_tests::check::sha256_hex;
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{FakeProvider, Reply};
use gateway_tests::ratelimit::{LimitsFile, RateLimitServer, RedisServer};
use serde_json::{json, Value};

const ALICE: &str = "gw-alice-8c1f0b";
const BOB: &str = "gw-bob-77aa21";
const OLD: &str = "gw-old-000000";

fn plugin(keys: Value, extra: Value) -> Value {
    let mut config = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {
            "chat": {"provider": "demo", "price": {"input": 0, "output": 1}},
            "other": {"provider": "demo"}},
        "keys": keys});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

fn start(fake: &FakeProvider, plugin: Value, concurrency: u32) -> Envoy {
    Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(plugin),
        concurrency,
        ..Default::default()
    })
}

fn chat(
    gw: &Envoy,
    key: Option<&str>,
    model: &str,
    max_tokens: u64,
) -> gateway_tests::http::Response {
    let body = json!({"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]});
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    gw.request(
        "POST",
        "/v1/chat/completions",
        &headers,
        body.to_string().as_bytes(),
    )
}

/// The filter counts limits in fixed UTC windows aligned to the Unix epoch (requests and tokens
/// per minute, budgets per day: `Window::index` in filter/src/quota.rs). A burst that straddles
/// a window's end is counted in two windows and admits more than the limit, so an exact test
/// first waits for a fresh window when fewer than `needed` remain of the current one (at most
/// `needed`; usually no wait at all).
fn within_one_window(window_secs: u64, needed: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let into_window = Duration::new(
        since_epoch.as_secs() % window_secs,
        since_epoch.subsec_nanos(),
    );
    let left = Duration::from_secs(window_secs) - into_window;
    if left < needed {
        eprintln!("waiting {left:?} for a fresh {window_secs} s window");
        // A little past the boundary: the filter reads whole seconds of the same clock.
        thread::sleep(left + Duration::from_millis(50));
    }
}

/// Sends `n` requests at once (threads) and returns their statuses and headers.
fn parallel(
    gw: &Arc<Envoy>,
    n: usize,
    key: &'static str,
    max_tokens: u64,
) -> Vec<gateway_tests::http::Response> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let gw = Arc::clone(gw);
            thread::spawn(move || chat(&gw, Some(key), "chat", max_tokens))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn keys_are_checked_and_never_logged() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(
        &fake,
        plugin(
            json!({
        "alice": {"sha256": sha256_hex(ALICE), "models": ["chat"]},
        "old": {"sha256": sha256_hex(OLD), "revoked": true}}),
            json!({}),
        ),
        1,
    );
    let cases: &[(Option<&str>, &str, u16, &str)] = &[
        (None, "chat", 401, "missing_api_key"),
        (Some("gw-nobody"), "chat", 401, "invalid_api_key"),
        (Some(OLD), "chat", 401, "revoked_api_key"),
        (Some(ALICE), "other", 403, "model_not_allowed"),
    ];
    for (key, model, status, code) in cases {
        let r = chat(&gw, *key, model, 10);
        assert_eq!(r.status, *status, "{key:?} {model}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], *code);
        if *status == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
    assert!(
        fake.received().is_empty(),
        "a refused request reached the provider"
    );
    let r = chat(&gw, Some(ALICE), "chat", 10);
    assert_eq!(r.status, 200, "{}", r.text());
    // x-api-key works too; /v1/models needs a key as well.
    let r = gw.request("GET", "/v1/models", &[("x-api-key", ALICE)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(gw.request("GET", "/v1/models", &[], b"").status, 401);
    let received = format!("{:?}", fake.received());
    assert!(
        !received.contains(ALICE),
        "the gateway key reached the provider"
    );
    // Seven requests: the secrets are looked for in every line, the last one included.
    let log = gw.access_log(7);
    assert_eq!(log[4]["key_id"], "alice", "{:?}", log[4]);
    assert_eq!(log[2]["key_id"], "old", "a revoked key is named by its id");
    let everything = format!("{log:?}{}", gw.log());
    for secret in [ALICE, OLD] {
        assert!(!everything.contains(secret), "a key reached a log");
    }
}

#[test]
fn a_request_limit_holds_exactly_across_workers() {
    let fake = FakeProvider::start(0).unwrap();
    let limit = 20;
    let gw = Arc::new(start(
        &fake,
        plugin(
            json!({
        "alice": {"sha256": sha256_hex(ALICE), "limits": {"requests_per_minute": limit}}}),
            json!({}),
        ),
        2,
    ));
    // The burst took 30 ms here (Envoy already started); 5 s leaves room for a loaded machine.
    within_one_window(60, Duration::from_secs(5));
    let results = parallel(&gw, 60, ALICE, 10);
    let ok = results.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        limit as usize,
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let refused: Vec<_> = results.iter().filter(|r| r.status == 429).collect();
    assert_eq!(refused.len(), 60 - limit as usize);
    let r = refused[0];
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert!(r
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|s| (1..=60).contains(&s)));
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("20"));
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("0"));
    let admitted = results.iter().find(|r| r.status == 200).unwrap();
    assert_eq!(admitted.header("x-ratelimit-limit-requests"), Some("20"));
    assert_eq!(fake.received().len(), limit as usize);
}

#[test]
fn a_cost_budget_holds_exactly_under_concurrency() {
    let fake = FakeProvider::start(0).unwrap();
    // Output $1 per million tokens, input free: a request reserving 100 output tokens is
    // estimated at 100 micro-dollars. A budget of $0.001 admits exactly 10 of them while none
    // has finished (the provider answers after a second, so every decision comes first).
    for _ in 0..40 {
        fake.push_reply(Reply::default_after(Duration::from_millis(1500)));
    }
    let gw = Arc::new(start(
        &fake,
        plugin(
            json!({
        "bob": {"sha256": sha256_hex(BOB), "budgets": {"usd_per_day": 0.001}}}),
            json!({}),
        ),
        2,
    ));
    // From the burst to the last request: 3 s here; waiting near midnight costs nothing.
    within_one_window(86_400, Duration::from_secs(30));
    let results = parallel(&gw, 30, BOB, 100);
    let ok = results.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        10,
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let refused = results.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(refused.json()["error"]["code"], "insufficient_quota");
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bob"));
    // Settled with the real usage (~10 output tokens each), most of the budget comes back.
    let r = chat(&gw, Some(BOB), "chat", 100);
    assert_eq!(
        r.status,
        200,
        "the unused budget was returned: {}",
        r.text()
    );
    assert!(
        gw.log().contains("crossed"),
        "the budget crossings were logged"
    );
}

/// The service's limits: a daily budget per key, in cost units.
fn budget(units: u64) -> LimitsFile {
    LimitsFile::parse(&format!(
        "domain: ai-gateway\nlimits:\n  - {{name: key-budget, when: {{unit: cost}}, per: key, max: {units}, seconds: 86400}}\n"
    ))
    .unwrap()
}

/// One budget for two Envoys: each request's estimated cost (100 output tokens at $1 per
/// million = 100 micro-dollars) is one $0.0001 cost unit; the service allows 12 units a day.
#[test]
fn two_envoys_share_one_budget_through_the_rate_limit_service() {
    let redis = RedisServer::start();
    let first = RateLimitServer::start(budget(12), &redis.url(), 0).unwrap();
    let second = RateLimitServer::start(budget(12), &redis.url(), 0).unwrap();
    let fake = FakeProvider::start(0).unwrap();
    let service = json!({"rate_limit_service": {"cluster": "ratelimit", "domain": "ai-gateway", "timeout_ms": 1000,
        "failure_mode": "deny", "units": ["cost"], "cost_unit_usd": 0.0001}});
    let keys = json!({"alice": {"sha256": sha256_hex(ALICE)}});
    let envoy = |port: u16| {
        Arc::new(Envoy::start(Options {
            upstreams: vec![("provider_demo".into(), fake.port)],
            plugin_config: Some(plugin(keys.clone(), service.clone())),
            grpc_clusters: vec![("ratelimit".into(), port)],
            concurrency: 2,
            ..Default::default()
        }))
    };
    let (a, b) = (envoy(first.port), envoy(second.port));
    let ta = {
        let a = Arc::clone(&a);
        thread::spawn(move || parallel(&a, 15, ALICE, 100))
    };
    let tb = {
        let b = Arc::clone(&b);
        thread::spawn(move || parallel(&b, 15, ALICE, 100))
    };
    let results: Vec<_> = ta
        .join()
        .unwrap()
        .into_iter()
        .chain(tb.join().unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        12,
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        first.calls() > 0 && second.calls() > 0,
        "both Envoys asked the service"
    );
    let refused = results.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(refused.json()["error"]["type"], "insufficient_quota");
    assert!(refused.header("retry-after").is_some());
}

#[test]
fn when_the_service_is_down_the_failure_mode_decides() {
    let fake = FakeProvider::start(0).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (mode, status) in [("allow", 200), ("deny", 503)] {
        let service = json!({"rate_limit_service": {"cluster": "ratelimit", "domain": "ai-gateway", "timeout_ms": 300,
            "failure_mode": mode, "units": ["requests"]}});
        let gw = Envoy::start(Options {
            upstreams: vec![("provider_demo".into(), fake.port)],
            plugin_config: Some(plugin(
                json!({"alice": {"sha256": sha256_hex(ALICE)}}),
                service,
            )),
            grpc_clusters: vec![("ratelimit".into(), closed)],
            ..Default::default()
        });
        let r = chat(&gw, Some(ALICE), "chat", 10);
        assert_eq!(r.status, status, "{mode}: {}", r.text());
        if status == 503 {
            assert_eq!(r.json()["error"]["code"], "rate_limit_service_unavailable");
        }
        let stats = gw.prometheus();
        let outcome = if mode == "allow" { "allowed" } else { "denied" };
        assert!(
            stats
                .lines()
                .any(|l| l.starts_with("gw_ratelimit_service_failures{")
                    && l.contains(&format!("outcome=\"{outcome}\""))
                    && l.ends_with(" 1")),
            "{mode}: {stats}"
        );
    }
}

#[test]
fn a_key_can_turn_the_body_log_on_for_its_own_requests() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(
        &fake,
        plugin(
            json!({
        "alice": {"sha256": sha256_hex(ALICE)},
        "bob": {"sha256": sha256_hex(BOB), "log_bodies": true}}),
            json!({}),
        ),
        1,
    );
    assert_eq!(chat(&gw, Some(ALICE), "other", 10).status, 200);
    assert_eq!(chat(&gw, Some(BOB), "other", 10).status, 200);
    let lines = gw.body_log(1);
    assert_eq!(lines.len(), 1, "only bob's request: {lines:?}");
    assert!(lines[0]["request_body"]
        .as_str()
        .unwrap()
        .contains("\"hi\""));
    assert!(
        !format!("{lines:?}").contains(BOB),
        "the key itself is not logged"
    );
}
