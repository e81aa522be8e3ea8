//! The pipeline's stages together, through the real Envoy: guardrails apply to every inbound
//! API (an Anthropic Messages request to an Anthropic target is guarded like an OpenAI one: its
//! own body never passes a guard unread), and the cache never shares an answer a guard restored
//! for one caller. The fakes answer "Hello from the demo provider! You said: <last user text>"
//! (tests/src/fake/README.md); Anthropic's error shape is from its "Errors" reference
//! (https://docs.anthropic.com/en/api/errors). A Responses API client (`POST /v1/responses`) is
//! guarded and served from the cache like the others, in its own shapes (the `response` object
//! and events of https://platform.openai.com/docs/api-reference/responses); guarded, it goes to
//! OpenAI in the chat form the guards read, never as the client's own Responses body, and an
//! answer OpenAI or Azure gives in the Responses API's own shapes is not cached (entries hold
//! the chat form).

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
    config["cache"] = json!({"models": {"gpt-4o-mini": {"ttl": 300},
        "gemini-2.5-flash": {"ttl": 300}, "azure-gpt-4o": {"ttl": 300}}});
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

fn responses(gw: &Envoy, body: &Value) -> gateway_tests::http::Response {
    gw.request(
        "POST",
        "/v1/responses",
        &[
            ("content-type", "application/json"),
            (
                "authorization",
                &format!("Bearer {}", gateway_tests::messages_api::KEY),
            ),
        ],
        body.to_string().as_bytes(),
    )
}

/// The text of a Responses answer: the `response` object's `output_text` parts, or the
/// `response.output_text.delta` events of a stream (which must end `response.completed`).
fn responses_text(body: &str, stream: bool) -> String {
    if !stream {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        assert_eq!(v["object"], "response", "{body}");
        return v["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .into();
    }
    assert!(!body.contains("[DONE]"), "{body}");
    let events: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::Null))
        .collect();
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("response.completed")),
        "{body}"
    );
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

#[test]
fn a_responses_request_is_guarded_in_its_own_shapes() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    // Blocked: the Responses (OpenAI) error body, nothing reaches a provider.
    let r = responses(
        &gw,
        &json!({"model": "gpt-4o-mini", "input": "status of Project Falcon?"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(v["error"].get("param").is_some(), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no-falcon"),
        "{v}"
    );
    assert!(
        fake.received().is_empty(),
        "a blocked request reaches no provider"
    );
    // Masked on the way (to OpenAI and to Anthropic, each in its wire format), restored on the
    // way back, as a response object and as events.
    for model in ["gpt-4o-mini", "claude-haiku-4-5"] {
        for stream in [false, true] {
            let body = json!({"model": model, "stream": stream,
                "input": "Mail jane.doe@example.com today"});
            let r = responses(&gw, &body);
            assert_eq!(r.status, 200, "{model}: {}", r.text());
            let to_provider = fake.received().last().unwrap().clone();
            if model == "gpt-4o-mini" {
                // Not OpenAI's own /v1/responses: the guarded chat form goes.
                assert_eq!(to_provider.path, "/v1/chat/completions", "{model}");
            }
            let sent = to_provider.json();
            assert!(
                sent["messages"]
                    .to_string()
                    .contains("Mail [EMAIL_1] today"),
                "{model}: {sent}"
            );
            assert!(!sent.to_string().contains("jane.doe@example.com"), "{sent}");
            let text = responses_text(&r.text(), stream);
            assert!(
                text.ends_with("You said: Mail jane.doe@example.com today"),
                "{model} stream {stream}: {text}"
            );
        }
    }
}

/// What only OpenAI's Responses API can take (a hosted tool) cannot be guarded in the chat
/// form: a guarded request with one is refused, before any provider.
#[test]
fn a_guarded_responses_request_with_a_hosted_tool_is_refused() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let r = responses(
        &gw,
        &json!({"model": "gpt-4o-mini", "input": "search the news", "tools": [{"type": "web_search"}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.json();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'web_search'"),
        "{e}"
    );
    assert!(fake.received().is_empty(), "no provider contacted");
}

/// OpenAI's and Azure's own Responses answers pass untouched and are not stored: the cache holds
/// the chat form, which such an answer is not.
#[test]
fn a_passed_through_responses_answer_is_not_cached() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    for stream in [false, true] {
        let body =
            json!({"model": "azure-gpt-4o", "stream": stream, "input": format!("native {stream}")});
        for _ in 0..2 {
            let before = fake.received().len();
            let r = responses(&gw, &body);
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.header("x-gateway-cache"), Some("miss"), "stream {stream}");
            let got = fake.received();
            assert_eq!(got.len(), before + 1, "each request reaches Azure");
            assert_eq!(got.last().unwrap().path, "/openai/v1/responses");
            assert_eq!(
                responses_text(&r.text(), stream),
                format!("Hello from the demo provider! You said: native {stream}")
            );
        }
    }
}

#[test]
fn a_cache_hit_is_replayed_to_a_responses_client_in_its_own_shapes() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    for stream in [false, true] {
        let body = json!({"model": "gemini-2.5-flash", "stream": stream,
            "input": format!("cache me {stream}")});
        let first = responses(&gw, &body);
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(first.header("x-gateway-cache"), Some("miss"));
        let before = fake.received().len();
        let second = responses(&gw, &body);
        assert_eq!(second.status, 200, "{}", second.text());
        assert_eq!(
            second.header("x-gateway-cache"),
            Some("hit"),
            "stream {stream}"
        );
        assert_eq!(fake.received().len(), before, "a hit reaches no provider");
        let expected = format!("Hello from the demo provider! You said: cache me {stream}");
        assert_eq!(responses_text(&first.text(), stream), expected);
        assert_eq!(responses_text(&second.text(), stream), expected);
        if !stream {
            let hit = second.json();
            assert_eq!(hit["model"], "gemini-2.5-flash", "{hit}");
            assert_eq!(hit["status"], "completed", "{hit}");
        }
    }
    // An OpenAI chat client asking the same is keyed apart: a miss, answered in chat shape.
    let chat = gw.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            (
                "authorization",
                &format!("Bearer {}", gateway_tests::messages_api::KEY),
            ),
        ],
        json!({"model": "gemini-2.5-flash",
            "messages": [{"role": "user", "content": "cache me false"}]})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(chat.header("x-gateway-cache"), Some("miss"));
    assert_eq!(chat.json()["object"], "chat.completion", "{}", chat.text());
}
