//! The OpenAI Responses API inbound (`POST /v1/responses`) through the real Envoy: the official
//! OpenAI Python SDK's `client.responses.create` (tests/sdk/responses_client.py) against the fake
//! provider of every wire format (each gets the chat form, translated), errors before and inside
//! streams in the Responses shapes, no OpenAI-only frame (`[DONE]`, chat chunks) in a Responses
//! stream, a stored response asked for by id (400: no response store), gateway keys and limits,
//! fallback across formats, the access log and stats (operation `responses`).
//!
//! Shapes: the API reference (https://platform.openai.com/docs/api-reference/responses/create,
//! "Streaming events": `response.created` ... `response.completed`, `error`, `response.failed`;
//! no `[DONE]`) and https://platform.openai.com/docs/guides/error-codes for the error body
//! `{"error": {"message", "type", "param", "code"}}`. The fake's answers: tests/src/fake/README.md.

use std::time::Duration;

use gateway_tests::check::run_python_client;
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider, Reply};
use gateway_tests::http::Response;
use gateway_tests::messages_api::{plugin, start, KEY, LIMITED};
use serde_json::{json, Value};

const MODELS: [&str; 6] = [
    "gpt-4o-mini",
    "azure-gpt-4o",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "bedrock-nova-lite",
    "command-a",
];

fn run_sdk(port: u16, models: &[&str]) -> Value {
    let base = format!("http://127.0.0.1:{port}/v1");
    run_python_client("responses_client.py", &[base, KEY.into(), models.join(",")])
}

/// `POST /v1/responses` with the gateway key as a Bearer token, as OpenAI's SDKs send it.
fn post(gw: &Envoy, key: &str, body: &Value) -> Response {
    gw.request(
        "POST",
        "/v1/responses",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {key}")),
        ],
        body.to_string().as_bytes(),
    )
}

/// The `data:` payloads of a Responses event stream, with a check that every event names its
/// type in its `event:` line as the API does.
fn events_of(sse: &str) -> Vec<Value> {
    sse.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("an event without data: {block:?} in {sse}"));
            let v: Value = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("{e}: not JSON: {data:?} in {sse}"));
            let name = block.lines().find_map(|l| l.strip_prefix("event: "));
            assert_eq!(name, v["type"].as_str(), "{block}");
            v
        })
        .collect()
}

/// No frame of the OpenAI Chat Completions stream reaches a Responses client.
fn assert_no_chat_frames(sse: &str) {
    assert!(
        !sse.contains("[DONE]"),
        "[DONE] in a Responses stream: {sse}"
    );
    assert!(
        !sse.contains("chat.completion"),
        "a chat chunk in a Responses stream: {sse}"
    );
}

fn check_model(s: &Value, model: &str) {
    // The fake's answers, computed from the chat request the translation must make.
    let prompt = format!("Hello from the SDK to {model}");
    let with_instructions = json!({"messages": [
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": prompt}]});
    let (answer, input, output) = demo_answer(&with_instructions);
    let plain = &s["plain"];
    assert_eq!(plain["output_text"], answer, "{model}: {s}");
    assert_eq!(plain["status"], "completed", "{model}");
    assert_eq!(plain["store"], false, "{model}");
    assert_eq!(plain["model"], model, "{model}");
    assert!(
        plain["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("resp_"),
        "{model}: {plain}"
    );
    assert_eq!(plain["usage"]["input_tokens"], input, "{model}: {plain}");
    assert_eq!(plain["usage"]["output_tokens"], output, "{model}");

    let (answer, input, output) =
        demo_answer(&json!({"messages": [{"role": "user", "content": prompt}]}));
    let stream = &s["stream"];
    assert_eq!(stream["text"], answer, "{model}: {stream}");
    assert_eq!(stream["events"][0], "response.created", "{model}");
    assert_eq!(
        stream["events"].as_array().unwrap().last().unwrap(),
        "response.completed",
        "{model}"
    );
    assert_eq!(stream["final"]["status"], "completed", "{model}");
    assert_eq!(stream["final"]["output_text"], answer, "{model}");
    assert_eq!(stream["final"]["usage"]["input_tokens"], input, "{model}");
    assert_eq!(stream["final"]["usage"]["output_tokens"], output, "{model}");
    assert_eq!(s["stream_helper"]["output_text"], answer, "{model}");
    // Anthropic has no JSON-schema mode: the gateway forces a schema tool, which the fake calls
    // with `{"text": <last user text>}`, and its arguments come back as the answer's text.
    let schema_answer = if model.starts_with("claude") {
        json!({"text": prompt}).to_string()
    } else {
        answer.clone()
    };
    let schema_text = s["json_schema"]["output_text"].as_str().unwrap_or_default();
    if model.starts_with("claude") {
        let parsed: Value = serde_json::from_str(schema_text).unwrap_or(Value::Null);
        assert_eq!(parsed.to_string(), schema_answer, "{model}: {s}");
    } else {
        assert_eq!(schema_text, schema_answer, "{model}: {s}");
    }

    let calls = s["tools"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{model}: {s}");
    assert_eq!(calls[0]["name"], "lookup", "{model}");
    assert_eq!(calls[0]["arguments"], json!({"text": prompt}), "{model}");
    assert_eq!(s["tool_result"]["output_text"], "Tool said: 42", "{model}");
    let streamed = &s["stream_tools"]["calls"][0];
    assert_eq!(streamed["name"], "lookup", "{model}: {s}");
    assert_eq!(streamed["arguments"], json!({"text": prompt}), "{model}");

    assert_eq!(
        (&s["rate_limited"]["raised"], &s["rate_limited"]["status"]),
        (&json!("RateLimitError"), &json!(429)),
        "{model}: {s}"
    );
    for (case, param) in [
        ("bad_request", "temperature"),
        ("previous_response_id", "previous_response_id"),
        ("web_search", "tools[0].type"),
    ] {
        assert_eq!(
            (&s[case]["raised"], &s[case]["status"], &s[case]["param"]),
            (&json!("BadRequestError"), &json!(400), &json!(param)),
            "{model} {case}: {s}"
        );
    }
    // The provider's error event inside the stream: `error`, then `response.failed`.
    let failed = &s["stream_error"];
    let events = failed["events"].as_array().unwrap();
    assert!(events.len() >= 2, "{model}: {failed}");
    assert_eq!(
        &events[events.len() - 2..],
        [json!("error"), json!("response.failed")],
        "{model}: {failed}"
    );
    assert_eq!(failed["final"]["status"], "failed", "{model}");
    assert!(failed["error"]["message"].is_string(), "{model}: {failed}");
}

#[test]
fn the_official_openai_sdk_responses_api_works_with_every_provider_family() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let seen = run_sdk(gw.port, &MODELS);
    for model in MODELS {
        check_model(&seen[model], model);
    }
    assert_eq!(seen["not_found"]["raised"], "NotFoundError", "{seen}");
    assert_eq!(
        (&seen["bad_key"]["raised"], &seen["bad_key"]["status"]),
        (&json!("AuthenticationError"), &json!(401)),
        "{seen}"
    );
    assert_eq!(
        (
            &seen["retrieve"]["raised"],
            &seen["retrieve"]["status"],
            &seen["retrieve"]["param"]
        ),
        (
            &json!("BadRequestError"),
            &json!(400),
            &json!("response_id")
        ),
        "{seen}"
    );
    // Every provider got the chat form translated into its own format; OpenAI's own
    // /v1/responses was never called, and no gateway key reached a provider.
    let received = fake.received();
    assert!(received.iter().all(|r| !r.path.contains("/responses")));
    assert!(received
        .iter()
        .any(|r| r.path == "/v1/messages" && r.json()["model"] == "claude-haiku-4-5-20251001"));
    assert!(received.iter().any(|r| r.path == "/v1/chat/completions"
        && r.json()["messages"][1]["content"] == "Hello from the SDK to gpt-4o-mini"));
    assert!(
        !format!("{received:?}").contains(KEY),
        "the gateway key reached a provider"
    );
}

#[test]
fn errors_limits_and_stored_responses_take_the_responses_shape() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let hi = json!({"model": "gpt-4o-mini", "input": "hi"});
    let error_shape = |r: &Response, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        let e = r.json();
        let mut fields: Vec<&String> = e["error"].as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["code", "message", "param", "type"], "{e}");
        assert_eq!(e["error"]["code"], code, "{e}");
        e
    };
    // No key, a wrong key.
    let r = gw.request(
        "POST",
        "/v1/responses",
        &[("content-type", "application/json")],
        hi.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(&gw, "not-a-key", &hi);
    assert_eq!(r.status, 401, "{}", r.text());
    // OpenAI's own 401 for a wrong key: `invalid_request_error`, code `invalid_api_key`.
    assert_eq!(r.json()["error"]["code"], "invalid_api_key", "{}", r.text());
    // A stored response by id, and a follow-up by previous_response_id: 400, no store.
    for (method, path) in [
        ("GET", "/v1/responses/resp_123"),
        ("DELETE", "/v1/responses/resp_123"),
        ("GET", "/v1/responses/resp_123/input_items"),
    ] {
        let r = gw.request(
            method,
            path,
            &[("authorization", &format!("Bearer {KEY}"))],
            b"",
        );
        let e = error_shape(&r, 400, "invalid_parameter");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no response store configured"),
            "{e}"
        );
    }
    let r = post(
        &gw,
        KEY,
        &json!({"model": "gpt-4o-mini", "input": "hi", "previous_response_id": "resp_1"}),
    );
    let e = error_shape(&r, 400, "invalid_parameter");
    assert_eq!(e["error"]["param"], "previous_response_id");
    assert!(
        fake.received().is_empty(),
        "a refused request reached a provider"
    );
    // A request limit: the second request of the minute is refused with a 429.
    let first = post(&gw, LIMITED, &hi);
    assert_eq!(first.status, 200, "{}", first.text());
    let second = post(&gw, LIMITED, &hi);
    let e = error_shape(&second, 429, "rate_limit_exceeded");
    assert!(e["error"]["message"].is_string(), "{e}");
    // A provider error before the stream: the Responses error body with the provider's message.
    let broke = json!({"error": {"message": "upstream broke", "type": "server_error"}});
    fake.push_reply(Reply::json(500, &broke));
    fake.push_reply(Reply::json(500, &broke));
    let r = post(
        &gw,
        KEY,
        &json!({"model": "gpt-4o-mini", "input": "hi", "stream": true}),
    );
    let e = error_shape(&r, 500, "upstream_error");
    assert_eq!(e["error"]["message"], "upstream broke", "{e}");
}

#[test]
fn a_responses_stream_has_no_chat_frames_even_when_it_breaks() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let body = |model: &str| json!({"model": model, "input": "hello there", "stream": true});
    // Whole streams from an OpenAI-format and an Anthropic provider.
    for model in ["gpt-4o-mini", "claude-haiku-4-5"] {
        let r = post(&gw, KEY, &body(model));
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        let text = r.text();
        assert_no_chat_frames(&text);
        let events = events_of(&text);
        assert_eq!(events[0]["type"], "response.created", "{model}");
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.completed", "{model}: {text}");
        assert_eq!(last["response"]["status"], "completed");
    }
    // OpenAI's chunks stop before [DONE]: the gateway ends the stream with `error` and
    // `response.failed`, never with an OpenAI error event or [DONE].
    let chunk = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
    fake.push_reply(Reply::sse(&[chunk.to_string()], Duration::ZERO));
    let r = post(&gw, KEY, &body("gpt-4o-mini"));
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert_no_chat_frames(&text);
    let events = events_of(&text);
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.contains(&"response.output_text.delta"), "{text}");
    assert_eq!(
        types[types.len() - 2..],
        ["error", "response.failed"],
        "{text}"
    );
    let failed = events.last().unwrap();
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(
        failed["response"]["error"]["code"], "server_error",
        "{failed}"
    );
    let log = gw.access_log(3);
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[2]["error"], "upstream_stream_reset", "{log:?}");
    assert!(log.iter().all(|l| l["operation"] == "responses"), "{log:?}");
}

#[test]
fn fallback_from_anthropic_to_openai_answers_in_responses_shapes_and_is_logged_as_responses() {
    let fake_anthropic = FakeProvider::start(0).unwrap();
    let fake_openai = FakeProvider::start(0).unwrap();
    let mut options = Options {
        plugin_config: Some(plugin()),
        ..Options::every_provider_family(fake_openai.port)
    };
    for (cluster, port) in options.upstreams.iter_mut() {
        if cluster == "anthropic" {
            *port = fake_anthropic.port;
        }
    }
    let gw = Envoy::start(options);
    for stream in [false, true] {
        let overloaded = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        fake_anthropic.push_reply(Reply::json(529, &overloaded));
        let text = format!("fall back please {stream}");
        let body = json!({"model": "claude-then-gpt", "input": text, "stream": stream});
        let r = post(&gw, KEY, &body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-gateway-provider"), Some("openai"));
        assert_eq!(r.header("x-gateway-attempts"), Some("2"));
        let (answer, _, _) = demo_answer(&json!({"messages": [{"role": "user", "content": text}]}));
        let response = if stream {
            let sse = r.text();
            assert_no_chat_frames(&sse);
            let events = events_of(&sse);
            let streamed: String = events
                .iter()
                .filter(|e| e["type"] == "response.output_text.delta")
                .filter_map(|e| e["delta"].as_str())
                .collect();
            assert_eq!(streamed, answer, "{sse}");
            events.last().unwrap()["response"].clone()
        } else {
            r.json()
        };
        assert_eq!(response["object"], "response", "{response}");
        assert_eq!(response["status"], "completed", "{response}");
        assert_eq!(response["model"], "claude-then-gpt");
        assert_eq!(response["output"][0]["content"][0]["text"], answer);
        // Both targets got the chat form, each in its own format.
        let to_anthropic = fake_anthropic.received().pop().unwrap();
        assert_eq!(to_anthropic.path, "/v1/messages");
        assert!(
            to_anthropic.json()["messages"][0]["content"]
                .to_string()
                .contains(&text),
            "{}",
            to_anthropic.json()
        );
        let to_openai = fake_openai.received().pop().unwrap();
        assert_eq!(to_openai.path, "/v1/chat/completions");
        assert_eq!(to_openai.json()["messages"][0]["content"], text);
    }
    // The access log and stats name the operation `responses`.
    let log = gw.access_log(2);
    assert!(log.iter().all(|l| l["operation"] == "responses"), "{log:?}");
    assert_eq!(log[1]["provider"], "openai");
    let stats = gw.prometheus();
    assert!(
        stats
            .lines()
            .any(|l| l.contains("operation=\"responses\"") && !l.starts_with('#')),
        "no stat with operation=responses:\n{stats}"
    );
}
