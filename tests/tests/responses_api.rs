//! The OpenAI Responses API inbound (`POST /v1/responses`) through the real Envoy: the official
//! OpenAI Python SDK's `client.responses.create` (tests/sdk/responses_client.py) against the fake
//! provider of every wire format (OpenAI and Azure get the client's own body at their Responses
//! endpoint, every other provider, Groq among them, the chat form, translated), errors before
//! and inside streams in the Responses shapes, no OpenAI-only frame (`[DONE]`, chat chunks) in a Responses
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
use gateway_tests::messages_api::{plugin, KEY, LIMITED};
use serde_json::{json, Value};

/// The models served by a provider of the Responses API itself: the client's body goes there.
const NATIVE: [&str; 2] = ["gpt-4o-mini", "azure-gpt-4o"];

const MODELS: [&str; 7] = [
    "gpt-4o-mini",
    "azure-gpt-4o",
    "groq-llama",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "bedrock-nova-lite",
    "command-a",
];

/// The shared configuration, with an OpenAI-compatible provider that does not serve the
/// Responses API (Groq, on the fake's `provider_demo` cluster) and a chain OpenAI -> Anthropic.
fn config() -> Value {
    let mut config = plugin();
    config["providers"]["groq"] =
        json!({"type": "groq", "cluster": "provider_demo", "api_key_env": "OPENAI_API_KEY"});
    config["models"]["groq-llama"] = json!({"provider": "groq", "model": "llama-3.3-70b"});
    config["models"]["gpt-then-claude"] = json!({"targets": [
        {"provider": "openai", "model": "gpt-4o-mini", "weight": 1},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "weight": 0}]});
    config
}

fn start(fake: &FakeProvider) -> Envoy {
    Envoy::start(Options {
        plugin_config: Some(config()),
        ..Options::every_provider_family(fake.port)
    })
}

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
    // A passed-through answer is the provider's own, naming its model (Azure: the deployment);
    // a translated one names the model as the client did.
    let named = match model {
        "azure-gpt-4o" => "gpt-4o",
        other => other,
    };
    assert_eq!(plain["model"], named, "{model}");
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
    // Claude Haiku 4.5 gets the strict schema as its structured output, to which the fake
    // answers `{"text": <last user text>}` (as it calls a forced schema tool on other Claude
    // models): that JSON is the answer's text.
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
    ] {
        assert_eq!(
            (&s[case]["raised"], &s[case]["status"], &s[case]["param"]),
            (&json!("BadRequestError"), &json!(400), &json!(param)),
            "{model} {case}: {s}"
        );
    }
    // A hosted tool: passed to a provider of the Responses API, refused by any other (naming
    // the tool; `param` is the model, which is what the client can change).
    if NATIVE.contains(&model) {
        assert_eq!(s["web_search"]["raised"], Value::Null, "{model}: {s}");
    } else {
        assert_eq!(
            (
                &s["web_search"]["raised"],
                &s["web_search"]["status"],
                &s["web_search"]["param"]
            ),
            (&json!("BadRequestError"), &json!(400), &json!("model")),
            "{model}: {s}"
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
    // OpenAI and Azure got the client's own body at their Responses endpoints (model mapped,
    // `store: false`, their own credentials); Groq and the other families the chat form in
    // their formats; no gateway key reached a provider.
    let received = fake.received();
    let to_openai = received
        .iter()
        .find(|r| r.path == "/v1/responses" && r.json()["instructions"] == "Answer briefly.")
        .expect("OpenAI's Responses endpoint called");
    assert_eq!(
        to_openai.json(),
        json!({"model": "gpt-4o-mini", "instructions": "Answer briefly.",
               "input": "Hello from the SDK to gpt-4o-mini", "store": false})
    );
    assert_eq!(
        to_openai.header("authorization"),
        Some("Bearer test-openai-key")
    );
    let to_azure = received
        .iter()
        .find(|r| r.path == "/openai/v1/responses")
        .expect("Azure's Responses endpoint called");
    assert_eq!(to_azure.json()["model"], "gpt-4o", "the deployment name");
    assert_eq!(to_azure.header("api-key"), Some("test-azure-key"));
    assert!(
        received
            .iter()
            .any(|r| r.path == "/v1/responses"
                && r.json()["tools"] == json!([{"type": "web_search"}]))
    );
    assert!(received
        .iter()
        .any(|r| r.path == "/openai/v1/chat/completions"
            && r.json()["model"] == "llama-3.3-70b"
            && r.json()["messages"][1]["content"] == "Hello from the SDK to groq-llama"));
    assert!(received
        .iter()
        .any(|r| r.path == "/v1/messages" && r.json()["model"] == "claude-haiku-4-5-20251001"));
    // A strict `text.format` json_schema reaches Claude Haiku 4.5 as its native structured
    // output (Anthropic's "Structured outputs": `output_config.format`), not as a forced tool.
    let structured = received
        .iter()
        .map(|r| r.json())
        .find(|b| b["output_config"]["format"]["type"] == "json_schema")
        .expect("a structured-output request to Anthropic");
    assert_eq!(
        structured["model"], "claude-haiku-4-5-20251001",
        "{structured}"
    );
    assert_eq!(
        structured["output_config"]["format"]["schema"]["required"],
        json!(["text"]),
        "{structured}"
    );
    assert!(structured.get("tools").is_none(), "{structured}");
    let responses_calls = received.iter().filter(|r| r.path.ends_with("/responses"));
    assert!(
        responses_calls.clone().all(|r| {
            let model = r.json()["model"].clone();
            model == "gpt-4o-mini" || model == "gpt-4o"
        }),
        "only OpenAI and Azure get the Responses body"
    );
    assert!(responses_calls.count() > 0);
    assert!(
        !format!("{received:?}").contains(KEY),
        "the gateway key reached a provider"
    );
}

/// Everything a client sends reaches OpenAI and Azure as sent (fields the chat form cannot
/// carry included), only `model` and `store` changed; the answer comes back untouched and its
/// usage (the Responses API's `input_tokens`/`output_tokens`) is what the access log charges.
#[test]
fn a_responses_request_passes_through_to_openai_and_azure_with_every_field() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    for (model, upstream, path) in [
        ("gpt-4o-mini", "gpt-4o-mini", "/v1/responses"),
        ("azure-gpt-4o", "gpt-4o", "/openai/v1/responses"),
    ] {
        for stream in [false, true] {
            let sent = json!({
                "model": model, "stream": stream, "instructions": "Be brief.",
                "input": [
                    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-opaque"},
                    {"role": "user", "content": [{"type": "input_text", "text": "look it up"}]},
                    {"type": "web_search_call", "id": "ws_1", "status": "completed",
                     "action": {"type": "search", "query": "gateway"}}],
                "tools": [{"type": "web_search", "search_context_size": "low"},
                          {"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
                "tool_choice": "auto", "include": ["reasoning.encrypted_content"],
                "truncation": "auto", "reasoning": {"effort": "low", "summary": "auto"},
                "store": true, "prompt_cache_key": "k-1", "a_future_field": {"kept": [1, 2]},
            });
            let r = post(&gw, KEY, &sent);
            assert_eq!(r.status, 200, "{model}: {}", r.text());
            assert_eq!(r.header("x-gateway-model"), Some(upstream));
            let got = fake.received().pop().unwrap();
            assert_eq!(got.path, path, "{model}");
            let mut expected = sent.clone();
            expected["model"] = json!(upstream);
            expected["store"] = json!(false);
            assert_eq!(got.json(), expected, "{model} stream {stream}");
            // The fake answers the function tool with a call (its answers: tests/src/fake).
            let response = if stream {
                let text = r.text();
                let events = events_of(&text);
                assert_eq!(events[0]["type"], "response.created", "{text}");
                events.last().unwrap()["response"].clone()
            } else {
                r.json()
            };
            // The fake's own id (48 hex digits, as OpenAI's), not one the gateway made.
            let id = response["id"].as_str().unwrap_or_default();
            assert_eq!(
                id.len(),
                "resp_".len() + 48,
                "the provider's own: {response}"
            );
            assert_eq!(response["output"][0]["type"], "function_call", "{response}");
            assert_eq!(response["output"][0]["name"], "lookup");
        }
    }
    // Usage from the Responses shapes: input tokens are the words of the instructions and the
    // user text (3 + ... per the fake's count), output 0 for a tool call.
    let (_, input, _) = demo_answer(&json!({"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "look it up"}]}));
    let log = gw.access_log(4);
    for line in &log {
        assert_eq!(line["operation"], "responses", "{line}");
        assert_eq!(line["prompt_tokens"], input.to_string(), "{line}");
        assert_eq!(line["completion_tokens"], "0", "{line}");
        assert!(line["error"].is_null() || line["error"] == "-", "{line}");
    }
}

/// A passed-through stream that stops before `response.completed` ends with `error` and
/// `response.failed` (the response the provider started, marked failed), and is logged so.
#[test]
fn a_passed_through_stream_cut_short_ends_with_error_and_response_failed() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let created = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_cut\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"in_progress\",\"model\":\"gpt-4o-mini\",\"output\":[],\"usage\":null}}\n\n";
    let delta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hel\",\"logprobs\":[]}\n\n";
    fake.push_reply(Reply::sse(
        &[created.to_string(), delta.to_string()],
        Duration::ZERO,
    ));
    let r = post(
        &gw,
        KEY,
        &json!({"model": "gpt-4o-mini", "input": "hi", "stream": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with(created), "untouched: {text}");
    let events = events_of(&text);
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "response.created",
            "response.output_text.delta",
            "error",
            "response.failed"
        ],
        "{text}"
    );
    let sequence: Vec<u64> = events
        .iter()
        .filter_map(|e| e["sequence_number"].as_u64())
        .collect();
    assert_eq!(sequence, [0, 1, 2, 3], "{text}");
    let failed = &events[3]["response"];
    assert_eq!(
        (&failed["id"], &failed["status"]),
        (&json!("resp_cut"), &json!("failed"))
    );
    assert_eq!(failed["error"]["code"], "server_error", "{failed}");
    let log = gw.access_log(1);
    assert_eq!(log[0]["error"], "upstream_stream_reset", "{log:?}");
}

/// A Responses request whose OpenAI attempt fails falls back to Anthropic, which gets the chat
/// form translated; the client gets Responses shapes. One with a hosted tool cannot be
/// translated: the fallback attempt is refused with a 400 naming it, no provider contacted.
#[test]
fn fallback_from_openai_to_anthropic_translates_that_attempt() {
    let fake_openai = FakeProvider::start(0).unwrap();
    let fake_anthropic = FakeProvider::start(0).unwrap();
    let mut options = Options {
        plugin_config: Some(config()),
        ..Options::every_provider_family(fake_openai.port)
    };
    for (cluster, port) in options.upstreams.iter_mut() {
        if cluster == "anthropic" {
            *port = fake_anthropic.port;
        }
    }
    let gw = Envoy::start(options);
    let broke = json!({"error": {"message": "The server had an error", "type": "server_error"}});
    for stream in [false, true] {
        fake_openai.push_reply(Reply::json(500, &broke));
        let text = format!("fall back to claude {stream}");
        let r = post(
            &gw,
            KEY,
            &json!({"model": "gpt-then-claude", "input": text, "stream": stream}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-gateway-provider"), Some("anthropic"));
        assert_eq!(r.header("x-gateway-attempts"), Some("2"));
        let to_openai = fake_openai.received().pop().unwrap();
        assert_eq!(to_openai.path, "/v1/responses");
        assert_eq!(to_openai.json()["input"], text);
        let to_anthropic = fake_anthropic.received().pop().unwrap();
        assert_eq!(to_anthropic.path, "/v1/messages");
        assert!(to_anthropic.json()["messages"].to_string().contains(&text));
        let (answer, _, _) = demo_answer(&json!({"messages": [{"role": "user", "content": text}]}));
        let response = if stream {
            let sse = r.text();
            assert_no_chat_frames(&sse);
            events_of(&sse).last().unwrap()["response"].clone()
        } else {
            r.json()
        };
        assert_eq!(response["object"], "response", "{response}");
        assert_eq!(response["model"], "gpt-then-claude", "{response}");
        assert_eq!(
            response["output"][0]["content"][0]["text"], answer,
            "{response}"
        );
    }
    fake_openai.push_reply(Reply::json(500, &broke));
    let before = fake_anthropic.received().len();
    let r = post(
        &gw,
        KEY,
        &json!({"model": "gpt-then-claude", "input": "search", "tools": [{"type": "web_search"}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["param"], "model", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'web_search' ('tools[0].type')"),
        "{e}"
    );
    assert_eq!(
        fake_anthropic.received().len(),
        before,
        "Anthropic was not contacted"
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
    // Whole streams from OpenAI (passed through), an OpenAI-format provider that does not serve
    // the Responses API (translated) and Anthropic (translated).
    for model in ["gpt-4o-mini", "groq-llama", "claude-haiku-4-5"] {
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
    // Groq's chunks stop before [DONE]: the gateway ends the stream with `error` and
    // `response.failed`, never with an OpenAI error event or [DONE].
    let chunk = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama-3.3-70b\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
    fake.push_reply(Reply::sse(&[chunk.to_string()], Duration::ZERO));
    let r = post(&gw, KEY, &body("groq-llama"));
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
    let log = gw.access_log(4);
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[3]["error"], "upstream_stream_reset", "{log:?}");
    assert!(log.iter().all(|l| l["operation"] == "responses"), "{log:?}");
}

#[test]
fn fallback_from_anthropic_to_openai_answers_in_responses_shapes_and_is_logged_as_responses() {
    let fake_anthropic = FakeProvider::start(0).unwrap();
    let fake_openai = FakeProvider::start(0).unwrap();
    let mut options = Options {
        plugin_config: Some(config()),
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
        // OpenAI's own answer, untouched: it names its model.
        assert_eq!(response["model"], "gpt-4o-mini");
        assert_eq!(response["output"][0]["content"][0]["text"], answer);
        // Anthropic got the chat form in its format; OpenAI, which serves the Responses API,
        // the client's own body.
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
        assert_eq!(to_openai.path, "/v1/responses");
        assert_eq!(to_openai.json()["input"], text);
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
