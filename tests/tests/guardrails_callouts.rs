//! Guard callouts through the real Envoy and the real .wasm: a callout cluster that is a
//! provider's is refused at start (the VM trap of a provider filter serving a callout), and a
//! webhook's replacements mask what the provider receives (Envoy's buffered copy and the
//! provider filter's alike) and come back restored to the client. The contract is in README
//! "Guardrails and data privacy".

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{FakeProvider, Reply};
use serde_json::{json, Value};

fn ask(model: &str, content: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": content}]})
}

#[test]
fn a_callout_to_a_provider_cluster_stops_envoy_naming_the_field() {
    let config = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"chat": {"provider": "demo"}},
        "guardrails": {"policies": {"p": {"all": true, "guards": [
            {"name": "mail", "kind": "email", "action": "mask"},
            {"name": "hook", "kind": "webhook", "cluster": "provider_demo", "phase": "request",
             "action": "block"}]}}}});
    let (status, log) = Envoy::start_expecting_exit(Options {
        plugin_config: Some(config),
        ..Default::default()
    });
    assert_ne!(
        status,
        Some(0),
        "Envoy accepted a callout to a provider cluster"
    );
    let line = log
        .lines()
        .find(|l| l.contains("invalid plugin configuration"))
        .unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert!(
        line.contains("`guardrails.policies.p.guards[1].cluster`") && line.contains("provider"),
        "{line}"
    );
}

#[test]
fn webhook_replacements_reach_the_provider_masked_and_the_client_restored() {
    let fake = FakeProvider::start(0).expect("fake provider");
    let hook = FakeProvider::start(0).expect("webhook");
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        extra_clusters: vec![("guard_service".into(), hook.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"chat": {"provider": "demo"}},
            "guardrails": {"policies": {"names": {"all": true, "guards": [
                {"name": "names", "kind": "webhook", "cluster": "guard_service",
                 "path": "/v1/check", "phase": "request", "action": "mask", "restore": true,
                 "timeout_ms": 2000}]}}}})),
        concurrency: 1,
        ..Default::default()
    });
    // "Zoë Weber" is bytes 11..21 of "Grüße an Zoë Weber" (UTF-8: ü, ß, ë take two bytes).
    let mask = json!({"action": "mask", "replacements": [
        {"text": 1, "start": 11, "end": 21, "label": "PERSON"}]});
    for stream in [false, true] {
        hook.push_reply(Reply::json(200, &mask));
        let before = fake.received().len();
        let r = gw.chat(&ask("chat", "Grüße an Zoë Weber", stream));
        assert_eq!(r.status, 200, "{}", r.text());
        let asked = hook
            .received()
            .last()
            .expect("the webhook was asked")
            .json();
        assert_eq!(asked["texts"], json!(["Be brief.", "Grüße an Zoë Weber"]));
        let received = fake.received();
        assert_eq!(received.len(), before + 1);
        let sent = received.last().expect("the provider was asked").json();
        assert_eq!(
            sent["messages"][1]["content"], "Grüße an [PERSON_1]",
            "stream {stream}: the provider never sees the name"
        );
        // The fake provider echoes the user's text: the placeholder comes back restored.
        let text = r.text();
        assert!(text.contains("Weber"), "stream {stream}: {text}");
        assert!(!text.contains("[PERSON_1]"), "stream {stream}: {text}");
    }

    // A verdict whose span cuts a character is a failure: closed (the default) refuses.
    hook.push_reply(Reply::json(
        200,
        &json!({"action": "mask", "replacements": [{"text": 1, "start": 0, "end": 3}]}),
    ));
    let before = fake.received().len();
    let r = gw.chat(&ask("chat", "Grüße", false));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guardrail_unavailable");
    assert_eq!(
        fake.received().len(),
        before,
        "nothing reaches the provider"
    );
}

/// The OpenAI moderation adapter against the fake moderation endpoint (the published shape:
/// filter/testdata/guardrails/README.md), through a cluster of its own with the OpenAI
/// provider's key: requests and non-streamed answers moderated, a stream refused up front,
/// configured thresholds, monitor counted only, and an unreachable endpoint failing closed.
#[test]
fn openai_moderation_blocks_flagged_requests_and_answers() {
    let fake = FakeProvider::start(0).expect("fake provider");
    let moderation = FakeProvider::start(0).expect("fake moderation endpoint");
    let guard = |name: &str, extra: Value| {
        let mut g = json!({"name": name, "kind": "openai_moderation", "provider": "openai",
                           "cluster": "openai_moderation", "action": "block"});
        if let (Some(g), Some(extra)) = (g.as_object_mut(), extra.as_object()) {
            g.extend(extra.clone());
        }
        json!([g])
    };
    let gw = Envoy::start(Options {
        upstreams: vec![("openai".into(), fake.port)],
        extra_clusters: vec![("openai_moderation".into(), moderation.port)],
        plugin_config: Some(json!({
            "providers": {"openai": {"type": "openai", "cluster": "openai",
                                     "api_key_env": "OPENAI_API_KEY"}},
            "models": {"chat": {"provider": "openai"}, "strict": {"provider": "openai"},
                       "watched": {"provider": "openai"}},
            "guardrails": {"policies": {
                "mod": {"models": ["chat"], "guards": guard("moderation", json!({}))},
                "strict": {"models": ["strict"], "guards": guard("no-harassment",
                    json!({"phase": "request", "categories": {"harassment": 0.3}}))},
                "watch": {"models": ["watched"], "guards": guard("watch-moderation",
                    json!({"action": "monitor", "phase": "request"}))}}}})),
        env: vec![(
            "OPENAI_API_KEY".into(),
            "sk-test-moderation-key-0001".into(),
        )],
        concurrency: 1,
        ..Default::default()
    });

    // Clean: allowed; the endpoint got both texts with the provider's key and the model.
    let r = gw.chat(&ask("chat", "What is the capital of France?", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let asked = &moderation.received()[0];
    assert_eq!(asked.path, "/v1/moderations");
    assert_eq!(
        asked.header("authorization"),
        Some("Bearer sk-test-moderation-key-0001")
    );
    assert_eq!(
        asked.json(),
        json!({"model": "omni-moderation-latest",
               "input": ["Be brief.", "What is the capital of France?"]})
    );
    // The answer was moderated too (a second call, with the answer's text).
    let answered = moderation.received()[1].json();
    assert_eq!(
        answered["input"],
        json!(["Hello from the demo provider! You said: What is the capital of France?"])
    );

    // A flagged request never reaches the provider.
    let before = fake.received().len();
    let r = gw.chat(&ask("chat", "I will hurt you", false));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guardrail_blocked");
    assert_eq!(fake.received().len(), before);

    // A flagged answer: the provider's answer is replaced by the error (the status went out).
    fake.push_reply(Reply::json(
        200,
        &json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "chat",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Then I will hurt you."}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}),
    ));
    let r = gw.chat(&ask("chat", "Tell me a story", false));
    assert_eq!(
        r.json()["error"]["code"],
        "guardrail_blocked",
        "{}",
        r.text()
    );
    assert!(!r.text().contains("hurt"), "{}", r.text());

    // A stream cannot wait for a verdict on its whole text: refused up front.
    let before = fake.received().len();
    let r = gw.chat(&ask("chat", "Tell me a story", true));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "stream");
    assert_eq!(fake.received().len(), before);

    // Configured thresholds: harassment 0.35 >= 0.3 blocks, though OpenAI did not flag it.
    let r = gw.chat(&ask("strict", "That was rude of them", false));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = gw.chat(&ask("chat", "That was rude of them", false));
    assert_eq!(r.status, 200, "{}", r.text());

    // A long conversation: the moderation answer (about 1.3 KB per text) outgrows the 64 KiB
    // of the small callouts and is still read whole.
    let mut messages: Vec<Value> = (0..80)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("turn {i}")}))
        .collect();
    messages.push(json!({"role": "user", "content": "And now?"}));
    let r = gw.chat(&json!({"model": "chat", "messages": messages}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        moderation
            .received()
            .iter()
            .rev()
            .nth(1)
            .map(|c| c.json()["input"].as_array().map_or(0, Vec::len)),
        Some(81)
    );

    // Monitor: flagged, counted, forwarded.
    let r = gw.chat(&ask("watched", "I will hurt you", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let stats = gw.prometheus();
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("gw_guardrail_decisions")
                && l.contains("guard=\"watch-moderation\"")
                && l.contains("action=\"monitor\"")
                && l.ends_with(" 1")),
        "{stats}"
    );
}

/// The AWS Bedrock Guardrails adapter against the fake ApplyGuardrail (the published shape:
/// filter/testdata/guardrails/README.md), which verifies the SigV4 signature with the test
/// credentials as Bedrock does (a bad one is a 403, a failure of the guard: the clean request
/// passing proves the signature): a clean request allowed, a denied topic blocked on the way in
/// and on the way out, and an anonymized e-mail address masked in what the provider receives.
#[test]
fn bedrock_guardrails_block_and_anonymize_with_a_signed_call() {
    use gateway_tests::fake::bedrock::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
    let fake = FakeProvider::start(0).expect("fake provider");
    let guardrails = FakeProvider::start(0).expect("fake Bedrock runtime");
    let guard = |name: &str, action: &str, phase: &str| {
        json!([{"name": name, "kind": "bedrock_guardrail", "provider": "aws",
                "cluster": "bedrock_guardrails", "guardrail_id": "gwtest1",
                "guardrail_version": "1", "action": action, "phase": phase}])
    };
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        extra_clusters: vec![("bedrock_guardrails".into(), guardrails.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"},
                          "aws": {"type": "bedrock", "cluster": "bedrock", "region": "eu-west-1"}},
            "models": {"guarded": {"provider": "demo"}, "masked": {"provider": "demo"}},
            "guardrails": {"policies": {
                "b": {"models": ["guarded"], "guards": guard("bedrock-topics", "block", "both")},
                "m": {"models": ["masked"], "guards": guard("bedrock-pii", "mask", "request")}}}})),
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), TEST_ACCESS_KEY_ID.into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                TEST_SECRET_ACCESS_KEY.into(),
            ),
        ],
        concurrency: 1,
        ..Default::default()
    });

    let r = gw.chat(&ask("guarded", "What is the capital of France?", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let asked = &guardrails.received()[0];
    assert_eq!(asked.path, "/guardrail/gwtest1/version/1/apply");
    assert_eq!(asked.header("content-type"), Some("application/json"));
    assert_eq!(
        asked.header("host"),
        Some("bedrock-runtime.eu-west-1.amazonaws.com")
    );
    let auth = asked.header("authorization").unwrap_or_default();
    assert!(
        auth.contains("/eu-west-1/bedrock/aws4_request"),
        "scope: {auth}"
    );
    assert_eq!(
        asked.json(),
        json!({"source": "INPUT", "content": [{"text": {"text": "Be brief."}},
                                              {"text": {"text": "What is the capital of France?"}}]})
    );
    assert_eq!(guardrails.received()[1].json()["source"], "OUTPUT");

    let before = fake.received().len();
    let r = gw.chat(&ask("guarded", "Give me stock tips", false));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guardrail_blocked");
    assert_eq!(
        fake.received().len(),
        before,
        "nothing blocked reaches the provider"
    );

    // The answer: its texts go as OUTPUT, and a denied topic there replaces it.
    fake.push_reply(Reply::json(
        200,
        &json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "guarded",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Here are some stock tips."}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}),
    ));
    let r = gw.chat(&ask("guarded", "Tell me something", false));
    assert_eq!(
        r.json()["error"]["code"],
        "guardrail_blocked",
        "{}",
        r.text()
    );

    // Anonymized: Bedrock's masked text is what the provider receives.
    let r = gw.chat(&ask("masked", "Mail jane@example.com today.", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = fake
        .received()
        .last()
        .expect("the provider was asked")
        .json();
    assert_eq!(sent["messages"][1]["content"], "Mail {EMAIL} today.");
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
}
