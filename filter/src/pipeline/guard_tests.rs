//! The guardrail stage, natively: what the request forwards or refuses, the webhook callouts
//! and their failure modes, the answer restored, the client's network checked.

use super::*;

fn guarded(policies: Value) -> Rc<Config> {
    config(json!({"guardrails": {"policies": policies}}))
}

fn ask(content: &str) -> Value {
    json!({"model": "demo-chat", "messages": [{"role": "user", "content": content}]})
}

fn forwarded(effects: &[Effect]) -> Option<Value> {
    effects.iter().find_map(|e| match e {
        Effect::ReplaceRequestBody(b) => serde_json::from_slice(b).ok(),
        _ => None,
    })
}

#[test]
fn a_mask_rewrites_the_forwarded_body_and_a_block_answers_400() {
    let cfg = guarded(json!({"p": {"all": true, "guards": [
        {"name": "mail", "kind": "email", "action": "mask", "restore": true},
        {"name": "no-ssn", "kind": "us_ssn", "action": "block"}]}}));
    let mut host = chat_host(&ask("write to jane@example.com"));
    host.request_headers.insert("content-length", "99".into());
    let mut request = Request::new(Rc::clone(&cfg), 0, host.now());
    assert_eq!(request.on_request_headers(&host, false), Flow::Continue);
    assert!(request
        .take_effects()
        .contains(&Effect::RemoveRequestHeader("content-length")));
    assert_eq!(
        request.on_request_body(&host, host.request_body.len(), true),
        Flow::Continue
    );
    let effects = request.take_effects();
    let sent = forwarded(&effects).expect("the body is replaced");
    assert_eq!(sent["messages"][0]["content"], "write to [EMAIL_1]");
    assert!(property(&effects, state::ROUTE).is_some(), "routed");

    // The answer carries the placeholder back: restored in the JSON the client gets.
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
    request.on_response_headers(&host);
    assert!(request
        .take_effects()
        .contains(&Effect::SetResponseHeader("content-length", None)));
    host.response_body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sent to [EMAIL_1]."}}]})
        .to_string()
        .into_bytes();
    let len = host.response_body.len();
    assert_eq!(
        request.on_response_body(&host, len, false),
        Flow::Pause,
        "read whole"
    );
    request.on_response_body(&host, len, true);
    let body = request.take_effects().into_iter().find_map(|e| match e {
        Effect::ReplaceResponseBody(b) => serde_json::from_slice::<Value>(&b).ok(),
        _ => None,
    });
    assert_eq!(
        body.unwrap()["choices"][0]["message"]["content"],
        "Sent to jane@example.com."
    );
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::GUARDRAILS), Some("mail:mask:request"));
    assert_eq!(
        counted(&log, "gw.guardrail.decisions"),
        vec![(
            "gw.guardrail.decisions;guard=mail;action=mask;phase=request".into(),
            1
        )]
    );

    let host = chat_host(&ask("my SSN is 123-45-6789"));
    let mut request = Request::new(cfg, 0, host.now());
    send(&mut request, &host);
    let effects = request.take_effects();
    let (status, body) = reply_of(&effects).expect("refused");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "guardrail_blocked");
    assert!(property(&effects, state::ROUTE).is_none(), "never routed");
}

fn webhook(mode: &str) -> Rc<Config> {
    guarded(json!({"p": {"all": true, "guards": [
        {"name": "tox", "kind": "webhook", "cluster": "guard", "path": "/check", "phase": "request",
         "action": "block", "timeout_ms": 200, "failure_mode": mode}]}}))
}

#[test]
fn a_webhook_allows_blocks_and_fails_by_its_mode() {
    // Allowed: the request waits, then goes on.
    let host = chat_host(&ask("hello there"));
    let mut request = Request::new(webhook("closed"), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Pause);
    request.take_effects();
    let calls = host.http_calls.borrow().clone();
    assert_eq!(calls[0].0, "/check");
    let asked: Value = serde_json::from_slice(&calls[0].1).unwrap();
    assert_eq!(
        asked,
        json!({"guard": "tox", "phase": "request", "model": "demo-chat", "key_id": null, "texts": ["hello there"]})
    );
    request.on_http_call_answer(&host, 1, "200", br#"{"action":"allow"}"#);
    let effects = request.take_effects();
    assert!(property(&effects, state::ROUTE).is_some());
    assert_eq!(effects.last(), Some(&Effect::ResumeRequest));

    // Blocked: a 400 naming the guard.
    let host = chat_host(&ask("bad words"));
    let mut request = Request::new(webhook("closed"), 0, host.now());
    send(&mut request, &host);
    request.on_http_call_answer(&host, 1, "200", br#"{"action":"block","reason":"toxic"}"#);
    let (status, body) = reply_of(&request.take_effects()).unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("guardrail_blocked"))
    );

    // Timed out (Envoy's 504): closed refuses with 503, open goes on; both counted.
    for (mode, refused) in [("closed", true), ("open", false)] {
        let host = chat_host(&ask("hello"));
        let mut request = Request::new(webhook(mode), 0, host.now());
        send(&mut request, &host);
        request.on_http_call_answer(&host, 1, "504", b"upstream request timeout");
        let effects = request.take_effects();
        let outcome = if refused {
            "failed_closed"
        } else {
            "failed_open"
        };
        assert_eq!(
            counted(&effects, "gw.guardrail.decisions"),
            vec![(
                format!("gw.guardrail.decisions;guard=tox;action={outcome};phase=request"),
                1
            )]
        );
        match reply_of(&effects) {
            Some((status, body)) => {
                assert!(refused, "{mode}");
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (503, Some("guardrail_unavailable"))
                );
            }
            None => {
                assert!(!refused, "{mode}");
                assert_eq!(effects.last(), Some(&Effect::ResumeRequest));
            }
        }
    }

    // A call that cannot even start fails closed at once.
    let mut host = chat_host(&ask("hello"));
    host.calls_fail = true;
    let mut request = Request::new(webhook("closed"), 0, host.now());
    send(&mut request, &host);
    let (status, _) = reply_of(&request.take_effects()).unwrap();
    assert_eq!(status, 503);
}

#[test]
fn webhook_replacements_mask_the_forwarded_body_and_come_back_restored() {
    let cfg = guarded(json!({"p": {"all": true, "guards": [
        {"name": "names", "kind": "webhook", "cluster": "guard", "phase": "request",
         "action": "mask", "restore": true, "failure_mode": "closed"}]}}));
    let mut host = chat_host(&json!({"model": "demo-chat", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Grüße an Zoë Weber"}]}));
    let mut request = Request::new(Rc::clone(&cfg), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Pause);
    request.take_effects();
    // "Zoë Weber" is bytes 11..21 of the second text ("ü", "ß" and "ë" are two bytes each).
    request.on_http_call_answer(
        &host,
        1,
        "200",
        br#"{"action":"mask","replacements":[{"text":1,"start":11,"end":21,"label":"PERSON"}]}"#,
    );
    let effects = request.take_effects();
    let sent = forwarded(&effects).expect("the buffered body is replaced");
    assert_eq!(sent["messages"][1]["content"], "Grüße an [PERSON_1]");
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
    assert_eq!(effects.last(), Some(&Effect::ResumeRequest));

    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    request.on_response_headers(&host);
    host.response_body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hallo [PERSON_1]!"}}]})
        .to_string()
        .into_bytes();
    let len = host.response_body.len();
    request.on_response_body(&host, len, true);
    let body = request.take_effects().into_iter().find_map(|e| match e {
        Effect::ReplaceResponseBody(b) => serde_json::from_slice::<Value>(&b).ok(),
        _ => None,
    });
    assert_eq!(
        body.unwrap()["choices"][0]["message"]["content"],
        "Hallo Zoë Weber!"
    );

    // A span that cuts a character is a failure of the guard: closed refuses.
    let host = chat_host(&ask("Grüße"));
    let mut request = Request::new(cfg, 0, host.now());
    send(&mut request, &host);
    request.on_http_call_answer(
        &host,
        1,
        "200",
        br#"{"action":"mask","replacements":[{"text":0,"start":0,"end":3}]}"#,
    );
    let (status, body) = reply_of(&request.take_effects()).unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("guardrail_unavailable"))
    );
}

#[test]
fn a_response_phase_callout_holds_the_answer_until_its_verdict() {
    let mut cfg = json!({"guardrails": {"policies": {"p": {"all": true, "guards": [
        {"name": "moderation", "kind": "openai_moderation", "provider": "demo",
         "cluster": "moderation", "phase": "response", "action": "block"}]}}}});
    cfg["providers"] =
        json!({"demo": {"type": "openai", "cluster": "provider_demo", "api_key_env": "KEY_ALICE"}});
    let cfg = config(cfg);
    for (flagged, expected) in [(false, "All fine."), (true, "guardrail_blocked")] {
        let mut host = chat_host(&ask("hello"));
        let mut request = Request::new(Rc::clone(&cfg), 0, host.now());
        assert_eq!(
            send(&mut request, &host),
            Flow::Continue,
            "no request-phase call"
        );
        request.take_effects();
        host.response_headers.insert(":status", "200".into());
        host.response_headers
            .insert("content-type", "application/json".into());
        request.on_response_headers(&host);
        host.response_body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "All fine."}}]})
            .to_string()
            .into_bytes();
        let len = host.response_body.len();
        assert_eq!(request.on_response_body(&host, len, true), Flow::Pause);
        let calls = host.http_calls.borrow().clone();
        assert_eq!(calls.len(), 1);
        let asked: Value = serde_json::from_slice(&calls[0].1).unwrap();
        assert_eq!(asked["input"], json!(["All fine."]));
        request.take_effects();
        let verdict = json!({"id": "modr-1", "model": "omni-moderation-latest", "results": [
            {"flagged": flagged, "categories": {"violence": flagged}, "category_scores": {"violence": 0.9}}]});
        request.on_http_call_answer(&host, 1, "200", verdict.to_string().as_bytes());
        let effects = request.take_effects();
        assert_eq!(effects.last(), Some(&Effect::ResumeResponse));
        let body = effects.iter().find_map(|e| match e {
            Effect::ReplaceResponseBody(b) => Some(String::from_utf8_lossy(b).to_string()),
            _ => None,
        });
        assert!(body.unwrap_or_default().contains(expected), "{flagged}");
    }
}

#[test]
fn a_key_outside_its_networks_is_refused() {
    let cfg = config(
        json!({"keys": {"alice": {"key_env": "KEY_ALICE", "allowed_networks": ["10.0.0.0/8"]}}}),
    );
    let mut host = chat_host(&hello(false));
    host.request_headers
        .insert("authorization", format!("Bearer {ALICE_KEY}"));
    for (source, allowed) in [("192.0.2.7:40000", false), ("10.1.2.3:40000", true)] {
        host.properties
            .insert("source.address".into(), source.into());
        let mut request = Request::new(Rc::clone(&cfg), 0, host.now());
        let flow = request.on_request_headers(&host, false);
        let reply = reply_of(&request.take_effects());
        if allowed {
            assert_eq!((flow, reply), (Flow::Continue, None), "{source}");
        } else {
            let (status, body) = reply.expect("refused");
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (403, Some("network_not_allowed"))
            );
        }
    }
}

#[test]
fn a_key_that_may_not_use_the_model_costs_no_guard_callout() {
    // Alice may use "demo-chat" only; a webhook guards every model.
    let cfg = config(json!({
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2"},
                   "other-chat": {"provider": "other", "model": "x"}},
        "keys": {"alice": {"key_env": "KEY_ALICE", "models": ["demo-chat"]}},
        "guardrails": {"policies": {"p": {"all": true, "guards": [
            {"name": "tox", "kind": "webhook", "cluster": "guard", "path": "/check",
             "phase": "request", "action": "block"}]}}}}));
    for (model, allowed) in [("other-chat", false), ("demo-chat", true)] {
        let mut host =
            chat_host(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
        host.request_headers
            .insert("authorization", format!("Bearer {ALICE_KEY}"));
        let mut request = Request::new(Rc::clone(&cfg), 0, host.now());
        let flow = send(&mut request, &host);
        let reply = reply_of(&request.take_effects());
        if allowed {
            assert_eq!((flow, reply), (Flow::Pause, None), "waits for the webhook");
            assert_eq!(host.http_calls.borrow().len(), 1);
        } else {
            let (status, body) = reply.expect("refused");
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (403, Some("model_not_allowed"))
            );
            assert!(host.http_calls.borrow().is_empty(), "no webhook call");
        }
    }
}
