use serde_json::json;

use super::*;
use crate::config::Config;
use crate::provider::ResponseShape;

const NOW: u64 = 1_700_000_000;

fn config(key: bool) -> Config {
    let json = r#"{"providers": {"co": {"type": "cohere", "api_key_env": "COHERE_API_KEY"},
                                "local": {"type": "cohere", "path_prefix": "/cohere/v2"}},
        "models": {"command": {"provider": "co", "model": "command-a-03-2025"},
                   "embed": {"provider": "co", "model": "embed-v4.0"},
                   "local": {"provider": "local", "model": "command-r"}}}"#;
    Config::from_json(json.as_bytes(), &|_| key.then(|| "co-key".to_string())).unwrap()
}

fn attempt<'a>(c: &'a Config, model: &'a str, op: Operation, stream: bool) -> Attempt<'a> {
    let m = &c.models[model];
    Attempt {
        provider: c.provider_of(m).unwrap(),
        operation: op,
        client_model: model,
        upstream_model: &m.route.targets[0].upstream_model,
        stream,
        client_asked_usage: false,
        embeddings_base64: false,
        now_unix: NOW,
        key_index: 0,
    }
}

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/cohere/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn golden_json(name: &str) -> Value {
    serde_json::from_slice(&golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn translate(model: &str, op: Operation, stream: bool, body: &[u8]) -> UpstreamRequest {
    let c = config(true);
    Cohere
        .request(&attempt(&c, model, op, stream), body)
        .unwrap()
}

fn sent_json(r: &UpstreamRequest) -> Value {
    serde_json::from_slice(r.body.as_deref().unwrap()).unwrap()
}

fn refused(model: &str, op: Operation, body: Value) -> GatewayError {
    let c = config(true);
    Cohere
        .request(&attempt(&c, model, op, false), body.to_string().as_bytes())
        .unwrap_err()
}

/// The whole response through a fresh translator of this attempt.
fn respond(
    model: &str,
    op: Operation,
    status: u32,
    content_type: &str,
    pieces: &[&[u8]],
) -> (ResponseShape, Vec<u8>) {
    let c = config(true);
    let mut t = Cohere.response(&attempt(&c, model, op, false)).unwrap();
    let shape = t.start(status, Some(content_type));
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(t.body(piece, i + 1 == pieces.len()));
    }
    (shape, out)
}

/// An OpenAI SSE body as a list of its data payloads (JSON, or the string `[DONE]`).
fn sse_values(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.ends_with("\n\n"), "{text}");
    text.split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|block| {
            let data = block
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an OpenAI event: {block:?}"));
            if data == "[DONE]" {
                Value::String(data.into())
            } else {
                serde_json::from_str(data).unwrap()
            }
        })
        .collect()
}

// --- Requests -----------------------------------------------------------------------------

#[test]
fn chat_request_system_multi_turn_image_and_parameters() {
    let r = translate(
        "command",
        Operation::Chat,
        false,
        &golden("chat_request_multiturn.openai.json"),
    );
    assert_eq!(r.path, "/v2/chat");
    assert_eq!(
        r.headers,
        vec![
            ("authorization", "Bearer co-key".to_string()),
            ("content-type", "application/json".to_string())
        ]
    );
    assert_eq!(
        sent_json(&r),
        golden_json("chat_request_multiturn.cohere.json")
    );
}

#[test]
fn chat_request_tools_round_trip() {
    let r = translate(
        "command",
        Operation::Chat,
        true,
        &golden("chat_request_tools.openai.json"),
    );
    assert_eq!(sent_json(&r), golden_json("chat_request_tools.cohere.json"));
}

#[test]
fn chat_request_json_schema() {
    let r = translate(
        "command",
        Operation::Chat,
        false,
        &golden("chat_request_json_schema.openai.json"),
    );
    assert_eq!(
        sent_json(&r),
        golden_json("chat_request_json_schema.cohere.json")
    );
    let json_object = translate(
        "command",
        Operation::Chat,
        false,
        br#"{"model":"command","messages":[{"role":"user","content":"JSON please"}],"response_format":{"type":"json_object"}}"#,
    );
    assert_eq!(
        sent_json(&json_object)["response_format"],
        json!({"type": "json_object"})
    );
}

#[test]
fn embeddings_request() {
    let r = translate(
        "embed",
        Operation::Embeddings,
        false,
        &golden("embeddings_request.openai.json"),
    );
    assert_eq!(r.path, "/v2/embed");
    assert_eq!(sent_json(&r), golden_json("embeddings_request.cohere.json"));
    let single = translate(
        "embed",
        Operation::Embeddings,
        false,
        br#"{"model":"embed","input":"one text"}"#,
    );
    assert_eq!(sent_json(&single)["texts"], json!(["one text"]));
}

#[test]
fn no_key_no_authorization_and_the_configured_prefix() {
    let c = config(false);
    let r = Cohere
        .request(
            &attempt(&c, "local", Operation::Chat, false),
            br#"{"model":"local","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
    assert_eq!(r.path, "/cohere/v2/chat");
    assert_eq!(
        r.headers,
        vec![("content-type", "application/json".to_string())]
    );
    assert_eq!(sent_json(&r)["model"], "command-r");
}

#[test]
fn tool_choice_forms() {
    let tools = json!([
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}, "strict": true}}]);
    let body = |choice: Value| {
        json!({"model": "command", "messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": choice})
            .to_string()
    };
    let sent = |choice: Value| {
        sent_json(&translate(
            "command",
            Operation::Chat,
            false,
            body(choice).as_bytes(),
        ))
    };
    let auto = sent(json!("auto"));
    assert_eq!(auto.get("tool_choice"), None);
    assert_eq!(auto["tools"].as_array().unwrap().len(), 2);
    assert_eq!(
        auto["strict_tools"], true,
        "a strict tool asks strict_tools"
    );
    assert_eq!(sent(json!("none"))["tool_choice"], "NONE");
    let named = sent(json!({"type": "function", "function": {"name": "b"}}));
    assert_eq!(named["tool_choice"], "REQUIRED");
    assert_eq!(
        named["tools"],
        json!([{"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}])
    );
    let e = refused(
        "command",
        Operation::Chat,
        serde_json::from_str(&body(
            json!({"type": "function", "function": {"name": "zz"}}),
        ))
        .unwrap(),
    );
    assert_eq!((e.status(), e.param()), (400, Some("tool_choice")));
    let e = refused(
        "command",
        Operation::Chat,
        serde_json::from_str(&body(json!({"type": "allowed_tools"}))).unwrap(),
    );
    assert_eq!((e.status(), e.param()), (400, Some("tool_choice")));
}

#[test]
fn requests_cohere_cannot_honour_are_refused_naming_the_parameter() {
    let chat = |extra: Value| {
        let mut b = json!({"model": "command", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (chat(json!({"n": 2})), "n"),
        (chat(json!({"temperature": 1.5})), "temperature"),
        (chat(json!({"presence_penalty": -0.5})), "presence_penalty"),
        (chat(json!({"frequency_penalty": 1.5})), "frequency_penalty"),
        (chat(json!({"seed": -1})), "seed"),
        (chat(json!({"functions": [{"name": "f"}]})), "functions"),
        (chat(json!({"modalities": ["text", "audio"]})), "modalities"),
        (
            chat(json!({"response_format": {"type": "xml"}})),
            "response_format.type",
        ),
        (
            chat(json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]})),
            "tools[0].type",
        ),
        (
            chat(
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}),
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(
                json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(json!({"messages": [{"role": "function", "name": "f", "content": "x"}]})),
            "messages[0].role",
        ),
    ];
    for (body, param) in cases {
        let e = refused("command", Operation::Chat, body.clone());
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{body}");
    }
    for input in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
        let e = refused(
            "embed",
            Operation::Embeddings,
            json!({"model": "embed", "input": input}),
        );
        assert_eq!((e.status(), e.param()), (400, Some("input")));
    }
}

#[test]
fn top_p_is_clamped_into_cohere_range() {
    let sent = |p: f64| {
        sent_json(&translate(
            "command",
            Operation::Chat,
            false,
            json!({"model": "command", "messages": [{"role": "user", "content": "hi"}], "top_p": p})
                .to_string()
                .as_bytes(),
        ))["p"]
            .clone()
    };
    assert_eq!(sent(0.0), json!(0.01));
    assert_eq!(sent(0.5), json!(0.5));
    assert_eq!(sent(1.0), json!(0.99));
}

#[test]
fn client_values_pass_as_sent_and_missing_ones_get_cohere_defaults() {
    let body = json!({"model": "command", "messages": [
        {"role": "system", "content": null},
        {"role": "user", "content": "a \"quote\", caf\u{e9} and \\"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}], "tool_calls": [
            {"id": "c1", "function": {"name": "f"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": {"x": 1}}}]},
        {"role": "assistant", "content": ""},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "done"}]}],
        "tools": [{"type": "function", "function": {"name": "f", "description": 5}}],
        "stop": ["a", "b"], "max_tokens": 9, "temperature": 0});
    let sent = sent_json(&translate(
        "command",
        Operation::Chat,
        false,
        body.to_string().as_bytes(),
    ));
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": ""},
            {"role": "user", "content": "a \"quote\", caf\u{e9} and \\"},
            {"role": "assistant", "content": [{"type": "text", "text": "No."}], "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{\"x\":1}"}}]},
            {"role": "assistant"},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "done"}]}])
    );
    assert_eq!(
        sent["tools"],
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
    );
    assert_eq!(sent["stop_sequences"], json!(["a", "b"]));
    assert_eq!(
        (&sent["max_tokens"], &sent["temperature"]),
        (&json!(9), &json!(0))
    );
    assert_eq!(sent.get("strict_tools"), None);
}

#[test]
fn refusals_name_the_message_and_part() {
    let chat = |messages: Value| json!({"model": "command", "messages": messages});
    let hi = json!({"role": "user", "content": "hi"});
    for (messages, param) in [
        (
            json!([hi, {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "file", "file": {}}]}]),
            "messages[1].content[1].type",
        ),
        (
            json!([hi, hi, {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages[2].content[0].image_url.url",
        ),
        (
            json!([hi, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}, {"id": "d"}]}]),
            "messages[1].tool_calls[1]",
        ),
        (
            json!([hi, {"role": "robot", "content": "x"}]),
            "messages[1].role",
        ),
        (
            json!([{"role": "tool", "tool_call_id": "c", "content": [{"type": "refusal", "refusal": "no"}]}]),
            "messages[0].content[0].type",
        ),
    ] {
        let e = refused("command", Operation::Chat, chat(messages.clone()));
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{messages}");
    }
    let e = refused(
        "command",
        Operation::Chat,
        json!({"model": "command", "messages": [hi], "tools": [{"type": "function", "function": {}}]}),
    );
    assert_eq!(e.param(), Some("tools[0].function.name"));
    let e = refused(
        "embed",
        Operation::Embeddings,
        json!({"model": "embed", "input": ["a", 1]}),
    );
    assert_eq!(e.param(), Some("input"));
}

// --- Responses ----------------------------------------------------------------------------

#[test]
fn text_response_with_thinking_dropped_and_usage_from_tokens() {
    let (shape, out) = respond(
        "command",
        Operation::Chat,
        200,
        "application/json",
        &[&golden("chat_response_text.cohere.json")],
    );
    assert_eq!(shape, ResponseShape::JSON);
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        golden_json("chat_response_text.openai.json")
    );
}

#[test]
fn tool_call_response_keeps_ids_and_falls_back_to_billed_units() {
    let body = golden("chat_response_tool_calls.cohere.json");
    // The body arrives in two pieces; it is translated whole at the end.
    let (first, rest) = body.split_at(body.len() / 2);
    let (_, out) = respond(
        "command",
        Operation::Chat,
        200,
        "application/json",
        &[first, rest],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        golden_json("chat_response_tool_calls.openai.json")
    );
}

#[test]
fn finish_reasons() {
    for (cohere, openai) in [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("TIMEOUT", "length"),
        ("ERROR", "length"),
    ] {
        let body = json!({"id": "x", "finish_reason": cohere,
            "message": {"role": "assistant", "content": [{"type": "text", "text": "partial"}]}});
        let (_, out) = respond(
            "command",
            Operation::Chat,
            200,
            "application/json",
            &[body.to_string().as_bytes()],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], openai, "{cohere}");
        assert_eq!(v["choices"][0]["message"]["content"], "partial");
    }
}

#[test]
fn error_keeps_status_and_message() {
    for content_type in ["application/json", "text/event-stream"] {
        let (shape, out) = respond(
            "command",
            Operation::Chat,
            429,
            content_type,
            &[&golden("error_429.cohere.json")],
        );
        assert_eq!(shape, ResponseShape::JSON, "errors are read whole");
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            golden_json("error_429.openai.json")
        );
    }
    let (_, out) = respond(
        "embed",
        Operation::Embeddings,
        400,
        "application/json",
        &[br#"{"message":"invalid request: total number of texts must be at most 96 - received 104"}"#],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["error"]["message"],
        "invalid request: total number of texts must be at most 96 - received 104"
    );
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let (_, out) = respond(
        "command",
        Operation::Chat,
        503,
        "text/plain",
        &[b"upstream connect error"],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "upstream connect error");
}

#[test]
fn embeddings_response_in_floats_and_base64() {
    let c = config(true);
    for (request_format, expected) in [
        ("float", "embeddings_response.openai.json"),
        ("base64", "embeddings_response_base64.openai.json"),
    ] {
        let mut a = attempt(&c, "embed", Operation::Embeddings, false);
        let body = json!({"model": "embed", "input": ["hello", "goodbye"], "encoding_format": request_format});
        a.embeddings_base64 = crate::chat::embeddings_base64(body.to_string().as_bytes());
        Cohere.request(&a, body.to_string().as_bytes()).unwrap();
        let mut t = Cohere.response(&a).unwrap();
        assert_eq!(t.start(200, Some("application/json")), ResponseShape::JSON);
        let out = t.body(&golden("embeddings_response.cohere.json"), true);
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            golden_json(expected),
            "{request_format}"
        );
    }
    // An attempt that did not ask for base64 gets floats.
    let a = attempt(&c, "command", Operation::Chat, false);
    Cohere
        .request(
            &a,
            br#"{"model":"command","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
    let e = attempt(&c, "embed", Operation::Embeddings, false);
    let mut t = Cohere.response(&e).unwrap();
    t.start(200, Some("application/json"));
    let v: Value =
        serde_json::from_slice(&t.body(&golden("embeddings_response.cohere.json"), true)).unwrap();
    assert!(v["data"][0]["embedding"].is_array());
}

/// Strings with escapes (`\"`, `\u00e9`) come out as the characters they stand for, wherever
/// Cohere puts them.
#[test]
fn escaped_strings_in_answers_come_out_right() {
    let body = br#"{"id": "a\"1", "finish_reason": "TOOL_CALL",
        "message": {"content": [{"type": "text", "text": "caf\u00e9 \"1\""}, {"type": "text", "text": " \u2014 ok"}],
            "tool_calls": [{"id": "c\u00e9", "function": {"name": "f\"", "arguments": "{\"city\": \"K\u00f6ln\"}"}}]}}"#;
    let (_, out) = respond("command", Operation::Chat, 200, "application/json", &[body]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["id"], "a\"1");
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], "caf\u{e9} \"1\" \u{2014} ok");
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "c\u{e9}", "type": "function",
            "function": {"name": "f\"", "arguments": "{\"city\": \"K\u{f6}ln\"}"}}])
    );
    let (_, out) = respond(
        "command",
        Operation::Chat,
        400,
        "application/json",
        &[br#"{"message": "invalid \"model\": caf\u00e9"}"#],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "invalid \"model\": caf\u{e9}");
}

/// Null members read as missing; other shapes Cohere's reference allows are read too.
#[test]
fn null_members_and_other_answer_shapes() {
    let answer = |body: Value| {
        let (_, out) = respond(
            "command",
            Operation::Chat,
            200,
            "application/json",
            &[body.to_string().as_bytes()],
        );
        serde_json::from_slice::<Value>(&out).unwrap()
    };
    let v = answer(json!({"id": null, "finish_reason": null, "usage": null,
        "message": {"content": null, "tool_calls": null}}));
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 0);
    // Content as one string; arguments as a JSON object; counts as floats, or of another type
    // (the billed count stands in).
    let v = answer(json!({"id": "x", "message": {"content": "plain",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": [1]}}}, {}]},
        "usage": {"tokens": {"input_tokens": 7.0, "output_tokens": "many"},
            "billed_units": {"output_tokens": 2}, "cached_tokens": 3.0}}));
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], "plain");
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        "{\"a\":[1]}"
    );
    assert_eq!(
        message["tool_calls"][1],
        json!({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    );
    assert_eq!(
        (
            &v["usage"]["prompt_tokens"],
            &v["usage"]["completion_tokens"]
        ),
        (&json!(7), &json!(2))
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
    // The older list form of `embeddings`, and a null `meta`.
    let (_, out) = respond(
        "embed",
        Operation::Embeddings,
        200,
        "application/json",
        &[br#"{"embeddings": [[0.5], [1.5]], "meta": null}"#],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["data"][1]["embedding"], json!([1.5]));
    assert_eq!(v["usage"]["prompt_tokens"], 0);
}

/// A 2xx body that is not the answer asked for is a 502 carrying Cohere's message when it has
/// one, never a panic or an empty answer.
#[test]
fn a_success_of_another_shape_is_an_upstream_error() {
    let cases: [(Operation, &[u8], &str); 11] = [
        (
            Operation::Chat,
            b"",
            "Cohere answered with a body that is not JSON.",
        ),
        (
            Operation::Chat,
            b"<html>",
            "Cohere answered with a body that is not JSON.",
        ),
        (
            Operation::Chat,
            b"{}",
            "Cohere answered with a body that is not a chat answer.",
        ),
        (
            Operation::Chat,
            b"[]",
            "Cohere answered with a body that is not a chat answer.",
        ),
        (
            Operation::Chat,
            b"{\"message\": null}",
            "Cohere answered with a body that is not a chat answer.",
        ),
        (
            Operation::Chat,
            b"{\"id\": 5, \"message\": {}}",
            "Cohere answered with a body that is not a chat answer.",
        ),
        (
            Operation::Chat,
            b"{\"message\": \"overloaded\"}",
            "overloaded",
        ),
        (
            Operation::Chat,
            b"{\"error\": {\"message\": \"overloaded\"}}",
            "overloaded",
        ),
        (
            Operation::Embeddings,
            b"{}",
            "Cohere answered with a body that is not an embed answer with float vectors.",
        ),
        (
            Operation::Embeddings,
            b"{\"embeddings\": {\"int8\": [[1]]}}",
            "Cohere answered with a body that is not an embed answer with float vectors.",
        ),
        (
            Operation::Embeddings,
            b"{\"message\": \"overloaded\"}",
            "overloaded",
        ),
    ];
    for (op, body, message) in cases {
        let model = if op == Operation::Chat {
            "command"
        } else {
            "embed"
        };
        let (_, out) = respond(model, op, 200, "application/json", &[body]);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let body = String::from_utf8_lossy(body);
        assert_eq!(v["error"]["message"], message, "{body}");
        assert_eq!(v["error"]["type"], "upstream_error", "{body}");
        assert_eq!(v["error"]["code"], "upstream_unavailable", "{body}");
    }
}

// --- Streams ------------------------------------------------------------------------------

fn run_stream(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let c = config(true);
    let mut t = Cohere
        .response(&attempt(&c, "command", Operation::Chat, true))
        .unwrap();
    assert_eq!(
        t.start(200, Some("text/event-stream; charset=utf-8")),
        ResponseShape::SSE
    );
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        out.extend(t.body(&stream[start..cut], false));
        start = cut;
    }
    out.extend(t.body(&stream[start..], true));
    out
}

/// The stream whole equals the golden file, and split at every byte offset (and byte by
/// byte) gives the same bytes.
fn assert_stream(input: &str, expected: &str) {
    let stream = golden(input);
    let whole = run_stream(&stream, &[]);
    assert_eq!(
        sse_values(&whole),
        golden_json(expected).as_array().unwrap().clone()
    );
    for cut in 0..=stream.len() {
        assert_eq!(run_stream(&stream, &[cut]), whole, "split at {cut}");
    }
    let every: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(run_stream(&stream, &every), whole, "byte by byte");
}

#[test]
fn stream_with_text_and_a_tool_call() {
    assert_stream("chat_stream.cohere.sse", "chat_stream.openai.json");
}

#[test]
fn error_in_the_stream_becomes_an_error_event() {
    assert_stream(
        "chat_stream_error.cohere.sse",
        "chat_stream_error.openai.json",
    );
}

#[test]
fn incomplete_events_wait() {
    let c = config(true);
    let mut t = Cohere
        .response(&attempt(&c, "command", Operation::Chat, true))
        .unwrap();
    t.start(200, Some("text/event-stream"));
    assert!(t
        .body(b"event: message-start\ndata: {\"type\":\"message-st", false)
        .is_empty());
    assert!(!t.body(b"art\",\"id\":\"m1\"}\n\n", false).is_empty());
}

#[test]
fn a_stream_cut_short_still_ends() {
    let cut = b"event: message-start\ndata: {\"type\":\"message-start\",\"id\":\"m1\"}\n\nevent: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hel\"}}}}\n\n";
    for stream in [&cut[..], &cut[..cut.len() - 30], b""] {
        let out = sse_values(&run_stream(stream, &[]));
        assert_eq!(out.last(), Some(&json!("[DONE]")), "{out:?}");
        let error = &out[out.len() - 2]["error"];
        assert_eq!(error["type"], "upstream_error", "{out:?}");
    }
    // Nothing follows [DONE], whatever comes after message-end.
    let mut after = golden("chat_stream_error.cohere.sse");
    after.extend_from_slice(b"event: content-delta\ndata: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":\"late\"}}}}\n\n");
    let out = sse_values(&run_stream(&after, &[]));
    assert_eq!(out.iter().filter(|v| **v == json!("[DONE]")).count(), 1);
    assert_eq!(out.last(), Some(&json!("[DONE]")));
}

#[test]
fn stream_finish_and_usage_of_a_plain_answer() {
    let s = concat!(
        "event: message-start\ndata: {\"id\":\"m2\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n",
        "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hi\"}}}}\n\n",
        "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"MAX_TOKENS\",\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":1}}}}\n\n",
        "data: [DONE]\n\n",
    );
    let out = sse_values(&run_stream(s.as_bytes(), &[]));
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(out[3]["usage"]["prompt_tokens"], 3);
    assert_eq!(out[3]["usage"]["total_tokens"], 4);
    assert_eq!(out[4], json!("[DONE]"));
}

/// Stream events with escapes, null members, lists where the deltas have objects
/// (`message-start`), arguments as a JSON value and an error object instead of an event.
#[test]
fn stream_events_of_every_shape() {
    let s = concat!(
        "data: {\"type\":\"message-start\",\"id\":\"m\\\"1\",\"delta\":{\"message\":{\"content\":[],\"tool_calls\":[]}}}\n\n",
        "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"caf\\u00e9 \\\"x\\\"\"}}}}\n\n",
        "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":null}}}\n\n",
        "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":null}\n\n",
        "data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}}}}\n\n",
        "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":null}}}}}\n\n",
        "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"\\u00e9\"}}}}}\n\n",
        "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"error\":null,\"usage\":null}}\n\n",
    );
    let out = sse_values(&run_stream(s.as_bytes(), &[]));
    assert_eq!(out.len(), 7, "{out:?}");
    assert_eq!(out[0]["id"], "m\"1");
    assert_eq!(out[1]["choices"][0]["delta"]["content"], "caf\u{e9} \"x\"");
    assert_eq!(
        out[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(
        out[3]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "\u{e9}"}}]})
    );
    assert_eq!(out[4]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out[5]["usage"]["total_tokens"], 0);
    let error = "data: {\"message\":\"caf\\u00e9 is closed\"}\n\n";
    let out = sse_values(&run_stream(error.as_bytes(), &[]));
    assert_eq!(
        out,
        vec![
            json!({"error": {"message": "caf\u{e9} is closed", "type": "upstream_error", "param": null, "code": "upstream_error"}}),
            json!("[DONE]")
        ]
    );
}
