//! A Responses API request through the machine, with the host double of `tests`: both bodies
//! handed over, the client's own to a provider that serves the Responses API (OpenAI), the chat
//! form to every other; a passed-through answer untouched with its usage read, a translated
//! stream with no chat frame left (the Responses API sends no `[DONE]`), a stored response by id
//! refused, the operation named `responses`. Event and error shapes: the Responses API reference
//! (https://platform.openai.com/docs/api-reference/responses-streaming) and
//! https://platform.openai.com/docs/guides/error-codes.

use serde_json::{json, Value};

use super::tests::{config, property, reply_of, send, FakeHost};
use super::*;
use crate::state;

fn responses_host(path: &str, method: &str, body: &Value) -> FakeHost {
    let mut host = FakeHost::default();
    host.request_headers.insert(":method", method.into());
    host.request_headers.insert(":path", path.into());
    host.properties.insert("request.id".into(), "req-42".into());
    host.request_body = body.to_string().into_bytes();
    host
}

/// OpenAI (serves the Responses API), Mistral (OpenAI-compatible, does not) and Anthropic.
fn with_anthropic() -> Rc<Config> {
    config(json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"},
                      "mistral": {"type": "mistral", "cluster": "provider_mistral"},
                      "claude": {"type": "anthropic", "cluster": "provider_claude"}},
        "models": {"demo-chat": {"provider": "demo"}, "mistral-chat": {"provider": "mistral"},
                   "claude": {"provider": "claude"}}
    }))
}

fn replaced(effects: &[Effect]) -> String {
    let bytes: Vec<u8> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::ReplaceResponseBody(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    String::from_utf8(bytes).unwrap_or_default()
}

#[test]
fn both_bodies_reach_the_provider_filter_and_only_openai_takes_the_clients_own() {
    for model in ["demo-chat", "mistral-chat", "claude"] {
        let body = json!({"model": model, "input": "hi", "tools": [{"type": "web_search"}]});
        let host = responses_host("/v1/responses", "POST", &body);
        let mut request = Request::new(with_anthropic(), 0, host.now());
        assert_eq!(send(&mut request, &host), Flow::Continue);
        let effects = request.take_effects();
        assert_eq!(property(&effects, state::API), Some("responses"));
        assert_eq!(
            property(&effects, state::NATIVE_BODY).map(str::as_bytes),
            Some(host.request_body.as_slice())
        );
        // The chat form leaves the hosted tool out, and says why it cannot be translated.
        let chat: Value = serde_json::from_str(property(&effects, state::BODY).unwrap()).unwrap();
        assert_eq!(chat["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(chat.get("tools"), None);
        let reason = property(&effects, state::UNTRANSLATABLE).expect("a reason");
        assert!(reason.contains("'tools[0].type'"), "{reason}");
    }
    let config = with_anthropic();
    let serves = |id: &str| {
        let provider = config.providers.iter().find(|p| p.id == id).unwrap();
        Api::Responses.native_to(provider)
    };
    assert!(serves("demo"));
    assert!(!serves("mistral"));
    assert!(!serves("claude"));
}

/// One attempt of a Responses request in the provider filter (decision from filter state).
fn attempt(model: &str, cluster: &str, extra: &[(&str, &str)]) -> Vec<Effect> {
    use super::attempt::ProviderAttempt;
    let native = json!({"model": model, "input": "hi", "include": ["reasoning.encrypted_content"]});
    let chat = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let mut host = FakeHost::default();
    for (k, v) in [
        (state::MODEL, model),
        (state::OPERATION, "chat"),
        (state::CHAIN, "0"),
        (state::API, "responses"),
        ("xds.cluster_name", cluster),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        host.properties.insert(k.into(), v.into());
    }
    host.properties
        .insert(state::NATIVE_BODY.into(), native.to_string());
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

fn sent(effects: &[Effect]) -> (Option<String>, Value) {
    let path = effects.iter().find_map(|e| match e {
        Effect::SetRequestHeader(name, Some(v)) if name == ":path" => Some(v.clone()),
        _ => None,
    });
    let body = effects
        .iter()
        .find_map(|e| match e {
            Effect::ReplaceRequestBody(b) => serde_json::from_slice(b).ok(),
            _ => None,
        })
        .unwrap_or(Value::Null);
    (path, body)
}

#[test]
fn each_attempt_sends_the_body_its_provider_speaks() {
    // OpenAI: the client's own body at /v1/responses, `store: false`.
    let (path, body) = sent(&attempt("demo-chat", "provider_demo", &[]));
    assert_eq!(path.as_deref(), Some("/v1/responses"));
    assert_eq!(
        body,
        json!({"model": "demo-chat", "input": "hi", "include": ["reasoning.encrypted_content"],
               "store": false})
    );
    // Mistral and Anthropic: the chat form, in their own formats.
    let (path, body) = sent(&attempt("mistral-chat", "provider_mistral", &[]));
    assert_eq!(path.as_deref(), Some("/v1/chat/completions"));
    assert_eq!(body["messages"][0]["content"], "hi");
    let (path, body) = sent(&attempt("claude", "provider_claude", &[]));
    assert_eq!(path.as_deref(), Some("/v1/messages"));
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type": "text", "text": "hi"}])
    );
    // What only a Responses provider takes: fine for OpenAI, a 400 from any other.
    let hosted = [(state::UNTRANSLATABLE, "The hosted tool 'web_search'")];
    let (path, _) = sent(&attempt("demo-chat", "provider_demo", &hosted));
    assert_eq!(path.as_deref(), Some("/v1/responses"));
    let (status, body) =
        reply_of(&attempt("mistral-chat", "provider_mistral", &hosted)).expect("a local reply");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "The hosted tool 'web_search'");
}

#[test]
fn an_openai_responses_answer_passes_untouched_and_its_usage_is_read() {
    let answered = |stream: bool, content_type: &str| {
        let body = json!({"model": "demo-chat", "input": "hi", "stream": stream});
        let mut host = responses_host("/v1/responses", "POST", &body);
        let mut request = Request::new(with_anthropic(), 0, host.now());
        assert_eq!(send(&mut request, &host), Flow::Continue);
        request.take_effects();
        host.response_headers.insert(":status", "200".into());
        host.response_headers
            .insert("content-type", content_type.into());
        host.properties
            .insert(state::PROVIDER.into(), "demo".into());
        request.on_response_headers(&host);
        request.take_effects();
        (request, host)
    };
    // JSON: the response object reference's usage example.
    let (mut request, mut host) = answered(false, "application/json");
    host.response_body = json!({"id": "resp_67cc", "object": "response", "status": "completed",
        "output": [], "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}})
    .to_string()
    .into_bytes();
    request.on_response_body(&host, host.response_body.len(), true);
    assert_eq!(replaced(&request.take_effects()), "", "passes as it is");
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::PROMPT_TOKENS), Some("36"));
    assert_eq!(property(&log, state::COMPLETION_TOKENS), Some("87"));
    assert_eq!(property(&log, state::OPERATION), Some("responses"));

    // A stream: untouched; cut before `response.completed`, it ends with `error` and
    // `response.failed`.
    let created = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n";
    let completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":7,\"total_tokens\":12}}}\n\n";
    let (mut request, mut host) = answered(true, "text/event-stream");
    for (piece, end) in [(created, false), (completed, true)] {
        host.response_body = piece.as_bytes().to_vec();
        request.on_response_body(&host, host.response_body.len(), end);
        assert_eq!(replaced(&request.take_effects()), "", "passes as it is");
    }
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(property(&log, state::TOTAL_TOKENS), Some("12"));
    assert_eq!(property(&log, state::ERROR_CODE), None);
    let (mut request, mut host) = answered(true, "text/event-stream");
    host.response_body = created.as_bytes().to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    let sent = replaced(&request.take_effects());
    assert!(sent.starts_with(created), "{sent}");
    let types: Vec<&str> = sent
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        types,
        ["response.created", "error", "response.failed"],
        "{sent}"
    );
    request.on_log(&host);
    assert_eq!(
        property(&request.take_effects(), state::ERROR_CODE),
        Some("upstream_stream_reset")
    );
}

#[test]
fn a_cut_translated_stream_ends_with_responses_events_and_no_chat_frames() {
    let body = json!({"model": "mistral-chat", "input": "hi", "stream": true});
    let mut host = responses_host("/v1/responses", "POST", &body);
    let mut request = Request::new(with_anthropic(), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    request.take_effects();
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "text/event-stream".into());
    host.properties
        .insert(state::PROVIDER.into(), "mistral".into());
    request.on_response_headers(&host);
    request.take_effects();
    // One chunk, then the stream ends without `[DONE]`.
    host.response_body = b"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":7,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n".to_vec();
    request.on_response_body(&host, host.response_body.len(), true);
    let sent = replaced(&request.take_effects());
    assert!(!sent.contains("[DONE]"), "{sent}");
    assert!(!sent.contains("chat.completion"), "{sent}");
    let types: Vec<String> = sent
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(String::from)
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("response.created"));
    assert!(
        types.contains(&"response.output_text.delta".to_string()),
        "{sent}"
    );
    assert_eq!(
        types[types.len() - 2..],
        ["error", "response.failed"],
        "{sent}"
    );
    assert!(sent.contains("\"id\":\"resp_9\""), "{sent}");
    request.on_log(&host);
    let log = request.take_effects();
    assert_eq!(
        property(&log, state::ERROR_CODE),
        Some("upstream_stream_reset")
    );
}

#[test]
fn a_stored_response_is_a_400_in_the_openai_error_shape() {
    let host = responses_host("/v1/responses/resp_1", "GET", &json!(null));
    let mut request = Request::new(with_anthropic(), 0, host.now());
    request.on_request_headers(&host, true);
    let (status, body) = reply_of(&request.take_effects()).expect("a local reply");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "response_id", "{body}");
    assert_eq!(body["error"]["code"], "invalid_parameter", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
}
