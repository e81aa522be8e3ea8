//! The request's decisions, natively: a host double stands in for Envoy (headers, bodies,
//! properties, shared data, callouts), and the tests read the effects the machine returns.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::*;
use crate::quota::MemoryStore;
use crate::state;

/// An HTTP call's cluster and extra headers.
pub(super) type CallHeaders = (String, Vec<(String, String)>);

/// Envoy as the machine sees it, scripted by the test.
#[derive(Default)]
pub(super) struct FakeHost {
    pub(super) now: Option<SystemTime>,
    pub(super) request_headers: HashMap<&'static str, String>,
    pub(super) response_headers: HashMap<&'static str, String>,
    pub(super) request_body: Vec<u8>,
    pub(super) response_body: Vec<u8>,
    pub(super) properties: HashMap<String, String>,
    pub(super) store: MemoryStore,
    pub(super) grpc_calls: RefCell<Vec<Vec<u8>>>,
    pub(super) http_calls: RefCell<Vec<(String, Vec<u8>)>>,
    /// The cluster and the extra headers of each HTTP call.
    pub(super) http_call_headers: RefCell<Vec<CallHeaders>>,
    /// Callouts fail to start (the cluster is missing).
    pub(super) calls_fail: bool,
    pub(super) random_calls: RefCell<u32>,
}

impl Host for FakeHost {
    fn now(&self) -> SystemTime {
        self.now
            .unwrap_or(UNIX_EPOCH + Duration::from_secs(1_780_000_000))
    }
    fn request_headers(&self) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .request_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect())
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.get(name).cloned()
    }
    fn request_body(&self, len: usize) -> Vec<u8> {
        self.request_body[..len.min(self.request_body.len())].to_vec()
    }
    fn response_body(&self, len: usize) -> Vec<u8> {
        self.response_body[..len.min(self.response_body.len())].to_vec()
    }
    fn property(&self, path: &[&str]) -> Option<String> {
        self.properties.get(&path.join(".")).cloned()
    }
    fn property_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.properties.get(name).map(|v| v.clone().into_bytes())
    }

    fn store(&self) -> &dyn SharedStore {
        &self.store
    }
    fn call_grpc(&self, call: GrpcCall<'_>) -> Result<u32, String> {
        if self.calls_fail {
            return Err("no cluster".into());
        }
        let mut calls = self.grpc_calls.borrow_mut();
        calls.push(call.message.to_vec());
        Ok(calls.len() as u32)
    }
    fn call_http(&self, call: HttpCall<'_>) -> Result<u32, String> {
        if self.calls_fail {
            return Err("no cluster".into());
        }
        self.http_call_headers.borrow_mut().push((
            call.cluster.to_string(),
            call.headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        let mut calls = self.http_calls.borrow_mut();
        calls.push((call.path.to_string(), call.body.to_vec()));
        Ok(calls.len() as u32)
    }
    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), String> {
        // Distinct per call, as a nonce must be.
        let n = self.random_calls.replace_with(|n| *n + 1);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n as u8).wrapping_add(i as u8);
        }
        Ok(())
    }
}

const ALICE_KEY: &str = "sk-gw-alice-0123456789";

/// The cache's shared-tier key in the tests' environment: 32 bytes of 7, in base64.
pub(super) const SEAL_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

pub(super) fn config(extra: Value) -> Rc<Config> {
    let mut doc = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"},
                      "other": {"type": "openai", "cluster": "provider_other"}},
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2"}},
        "max_request_bytes": 4096
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    let env = |name: &str| match name {
        "KEY_ALICE" => Some(ALICE_KEY.to_string()),
        "GATEWAY_CACHE_KEY" => Some(SEAL_KEY.to_string()),
        _ => None,
    };
    Rc::new(Config::from_json(doc.to_string().as_bytes(), &env).expect("test config"))
}

fn chat_host(body: &Value) -> FakeHost {
    let mut host = FakeHost::default();
    host.request_headers.insert(":method", "POST".into());
    host.request_headers
        .insert(":path", "/v1/chat/completions".into());
    host.request_body = body.to_string().into_bytes();
    host
}

fn hello(stream: bool) -> Value {
    json!({"model": "demo-chat", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// Runs the request side to its end; returns the flow of the body event.
pub(super) fn send(request: &mut Request, host: &FakeHost) -> Flow {
    assert_eq!(request.on_request_headers(host, false), Flow::Continue);
    request.on_request_body(host, host.request_body.len(), true)
}

pub(super) fn reply_of(effects: &[Effect]) -> Option<(u32, Value)> {
    effects.iter().find_map(|e| match e {
        Effect::Reply { status, body, .. } => {
            Some((*status, serde_json::from_slice(body).unwrap_or(Value::Null)))
        }
        _ => None,
    })
}

pub(super) fn property<'a>(effects: &'a [Effect], name: &str) -> Option<&'a str> {
    effects.iter().rev().find_map(|e| match e {
        Effect::SetProperty(n, v) if *n == name => std::str::from_utf8(v).ok(),
        _ => None,
    })
}

fn counted(effects: &[Effect], prefix: &str) -> Vec<(String, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Count(name, by) if name.starts_with(prefix) => Some((name.clone(), *by)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_valid_chat_request_is_routed_through_filter_state() {
    let mut host = chat_host(&hello(false));
    // The client's credentials and the pin header never go further, even on an open gateway.
    host.request_headers
        .insert("authorization", "Bearer sk-client".into());
    host.request_headers.insert("x-api-key", "sk-client".into());
    host.request_headers
        .insert("x-gateway-provider", "demo".into());
    let mut request = Request::new(config(json!({})), 0, host.now());
    assert_eq!(request.on_request_headers(&host, false), Flow::Continue);
    let headers = request.take_effects();
    for credential in ["authorization", "x-api-key", "x-gateway-provider"] {
        assert!(headers.contains(&Effect::RemoveRequestHeader(credential)));
    }
    // The body is buffered to its end first.
    assert_eq!(request.on_request_body(&host, 10, false), Flow::Pause);
    assert!(request.take_effects().is_empty());
    let flow = request.on_request_body(&host, host.request_body.len(), true);
    assert_eq!(flow, Flow::Continue);
    let effects = request.take_effects();
    assert_eq!(property(&effects, state::ROUTE), Some("chain1"));
    assert_eq!(property(&effects, state::TARGET), Some("provider_demo"));
    assert_eq!(property(&effects, state::MODEL), Some("demo-chat"));
    assert_eq!(property(&effects, state::PROVIDER), Some("demo"));
    assert_eq!(
        property(&effects, state::BODY).map(str::as_bytes),
        Some(host.request_body.as_slice()),
        "the provider filter gets the client's body"
    );
    assert_eq!(effects.last(), Some(&Effect::ClearRouteCache));
}

#[test]
fn refusals_are_local_replies_in_the_openai_shape() {
    let too_big =
        json!({"model": "demo-chat", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let cases = [
        (
            chat_host(&json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})),
            404,
            "model_not_found",
        ),
        (
            chat_host(&json!({"model": "demo-chat"})),
            400,
            "missing_required_parameter",
        ),
        (chat_host(&too_big), 413, "request_too_large"),
    ];
    for (host, status, code) in cases {
        let mut request = Request::new(config(json!({})), 0, host.now());
        assert_eq!(send(&mut request, &host), Flow::Pause, "{code}");
        let effects = request.take_effects();
        let (got, body) = reply_of(&effects).expect("a local reply");
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)));
        assert_eq!(property(&effects, state::ROUTE), None, "{code}: not routed");
        request.on_log(&host);
        let log = request.take_effects();
        assert_eq!(property(&log, state::ERROR_CODE), Some(code));
        assert_eq!(property(&log, state::FAULT), Some("client"));
    }
}

#[test]
fn gateway_keys_are_checked_and_limits_counted_in_shared_data() {
    let config = config(json!({"keys": {"alice": {"key_env": "KEY_ALICE",
        "limits": {"requests_per_minute": 1}}}}));
    let mut host = chat_host(&hello(false));
    // No key: 401 with the header the SDKs expect.
    let mut anonymous = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(anonymous.on_request_headers(&host, false), Flow::Pause);
    match anonymous.take_effects().first() {
        Some(Effect::Reply {
            status, headers, ..
        }) => {
            assert_eq!(*status, 401);
            assert!(headers.contains(&("www-authenticate", "Bearer".into())));
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    host.request_headers
        .insert("authorization", format!("Bearer {ALICE_KEY}"));
    let mut first = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut first, &host), Flow::Continue);
    let effects = first.take_effects();
    assert_eq!(property(&effects, state::KEY_ID), Some("alice"));
    // The second request in the same minute is over alice's limit of 1: the counter lives in
    // the host's shared data, not in the request.
    let mut second = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut second, &host), Flow::Pause);
    let effects = second.take_effects();
    let (status, body) = reply_of(&effects).expect("a 429");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    match effects.iter().find(|e| matches!(e, Effect::Reply { .. })) {
        Some(Effect::Reply { headers, .. }) => assert!(
            headers
                .iter()
                .any(|(k, v)| *k == "x-ratelimit-limit-requests" && v == "1"),
            "{headers:?}"
        ),
        _ => unreachable!(),
    }
}

#[test]
fn a_stream_is_observed_its_usage_chunk_stripped_and_the_request_accounted() {
    let mut host = chat_host(&hello(true));
    let mut request = Request::new(config(json!({})), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    request.take_effects();
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "text/event-stream".into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
    host.properties
        .insert(state::UPSTREAM_MODEL.into(), "demo-v2".into());
    host.properties.insert(state::ATTEMPT.into(), "1".into());
    assert_eq!(request.on_response_headers(&host), Flow::Continue);
    let headers = request.take_effects();
    assert!(headers.contains(&Effect::SetResponseHeader(
        "x-gateway-model",
        Some("demo-v2".into())
    )));
    assert!(headers.contains(&Effect::SetResponseHeader("content-length", None)));
    // The OpenAI reference's stream with `include_usage`: content chunks, a usage chunk with
    // empty `choices`, `[DONE]`. The client did not ask for usage: that chunk goes.
    let content = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n";
    let usage = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n";
    host.response_body = format!("{content}{usage}data: [DONE]\n\n").into_bytes();
    request.on_response_body(&host, host.response_body.len(), true);
    let body = request.take_effects();
    assert_eq!(
        body,
        vec![Effect::ReplaceResponseBody(
            format!("{content}data: [DONE]\n\n").into_bytes()
        )]
    );
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::TOTAL_TOKENS), Some("10"));
    assert_eq!(property(&log, state::ERROR_CODE), None);
    let requests = counted(&log, "gw.requests");
    assert_eq!(requests.len(), 1, "{log:?}");
    assert!(requests[0].0.contains(";provider=demo") && requests[0].0.contains("status_class=2xx"));
    assert_eq!(
        counted(
            &log,
            "gw.tokens;model=demo-chat;provider=demo;operation=chat;token_type=input"
        ),
        vec![(
            "gw.tokens;model=demo-chat;provider=demo;operation=chat;token_type=input".to_string(),
            9
        )]
    );
}

#[test]
fn a_provider_refusing_the_gateways_key_becomes_a_502_of_the_gateway() {
    let mut host = chat_host(&hello(false));
    let mut request = Request::new(config(json!({})), 0, host.now());
    send(&mut request, &host);
    request.take_effects();
    host.response_headers.insert(":status", "401".into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
    request.on_response_headers(&host);
    let effects = request.take_effects();
    assert!(effects.contains(&Effect::SetResponseHeader(":status", Some("502".into()))));
    host.response_body = br#"{"error":{"message":"Incorrect API key provided: sk-abc"}}"#.to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    let body = request.take_effects();
    let Some(Effect::ReplaceResponseBody(sent)) = body.first() else {
        panic!("{body:?}")
    };
    let sent: Value = serde_json::from_slice(sent).unwrap();
    assert_eq!(sent["error"]["code"], "provider_auth_failed");
    assert!(
        !sent.to_string().contains("sk-abc"),
        "the provider's message is not passed on"
    );
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::FAULT), Some("gateway"));
}

#[test]
fn an_answer_envoy_reset_is_the_providers_or_the_clients_fault() {
    for (details, code, fault) in [
        (
            "upstream_reset_after_response_started{remote_reset}",
            "upstream_stream_reset",
            "provider",
        ),
        (
            "downstream_remote_disconnect",
            "client_disconnected",
            "client",
        ),
    ] {
        let mut host = chat_host(&hello(true));
        let mut request = Request::new(config(json!({})), 0, host.now());
        send(&mut request, &host);
        host.response_headers.insert(":status", "200".into());
        host.response_headers
            .insert("content-type", "text/event-stream".into());
        request.on_response_headers(&host);
        host.response_body = b"data: {\"choices\":[]}\n\n".to_vec();
        request.on_response_body(&host, host.response_body.len(), false);
        request.take_effects();
        host.properties
            .insert("response.code_details".into(), details.into());
        request.on_log(&host);
        let log = request.take_effects();
        assert_eq!(property(&log, state::ERROR_CODE), Some(code));
        assert_eq!(property(&log, state::FAULT), Some(fault));
    }
}

#[test]
fn the_classifier_is_asked_and_its_answer_resumes_the_request() {
    let routed = json!({"models": {"routed": {"targets": [
            {"provider": "demo", "model": "a", "tier": "default"},
            {"provider": "other", "model": "b", "tier": "other"}],
        "classifier": {"cluster": "classifier", "path": "/select", "timeout_ms": 300, "default_tier": "default"}}}});
    let body = json!({"model": "routed", "messages": [{"role": "user", "content": "hi"}]});
    let host = chat_host(&body);
    let mut request = Request::new(config(routed.clone()), 0, host.now());
    assert_eq!(
        send(&mut request, &host),
        Flow::Pause,
        "waits for the classifier"
    );
    assert!(request
        .take_effects()
        .iter()
        .all(|e| !matches!(e, Effect::SetProperty(..))));
    let calls = host.http_calls.borrow().clone();
    assert_eq!(calls.len(), 1);
    let asked: Value = serde_json::from_slice(&calls[0].1).unwrap();
    assert_eq!(
        asked["llm_providers"][1],
        json!({"provider": "other", "model": "b"})
    );
    let answer = br#"{"providers":[{"provider":"other","model":"b"}]}"#;
    request.on_classifier_answer(&host, "200", answer);
    let effects = request.take_effects();
    assert_eq!(property(&effects, state::TARGET), Some("provider_other"));
    assert_eq!(effects.last(), Some(&Effect::ResumeRequest));
    // A classifier that cannot be reached: the default tier, at once, no pause.
    let mut unreachable = chat_host(&body);
    unreachable.calls_fail = true;
    let mut request = Request::new(config(routed), 0, unreachable.now());
    assert_eq!(send(&mut request, &unreachable), Flow::Continue);
    let effects = request.take_effects();
    assert_eq!(property(&effects, state::TARGET), Some("provider_demo"));
}

#[test]
fn the_rate_limit_service_is_asked_and_its_failure_mode_applies() {
    let service = |mode: &str| {
        json!({"rate_limit_service": {"cluster": "ratelimit", "domain": "ai-gateway",
            "timeout_ms": 200, "failure_mode": mode, "units": ["requests"]}})
    };
    // Asked once per unit; an over-limit answer is a 429.
    let host = chat_host(&hello(false));
    let mut request = Request::new(config(service("deny")), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Pause);
    request.take_effects();
    assert_eq!(host.grpc_calls.borrow().len(), 1);
    // RateLimitResponse { overall_code: OVER_LIMIT (2) }: field 1, varint 2.
    request.on_rate_limit_answer(&host, 1, 0, Some(&[0x08, 0x02]));
    let (status, _) = reply_of(&request.take_effects()).expect("a 429");
    assert_eq!(status, 429);
    // OK (1): the request goes on.
    let mut request = Request::new(config(service("deny")), 0, host.now());
    send(&mut request, &host);
    request.take_effects();
    request.on_rate_limit_answer(&host, 2, 0, Some(&[0x08, 0x01]));
    assert_eq!(request.take_effects(), vec![Effect::ResumeRequest]);
    // The service unreachable: `deny` answers 503, `allow` goes on, both counted.
    for (mode, expected) in [("deny", Some(503)), ("allow", None)] {
        let mut request = Request::new(config(service(mode)), 0, host.now());
        send(&mut request, &host);
        request.take_effects();
        let token = host.grpc_calls.borrow().len() as u32;
        request.on_rate_limit_answer(&host, token, 14, None);
        let effects = request.take_effects();
        assert_eq!(reply_of(&effects).map(|(s, _)| s), expected, "{mode}");
        assert_eq!(
            counted(&effects, "gw.ratelimit_service.failures").len(),
            1,
            "{mode}"
        );
    }
}

/// The gateway filter and the provider filter in one VM: the decision goes over in the VM (no
/// body or decision fields in filter state), the attempt translates from it and says who served,
/// and nothing outlives the request.
#[test]
fn the_decision_is_handed_to_the_provider_filter_in_the_vm() {
    use super::attempt::ProviderAttempt;
    handoff::note_provider_filter_here();
    let config = config(json!({}));
    let mut host = chat_host(&hello(false));
    let mut request = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    let effects = request.take_effects();
    assert_eq!(
        property(&effects, state::BODY),
        None,
        "the body stays in the VM"
    );
    assert_eq!(property(&effects, state::MODEL), None);
    let id = property(&effects, state::HANDOFF)
        .expect("a handoff id")
        .to_string();
    // The attempt, as Envoy runs it in the provider cluster.
    let mut upstream = FakeHost::default();
    upstream
        .properties
        .insert(state::HANDOFF.into(), id.clone());
    upstream
        .properties
        .insert("xds.cluster_name".into(), "provider_demo".into());
    upstream
        .request_headers
        .insert("x-forwarded-for", "10.0.0.1".into());
    let mut attempt = ProviderAttempt::new(Rc::clone(&config));
    assert_eq!(attempt.on_request_headers(&upstream), Flow::Continue);
    let sent = attempt.take_effects();
    assert!(sent.contains(&Effect::SetRequestHeader(
        ":path".into(),
        Some("/v1/chat/completions".into())
    )));
    assert!(sent.contains(&Effect::SetRequestHeader("x-forwarded-for".into(), None)));
    assert!(
        sent.iter().all(|e| !matches!(e, Effect::SetProperty(..))),
        "nothing written back as filter state: {sent:?}"
    );
    // The provider's model name is in the rewritten body.
    assert_eq!(attempt.on_request_body(true), Flow::Continue);
    let Some(Effect::ReplaceRequestBody(body)) = attempt.take_effects().pop() else {
        panic!("the body is rewritten for the provider")
    };
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["model"], "demo-v2");
    // The gateway filter learns who served, from the VM.
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    request.on_response_headers(&host);
    let headers = request.take_effects();
    assert!(headers.contains(&Effect::SetResponseHeader(
        "x-gateway-model",
        Some("demo-v2".into())
    )));
    assert!(headers.contains(&Effect::SetResponseHeader(
        "x-gateway-attempts",
        Some("1".into())
    )));
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::UPSTREAM_MODEL), Some("demo-v2"));
    assert_eq!(property(&log, state::MODEL), Some("demo-chat"));
    assert_eq!(handoff::live(), 0, "released at the end of the request");
    drop(request);
    assert!(handoff::find(id.parse().unwrap()).is_none());
}

#[path = "cache_semantic_shared_tests.rs"]
mod cache_semantic_shared_tests;
#[path = "cache_semantic_tests.rs"]
mod cache_semantic_tests;
#[path = "cache_shared_tests.rs"]
mod cache_shared_tests;
#[path = "cache_tests.rs"]
mod cache_tests;
#[path = "guard_tests.rs"]
mod guard_tests;
