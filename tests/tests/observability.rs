//! Stats, access-log fields, cost and the body log, read back from the real Envoy after known
//! requests: the figures are computed here from the fake provider's usage and the published
//! prices, not taken from the gateway.

use std::time::{Duration, Instant};

use gateway_tests::check::sample;
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider, Reply};
use serde_json::{json, Value};

/// Polls the Prometheus page until `name{labels}` equals `want` (histograms appear only after
/// Envoy's next stats flush, every 5 s by default).
fn wait_for_sample(gw: &Envoy, name: &str, labels: &[(&str, &str)], want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = gw.prometheus();
        if sample(&text, name, labels) == Some(want) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn demo_gateway(models: Value) -> (FakeProvider, Envoy) {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": models})),
        concurrency: 2,
        ..Default::default()
    });
    (fake, gw)
}

fn request(model: &str, content: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]})
}

/// Micro-dollars, rounded to the nearest, of tokens at prices in dollars per million tokens.
fn micros(parts: &[(u64, f64)]) -> u64 {
    let exact: f64 = parts
        .iter()
        .map(|(tokens, dollars)| *tokens as f64 * dollars)
        .sum();
    exact.round() as u64
}

#[test]
fn stats_follow_the_opentelemetry_names_with_labels() {
    // $2 / $8 per million tokens, configured.
    let (_fake, gw) = demo_gateway(
        json!({"demo-4.1": {"provider": "demo", "model": "upstream-4.1", "price": {"input": 2, "output": 8}}}),
    );
    let requests = [
        request("demo-4.1", "one two three", false),
        request("demo-4.1", "four five", true),
        request("demo-4.1", "six", false),
    ];
    let (mut input, mut output) = (0, 0);
    for r in &requests {
        assert_eq!(gw.chat(r).status, 200);
        let (_, prompt, completion) = demo_answer(r);
        input += prompt;
        output += completion;
    }
    assert_eq!(
        gw.request("POST", "/v1/chat/completions", &[], b"{").status,
        400
    );

    let m = ("model", "demo-4.1");
    let p = ("provider", "demo");
    let chat = ("operation", "chat");
    let text = wait_for_sample(
        &gw,
        "gen_ai_client_token_usage_count",
        &[m, p, chat, ("token_type", "input")],
        3.0,
    );
    assert_eq!(
        sample(
            &text,
            "gw_requests",
            &[m, p, chat, ("status_class", "2xx"), ("error_type", "none")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "gw_requests",
            &[
                ("model", "none"),
                ("provider", "none"),
                chat,
                ("status_class", "4xx"),
                ("error_type", "invalid_json")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "gw_tokens", &[m, p, chat, ("token_type", "input")]),
        Some(input as f64)
    );
    assert_eq!(
        sample(&text, "gw_tokens", &[m, p, chat, ("token_type", "output")]),
        Some(output as f64)
    );
    assert_eq!(
        sample(
            &text,
            "gen_ai_client_token_usage_count",
            &[m, p, chat, ("token_type", "output")]
        ),
        Some(3.0)
    );
    // Envoy's histogram sums are approximate (log-linear buckets): within 10 %.
    let approx = sample(
        &text,
        "gen_ai_client_token_usage_sum",
        &[m, p, chat, ("token_type", "input")],
    )
    .unwrap_or(0.0);
    assert!(
        (approx - input as f64).abs() <= input as f64 * 0.1,
        "{approx} vs {input}"
    );
    assert_eq!(
        sample(
            &text,
            "gen_ai_client_operation_duration_milliseconds_count",
            &[m, p, chat, ("status_class", "2xx")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "gen_ai_server_time_to_first_token_milliseconds_count",
            &[m, p]
        ),
        Some(1.0),
        "streams only"
    );
    assert_eq!(
        sample(
            &text,
            "gen_ai_server_time_per_output_token_microseconds_count",
            &[m, p]
        ),
        Some(1.0)
    );
    let cost = micros(&[(input, 2.0), (output, 8.0)]);
    assert_eq!(
        sample(
            &text,
            "gw_cost_microdollars",
            &[m, p, ("key_id", "none"), ("team", "none")]
        ),
        Some(cost as f64)
    );
}

#[test]
fn access_log_has_one_json_line_per_request_with_the_gateway_fields() {
    let (_fake, gw) = demo_gateway(
        json!({"demo-4.1": {"provider": "demo", "model": "upstream-4.1", "price": {"input": 3, "output": 15}}}),
    );
    let chat = request("demo-4.1", "hello log", true);
    assert_eq!(gw.chat(&chat).status, 200);
    let missing = br#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#;
    assert_eq!(
        gw.request("POST", "/v1/chat/completions", &[], missing)
            .status,
        404
    );
    let lines = gw.access_log(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ok = &lines[0];
    let (_, prompt, completion) = demo_answer(&chat);
    let cost = micros(&[(prompt, 3.0), (completion, 15.0)]);
    assert_eq!(ok["model"], "demo-4.1");
    assert_eq!(ok["operation"], "chat");
    assert_eq!(ok["provider"], "demo");
    assert_eq!(ok["upstream_model"], "upstream-4.1");
    assert_eq!(ok["stream"], "true");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["prompt_tokens"], prompt.to_string());
    assert_eq!(ok["completion_tokens"], completion.to_string());
    assert_eq!(ok["total_tokens"], (prompt + completion).to_string());
    assert_eq!(ok["cost_microdollars"], cost.to_string());
    assert_eq!(ok["cost_usd"], format!("0.{cost:06}"));
    assert!(
        ok["duration_ms"]
            .as_str()
            .and_then(|d| d.parse::<u64>().ok())
            .is_some(),
        "{ok}"
    );
    assert!(
        ok["ttft_ms"]
            .as_str()
            .and_then(|d| d.parse::<u64>().ok())
            .is_some(),
        "{ok}"
    );
    let refused = &lines[1];
    assert_eq!(refused["status"], 404);
    assert_eq!(refused["error"], "model_not_found");
    assert_eq!(
        refused["provider"],
        Value::Null,
        "a refused request names no provider"
    );
    assert_eq!(refused["cost_usd"], Value::Null);
}

/// Each provider format reports cached tokens its own way; the cost must count them once, at
/// the cache price, to the micro-dollar. Prices: the built-in table's rows for these models.
#[test]
fn cost_is_exact_for_every_provider_format_with_cached_tokens() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options::every_provider_family(fake.port));
    let openai_usage = json!({"prompt_tokens": 10000, "completion_tokens": 100, "total_tokens": 10100,
        "prompt_tokens_details": {"cached_tokens": 8000}});
    let openai_answer = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": openai_usage});
    // (model, native answer, expected micro-dollars from the published prices)
    let cases = [
        // gpt-4o-mini $0.15 input, $0.075 cached, $0.60 output
        (
            "gpt-4o-mini",
            openai_answer.clone(),
            micros(&[(2000, 0.15), (8000, 0.075), (100, 0.60)]),
        ),
        // gpt-4o (the Azure deployment) $2.50, $1.25 cached, $10
        (
            "azure-gpt-4o",
            openai_answer,
            micros(&[(2000, 2.50), (8000, 1.25), (100, 10.0)]),
        ),
        // claude-haiku-4-5 $1 input, $0.10 cache read, $1.25 cache write, $5 output
        (
            "claude-haiku-4-5",
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 100, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 1000, "output_tokens": 50}}),
            micros(&[(100, 1.0), (2000, 0.10), (1000, 1.25), (50, 5.0)]),
        ),
        // gemini-2.5-flash $0.30 input, $0.03 cached, $2.50 output (thoughts billed as output)
        (
            "gemini-2.5-flash",
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10000, "cachedContentTokenCount": 8000, "candidatesTokenCount": 100,
                "thoughtsTokenCount": 50, "totalTokenCount": 10150}, "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
            micros(&[(2000, 0.30), (8000, 0.03), (150, 2.50)]),
        ),
        // nova-lite $0.06 input, $0.015 cache read, $0.24 output
        (
            "bedrock-nova-lite",
            json!({"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 1000, "outputTokens": 200, "totalTokens": 5200, "cacheReadInputTokens": 4000, "cacheWriteInputTokens": 0},
            "metrics": {"latencyMs": 1}}),
            micros(&[(1000, 0.06), (4000, 0.015), (200, 0.24)]),
        ),
        // command-a $2.50 input, $10 output
        (
            "command-a",
            json!({"id": "c1", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            "usage": {"billed_units": {"input_tokens": 1000, "output_tokens": 100}, "tokens": {"input_tokens": 1000, "output_tokens": 100}}}),
            micros(&[(1000, 2.50), (100, 10.0)]),
        ),
    ];
    for (i, (model, answer, cost)) in cases.iter().enumerate() {
        fake.push_reply(Reply::json(200, answer));
        let r = gw.chat(&request(model, "what does it cost", false));
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let log = &gw.access_log(i + 1)[i];
        assert_eq!(log["model"], *model);
        assert_eq!(log["cost_microdollars"], cost.to_string(), "{model}: {log}");
    }
    let text = gw.prometheus();
    for (model, _, cost) in &cases {
        let provider = gw
            .access_log(cases.len())
            .into_iter()
            .find(|l| l["model"] == *model)
            .map(|l| l["provider"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        let got = sample(
            &text,
            "gw_cost_microdollars",
            &[
                ("model", model),
                ("provider", &provider),
                ("key_id", "none"),
                ("team", "none"),
            ],
        );
        assert_eq!(got, Some(*cost as f64), "{model}");
    }
}

#[test]
fn bodies_are_logged_only_for_models_that_ask_and_streams_are_reassembled() {
    let (_fake, gw) = demo_gateway(json!({
        "logged": {"provider": "demo", "log_bodies": true},
        "quiet": {"provider": "demo"}}));
    let key = [
        ("authorization", "Bearer sk-client-must-not-be-logged"),
        ("content-type", "application/json"),
    ];
    for (model, stream) in [("logged", false), ("quiet", false), ("logged", true)] {
        let body = request(model, &format!("log me {stream}"), stream);
        assert_eq!(
            gw.request(
                "POST",
                "/v1/chat/completions",
                &key,
                body.to_string().as_bytes()
            )
            .status,
            200
        );
    }
    let lines = gw.body_log(2);
    assert_eq!(
        lines.len(),
        2,
        "only the model with log_bodies is logged: {lines:?}"
    );
    let plain = &lines[0];
    assert_eq!(plain["model"], "logged");
    let sent: Value = serde_json::from_str(plain["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, request("logged", "log me false", false));
    let answered: Value = serde_json::from_str(plain["response_body"].as_str().unwrap()).unwrap();
    let (answer, _, _) = demo_answer(&request("logged", "log me false", false));
    assert_eq!(answered["choices"][0]["message"]["content"], answer);
    let streamed: Value =
        serde_json::from_str(lines[1]["response_body"].as_str().unwrap()).unwrap();
    let (answer, _, _) = demo_answer(&request("logged", "log me true", true));
    assert_eq!(
        streamed,
        json!({"role": "assistant", "content": answer, "finish_reason": "stop"}),
        "the stream, reassembled"
    );
    let everything = format!("{lines:?}{:?}", gw.access_log(3));
    assert!(
        !everything.contains("sk-client-must-not-be-logged"),
        "a key reached a log"
    );
}

/// Every metric the shipped Grafana dashboard queries is one the gateway emits.
#[test]
fn the_grafana_dashboard_uses_only_metrics_the_gateway_emits() {
    let path = gateway_tests::envoy::repo_root().join("k8s/grafana/ai-gateway.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut used = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if token.starts_with("gw_") || token.starts_with("gen_ai_") {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .fold(token, |t, s| t.strip_suffix(s).unwrap_or(t));
                    used.insert(base.to_string());
                }
            }
        }
    }
    assert!(
        used.len() >= 8,
        "the dashboard queries too little: {used:?}"
    );

    // Traffic that makes every series exist: success, stream, refusal, 429, fallback, no price.
    let demo = FakeProvider::start(0).unwrap();
    let second = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![
            ("provider_demo".into(), demo.port),
            ("openai".into(), second.port),
        ],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}, "backup": {"type": "openai", "cluster": "openai"}},
            "models": {
                "priced": {"provider": "demo", "price": {"input": 1, "output": 2}},
                "unpriced": {"provider": "demo"},
                "chain": {"targets": [{"provider": "demo", "model": "a", "weight": 1}, {"provider": "backup", "model": "b", "weight": 0}]}}})),
        ..Default::default()
    });
    assert_eq!(gw.chat(&request("priced", "one two", false)).status, 200);
    assert_eq!(
        gw.chat(&request("priced", "three four five", true)).status,
        200
    );
    assert_eq!(gw.chat(&request("unpriced", "six", false)).status, 200);
    assert_eq!(
        gw.request("POST", "/v1/chat/completions", &[], b"{").status,
        400
    );
    let limited = Reply::json(
        429,
        &json!({"error": {"message": "slow", "type": "requests"}}),
    );
    demo.push_reply(limited.clone());
    demo.push_reply(limited);
    assert_eq!(gw.chat(&request("priced", "seven", false)).status, 429);
    demo.push_reply(Reply::json(
        500,
        &json!({"error": {"message": "down", "type": "server_error"}}),
    ));
    assert_eq!(gw.chat(&request("chain", "eight", false)).status, 200);

    let text = wait_for_sample(
        &gw,
        "gen_ai_server_time_to_first_token_milliseconds_count",
        &[("model", "priced"), ("provider", "demo")],
        1.0,
    );
    let emitted: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| !emitted.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the gateway does not emit: {missing:?}"
    );
}
