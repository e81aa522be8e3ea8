//! The Responses API's response store through the machine, with the host double of `tests`
//! (its shared data is the store): a response kept at the end of its answer under an id the
//! gateway minted, found again by its key only, `previous_response_id` expanded before the
//! chat form is made, `store: false` honoured, an entry past its TTL or its size cap not
//! served. Shapes: OpenAI's Responses reference (get, delete, input items) as cited in
//! `inbound::responses::store`.

use serde_json::{json, Value};

use super::tests::{config, property, reply_of, send, FakeHost};
use super::*;
use crate::state;

const BOB_KEY: &str = "sk-gw-bob-9876543210";
const ALICE_KEY: &str = "sk-gw-alice-0123456789";

fn with_store(store: Value) -> Rc<Config> {
    let bob = crate::sha256::hex(&crate::sha256::digest(BOB_KEY.as_bytes()));
    config(json!({
        "providers": {"mistral": {"type": "mistral", "cluster": "provider_mistral"}},
        "models": {"mistral-chat": {"provider": "mistral"}},
        "keys": {"alice": {"key_env": "KEY_ALICE"}, "bob": {"sha256": bob}},
        "responses": {"store": store}
    }))
}

/// The double set for the next request (its shared data, the store, kept).
fn next(host: &mut FakeHost, method: &str, path: &str, key: &str, body: &Value) {
    host.request_headers.clear();
    host.response_headers.clear();
    host.properties.clear();
    host.response_body.clear();
    host.request_headers.insert(":method", method.into());
    host.request_headers.insert(":path", path.into());
    host.request_headers
        .insert("authorization", format!("Bearer {key}"));
    host.properties.insert("request.id".into(), "req-7".into());
    host.request_body = body.to_string().into_bytes();
}

/// One Responses request answered by the (translated) chat completion `answer`; returns the
/// body the client got and the chat body the provider filter was handed.
fn exchange(
    config: &Rc<Config>,
    host: &mut FakeHost,
    body: &Value,
    answer: &str,
) -> (Value, Value) {
    next(host, "POST", "/v1/responses", ALICE_KEY, body);
    let mut request = Request::new(Rc::clone(config), 0, host.now());
    assert_eq!(send(&mut request, host), Flow::Continue, "{body}");
    let effects = request.take_effects();
    let chat: Value = serde_json::from_str(property(&effects, state::BODY).expect("a chat body"))
        .expect("chat JSON");
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "application/json".into());
    host.properties
        .insert(state::PROVIDER.into(), "mistral".into());
    request.on_response_headers(host);
    request.take_effects();
    host.response_body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 7,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
    .to_string()
    .into_bytes();
    request.on_response_body(host, host.response_body.len(), true);
    let sent: Vec<u8> = request
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::ReplaceResponseBody(b) => Some(b),
            _ => None,
        })
        .flatten()
        .collect();
    (serde_json::from_slice(&sent).expect("a response"), chat)
}

fn ask(
    config: &Rc<Config>,
    host: &mut FakeHost,
    method: &str,
    path: &str,
    key: &str,
) -> (u32, Value) {
    next(host, method, path, key, &Value::Null);
    let mut request = Request::new(Rc::clone(config), 0, host.now());
    assert_eq!(request.on_request_headers(host, true), Flow::Pause);
    reply_of(&request.take_effects()).expect("answered by the gateway")
}

#[test]
fn a_response_is_kept_for_its_key_and_continues_the_conversation() {
    let config = with_store(json!({"ttl": 600}));
    let store = &mut FakeHost::default();
    let (first, _) = exchange(
        &config,
        store,
        &json!({"model": "mistral-chat", "input": "Hi"}),
        "Hello!",
    );
    let id = first["id"].as_str().expect("an id").to_string();
    // Minted by the gateway: not derived from the provider's (guessable) completion id.
    assert!(id.starts_with("resp_") && id.len() == 37, "{id}");
    assert!(!id.contains("chatcmpl") && id != "resp_1", "{id}");
    assert_eq!(first["store"], true, "{first}");

    // GET by the same key: the response as it was answered; by another key: a 404.
    let (status, got) = ask(
        &config,
        store,
        "GET",
        &format!("/v1/responses/{id}"),
        ALICE_KEY,
    );
    assert_eq!((status, &got), (200, &first));
    let (status, other) = ask(
        &config,
        store,
        "GET",
        &format!("/v1/responses/{id}"),
        BOB_KEY,
    );
    assert_eq!(status, 404, "{other}");
    assert_eq!(other["error"]["code"], "not_found");
    assert!(!other.to_string().contains("Hello!"), "{other}");
    let (status, items) = ask(
        &config,
        store,
        "GET",
        &format!("/v1/responses/{id}/input_items"),
        ALICE_KEY,
    );
    assert_eq!(status, 200);
    assert_eq!(items["data"][0]["content"][0]["text"], "Hi", "{items}");

    // The next turn names it: the provider gets the whole conversation, in order.
    let next = json!({"model": "mistral-chat", "previous_response_id": id, "input": "And you?"});
    let (second, chat) = exchange(&config, store, &next, "Fine.");
    assert_eq!(
        chat["messages"],
        json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
               {"role": "user", "content": "And you?"}])
    );
    let second_id = second["id"].as_str().expect("an id");
    assert_ne!(second_id, id);
    // Its input items hold the whole conversation it continued.
    let (_, items) = ask(
        &config,
        store,
        "GET",
        &format!("/v1/responses/{second_id}/input_items"),
        ALICE_KEY,
    );
    assert_eq!(items["data"].as_array().map(Vec::len), Some(3), "{items}");

    // DELETE: gone for good.
    let (status, deleted) = ask(
        &config,
        store,
        "DELETE",
        &format!("/v1/responses/{id}"),
        ALICE_KEY,
    );
    assert_eq!(
        (status, &deleted),
        (
            200,
            &json!({"id": id, "object": "response", "deleted": true})
        )
    );
    let (status, _) = ask(
        &config,
        store,
        "GET",
        &format!("/v1/responses/{id}"),
        ALICE_KEY,
    );
    assert_eq!(status, 404);
}

#[test]
fn an_unknown_or_foreign_previous_response_id_is_a_400_before_any_provider() {
    let config = with_store(json!({}));
    let store = &mut FakeHost::default();
    let (first, _) = exchange(
        &config,
        store,
        &json!({"model": "mistral-chat", "input": "Hi"}),
        "Hello!",
    );
    let first_id = first["id"].as_str().unwrap().to_string();
    for (key, id) in [(ALICE_KEY, "resp_unknown"), (BOB_KEY, first_id.as_str())] {
        let body = json!({"model": "mistral-chat", "previous_response_id": id, "input": "x"});
        next(store, "POST", "/v1/responses", key, &body);
        let mut request = Request::new(Rc::clone(&config), 0, store.now());
        assert_eq!(send(&mut request, store), Flow::Pause);
        let effects = request.take_effects();
        let (status, e) = reply_of(&effects).expect("a local reply");
        assert_eq!(status, 400, "{e}");
        assert_eq!(e["error"]["code"], "previous_response_not_found");
        assert_eq!(e["error"]["param"], "previous_response_id");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(
            property(&effects, state::BODY),
            None,
            "nothing handed to a provider"
        );
    }
}

#[test]
fn store_false_a_past_ttl_and_an_entry_over_its_cap_are_not_served() {
    let store = &mut FakeHost::default();
    let config = with_store(json!({"ttl": 60}));
    let body = json!({"model": "mistral-chat", "input": "Hi", "store": false});
    let (answer, _) = exchange(&config, store, &body, "Hello!");
    assert_eq!(answer["store"], false);
    let id = answer["id"].as_str().unwrap();
    assert_eq!(
        ask(
            &config,
            store,
            "GET",
            &format!("/v1/responses/{id}"),
            ALICE_KEY
        )
        .0,
        404
    );

    // Kept, then asked for after its TTL (the double's clock moved on).
    let (answer, _) = exchange(
        &config,
        store,
        &json!({"model": "mistral-chat", "input": "Hi"}),
        "Hello!",
    );
    let id = answer["id"].as_str().unwrap();
    let id = id.to_string();
    let later = store.now() + std::time::Duration::from_secs(61);
    store.now = Some(later);
    assert_eq!(
        ask(
            &config,
            store,
            "GET",
            &format!("/v1/responses/{id}"),
            ALICE_KEY
        )
        .0,
        404
    );
    store.now = None;

    // Over the entry cap: answered, not kept.
    let config = with_store(json!({"max_entry_bytes": 100}));
    let (answer, _) = exchange(
        &config,
        store,
        &json!({"model": "mistral-chat", "input": "Hi"}),
        "Hello!",
    );
    assert_eq!(answer["output"][0]["content"][0]["text"], "Hello!");
    let id = answer["id"].as_str().unwrap();
    assert_eq!(
        ask(
            &config,
            store,
            "GET",
            &format!("/v1/responses/{id}"),
            ALICE_KEY
        )
        .0,
        404
    );
}

/// A cache hit answers a Responses client with a response of its own (its own id), kept in the
/// store like one from a provider.
#[test]
fn a_cache_hit_is_kept_in_the_store_too() {
    let bob = crate::sha256::hex(&crate::sha256::digest(BOB_KEY.as_bytes()));
    let config = config(json!({
        "providers": {"mistral": {"type": "mistral", "cluster": "provider_mistral"}},
        "models": {"mistral-chat": {"provider": "mistral"}},
        "keys": {"alice": {"key_env": "KEY_ALICE"}, "bob": {"sha256": bob}},
        "cache": {"models": {"mistral-chat": {"ttl": 300}}},
        "responses": {"store": {}}
    }));
    let store = &mut FakeHost::default();
    let body = json!({"model": "mistral-chat", "input": "Hi"});
    let (first, _) = exchange(&config, store, &body, "Hello!");
    // The same request again: answered from the cache, at once.
    next(store, "POST", "/v1/responses", ALICE_KEY, &body);
    let mut request = Request::new(Rc::clone(&config), 0, store.now());
    assert_eq!(send(&mut request, store), Flow::Pause);
    let (status, hit) = reply_of(&request.take_effects()).expect("a cache hit");
    assert_eq!(status, 200);
    assert_eq!(hit["output"][0]["content"][0]["text"], "Hello!", "{hit}");
    let id = hit["id"].as_str().expect("an id").to_string();
    assert_ne!(
        id,
        first["id"].as_str().unwrap_or_default(),
        "a response of its own"
    );
    let (status, got) = ask(
        &config,
        store,
        "GET",
        &format!("/v1/responses/{id}"),
        ALICE_KEY,
    );
    assert_eq!((status, &got), (200, &hit));
}

#[test]
fn a_store_needs_gateway_keys() {
    let doc = json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
        "models": {"demo-chat": {"provider": "demo"}},
        "responses": {"store": {}}
    });
    let e = Config::from_json(doc.to_string().as_bytes(), &|_| None).expect_err("refused");
    assert_eq!(e.field, "responses.store");
}
