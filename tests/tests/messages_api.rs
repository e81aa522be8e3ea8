//! The Anthropic Messages API inbound (`POST /v1/messages`, `/v1/messages/count_tokens`)
//! through the real Envoy: the official Anthropic Python SDK against the fake provider of every
//! wire format (passed through to Anthropic, translated for the others), errors before and
//! inside streams in Anthropic's shape, fallback from Anthropic to an OpenAI-format provider,
//! gateway keys and limits, the access log and stats (operation `messages`). Claude Code itself
//! runs in `claude_code.rs`.

use gateway_tests::check::run_python_client;
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider, Reply};
use gateway_tests::messages_api::{plugin, post, start, KEY, LIMITED};
use serde_json::{json, Value};

fn run_sdk(port: u16, models: &[&str]) -> Value {
    let base = format!("http://127.0.0.1:{port}");
    run_python_client("anthropic_client.py", &[base, KEY.into(), models.join(",")])
}

/// The OpenAI request the fake answers alike in every format (tests/src/fake/README.md).
fn openai_request(system: Option<&str>, users: &[&str]) -> Value {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for (i, text) in users.iter().enumerate() {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": text}));
    }
    json!({"messages": messages})
}

fn check_model(seen: &Value, model: &str) {
    let s = &seen[model];
    assert!(s["crash"].is_null(), "{model}: {s}");
    let hello = format!("Hello from the SDK to {model}");
    let (answer, prompt, completion) = demo_answer(&openai_request(None, &[&hello]));
    let usage = json!({"input_tokens": prompt, "output_tokens": completion});
    assert_eq!(
        s["plain"],
        json!({"text": answer, "usage": usage, "stop_reason": "end_turn", "type": "message",
               "role": "assistant", "model": s["plain"]["model"]}),
        "{model}: {s}"
    );
    let (answer_s, prompt_s, _) = demo_answer(&openai_request(Some("Be brief."), &[&hello]));
    assert_eq!(s["system"]["text"], answer_s, "{model}");
    assert_eq!(s["system"]["usage"]["input_tokens"], prompt_s, "{model}");
    let turns = ["first question", "first answer", "second question"];
    let (answer_m, prompt_m, _) = demo_answer(&openai_request(None, &turns));
    assert_eq!(s["multi_turn"]["text"], answer_m, "{model}");
    assert_eq!(
        s["multi_turn"]["usage"]["input_tokens"], prompt_m,
        "{model}"
    );
    let stream = &s["stream"];
    assert_eq!(stream["text"], answer, "{model}: {stream}");
    assert_eq!(stream["final_text"], answer, "{model}");
    assert_eq!(stream["usage"], usage, "{model}");
    assert_eq!(stream["stop_reason"], "end_turn", "{model}");
    for kind in [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ] {
        assert!(
            stream["events"].as_array().unwrap().contains(&json!(kind)),
            "{model}: no {kind} in {stream}"
        );
    }
    let call = json!([{"name": "lookup", "input": {"text": hello}}]);
    assert_eq!(
        s["tools"],
        json!({"stop_reason": "tool_use", "uses": call}),
        "{model}"
    );
    assert_eq!(
        s["tool_result"],
        json!({"text": "Tool said: 42", "stop_reason": "end_turn"}),
        "{model}"
    );
    assert_eq!(s["stream_tools"]["tool_uses"], call, "{model}");
    assert_eq!(s["stream_tools"]["stop_reason"], "tool_use", "{model}");
    assert_eq!(
        s["stream_tool_result"]["final_text"], "Tool said: 42",
        "{model}"
    );
    if model.starts_with("claude") {
        // Anthropic counted (the fake counts as it reports input tokens).
        assert_eq!(s["count_tokens"], prompt, "{model}");
    } else {
        assert!(s["count_tokens"].as_u64().unwrap() > 0, "{model}: {s}");
    }
    assert_eq!(
        s["rate_limited"],
        json!({"raised": "RateLimitError", "status": 429, "type": "rate_limit_error", "shape": "error"}),
        "{model}"
    );
    assert_eq!(
        s["bad_request"],
        json!({"raised": "BadRequestError", "status": 400, "type": "invalid_request_error", "shape": "error"}),
        "{model}"
    );
    // The SDK raises on an `error` event inside a 200 stream.
    assert_eq!(
        s["stream_error"]["raised"], "APIStatusError",
        "{model}: {}",
        s["stream_error"]
    );
}

#[test]
fn the_official_anthropic_sdk_works_with_every_provider_family() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let models = [
        "claude-haiku-4-5",
        "gpt-4o-mini",
        "azure-gpt-4o",
        "gemini-2.5-flash",
        "bedrock-nova-lite",
        "command-a",
    ];
    let seen = run_sdk(gw.port, &models);
    for model in models {
        check_model(&seen, model);
    }
    assert_eq!(
        seen["not_found"],
        json!({"raised": "NotFoundError", "status": 404, "type": "not_found_error", "shape": "error"})
    );
    assert_eq!(
        seen["bad_key"],
        json!({"raised": "AuthenticationError", "status": 401, "type": "authentication_error", "shape": "error"})
    );
    // To Anthropic the client's body went as sent, model mapped; to the others translated.
    let received = fake.received();
    let to_anthropic: Vec<Value> = received
        .iter()
        .filter(|r| r.path == "/v1/messages")
        .map(|r| r.json())
        .collect();
    assert!(to_anthropic
        .iter()
        .all(|b| b["model"] == "claude-haiku-4-5-20251001"));
    let with_tools = to_anthropic
        .iter()
        .find(|b| b["tools"].is_array())
        .expect("a tools request reached Anthropic");
    assert_eq!(
        with_tools["tools"][0]["input_schema"]["required"],
        json!(["text"])
    );
    assert!(received.iter().any(|r| r.path == "/v1/chat/completions"
        && r.json()["messages"][0]["content"] == "Hello from the SDK to gpt-4o-mini"));
    assert!(
        !format!("{received:?}").contains(KEY),
        "the gateway key reached a provider"
    );
}

#[test]
fn the_anthropic_provider_gets_every_field_and_the_beta_header() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let body = json!({
        "model": "claude-haiku-4-5", "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-42"},
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]
    });
    let r = post(
        &gw,
        "/v1/messages",
        &[("anthropic-beta", "prompt-caching-2024-07-31")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
    let sent = fake.received().pop().unwrap();
    let mut expected = body.clone();
    expected["model"] = json!("claude-haiku-4-5-20251001");
    assert_eq!(sent.json(), expected);
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(sent.header("x-api-key"), Some("test-anthropic-key"));
    // The same request cannot go to an OpenAI-format provider: 400 in Anthropic's shape.
    let mut to_openai = body.clone();
    to_openai["model"] = json!("gpt-4o-mini");
    let before = fake.received().len();
    let r = post(&gw, "/v1/messages", &[], &to_openai);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search"));
    assert_eq!(
        fake.received().len(),
        before,
        "nothing refused reaches a provider"
    );
}

#[test]
fn refusals_errors_and_limits_take_anthropic_shapes() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let cases = [
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}),
            400,
            "invalid_request_error",
            "messages[0].role",
        ),
        (
            json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            404,
            "not_found_error",
            "nope",
        ),
    ];
    for (body, status, kind, mentions) in cases {
        let r = post(&gw, "/v1/messages", &[], &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let e = r.json();
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["error"]["type"], kind, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(mentions),
            "{e}"
        );
    }
    assert!(
        fake.received().is_empty(),
        "a refused request reached a provider"
    );
    // No key, a wrong key (Bearer works as well as x-api-key).
    let hi = json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    let r = gw.request(
        "POST",
        "/v1/messages",
        &[("content-type", "application/json")],
        hi.to_string().as_bytes(),
    );
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (401, json!("authentication_error"))
    );
    let r = gw.request(
        "POST",
        "/v1/messages",
        &[("authorization", &format!("Bearer {KEY}"))],
        hi.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A request limit: the second request of the minute is refused with Anthropic's 429.
    let limited = |gw: &Envoy| {
        gw.request(
            "POST",
            "/v1/messages",
            &[("x-api-key", LIMITED)],
            hi.to_string().as_bytes(),
        )
    };
    let first = limited(&gw);
    let second = limited(&gw);
    if first.status == 200 {
        assert_eq!(second.status, 429, "{}", second.text());
        assert_eq!(second.json()["error"]["type"], "rate_limit_error");
    }
    // A provider error (a 500 from OpenAI's format) before the stream: Anthropic's api_error.
    fake.push_reply(Reply::json(
        500,
        &json!({"error": {"message": "upstream broke", "type": "server_error"}}),
    ));
    fake.push_reply(Reply::json(
        500,
        &json!({"error": {"message": "upstream broke", "type": "server_error"}}),
    ));
    let mut streamed = hi.clone();
    streamed["stream"] = json!(true);
    let r = post(&gw, "/v1/messages", &[], &streamed);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "api_error", "message": "upstream broke"}})
    );
}

#[test]
fn fallback_from_anthropic_to_openai_still_answers_in_messages_events() {
    let fake_anthropic = FakeProvider::start(0).unwrap();
    let fake_openai = FakeProvider::start(0).unwrap();
    let mut options = Options {
        plugin_config: Some(plugin()),
        ..Options::every_provider_family(fake_openai.port)
    };
    for (cluster, port) in options.upstreams.iter_mut() {
        if cluster == "anthropic" {
            *port = fake_anthropic.port;
        }
    }
    let gw = Envoy::start(options);
    for stream in [false, true] {
        fake_anthropic.push_reply(Reply::json(529, &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})));
        let text = format!("fall back please {stream}");
        let body = json!({"model": "claude-then-gpt", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": text}]});
        let r = post(&gw, "/v1/messages", &[], &body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-gateway-provider"), Some("openai"));
        assert_eq!(r.header("x-gateway-attempts"), Some("2"));
        let (answer, _, _) = demo_answer(&openai_request(None, &[&text]));
        if stream {
            let events = r.text();
            assert!(events.starts_with("event: message_start\n"), "{events}");
            assert!(events.contains("event: message_stop\n"), "{events}");
            let text: String = events
                .split("\n\n")
                .filter_map(|b| b.lines().nth(1)?.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|v| v["delta"]["text"].as_str().map(String::from))
                .collect();
            assert_eq!(text, answer);
        } else {
            assert_eq!(r.json()["content"][0]["text"], answer, "{}", r.text());
        }
        // Anthropic got the client's own body, OpenAI the translation.
        let to_anthropic = fake_anthropic.received().pop().unwrap();
        assert_eq!(to_anthropic.json()["messages"][0]["content"], text);
        let to_openai = fake_openai.received().pop().unwrap();
        assert_eq!(to_openai.path, "/v1/chat/completions");
        assert_eq!(to_openai.json()["messages"][0]["content"], text);
    }
    // The access log and stats name the operation `messages`.
    let log = gw.access_log(2);
    assert!(log.iter().all(|l| l["operation"] == "messages"), "{log:?}");
    assert_eq!(log[1]["provider"], "openai");
    let stats = gw.prometheus();
    assert!(
        stats
            .lines()
            .any(|l| l.contains("operation=\"messages\"") && !l.starts_with('#')),
        "no stat with operation=messages:\n{stats}"
    );
}

#[test]
fn count_tokens_goes_to_anthropic_or_is_estimated_locally() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let words = "count these words please, all of them";
    // Not an Anthropic model: the gateway's estimate (about four characters a token).
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": words}]});
    let r = post(&gw, "/v1/messages/count_tokens", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let n = r.json()["input_tokens"].as_u64().unwrap();
    assert!((5..=20).contains(&n), "{n}");
    assert!(fake.received().is_empty());
    // An Anthropic model: Anthropic counts (the fake: words), the body as sent, model mapped.
    let body = json!({"model": "claude-haiku-4-5", "system": "Be brief.",
        "messages": [{"role": "user", "content": words}]});
    let r = post(&gw, "/v1/messages/count_tokens", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"input_tokens": 2 + 7}));
    let sent = fake.received().pop().unwrap();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    let mut expected = body.clone();
    expected["model"] = json!("claude-haiku-4-5-20251001");
    assert_eq!(sent.json(), expected);
}

#[test]
fn a_broken_stream_ends_with_an_anthropic_error_event() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    // Anthropic's stream (the streaming guide's events) stops before message_stop: passed
    // through, then ended by the gateway with an error event.
    let start_event = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
    let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n";
    // OpenAI's chunks stop before [DONE]: translated, then ended the same way.
    let chunk = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
    for (model, events) in [
        (
            "claude-haiku-4-5",
            vec![start_event.to_string(), delta.to_string()],
        ),
        ("gpt-4o-mini", vec![chunk.to_string()]),
    ] {
        fake.push_reply(Reply::sse(&events, std::time::Duration::ZERO));
        let body = json!({"model": model, "max_tokens": 20, "stream": true,
            "messages": [{"role": "user", "content": "hello"}]});
        let r = post(&gw, "/v1/messages", &[], &body);
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(text.contains("\"text\":\"Hel\""), "{model}: {text}");
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        assert!(last.starts_with("event: error\ndata: "), "{model}: {text}");
        let error: Value =
            serde_json::from_str(last.lines().nth(1).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(error["type"], "error", "{model}");
        assert_eq!(error["error"]["type"], "api_error", "{model}");
        assert!(!text.contains("message_stop"), "{model}: {text}");
    }
    let log = gw.access_log(2);
    assert!(
        log.iter().all(|l| l["error"] == "upstream_stream_reset"),
        "{log:?}"
    );
}
