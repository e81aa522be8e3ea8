//! A Responses API request through the machine, with the host double of `tests`: translated to
//! the chat form for every provider (OpenAI's too), its stream translated with no chat frame
//! left (the Responses API sends no `[DONE]`), a stored response by id refused, the operation
//! named `responses`. Event and error shapes: the Responses API reference
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

fn with_anthropic() -> Rc<Config> {
    config(json!({
        "providers": {"demo": {"type": "openai", "cluster": "provider_demo"},
                      "claude": {"type": "anthropic", "cluster": "provider_claude"}},
        "models": {"demo-chat": {"provider": "demo"}, "claude": {"provider": "claude"}}
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
fn the_chat_form_goes_to_every_provider() {
    for model in ["demo-chat", "claude"] {
        let host = responses_host(
            "/v1/responses",
            "POST",
            &json!({"model": model, "input": "hi"}),
        );
        let mut request = Request::new(with_anthropic(), 0, host.now());
        assert_eq!(send(&mut request, &host), Flow::Continue);
        let effects = request.take_effects();
        assert_eq!(property(&effects, state::API), Some("responses"));
        let chat: Value = serde_json::from_str(property(&effects, state::BODY).unwrap()).unwrap();
        assert_eq!(chat["messages"], json!([{"role": "user", "content": "hi"}]));
        // Never the client's own body to a provider: Responses is native to none.
        for kind in ["openai", "anthropic"] {
            let kind = crate::provider::ProviderKind::parse(kind).unwrap();
            assert!(!Api::Responses.native_to(kind));
        }
    }
}

#[test]
fn a_cut_stream_ends_with_responses_events_and_no_chat_frames() {
    let body = json!({"model": "demo-chat", "input": "hi", "stream": true});
    let mut host = responses_host("/v1/responses", "POST", &body);
    let mut request = Request::new(with_anthropic(), 0, host.now());
    assert_eq!(send(&mut request, &host), Flow::Continue);
    request.take_effects();
    host.response_headers.insert(":status", "200".into());
    host.response_headers
        .insert("content-type", "text/event-stream".into());
    host.properties
        .insert(state::PROVIDER.into(), "demo".into());
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
