//! The semantic layer of the cache stage natively: after an exact miss and admission, the
//! embeddings call goes to the loopback cluster with the configured key; a similar request of
//! the same context is answered from the stored entry (and fills the exact cache), a
//! dissimilar one goes on; a failed call is a miss; a turn after a tool result is not compared.

use super::*;

const CLIENT_KEY: &str = "sk-gw-client-0123456789";
const SEMANTIC_KEY: &str = "sk-gw-semantic-0123456789";

fn semantic_config(threshold: f64, tokens_per_minute: u64) -> Rc<Config> {
    let hash = |k: &str| crate::sha256::hex(&crate::sha256::digest(k.as_bytes()));
    let doc = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"demo-chat": {"provider": "demo", "model": "demo-v2"},
                   "demo-embed": {"provider": "demo", "model": "embed-v1"}},
        "keys": {"client": {"sha256": hash(CLIENT_KEY), "team": "red",
                            "limits": {"tokens_per_minute": tokens_per_minute}},
                 "semantic": {"sha256": hash(SEMANTIC_KEY), "models": ["demo-embed"]}},
        "teams": {"red": {}},
        "cache": {"models": {"demo-chat": {"ttl": 60, "semantic": {
            "embeddings_model": "demo-embed", "key_env": "SEM_KEY", "threshold": threshold}}}}
    });
    let env = |name: &str| (name == "SEM_KEY").then(|| SEMANTIC_KEY.to_string());
    Rc::new(Config::from_json(doc.to_string().as_bytes(), &env).expect("semantic config"))
}

fn host_asking(messages: Value) -> FakeHost {
    let mut host = chat_host(&json!({"model": "demo-chat", "messages": messages}));
    host.request_headers
        .insert("authorization", format!("Bearer {CLIENT_KEY}"));
    host
}

fn ask(text: &str) -> FakeHost {
    host_asking(
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]),
    )
}

/// The same host (its shared data) sending another body.
fn again(host: &mut FakeHost, body: Value) {
    host.request_body = body.to_string().into_bytes();
    host.response_body.clear();
    host.response_headers.clear();
}

fn brief(text: &str) -> Value {
    json!({"model": "demo-chat", "messages": [{"role": "system", "content": "be brief"},
        {"role": "user", "content": text}]})
}

fn embeddings_answer(vector: &[f32]) -> Vec<u8> {
    json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}]})
        .to_string()
        .into_bytes()
}

/// An answer as the OpenAI reference shapes it (usage 9 in, 3 out).
const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"demo-v2","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

/// Sends the request; on the embeddings call answers `vector`; returns the request and every
/// effect so far.
fn through_embeddings(
    config: &Rc<Config>,
    host: &FakeHost,
    vector: &[f32],
) -> (Request, Vec<Effect>) {
    let mut request = Request::new(Rc::clone(config), 0, host.now());
    assert_eq!(
        send(&mut request, host),
        Flow::Pause,
        "waits for the embeddings call"
    );
    let mut effects = request.take_effects();
    let token = host.http_calls.borrow().len() as u32;
    request.on_http_call_answer(host, token, "200", &embeddings_answer(vector));
    effects.extend(request.take_effects());
    (request, effects)
}

fn answer_and_log(request: &mut Request, host: &mut FakeHost) -> Vec<Effect> {
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
    host.properties
        .insert(state::UPSTREAM_MODEL.into(), "demo-v2".into());
    host.response_body = ANSWER.as_bytes().to_vec();
    request.on_response_headers(host);
    request.on_response_body(host, host.response_body.len(), true);
    request.on_log(host);
    request.take_effects()
}

fn reply_headers(effects: &[Effect]) -> Option<Vec<(&'static str, String)>> {
    effects.iter().find_map(|e| match e {
        Effect::Reply {
            status: 200,
            headers,
            ..
        } => Some(headers.clone()),
        _ => None,
    })
}

fn header_of<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_similar_question_is_answered_from_the_stored_entry() {
    let config = semantic_config(0.9, 100_000);
    let mut first = ask("What is the capital of France?");
    let (mut request, effects) = through_embeddings(&config, &first, &[1.0, 0.0]);
    // The call went to the loopback cluster with the semantic key, asking the embeddings model.
    let (cluster, headers) = first.http_call_headers.borrow()[0].clone();
    assert_eq!(cluster, "gateway_loopback");
    assert_eq!(
        headers,
        vec![(
            "authorization".to_string(),
            format!("Bearer {SEMANTIC_KEY}")
        )]
    );
    let (path, body) = first.http_calls.borrow()[0].clone();
    assert_eq!(path, "/v1/embeddings");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"model": "demo-embed", "input": "What is the capital of France?"})
    );
    // A miss: the request goes on.
    assert!(effects.contains(&Effect::ResumeRequest), "{effects:?}");
    assert!(counted(&effects, "gw.cache.lookups").contains(&(
        "gw.cache.lookups;model=demo-chat;layer=semantic;outcome=miss".into(),
        1
    )));
    let log = answer_and_log(&mut request, &mut first);
    assert!(counted(&log, "gw.cache.stores").contains(&(
        "gw.cache.stores;model=demo-chat;outcome=semantic_stored".into(),
        1
    )));

    // cos((1, 0), (0.96, 0.28)) = 0.96 / |(0.96, 0.28)| = 0.96 / 1 = 0.96.
    let mut second = first;
    again(&mut second, brief("capital of France?"));
    let (mut request, effects) = through_embeddings(&config, &second, &[0.96, 0.28]);
    let headers = reply_headers(&effects).expect("answered from the cache");
    assert_eq!(header_of(&headers, "x-gateway-cache"), Some("semantic-hit"));
    assert_eq!(
        header_of(&headers, "x-gateway-cache-similarity"),
        Some("0.9600")
    );
    assert!(!effects.contains(&Effect::ResumeRequest));
    let (_, reply) = reply_of(&effects).unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "Paris.");
    request.on_log(&second);
    let log = request.take_effects();
    assert_eq!(property(&log, state::CACHE), Some("semantic-hit"));
    assert_eq!(property(&log, state::CACHE_SIMILARITY), Some("0.9600"));
    assert_eq!(property(&log, state::PROVIDER), Some("cache"));
    assert_eq!(property(&log, state::COST_MICROS), Some("0"));

    // The same wording again is now an exact hit: no embeddings call at all.
    let calls = second.http_calls.borrow().len();
    let mut request = Request::new(Rc::clone(&config), 0, second.now());
    assert_eq!(send(&mut request, &second), Flow::Pause);
    let effects = request.take_effects();
    assert_eq!(
        header_of(&reply_headers(&effects).unwrap(), "x-gateway-cache"),
        Some("hit")
    );
    assert_eq!(second.http_calls.borrow().len(), calls);
}

#[test]
fn a_dissimilar_question_or_another_context_goes_to_the_provider() {
    let config = semantic_config(0.95, 100_000);
    let mut first = ask("What is the capital of France?");
    let (mut request, _) = through_embeddings(&config, &first, &[1.0, 0.0]);
    answer_and_log(&mut request, &mut first);
    // The same vector, at the limit: served (the layer works here).
    again(&mut first, brief("capital of France?"));
    let (_, effects) = through_embeddings(&config, &first, &[1.0, 0.0]);
    assert!(reply_headers(&effects).is_some(), "{effects:?}");
    // cos = 0.8 < 0.95.
    again(&mut first, brief("How tall is Everest?"));
    let (_, effects) = through_embeddings(&config, &first, &[0.8, 0.6]);
    assert!(effects.contains(&Effect::ResumeRequest));
    assert!(reply_headers(&effects).is_none());
    // The same vector under another system prompt: another bucket.
    again(
        &mut first,
        json!({"model": "demo-chat", "messages": [{"role": "system", "content": "be verbose"},
            {"role": "user", "content": "What is the capital of France?"}]}),
    );
    let (_, effects) = through_embeddings(&config, &first, &[1.0, 0.0]);
    assert!(effects.contains(&Effect::ResumeRequest));
    assert!(reply_headers(&effects).is_none());
}

#[test]
fn a_failed_embeddings_call_is_a_miss_never_a_failure() {
    let config = semantic_config(0.9, 100_000);
    for (status, answer) in [
        ("504", b"upstream request timeout".to_vec()),
        ("200", b"{}".to_vec()),
        ("", Vec::new()),
    ] {
        let host = ask("What is the capital of France?");
        let mut request = Request::new(Rc::clone(&config), 0, host.now());
        assert_eq!(send(&mut request, &host), Flow::Pause);
        request.take_effects();
        request.on_http_call_answer(&host, 1, status, &answer);
        let effects = request.take_effects();
        assert!(
            effects.contains(&Effect::ResumeRequest),
            "{status}: {effects:?}"
        );
        assert!(reply_of(&effects).is_none(), "{status}");
        assert_eq!(
            counted(&effects, "gw.cache.lookups"),
            vec![(
                "gw.cache.lookups;model=demo-chat;layer=semantic;outcome=error".into(),
                1
            )],
            "{status}"
        );
    }
    // A call that cannot start: the request goes on at once.
    let mut host = ask("What is the capital of France?");
    host.calls_fail = true;
    let mut request = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    assert!(
        counted(&request.take_effects(), "gw.cache.lookups").contains(&(
            "gw.cache.lookups;model=demo-chat;layer=semantic;outcome=error".into(),
            1
        ))
    );
}

#[test]
fn a_turn_after_a_tool_result_is_not_compared() {
    let config = semantic_config(0.9, 100_000);
    let host = host_asking(json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]));
    let mut request = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    assert!(host.http_calls.borrow().is_empty(), "no embeddings call");
    assert!(
        counted(&request.take_effects(), "gw.cache.lookups").contains(&(
            "gw.cache.lookups;model=demo-chat;layer=semantic;outcome=bypass".into(),
            1
        ))
    );
}

#[test]
fn a_semantic_hit_gives_its_reserved_tokens_back() {
    // 60 tokens a minute: a request reserves its prompt estimate plus max_tokens (20), about
    // 25 to 30 here; the stored answer used 12. With the hits' reservations kept, the third
    // hit would find 12 + 2 x 25 used and be refused; given back, each finds 12.
    let config = semantic_config(0.9, 60);
    let short = |text: &str| {
        json!({"model": "demo-chat", "max_tokens": 20,
            "messages": [{"role": "user", "content": text}]})
    };
    let mut host = host_asking(json!([]));
    again(&mut host, short("capital of France"));
    let (mut request, _) = through_embeddings(&config, &host, &[1.0, 0.0]);
    answer_and_log(&mut request, &mut host); // 12 tokens used
    for text in [
        "France capital",
        "the capital of France",
        "France's capital city",
    ] {
        again(&mut host, short(text));
        let (_, effects) = through_embeddings(&config, &host, &[0.99, 0.14]);
        assert_eq!(
            reply_headers(&effects)
                .as_deref()
                .and_then(|h| header_of(h, "x-gateway-cache")),
            Some("semantic-hit"),
            "{text}: {effects:?}"
        );
    }
}

#[test]
fn a_caller_its_limits_refuse_costs_no_embeddings_call() {
    // 10 tokens a minute: this request's estimate (its prompt plus max_tokens 20) is refused at
    // admission, before the semantic layer.
    let config = semantic_config(0.9, 10);
    let mut host = host_asking(json!([]));
    again(
        &mut host,
        json!({"model": "demo-chat", "max_tokens": 20,
               "messages": [{"role": "user", "content": "capital of France"}]}),
    );
    let mut request = Request::new(Rc::clone(&config), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Pause);
    let effects = request.take_effects();
    assert_eq!(reply_of(&effects).map(|(status, _)| status), Some(429));
    assert!(host.http_calls.borrow().is_empty(), "no embeddings call");
}
