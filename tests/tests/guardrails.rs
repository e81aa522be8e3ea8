//! Guardrails through the real Envoy and the real .wasm: each built-in detector blocking a
//! request (positive and negative), masks in what the provider receives (tool-call arguments
//! too), placeholders restored in JSON and streamed answers split at awkward places, a block
//! inside a stream, monitor counted in /stats and named in the access log, the body log masked,
//! and a key used from outside its networks refused. Valid card numbers, IBANs and documentation
//! addresses: see filter/src/guard/detect_tests.rs for their sources.

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{stream_events, FakeProvider, Reply};
use serde_json::{json, Value};

/// (kind, a text it must block, a look-alike it must let through).
const DETECTORS: &[(&str, &str, &str)] = &[
    (
        "email",
        "```\nsmtp.send(\"ops@corp.example.com\")\n```",
        "write to ops at corp dot com",
    ),
    (
        "phone",
        "call me at +44 20 7946 0958",
        "on 2024-01-15 at 10:30",
    ),
    (
        "payment_card",
        "card 4111 1111 1111 1111",
        "card 4111 1111 1111 1112",
    ),
    (
        "iban",
        "IBAN GB82 WEST 1234 5698 7654 32",
        "IBAN GB83 WEST 1234 5698 7654 32",
    ),
    ("us_ssn", "SSN 123-45-6789", "SSN 666-45-6789"),
    (
        "ip_address",
        "server 192.0.2.15 and 2001:db8::1",
        "version 1.2.3.4.5",
    ),
    (
        "secrets",
        "key AKIAIOSFODNN7EXAMPLE",
        "the task-list is short",
    ),
];

fn models_and_policies() -> (Value, Value) {
    let mut models = json!({
        "masked": {"provider": "demo"},
        "watched": {"provider": "demo", "log_bodies": true},
        "answer-guarded": {"provider": "demo"}});
    let mut policies = json!({
        "mask-pii": {"models": ["masked"], "guards": [
            {"name": "mask-email", "kind": "email", "action": "mask", "restore": true},
            {"name": "mask-card", "kind": "payment_card", "action": "mask"},
            {"name": "no-falcon", "kind": "keywords", "keywords": ["Project Falcon"], "action": "block", "phase": "request"}]},
        "watch": {"models": ["watched"], "guards": [
            {"name": "watch-email", "kind": "email", "action": "monitor"}]},
        "answers": {"models": ["answer-guarded"], "guards": [
            {"name": "answer-secrets", "kind": "secrets", "action": "block", "phase": "response"},
            {"name": "answer-email", "kind": "email", "action": "mask", "phase": "response"}]}});
    for (kind, _, _) in DETECTORS {
        let model = format!("only-{kind}");
        models[&model] = json!({"provider": "demo"});
        policies[format!("block-{kind}")] = json!({"models": [model], "guards": [
            {"name": format!("block-{kind}"), "kind": kind, "action": "block", "phase": "request"}]});
    }
    (models, policies)
}

fn gateway() -> (FakeProvider, Envoy) {
    let fake = FakeProvider::start(0).expect("fake provider");
    let (models, policies) = models_and_policies();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": models,
            "guardrails": {"policies": policies}})),
        concurrency: 1,
        ..Default::default()
    });
    (fake, gw)
}

fn ask(model: &str, content: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]})
}

/// The client's text of an SSE answer, whether it ended with `[DONE]`, and an error code.
fn read_stream(text: &str) -> (String, bool, Option<String>) {
    let (mut content, mut done, mut error) = (String::new(), false, None);
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block
            .trim_start()
            .strip_prefix("data: ")
            .unwrap_or_default();
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{data:?}: {e}"));
        if let Some(code) = v.pointer("/error/code").and_then(Value::as_str) {
            error = Some(code.into());
        }
        content.push_str(
            v["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default(),
        );
    }
    (content, done, error)
}

#[test]
fn each_detector_blocks_its_data_and_lets_look_alikes_through() {
    let (fake, gw) = gateway();
    for (kind, positive, negative) in DETECTORS {
        let model = format!("only-{kind}");
        let before = fake.received().len();
        let r = gw.chat(&ask(&model, positive, false));
        assert_eq!(r.status, 400, "{kind}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["code"], "guardrail_blocked", "{kind}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains(&format!("block-{kind}")),
            "{e}"
        );
        assert_eq!(
            fake.received().len(),
            before,
            "{kind}: nothing blocked reaches a provider"
        );
        let r = gw.chat(&ask(&model, negative, false));
        assert_eq!(
            r.status,
            200,
            "{kind} look-alike {negative:?}: {}",
            r.text()
        );
    }
    // `stream: true` is no way around a request guard.
    let r = gw.chat(&ask("only-secrets", "key AKIAIOSFODNN7EXAMPLE", true));
    assert_eq!(r.status, 400);
}

#[test]
fn masks_reach_the_provider_and_restores_reach_the_client() {
    let (fake, gw) = gateway();
    let text = "Mail jane.doe@example.com, card 4242 4242 4242 4242.";
    let r = gw.chat(&ask("masked", text, false));
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = fake.received().last().unwrap().json();
    assert_eq!(
        sent["messages"][0]["content"], "Mail [EMAIL_1], card [CARD_1].",
        "the provider sees placeholders only"
    );
    // The demo provider echoes the user's text: the e-mail guard restores, the card's does not.
    let answer = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        answer.ends_with("You said: Mail jane.doe@example.com, card [CARD_1]."),
        "{answer}"
    );

    // Tool-call arguments and tool results are masked too.
    let body = json!({"model": "masked", "messages": [
        {"role": "user", "content": "send it"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "send", "arguments": "{\"to\":\"bob@example.org\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to bob@example.org"}]});
    assert_eq!(gw.chat(&body).status, 200);
    let sent = fake.received().last().unwrap().json();
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{\"to\":\"[EMAIL_1]\"}"
    );
    assert_eq!(sent["messages"][2]["content"], "sent to [EMAIL_1]");

    // A keyword deny-list blocks.
    let r = gw.chat(&ask("masked", "status of project falcon?", false));
    assert_eq!(r.json()["error"]["code"], "guardrail_blocked");
}

#[test]
fn streamed_answers_are_restored_across_awkward_splits() {
    let (fake, gw) = gateway();
    let events = stream_events("masked", "Done: I wrote to [EMAIL_1] as asked.", None);
    let whole: String = events.concat();
    let at = whole.find("[EMAIL_1]").unwrap();
    // Cut inside the placeholder, inside an event's JSON, and between events.
    for cuts in [
        vec![at + 3],
        vec![at + 1, at + 6],
        vec![10, at + 8, whole.len() - 20],
    ] {
        fake.push_reply(Reply::sse(&events, Default::default()).split_at(&cuts));
        let r = gw.chat(&ask("masked", "mail jane.doe@example.com", true));
        assert_eq!(r.status, 200);
        let (content, done, error) = read_stream(&r.text());
        assert_eq!(
            content, "Done: I wrote to jane.doe@example.com as asked.",
            "cuts {cuts:?}"
        );
        assert!(done && error.is_none(), "cuts {cuts:?}");
        let sent = fake.received().last().unwrap().json();
        assert_eq!(sent["messages"][0]["content"], "mail [EMAIL_1]");
    }
}

#[test]
fn answers_are_guarded_streamed_or_not() {
    let (fake, gw) = gateway();
    // A secret in a streamed answer: error event and a clean end, nothing of the key shown.
    let events = stream_events(
        "answer-guarded",
        "your key is AKIAIOSFODNN7EXAMPLE ok",
        None,
    );
    fake.push_reply(Reply::sse(&events, Default::default()));
    let r = gw.chat(&ask("answer-guarded", "hi", true));
    let text = r.text();
    let (content, done, error) = read_stream(&text);
    assert_eq!(error.as_deref(), Some("guardrail_blocked"), "{text}");
    assert!(done, "{text}");
    assert!(!text.contains("AKIA"), "{text}");
    assert!(!content.contains("AKIA"));
    // An e-mail in a streamed answer is masked (response phase).
    let events = stream_events(
        "answer-guarded",
        "reach me at help@vendor.example.com today",
        None,
    );
    fake.push_reply(Reply::sse(&events, Default::default()));
    let (content, done, _) = read_stream(&gw.chat(&ask("answer-guarded", "hi", true)).text());
    assert_eq!(content, "reach me at [EMAIL_1] today");
    assert!(done);
    // The same in a JSON answer: masked; a secret blocks with guardrail_blocked.
    let answer = |content: &str| {
        json!({"id": "x", "object": "chat.completion", "created": 1, "model": "answer-guarded",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    };
    fake.push_reply(Reply::json(200, &answer("mail help@vendor.example.com")));
    let r = gw.chat(&ask("answer-guarded", "hi", false));
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "mail [EMAIL_1]"
    );
    fake.push_reply(Reply::json(200, &answer("key AKIAIOSFODNN7EXAMPLE")));
    let r = gw.chat(&ask("answer-guarded", "hi", false));
    assert!(!r.text().contains("AKIA"), "{}", r.text());
    assert_eq!(
        r.json()["error"]["code"],
        "guardrail_blocked",
        "{}",
        r.text()
    );
    // The provider's 200 already went out when the answer was read (README: a known limit).
    assert_eq!(r.status, 200);
}

#[test]
fn monitor_forwards_unchanged_counts_logs_and_masks_the_body_log() {
    let (fake, gw) = gateway();
    let text = "contact jane.doe@example.com";
    let r = gw.chat(&ask("watched", text, false));
    assert_eq!(r.status, 200);
    assert_eq!(
        fake.received().last().unwrap().json()["messages"][0]["content"],
        text
    );
    let log = gw.access_log(1);
    // The demo provider echoes the address: the guard (phase `both`) saw it both ways.
    assert_eq!(
        log.last().unwrap()["guardrails"],
        "watch-email:monitor:request,watch-email:monitor:response",
        "{log:?}"
    );
    let bodies = gw.body_log(1);
    let line = bodies.last().unwrap().to_string();
    assert!(
        !line.contains("jane.doe@example.com"),
        "body log in clear: {line}"
    );
    assert!(line.contains("[EMAIL_1]"), "{line}");
    let stats = gw.prometheus();
    let want =
        "gw_guardrail_decisions{guard=\"watch-email\",action=\"monitor\",phase=\"request\"} 1";
    assert!(
        stats.lines().any(|l| l == want)
            || stats
                .lines()
                .any(|l| l.starts_with("gw_guardrail_decisions{")
                    && l.contains("guard=\"watch-email\"")
                    && l.ends_with(" 1")),
        "{}",
        stats
            .lines()
            .filter(|l| l.contains("guardrail"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_key_is_refused_outside_its_networks() {
    use sha2::Digest;
    let hex = |s: &str| -> String {
        sha2::Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let fake = FakeProvider::start(0).expect("fake provider");
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"chat": {"provider": "demo"}},
            "keys": {
                "office": {"sha256": hex("gw-office-key"), "allowed_networks": ["10.0.0.0/8", "2001:db8::/32"]},
                "local": {"sha256": hex("gw-local-key"), "allowed_networks": ["127.0.0.0/8", "::1/128"]}}})),
        concurrency: 1,
        ..Default::default()
    });
    let call = |key: &str| {
        gw.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {key}")),
            ],
            ask("chat", "hi", false).to_string().as_bytes(),
        )
    };
    let r = call("gw-office-key");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "network_not_allowed");
    assert!(fake.received().is_empty());
    assert_eq!(call("gw-local-key").status, 200);
}

/// The generic webhook guard against a scripted service: allow, block, and a timeout under
/// both failure modes (the contract is in README "Guardrails and data privacy").
#[test]
fn the_webhook_guard_allows_blocks_and_fails_by_its_mode() {
    use std::time::Duration;
    let fake = FakeProvider::start(0).expect("fake provider");
    let hook = FakeProvider::start(0).expect("webhook");
    let guard = |name: &str, mode: &str| {
        json!([{"name": name, "kind": "webhook", "cluster": "guard_service", "path": "/v1/check",
            "phase": "request", "action": "block", "timeout_ms": 300, "failure_mode": mode}])
    };
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        extra_clusters: vec![("guard_service".into(), hook.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"closed": {"provider": "demo"}, "open": {"provider": "demo"}},
            "guardrails": {"policies": {
                "c": {"models": ["closed"], "guards": guard("hook-closed", "closed")},
                "o": {"models": ["open"], "guards": guard("hook-open", "open")}}}})),
        concurrency: 1,
        ..Default::default()
    });
    hook.push_reply(Reply::json(200, &json!({"action": "allow"})));
    let r = gw.chat(&ask("closed", "hello there", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let asked = hook.received()[0].json();
    assert_eq!(asked["texts"], json!(["hello there"]));
    assert_eq!(asked["guard"], "hook-closed");
    assert_eq!(hook.received()[0].path, "/v1/check");

    hook.push_reply(Reply::json(
        200,
        &json!({"action": "block", "reason": "off topic"}),
    ));
    let before = fake.received().len();
    let r = gw.chat(&ask("closed", "something else", false));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "guardrail_blocked");
    assert_eq!(
        fake.received().len(),
        before,
        "nothing blocked reaches a provider"
    );

    // No answer within 300 ms: closed refuses (503), open lets the request through.
    hook.push_reply(Reply::default_after(Duration::from_secs(2)));
    let r = gw.chat(&ask("closed", "hello", false));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guardrail_unavailable");
    assert_eq!(fake.received().len(), before);
    hook.push_reply(Reply::default_after(Duration::from_secs(2)));
    let r = gw.chat(&ask("open", "hello", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let log = gw.access_log(4);
    let fired: Vec<&str> = log
        .iter()
        .filter_map(|l| l["guardrails"].as_str())
        .collect();
    assert_eq!(
        fired,
        [
            "hook-closed:block:request",
            "hook-closed:failed_closed:request",
            "hook-open:failed_open:request"
        ],
        "{log:?}"
    );
}

/// A key that may not use the model is refused (403) before the webhook guard is asked: an
/// unauthorised request costs no callout.
#[test]
fn a_key_outside_its_models_costs_no_webhook_call() {
    let fake = FakeProvider::start(0).expect("fake provider");
    let hook = FakeProvider::start(0).expect("webhook");
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        extra_clusters: vec![("guard_service".into(), hook.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"chat": {"provider": "demo"}, "other": {"provider": "demo"}},
            "keys": {"alice": {"sha256": gateway_tests::check::sha256_hex("gw-alice-key"), "models": ["chat"]}},
            "guardrails": {"policies": {"all": {"all": true, "guards": [
                {"name": "hook", "kind": "webhook", "cluster": "guard_service", "path": "/v1/check",
                 "phase": "request", "action": "block", "timeout_ms": 300}]}}}})),
        concurrency: 1,
        ..Default::default()
    });
    let call = |model: &str| {
        gw.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer gw-alice-key"),
            ],
            ask(model, "hi", false).to_string().as_bytes(),
        )
    };
    let r = call("other");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "model_not_allowed");
    assert!(hook.received().is_empty(), "the webhook was asked");
    assert!(fake.received().is_empty());
    hook.push_reply(Reply::json(200, &json!({"action": "allow"})));
    assert_eq!(call("chat").status, 200);
    assert_eq!(hook.received().len(), 1);
}
