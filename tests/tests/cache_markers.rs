//! Prompt-cache markers (`cache_control`) in OpenAI-format requests through the real Envoy with
//! the shipped configuration: they reach Anthropic as `cache_control` on the same blocks and
//! Bedrock as `cachePoint` blocks after them, more than Anthropic's four are a 400 from the
//! gateway (the provider never sees the request), and other translated families drop them.
//! References: https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching ,
//! https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{FakeProvider, Received};
use serde_json::{json, Value};

const CLIENT_KEY: &str = "client-secret-key";

fn post(envoy: &Envoy, body: &Value) -> gateway_tests::http::Response {
    envoy.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {CLIENT_KEY}")),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// A conversation with markers on a system part, a whole string message and a tool; `tag`
/// makes the provider's copy findable.
fn marked_request(model: &str, tag: &str) -> Value {
    json!({"model": model, "max_tokens": 50,
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "A long, stable reference text.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": format!("cached question {tag}"), "cache_control": {"type": "ephemeral"}}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}},
                   "cache_control": {"type": "ephemeral"}}]})
}

fn sent(fake: &FakeProvider, tag: &str) -> Received {
    let all = fake.received();
    all.iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains(tag))
        .cloned()
        .unwrap_or_else(|| panic!("no provider request holds {tag:?}"))
}

fn answered(envoy: &Envoy, request: &Value) {
    let r = post(envoy, request);
    assert_eq!(r.status, 200, "{}: {}", request["model"], r.text());
    // The fake answers a request with tools by calling the first one.
    let body = r.json();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
}

#[test]
fn markers_reach_anthropic_and_bedrock_and_are_dropped_elsewhere() {
    let fake = FakeProvider::start(0).expect("fake provider");
    let envoy = Envoy::start(Options::every_provider_family(fake.port));

    let request = marked_request("claude-haiku-4-5", "anthropic-tag");
    answered(&envoy, &request);
    let body = sent(&fake, "anthropic-tag").json();
    let ephemeral = json!({"type": "ephemeral"});
    assert_eq!(body["system"][1]["cache_control"], ephemeral, "{body}");
    assert!(body["system"][0].get("cache_control").is_none(), "{body}");
    assert_eq!(
        body["messages"][0]["content"][0]["cache_control"], ephemeral,
        "{body}"
    );
    assert_eq!(body["tools"][0]["cache_control"], ephemeral, "{body}");

    let request = marked_request("bedrock-nova-lite", "bedrock-tag");
    answered(&envoy, &request);
    let body = sent(&fake, "bedrock-tag").json();
    let point = json!({"cachePoint": {"type": "default"}});
    assert_eq!(body["system"][2], point, "{body}");
    assert_eq!(body["messages"][0]["content"][1], point, "{body}");
    assert_eq!(body["toolConfig"]["tools"][1], point, "{body}");

    for model in ["gemini-2.5-flash", "command-a"] {
        let tag = format!("{model}-tag");
        answered(&envoy, &marked_request(model, &tag));
        let body = String::from_utf8_lossy(&sent(&fake, &tag).body).into_owned();
        assert!(
            !body.contains("cache_control") && !body.contains("cachePoint"),
            "{model}: {body}"
        );
    }
}

#[test]
fn more_than_four_anthropic_breakpoints_are_refused_before_the_provider() {
    let fake = FakeProvider::start(0).expect("fake provider");
    let envoy = Envoy::start(Options::every_provider_family(fake.port));
    let part =
        |text: &str| json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}});
    let request = json!({"model": "claude-haiku-4-5", "messages": [{"role": "user",
        "content": [part("a"), part("b"), part("c"), part("d"), part("five-markers")]}]});
    let r = post(&envoy, &request);
    assert_eq!(r.status, 400, "{}", r.text());
    let error = &r.json()["error"];
    assert_eq!(error["param"], "cache_control", "{error}");
    assert!(
        !fake
            .received()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("five-markers")),
        "the provider got the refused request"
    );
}
