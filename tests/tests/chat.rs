//! Chat completions through the real Envoy and the real .wasm, against the fake provider:
//! what the client gets, and what the provider receives.

use std::time::Duration;

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, stream_events, FakeProvider, Reply};
use serde_json::{json, Value};

const PROVIDER_KEY: &str = "sk-provider-7f3a9c";
const CLIENT_KEY: &str = "client-secret-key";

/// One fake provider behind the gateway: client model `demo-chat` is `demo-model-v2` upstream.
fn gateway() -> (FakeProvider, Envoy) {
    let fake = FakeProvider::start(0).expect("fake provider");
    let envoy = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo", "api_key_env": "DEMO_PROVIDER_KEY"}},
            "models": {"demo-chat": {"provider": "demo", "model": "demo-model-v2"}}
        })),
        env: vec![("DEMO_PROVIDER_KEY".into(), PROVIDER_KEY.into())],
        concurrency: 1,
        ..Default::default()
    });
    (fake, envoy)
}

fn hello(stream: bool) -> Value {
    json!({"model": "demo-chat", "stream": stream, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is Envoy?"}]})
}

/// The content of an OpenAI SSE stream, and its events' JSON.
fn parse_stream(text: &str) -> (String, Vec<Value>, bool) {
    let mut content = String::new();
    let mut events = Vec::new();
    let mut done = false;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an SSE data block: {block:?}"));
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("bad event {data:?}: {e}"));
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        events.push(v);
    }
    (content, events, done)
}

#[test]
fn chat_is_forwarded_with_the_provider_key_and_the_upstream_model() {
    let (fake, gw) = gateway();
    let r = gw.chat(&hello(false));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let (answer, prompt, completion) = demo_answer(&hello(false));
    assert_eq!(body["choices"][0]["message"]["content"], answer);
    assert_eq!(body["usage"]["prompt_tokens"], prompt);
    assert_eq!(body["usage"]["completion_tokens"], completion);
    assert_eq!(r.header("x-gateway-provider"), Some("demo"));
    assert_eq!(r.header("x-gateway-model"), Some("demo-model-v2"));

    let received = fake.received();
    assert_eq!(received.len(), 1);
    let req = &received[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    let all_headers = format!("{:?}", req.head.headers);
    assert!(
        !all_headers.contains(CLIENT_KEY),
        "the client's key reached the provider: {all_headers}"
    );
    let mut expected = hello(false);
    expected["model"] = "demo-model-v2".into();
    assert_eq!(
        req.json(),
        expected,
        "the body is forwarded with only the model renamed"
    );
    assert_eq!(
        req.header("content-length"),
        Some(req.body.len().to_string().as_str())
    );
}

#[test]
fn stream_arrives_event_by_event_and_usage_is_requested_then_stripped() {
    let (fake, gw) = gateway();
    let events = stream_events(
        "demo-model-v2",
        "one two three four five six seven eight",
        Some(&json!({
        "prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19})),
    );
    fake.push_reply(Reply::sse(&events, Duration::from_millis(60)));
    let r = gw.chat(&hello(true));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/event-stream"));

    let (content, chunks, done) = parse_stream(&r.text());
    assert_eq!(content, "one two three four five six seven eight");
    assert!(done, "the stream ends with [DONE]");
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty())),
        "the usage chunk the client did not ask for is stripped"
    );
    // Not buffered: the events reach the client spread out as the provider sent them.
    assert!(
        r.pieces.len() >= 8,
        "expected the stream in many pieces, got {}",
        r.pieces.len()
    );
    let spread = r.pieces.last().unwrap().0 - r.pieces.first().unwrap().0;
    assert!(
        spread >= Duration::from_millis(300),
        "all pieces arrived together ({spread:?}): the stream was buffered"
    );

    let sent = fake.received()[0].json();
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "the gateway asks the provider for usage"
    );
    let log = &gw.access_log(1)[0];
    assert_eq!(
        (
            log["prompt_tokens"].as_str(),
            log["completion_tokens"].as_str()
        ),
        (Some("11"), Some("8"))
    );
    assert_eq!(log["stream"], "true");
}

#[test]
fn stream_passes_byte_for_byte_when_the_client_asks_for_usage_whatever_the_chunking() {
    let (fake, gw) = gateway();
    let usage = json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}});
    let stream: String = stream_events("demo-model-v2", "héllo wörld", Some(&usage)).concat();
    let mut request = hello(true);
    request["stream_options"] = json!({"include_usage": true});
    // Cut inside a line, inside a multi-byte character, between the two LFs of an event.
    let first_blank = stream.find("\n\n").unwrap();
    let multibyte = stream.find('é').unwrap() + 1;
    let cuts = [
        vec![1],
        vec![first_blank + 1],
        vec![multibyte],
        vec![7, 8, 9, first_blank, stream.len() - 3],
    ];
    for (i, cut) in cuts.iter().enumerate() {
        fake.push_reply(Reply::sse(std::slice::from_ref(&stream), Duration::ZERO).split_at(cut));
        let r = gw.chat(&request);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), stream, "cuts {cut:?}");
        let log = &gw.access_log(i + 1)[i];
        assert_eq!(
            (
                log["total_tokens"].as_str(),
                log["cached_tokens"].as_str(),
                log["reasoning_tokens"].as_str()
            ),
            (Some("5"), Some("2"), Some("1")),
            "cuts {cut:?}"
        );
    }
    assert!(fake
        .received()
        .iter()
        .all(|r| r.json()["stream_options"]["include_usage"] == true));
}

/// Bad requests get the OpenAI error shape and never reach the provider.
#[test]
fn invalid_requests_are_refused_before_any_provider() {
    let (fake, gw) = gateway();
    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        ("POST", "/v1/chat/completions", b"{not json", 400, "invalid_json"),
        ("POST", "/v1/chat/completions", b"", 400, "invalid_json"),
        ("POST", "/v1/chat/completions", b"[1]", 400, "invalid_json"),
        ("POST", "/v1/chat/completions", br#"{"messages":[{"role":"user","content":"x"}]}"#, 400, "missing_required_parameter"),
        ("POST", "/v1/chat/completions", br#"{"model":"demo-chat"}"#, 400, "missing_required_parameter"),
        ("POST", "/v1/chat/completions", br#"{"model":"demo-chat","messages":"hi"}"#, 400, "invalid_parameter"),
        ("POST", "/v1/chat/completions", br#"{"model":"demo-chat","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#, 400, "invalid_parameter"),
        ("POST", "/v1/chat/completions", br#"{"model":"demo-chat","messages":[{"role":"user","content":"x"}],"stream":1}"#, 400, "invalid_parameter"),
        ("POST", "/v1/chat/completions", br#"{"model":"gpt-nope","messages":[{"role":"user","content":"x"}]}"#, 404, "model_not_found"),
        ("GET", "/v1/chat/completions", b"", 405, "method_not_allowed"),
        ("POST", "/v1/completions-typo", b"{}", 404, "unknown_url"),
        ("GET", "/v1/models/gpt-nope", b"", 404, "model_not_found"),
    ];
    for (method, path, body, status, code) in cases {
        let r = gw.request(method, path, &[("content-type", "application/json")], body);
        let shown = format!("{method} {path} {}", String::from_utf8_lossy(body));
        assert_eq!(r.status, *status, "{shown}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{shown}"
        );
        let err = &r.json()["error"];
        assert_eq!(err["code"], *code, "{shown}: {err}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{shown}: {err}"
        );
        assert!(err["type"].is_string(), "{shown}: {err}");
    }
    assert!(
        fake.received().is_empty(),
        "a refused request reached the provider: {:?}",
        fake.received()
    );
}

#[test]
fn oversized_bodies_get_413_in_the_openai_shape() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"demo-chat": {"provider": "demo"}},
            "max_request_bytes": 4096})),
        ..Default::default()
    });
    let big = |n: usize| json!({"model": "demo-chat", "messages": [{"role": "user", "content": "x".repeat(n)}]});
    // Over the plugin's limit; then over Envoy's own 10 MiB buffer, which Envoy refuses itself.
    for size in [5_000, 11 * 1024 * 1024] {
        let r = gw.chat(&big(size));
        assert_eq!(r.status, 413, "{size} bytes: {}", r.text());
        assert_eq!(
            r.json()["error"]["code"],
            "request_too_large",
            "{size} bytes"
        );
    }
    let ok = gw.chat(&big(3_000));
    assert_eq!(
        ok.status,
        200,
        "a body under the limit passes: {}",
        ok.text()
    );
    assert_eq!(fake.received().len(), 1);
}

#[test]
fn provider_errors_reach_the_client_in_the_openai_shape_after_one_retry() {
    let (fake, gw) = gateway();
    let rate_limited = json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
    let mut reply = Reply::json(429, &rate_limited);
    reply.headers.push(("retry-after".into(), "1".into()));
    // A model with one provider: Envoy tries it again once, after its retry-after.
    fake.push_reply(reply.clone());
    fake.push_reply(reply);
    let r = gw.chat(&hello(false));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-gateway-attempts"), Some("2"));
    assert_eq!(
        r.json(),
        rate_limited,
        "an OpenAI-shaped provider error passes unchanged"
    );
    assert_eq!(fake.received().len(), 2);

    let mut html = Reply::json(503, &json!(null));
    html.headers = vec![("content-type".into(), "text/html".into())];
    html.pieces = vec![(Duration::ZERO, b"<html>upstream overloaded</html>".to_vec())];
    fake.push_reply(html.clone());
    fake.push_reply(html);
    let r = gw.chat(&hello(true));
    assert_eq!(r.status, 503);
    let err = &r.json()["error"];
    assert_eq!(err["code"], "upstream_unavailable");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("upstream overloaded"),
        "{err}"
    );

    // A failure the retry cures never reaches the client.
    fake.push_reply(Reply::json(
        500,
        &json!({"error": {"message": "boom", "type": "server_error"}}),
    ));
    let r = gw.chat(&hello(false));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-gateway-attempts"), Some("2"));
}

#[test]
fn an_unreachable_provider_is_a_503_in_the_openai_shape() {
    // A port nobody listens on: Envoy's own "upstream connect error" text gets the OpenAI shape.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), closed)],
        ..Default::default()
    });
    let r =
        gw.chat(&json!({"model": "demo-chat", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 503, "{}", r.text());
    let err = &r.json()["error"];
    assert_eq!(err["type"], "upstream_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("upstream connect error"),
        "{err}"
    );
}

#[test]
fn a_provider_refusing_the_gateway_key_is_a_502_that_does_not_echo_it() {
    let (fake, gw) = gateway();
    let leaked = "Incorrect API key provided: sk-prov********9c. You can find your API key at https://platform.openai.com.";
    fake.push_reply(Reply::json(
        401,
        &json!({"error": {"message": leaked, "type": "invalid_request_error", "code": "invalid_api_key"}}),
    ));
    let r = gw.chat(&hello(false));
    assert_eq!(r.status, 502, "{}", r.text());
    let err = &r.json()["error"];
    assert_eq!(err["code"], "provider_auth_failed");
    assert!(
        err["message"].as_str().unwrap().contains("not your key"),
        "{err}"
    );
    assert!(
        !r.text().contains("sk-prov"),
        "the provider's message quoting the key was passed on"
    );
}

#[test]
fn a_parameter_the_provider_cannot_honour_is_refused_by_the_upstream_filter() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"groq": {"type": "groq", "cluster": "provider_demo"}},
            "models": {"llama": {"provider": "groq", "model": "llama-3.1-8b-instant"}}})),
        ..Default::default()
    });
    let r = gw
        .chat(&json!({"model": "llama", "n": 2, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "n");
    assert!(
        fake.received().is_empty(),
        "the refused attempt reached the provider"
    );
    let ok = gw.chat(&json!({"model": "llama", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        fake.received()[0].path,
        "/openai/v1/chat/completions",
        "groq's path prefix"
    );
}
