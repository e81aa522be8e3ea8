//! The cache stage natively: a miss stores the answer as it passes, the same request is then
//! answered locally in the shape the client asked for, namespaces and `Cache-Control` apply,
//! entries expire, and hits count against request limits only.

use super::*;

type Headers = Vec<(&'static str, String)>;

const BOB_KEY: &str = "sk-gw-bob-9876543210";

fn cached_config(cache: Value) -> Rc<Config> {
    limited_config(cache, 100)
}

fn limited_config(cache: Value, requests_per_minute: u64) -> Rc<Config> {
    let bob = crate::sha256::hex(&crate::sha256::digest(BOB_KEY.as_bytes()));
    config(json!({
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2",
                                 "price": {"input": 1, "output": 2}}},
        "keys": {"alice": {"key_env": "KEY_ALICE", "team": "red", "limits": {"requests_per_minute": requests_per_minute, "tokens_per_minute": 5000}},
                 "bob": {"sha256": bob}},
        "teams": {"red": {}},
        "cache": cache,
    }))
}

fn default_cache() -> Value {
    json!({"models": {"demo-chat": {"ttl": 60}}})
}

/// An answer as the OpenAI reference shapes it (usage 9 in, 3 out).
const JSON_ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"demo-v2","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there you"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

fn stream_answer() -> String {
    let chunk = |delta: &str, finish: &str| {
        format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"demo-v2\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n")
    };
    [
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"Hello "}"#, "null"),
        chunk(r#"{"content":"there you"}"#, "null"),
        chunk("{}", "\"stop\""),
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"demo-v2\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n".into(),
        "data: [DONE]\n\n".into(),
    ]
    .concat()
}

fn with_key(mut host: FakeHost, key: &str) -> FakeHost {
    host.request_headers
        .insert("authorization", format!("Bearer {key}"));
    host
}

/// One request through a miss: its effects at the body and whether its answer was stored.
fn miss_and_answer(
    config: &Rc<Config>,
    host: &mut FakeHost,
    stream_answer_body: Option<&str>,
) -> Vec<Effect> {
    let mut request = Request::new(Rc::clone(config), 0, host.now());
    let flow = send(&mut request, host);
    assert_eq!(
        flow,
        Flow::Continue,
        "a miss goes to the provider: {:?}",
        request.take_effects()
    );
    let mut effects = request.take_effects();
    host.response_headers.insert(":status", "200".into());
    let (ct, body) = match stream_answer_body {
        Some(s) => ("text/event-stream", s.to_string()),
        None => ("application/json", JSON_ANSWER.to_string()),
    };
    host.response_headers.insert("content-type", ct.into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
    host.properties
        .insert(state::UPSTREAM_MODEL.into(), "demo-v2".into());
    host.response_body = body.into_bytes();
    request.on_response_headers(host);
    request.on_response_body(host, host.response_body.len(), true);
    request.on_log(host);
    effects.extend(request.take_effects());
    effects
}

/// One request that should hit: the reply's status, headers and body, and the log's effects.
fn hit(config: &Rc<Config>, host: &FakeHost) -> Option<(Headers, Vec<u8>, Vec<Effect>)> {
    let mut request = Request::new(Rc::clone(config), 0, host.now());
    if send(&mut request, host) == Flow::Continue {
        return None;
    }
    let effects = request.take_effects();
    let (headers, body) = effects.iter().find_map(|e| match e {
        Effect::Reply {
            status: 200,
            headers,
            body,
        } => Some((headers.clone(), body.clone())),
        _ => None,
    })?;
    // The local reply comes back through the response callbacks: left alone.
    assert_eq!(request.on_response_headers(host), Flow::Continue);
    assert!(request.take_effects().is_empty());
    request.on_log(host);
    Some((headers, body, request.take_effects()))
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn sse_data(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn a_stored_answer_is_replayed_in_the_shape_asked_whichever_way_it_came() {
    for stored_as_stream in [false, true] {
        for asked_stream in [false, true] {
            let config = cached_config(default_cache());
            let mut host = with_key(chat_host(&hello(stored_as_stream)), ALICE_KEY);
            let stream = stream_answer();
            let effects = miss_and_answer(
                &config,
                &mut host,
                stored_as_stream.then_some(stream.as_str()),
            );
            assert!(effects.contains(&Effect::SetResponseHeader(
                "x-gateway-cache",
                Some("miss".into())
            )));
            assert_eq!(
                counted(&effects, "gw.cache.stores"),
                vec![("gw.cache.stores;model=demo-chat;outcome=stored".into(), 1)]
            );
            let mut body = hello(asked_stream);
            if asked_stream {
                body["stream_options"] = json!({"include_usage": true});
            }
            host.request_body = body.to_string().into_bytes();
            let (headers, reply, log) = hit(&config, &host).expect("a hit");
            assert_eq!(header(&headers, "x-gateway-cache"), Some("hit"));
            assert_eq!(header(&headers, "age"), Some("0"));
            let case = format!("stored as stream {stored_as_stream}, asked {asked_stream}");
            if asked_stream {
                assert_eq!(
                    header(&headers, "content-type"),
                    Some("text/event-stream"),
                    "{case}"
                );
                assert!(reply.ends_with(b"data: [DONE]\n\n"), "{case}");
                let events = sse_data(&reply);
                let text: String = events
                    .iter()
                    .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
                    .collect();
                assert_eq!(text, "Hello there you", "{case}");
                assert_eq!(
                    events.last().unwrap()["usage"]["total_tokens"],
                    12,
                    "{case}"
                );
            } else {
                assert_eq!(
                    header(&headers, "content-type"),
                    Some("application/json"),
                    "{case}"
                );
                let v: Value = serde_json::from_slice(&reply).unwrap();
                assert_eq!(
                    v["choices"][0]["message"]["content"], "Hello there you",
                    "{case}"
                );
                assert_eq!(v["usage"]["total_tokens"], 12, "{case}");
            }
            assert_eq!(property(&log, state::PROVIDER), Some("cache"));
            assert_eq!(property(&log, state::COST_MICROS), Some("0"));
            // 9 input tokens at $1/M and 3 output at $2/M: 9 + 6 micro-dollars saved.
            assert_eq!(property(&log, state::CACHE_SAVED_MICROS), Some("15"));
            assert_eq!(
                counted(&log, "gw.cache.saved"),
                vec![("gw.cache.saved.microdollars;model=demo-chat".into(), 15)]
            );
        }
    }
}

#[test]
fn another_namespace_never_reads_an_entry() {
    let config = cached_config(default_cache());
    let mut host = with_key(chat_host(&hello(false)), ALICE_KEY);
    miss_and_answer(&config, &mut host, None);
    let mut bob = with_key(chat_host(&hello(false)), BOB_KEY);
    bob.store = std::mem::take(&mut host.store);
    assert!(hit(&config, &bob).is_none(), "bob is not in alice's team");
    assert!(
        hit(&config, &with_key(chat_host(&hello(false)), ALICE_KEY)).is_none(),
        "another Envoy's store"
    );
    // Global scope: one namespace for every caller.
    let config = cached_config(json!({"models": {"demo-chat": {"scope": "global"}}}));
    miss_and_answer(&config, &mut bob, None);
    host.store = std::mem::take(&mut bob.store);
    assert!(hit(&config, &host).is_some(), "alice reads what bob stored");
}

#[test]
fn a_key_that_may_not_use_the_model_is_never_served_an_entry() {
    // A global entry, and Bob limited to another model: refused 403 before any lookup.
    let bob = crate::sha256::hex(&crate::sha256::digest(BOB_KEY.as_bytes()));
    let config = config(json!({
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2"},
                   "other-chat": {"provider": "demo", "model": "x"}},
        "keys": {"alice": {"key_env": "KEY_ALICE"},
                 "bob": {"sha256": bob, "models": ["other-chat"]}},
        "cache": {"models": {"demo-chat": {"scope": "global"}}},
    }));
    let mut alice = with_key(chat_host(&hello(false)), ALICE_KEY);
    miss_and_answer(&config, &mut alice, None);
    let mut bob = with_key(chat_host(&hello(false)), BOB_KEY);
    bob.store = std::mem::take(&mut alice.store);
    let mut request = Request::new(Rc::clone(&config), 0, bob.now());
    send(&mut request, &bob);
    let (status, body) = reply_of(&request.take_effects()).expect("refused");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("model_not_allowed"))
    );
    alice.store = std::mem::take(&mut bob.store);
    assert!(
        hit(&config, &alice).is_some(),
        "the entry is there for alice"
    );
}

#[test]
fn cache_control_and_expiry_apply() {
    let config = cached_config(default_cache());
    let mut host = with_key(chat_host(&hello(false)), ALICE_KEY);
    // no-store: neither looked up nor stored.
    host.request_headers
        .insert("cache-control", "no-store".into());
    let effects = miss_and_answer(&config, &mut host, None);
    assert!(effects.contains(&Effect::SetResponseHeader(
        "x-gateway-cache",
        Some("bypass".into())
    )));
    assert!(counted(&effects, "gw.cache.stores").is_empty());
    host.request_headers.remove("cache-control");
    assert!(hit(&config, &host).is_none());
    // Stored now; no-cache skips the lookup (and stores again).
    host.request_headers
        .insert("cache-control", "no-cache".into());
    let effects = miss_and_answer(&config, &mut host, None);
    assert_eq!(counted(&effects, "gw.cache.stores").len(), 1);
    host.request_headers
        .insert("cache-control", "max-age=5".into());
    host.now = Some(host.now() + Duration::from_secs(10));
    assert!(hit(&config, &host).is_none(), "older than max-age");
    host.request_headers.remove("cache-control");
    let (headers, _, _) = hit(&config, &host).expect("within the ttl");
    assert_eq!(header(&headers, "age"), Some("10"));
    host.now = Some(host.now() + Duration::from_secs(50));
    assert!(hit(&config, &host).is_none(), "past the ttl of 60 s");
}

#[test]
fn only_complete_answers_that_fit_are_stored() {
    let config = cached_config(json!({"models": {"demo-chat": {"max_entry_bytes": 100}}}));
    let mut host = with_key(chat_host(&hello(false)), ALICE_KEY);
    let effects = miss_and_answer(&config, &mut host, None);
    assert_eq!(
        counted(&effects, "gw.cache.stores"),
        vec![(
            "gw.cache.stores;model=demo-chat;outcome=too_large".into(),
            1
        )]
    );
    let config = cached_config(default_cache());
    let cut = stream_answer().replace("data: [DONE]\n\n", "");
    let effects = miss_and_answer(&config, &mut host, Some(&cut));
    assert_eq!(
        counted(&effects, "gw.cache.stores"),
        vec![(
            "gw.cache.stores;model=demo-chat;outcome=malformed".into(),
            1
        )]
    );
    let truncated = JSON_ANSWER.replace("\"stop\"", "\"length\"");
    host.response_headers
        .insert("content-type", "application/json".into());
    host.response_body = truncated.into_bytes();
    let mut request = Request::new(Rc::clone(&config), 0, host.now());
    send(&mut request, &host);
    request.on_response_headers(&host);
    request.on_response_body(&host, host.response_body.len(), true);
    assert_eq!(
        counted(&request.take_effects(), "gw.cache.stores"),
        vec![(
            "gw.cache.stores;model=demo-chat;outcome=incomplete".into(),
            1
        )]
    );
    assert!(hit(&config, &host).is_none());
}

#[test]
fn hits_take_request_limits_but_no_tokens() {
    let config = limited_config(default_cache(), 3);
    let mut host = with_key(chat_host(&hello(false)), ALICE_KEY);
    miss_and_answer(&config, &mut host, None);
    // The miss took 1 of alice's 3 requests a minute; two hits take the rest.
    for _ in 0..2 {
        let (headers, _, _) = hit(&config, &host).expect("a hit");
        assert!(header(&headers, "x-ratelimit-remaining-requests").is_some());
    }
    let tokens = host
        .store
        .get(
            &crate::quota::Counter::new(
                crate::quota::Scope::Key,
                "alice",
                crate::quota::Kind::Tokens,
                crate::quota::Window::Minute,
                5000,
            )
            .store_key(),
        )
        .unwrap();
    let mut request = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Pause);
    let (status, body) = reply_of(&request.take_effects()).unwrap();
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (429, Some("requests"))
    );
    // The hits left the token counter as the miss left it.
    let after = host
        .store
        .get(
            &crate::quota::Counter::new(
                crate::quota::Scope::Key,
                "alice",
                crate::quota::Kind::Tokens,
                crate::quota::Window::Minute,
                5000,
            )
            .store_key(),
        )
        .unwrap();
    assert_eq!(tokens, after);
}

#[test]
fn without_a_cache_nothing_changes() {
    let config = config(json!({}));
    let mut host = chat_host(&hello(false));
    let effects = miss_and_answer(&config, &mut host, None);
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::SetResponseHeader("x-gateway-cache", _))));
    assert_eq!(property(&effects, state::CACHE), None);
    assert!(counted(&effects, "gw.cache").is_empty());
}

#[test]
fn a_pinned_provider_has_entries_of_its_own() {
    let config = cached_config(default_cache());
    let mut host = with_key(chat_host(&hello(false)), ALICE_KEY);
    miss_and_answer(&config, &mut host, None);
    host.request_headers
        .insert("x-gateway-provider", "demo".into());
    assert!(hit(&config, &host).is_none(), "pinned: another entry");
    miss_and_answer(&config, &mut host, None);
    assert!(hit(&config, &host).is_some(), "pinned again: its own entry");
}

#[test]
fn a_hit_of_a_model_with_log_bodies_goes_to_the_body_log() {
    let config = config(json!({
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2", "log_bodies": true}},
        "cache": default_cache()}));
    let mut host = chat_host(&hello(false));
    miss_and_answer(&config, &mut host, None);
    let (_, _, log) = hit(&config, &host).expect("a hit");
    let request = property(&log, state::LOG_REQUEST).expect("the request logged");
    assert_eq!(request.as_bytes(), host.request_body.as_slice());
    assert_eq!(property(&log, state::LOG_RESPONSE), Some(JSON_ANSWER));
}
