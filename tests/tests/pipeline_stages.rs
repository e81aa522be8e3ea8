//! The pipeline's stages together, through the real Envoy: guardrails apply to every inbound
//! API (an Anthropic Messages request to an Anthropic target is guarded like an OpenAI one: its
//! own body never passes a guard unread), and the cache never shares an answer a guard restored
//! for one caller. The fakes answer "Hello from the demo provider! You said: <last user text>"
//! (tests/src/fake/README.md); Anthropic's error shape is from its "Errors" reference
//! (https://docs.anthropic.com/en/api/errors).

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::FakeProvider;
use gateway_tests::messages_api::{plugin, post};
use serde_json::{json, Value};

fn start(fake: &FakeProvider) -> Envoy {
    let mut config = plugin();
    config["guardrails"] = json!({"policies": {
        "claude": {"models": ["claude-haiku-4-5", "gpt-4o-mini"], "guards": [
            {"name": "mask-email", "kind": "email", "action": "mask", "restore": true},
            {"name": "no-falcon", "kind": "keywords", "keywords": ["Project Falcon"],
             "action": "block", "phase": "request"}]}}});
    config["cache"] = json!({"models": {"gpt-4o-mini": {"ttl": 300}}});
    Envoy::start(Options {
        plugin_config: Some(config),
        ..Options::every_provider_family(fake.port)
    })
}

fn messages(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": text}]})
}

/// The text of a Messages answer, JSON or streamed (`text_delta` events).
fn text_of(body: &str, stream: bool) -> String {
    if !stream {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        return v["content"][0]["text"].as_str().unwrap_or_default().into();
    }
    let mut text = String::new();
    for line in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if v["delta"]["type"] == "text_delta" {
            text.push_str(v["delta"]["text"].as_str().unwrap_or_default());
        }
    }
    text
}

#[test]
fn a_messages_request_to_anthropic_is_guarded_like_any_other() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);

    // Blocked: Anthropic's error shape, nothing reaches Anthropic.
    let before = fake.received().len();
    let r = post(
        &gw,
        "/v1/messages",
        &[],
        &messages("claude-haiku-4-5", "status of Project Falcon?", false),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no-falcon"),
        "{v}"
    );
    assert_eq!(
        fake.received().len(),
        before,
        "a blocked request reaches no provider"
    );

    // Masked on the way to Anthropic (in Anthropic's wire format), restored on the way back,
    // as JSON and as a stream.
    for stream in [false, true] {
        let r = post(
            &gw,
            "/v1/messages",
            &[],
            &messages(
                "claude-haiku-4-5",
                "Mail jane.doe@example.com today",
                stream,
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let sent = fake.received().last().unwrap().clone();
        assert!(sent.path.ends_with("/v1/messages"), "{}", sent.path);
        let sent = sent.json();
        let sent_text = sent["messages"][0]["content"].to_string();
        assert!(sent_text.contains("Mail [EMAIL_1] today"), "{sent}");
        assert!(!sent.to_string().contains("jane.doe@example.com"), "{sent}");
        let text = text_of(&r.text(), stream);
        assert!(
            text.ends_with("You said: Mail jane.doe@example.com today"),
            "stream {stream}: {text}"
        );
    }
}

#[test]
fn an_answer_restored_for_one_caller_is_never_cached_for_another() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let ask = |email: &str| {
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": format!("Mail {email} today")}]})
    };
    let chat = |body: &Value| {
        gw.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                (
                    "authorization",
                    &format!("Bearer {}", gateway_tests::messages_api::KEY),
                ),
            ],
            body.to_string().as_bytes(),
        )
    };
    // Both mask to "Mail [EMAIL_1] today": one shared entry would hand Bob Alice's address.
    let first = chat(&ask("alice@example.com"));
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-gateway-cache"), Some("bypass"));
    let second = chat(&ask("bob@example.com"));
    assert_eq!(second.header("x-gateway-cache"), Some("bypass"));
    let answer = second.json()["choices"][0]["message"]["content"].clone();
    assert!(
        answer
            .as_str()
            .unwrap_or_default()
            .ends_with("You said: Mail bob@example.com today"),
        "{answer}"
    );
}
