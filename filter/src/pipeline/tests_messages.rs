//! A Messages API request through the machine, with the host double of `tests`: its body
//! translated for the provider filter (both bodies handed over), its answer translated back or
//! passed through by who served, its errors in Anthropic's shape. Payload shapes as in
//! `inbound::messages::tests` (Anthropic's and OpenAI's API references).

use serde_json::{json, Value};

use super::tests::{config, property, reply_of, send, FakeHost};
use super::*;
use crate::state;

fn messages_host(body: &Value) -> FakeHost {
    let mut host = FakeHost::default();
    host.request_headers.insert(":method", "POST".into());
    host.request_headers
        .insert(":path", "/v1/messages?beta=true".into());
    host.request_body = body.to_string().into_bytes();
    host
}

fn hello(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 50, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]})
}

fn with_anthropic() -> Rc<Config> {
    config(json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"},
                      "claude": {"type": "anthropic", "cluster": "provider_claude"}},
        "models": {"demo-chat": {"provider": "demo"}, "claude": {"provider": "claude"}}
    }))
}

/// The request side, then the response headers of `provider`'s answer.
fn answered_by(
    provider: &str,
    body: &Value,
    status: &str,
    content_type: &str,
) -> (Request, FakeHost) {
    let mut host = messages_host(body);
    let mut request = Request::new(with_anthropic(), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    request.take_effects();
    host.response_headers.insert(":status", status.into());
    host.response_headers
        .insert("content-type", content_type.into());
    host.properties
        .insert(state::PROVIDER.into(), provider.into());
    request.on_response_headers(&host);
    request.take_effects();
    (request, host)
}

fn replaced(effects: &[Effect]) -> Vec<u8> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ReplaceResponseBody(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn both_bodies_reach_the_provider_filter() {
    let body = hello("demo-chat", false);
    let host = messages_host(&body);
    let mut request = Request::new(with_anthropic(), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    let effects = request.take_effects();
    assert_eq!(property(&effects, state::API), Some("messages"));
    assert_eq!(
        property(&effects, state::NATIVE_BODY).map(str::as_bytes),
        Some(host.request_body.as_slice())
    );
    let chat: Value = serde_json::from_str(property(&effects, state::BODY).unwrap()).unwrap();
    assert_eq!(
        chat,
        json!({"model": "demo-chat", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    );
    assert_eq!(property(&effects, state::UNTRANSLATABLE), None);
}

#[test]
fn a_translated_json_answer_is_held_whole_and_becomes_a_message() {
    let (mut request, mut host) = answered_by(
        "demo",
        &hello("demo-chat", false),
        "200",
        "application/json",
    );
    let chat = json!({"id": "chatcmpl-7", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}});
    host.response_body = chat.to_string().into_bytes();
    assert_eq!(request.on_response_body(&host, 10, false), Flow::Pause);
    request.on_response_body(&host, host.response_body.len(), true);
    let sent: Value = serde_json::from_slice(&replaced(&request.take_effects())).unwrap();
    assert_eq!(
        sent,
        json!({"id": "msg_7", "type": "message", "role": "assistant", "model": "demo-chat",
            "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn",
            "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 2,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
    );
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::TOTAL_TOKENS), Some("11"));
    assert_eq!(property(&log, state::OPERATION), Some("messages"));
}

#[test]
fn an_anthropic_stream_passes_untouched_and_its_usage_is_read() {
    let (mut request, mut host) =
        answered_by("claude", &hello("claude", true), "200", "text/event-stream");
    // The streaming guide's events, cut before message_delta and message_stop.
    let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n";
    let delta = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    host.response_body = start.as_bytes().to_vec();
    request.on_response_body(&host, host.response_body.len(), false);
    assert!(
        replaced(&request.take_effects()).is_empty(),
        "passes as it is"
    );
    host.response_body = delta.as_bytes().to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    assert!(replaced(&request.take_effects()).is_empty());
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::PROMPT_TOKENS), Some("25"));
    assert_eq!(property(&log, state::COMPLETION_TOKENS), Some("15"));
    assert_eq!(property(&log, state::ERROR_CODE), None);

    // The same stream cut short: an error event after what came.
    let (mut request, mut host) =
        answered_by("claude", &hello("claude", true), "200", "text/event-stream");
    host.response_body = start.as_bytes().to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    let sent = String::from_utf8(replaced(&request.take_effects())).unwrap();
    assert!(sent.starts_with(start), "{sent}");
    assert!(sent.ends_with("event: error\ndata: {\"error\":{\"message\":\"The provider's stream ended before the answer was complete.\",\"type\":\"api_error\"},\"type\":\"error\"}\n\n"), "{sent}");
    request.on_log(&host);
    assert_eq!(
        property(&request.take_effects(), state::ERROR_CODE),
        Some("upstream_stream_reset")
    );
}

#[test]
fn errors_take_anthropics_shape() {
    // Refused before any provider: a missing max_tokens.
    let host = messages_host(&json!({"model": "demo-chat", "messages": []}));
    let mut request = Request::new(with_anthropic(), 0, host.now());
    send(&mut request, &host);
    let (status, body) = reply_of(&request.take_effects()).unwrap();
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // A provider's OpenAI-shaped error after translation.
    let (mut request, mut host) = answered_by(
        "demo",
        &hello("demo-chat", false),
        "429",
        "application/json",
    );
    host.response_body =
        br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#
            .to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    let sent: Value = serde_json::from_slice(&replaced(&request.take_effects())).unwrap();
    assert_eq!(
        sent,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    );
    // Envoy's own text reply (no provider could be reached).
    let (mut request, mut host) =
        answered_by("demo", &hello("demo-chat", true), "503", "text/plain");
    host.response_body = b"no healthy upstream".to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    let sent: Value = serde_json::from_slice(&replaced(&request.take_effects())).unwrap();
    assert_eq!(sent["type"], "error");
    assert_eq!(sent["error"]["type"], "api_error");
}

/// One attempt of a Messages request in the provider filter (decision from filter state).
fn attempt(model: &str, cluster: &str, extra: &[(&str, &str)]) -> Vec<Effect> {
    use super::attempt::ProviderAttempt;
    let native = hello(model, false).to_string();
    let chat =
        json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let mut host = FakeHost::default();
    for (k, v) in [
        (state::MODEL, model),
        (state::OPERATION, "chat"),
        (state::CHAIN, "0"),
        (state::API, "messages"),
        (state::NATIVE_BODY, native.as_str()),
        ("xds.cluster_name", cluster),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        host.properties.insert(k.into(), v.into());
    }
    host.properties.insert(state::BODY.into(), chat.to_string());
    let mut attempt = ProviderAttempt::new(with_anthropic());
    let mut effects = Vec::new();
    if attempt.on_request_headers(&host) == Flow::Continue {
        effects = attempt.take_effects();
        attempt.on_request_body(true);
    }
    effects.extend(attempt.take_effects());
    effects
}

fn sent_path(effects: &[Effect]) -> Option<&str> {
    effects.iter().find_map(|e| match e {
        Effect::SetRequestHeader(name, Some(v)) if name == ":path" => Some(v.as_str()),
        _ => None,
    })
}

fn sent_body(effects: &[Effect]) -> Value {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::ReplaceRequestBody(b) => serde_json::from_slice(b).ok(),
            _ => None,
        })
        .unwrap_or(Value::Null)
}

#[test]
fn each_attempt_sends_the_body_its_provider_speaks() {
    // Anthropic: the client's own body (stream flag and all), nothing else changed.
    let effects = attempt("claude", "provider_claude", &[]);
    assert_eq!(sent_path(&effects), Some("/v1/messages"));
    assert_eq!(sent_body(&effects), hello("claude", false));
    // An OpenAI-format provider: the chat translation, even where the translator would send
    // Envoy's copy (the client's Messages body) unchanged.
    let effects = attempt("demo-chat", "provider_demo", &[]);
    assert_eq!(sent_path(&effects), Some("/v1/chat/completions"));
    assert_eq!(sent_body(&effects)["messages"][0]["content"], "hi");
    assert!(sent_body(&effects).get("stream").is_none());
    // What only Anthropic can take is refused by any other provider, before it is contacted.
    let effects = attempt(
        "demo-chat",
        "provider_demo",
        &[(state::UNTRANSLATABLE, "a 'web_search' tool")],
    );
    let (status, body) = reply_of(&effects).expect("a local reply");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "a 'web_search' tool");
    // count_tokens goes to Anthropic's counting endpoint.
    let effects = attempt(
        "claude",
        "provider_claude",
        &[(state::COUNT_TOKENS, "true")],
    );
    assert_eq!(sent_path(&effects), Some("/v1/messages/count_tokens"));
}
