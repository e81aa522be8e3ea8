use super::*;
use crate::config::Config;
use crate::test_json::{assert_same, same};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/anthropic");
const CREATED: u64 = 1_700_000_000;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_json(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn config(extra_provider: &str) -> Config {
    let json = format!(
        r#"{{"providers": {{
            "anthropic": {{"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY", "default_max_tokens": 1024}},
            "local": {{"type": "anthropic", "path_prefix": "/proxy/v1"{extra_provider}}}}},
        "models": {{"claude": {{"provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}},
                   "local-claude": {{"provider": "local", "model": "claude-haiku-4-5"}}}}}}"#
    );
    Config::from_json(json.as_bytes(), &|_| Some("sk-ant-test".into())).unwrap()
}

fn attempt<'a>(c: &'a Config, model: &'a str, stream: bool) -> Attempt<'a> {
    let m = &c.models[model];
    Attempt {
        provider: c.provider_of(m).unwrap(),
        operation: Operation::Chat,
        client_model: model,
        upstream_model: &m.route.targets[0].upstream_model,
        stream,
        client_asked_usage: false,
        embeddings_base64: false,
        now_unix: CREATED,
        key_index: 0,
    }
}

/// The Anthropic body for an OpenAI body, as the gateway would send it to model "claude".
fn translate(body: &Value) -> Result<Value, GatewayError> {
    let c = config("");
    let stream = body["stream"] == true;
    Anthropic
        .request(&attempt(&c, "claude", stream), body.to_string().as_bytes())
        .map(|r| serde_json::from_slice(&r.body.unwrap()).unwrap())
}

fn translate_err(body: &Value) -> GatewayError {
    translate(body).expect_err("the request must be refused")
}

#[test]
fn golden_requests() {
    for case in [
        "system_multiturn",
        "image",
        "tools",
        "json_schema",
        "json_schema_loose",
        "json_object_stream",
        "cache_control",
    ] {
        let input = read_json(&format!("request_{case}.openai.json"));
        let expected = read_json(&format!("request_{case}.anthropic.json"));
        let actual = translate(&input).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_same(&actual, &expected, &format!("request_{case}"));
    }
}

fn translate_response(status: u32, content_type: &str, body: &[u8]) -> (ResponseShape, Vec<u8>) {
    let mut t = AnthropicResponse::new(CREATED);
    let shape = t.start(status, Some(content_type));
    (shape, t.body(body, true))
}

#[test]
fn golden_responses_and_errors() {
    for (case, status) in [
        ("response_text", 200),
        ("response_tool_use", 200),
        ("response_cache_usage", 200),
        ("response_json_schema", 200),
        ("response_thinking_web_search", 200),
        ("error_429", 429),
        ("error_529", 529),
    ] {
        let (shape, out) = translate_response(
            status,
            "application/json",
            &read(&format!("{case}.anthropic.json")),
        );
        assert_eq!(shape, ResponseShape::JSON, "{case}");
        let actual: Value = serde_json::from_slice(&out).unwrap();
        assert_same(&actual, &read_json(&format!("{case}.openai.json")), case);
    }
}

/// Runs a stream through the translator, cut into pieces at `cuts`.
fn run_stream(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut t = AnthropicResponse::new(CREATED);
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

/// The `data` of each event of an OpenAI stream.
fn sse_data(bytes: &[u8]) -> Vec<String> {
    let mut p = SseParser::new();
    let mut events = Vec::new();
    p.feed(bytes, &mut events);
    p.finish(&mut events);
    events
        .into_iter()
        .map(|e| {
            e.data
                .unwrap_or_else(|| panic!("event without data: {:?}", e.raw))
        })
        .collect()
}

fn assert_same_stream(actual: &[u8], expected: &[u8], what: &str) {
    let (actual, expected) = (sse_data(actual), sse_data(expected));
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: event count\n{actual:#?}"
    );
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        if e == "[DONE]" {
            assert_eq!(a, e, "{what}: event {i}");
        } else {
            let a: Value = serde_json::from_str(a)
                .unwrap_or_else(|err| panic!("{what}: event {i} {a:?}: {err}"));
            let e: Value = serde_json::from_str(e).unwrap();
            assert_same(&a, &e, &format!("{what}: event {i}"));
        }
    }
}

#[test]
fn golden_streams_whole_and_split_at_every_byte() {
    for case in [
        "stream_text_tools",
        "stream_error",
        "stream_truncated",
        "stream_json_schema_cache",
        "stream_thinking_web_search",
    ] {
        let input = read(&format!("{case}.anthropic.sse"));
        let whole = run_stream(&input, &[]);
        assert_same_stream(&whole, &read(&format!("{case}.openai.sse")), case);
        for cut in 0..=input.len() {
            assert_eq!(
                run_stream(&input, &[cut]),
                whole,
                "{case}: split at byte {cut}"
            );
        }
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            run_stream(&input, &every_byte),
            whole,
            "{case}: byte by byte"
        );
    }
}

#[test]
fn stream_output_is_incremental_and_waits_for_whole_events() {
    let input = read("stream_text_tools.anthropic.sse");
    let first_end = input.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    let mut t = AnthropicResponse::new(CREATED);
    t.start(200, Some("text/event-stream"));
    assert!(
        t.body(&input[..first_end - 1], false).is_empty(),
        "an incomplete event waits"
    );
    let first = t.body(&input[first_end - 1..first_end], false);
    assert_eq!(
        sse_data(&first).len(),
        1,
        "message_start gives the role chunk at once"
    );
    assert!(t
        .body(b"event: ping\ndata: {\"type\": \"ping\"}\n\n", false)
        .is_empty());
}

#[test]
fn nothing_after_the_end_of_the_stream() {
    let mut input = read("stream_text_tools.anthropic.sse");
    let expected = run_stream(&input, &[]);
    input.extend_from_slice(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n");
    assert_eq!(run_stream(&input, &[]), expected);
    // An empty 200 stream still ends, with an error and [DONE].
    let empty = sse_data(&run_stream(b"", &[]));
    assert_eq!(empty.len(), 2);
    assert!(empty[0].contains("\"error\""));
    assert_eq!(empty[1], "[DONE]");
}

#[test]
fn head_has_path_version_and_key_only_when_configured() {
    let c = config("");
    let body = br#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#;
    let r = Anthropic
        .request(&attempt(&c, "claude", false), body)
        .unwrap();
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(
        r.headers,
        vec![
            ("x-api-key", "sk-ant-test".to_string()),
            ("anthropic-version", "2023-06-01".to_string()),
            ("content-type", "application/json".to_string()),
        ]
    );
    let local = Anthropic
        .request(&attempt(&c, "local-claude", true), body)
        .unwrap();
    assert_eq!(local.path, "/proxy/v1/messages");
    assert!(local.headers.iter().all(|(k, _)| *k != "x-api-key"));
    let sent: Value = serde_json::from_slice(&local.body.unwrap()).unwrap();
    assert_eq!(sent["model"], "claude-haiku-4-5");
    assert_eq!(
        sent["max_tokens"], 4096,
        "the configuration's default default"
    );
    assert_eq!(sent["stream"], true);
    assert!(Anthropic.response(&attempt(&c, "claude", false)).is_some());
}

#[test]
fn embeddings_are_refused() {
    let c = config("");
    let mut a = attempt(&c, "claude", false);
    a.operation = Operation::Embeddings;
    let e = Anthropic
        .request(&a, br#"{"model":"claude","input":"x"}"#)
        .unwrap_err();
    assert_eq!(e.status(), 400);
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn refusals_name_the_parameter() {
    let cases = [
        (json!({"n": 2, "messages": [user("hi")]}), "n"),
        (
            json!({"messages": [user("hi"), {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{not json"}}]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [user("hi"), {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "[1, 2]"}}]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}),
            "messages[0].content[0].file",
        ),
        (
            json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [user("hi")], "functions": [{"name": "f"}]}),
            "functions",
        ),
        (
            json!({"messages": [user("hi")], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"messages": [user("hi")], "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [user("hi")], "tools": [{"type": "function", "function": {"name": "json_response__x"}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"messages": [user("hi")], "response_format": {"type": "yaml"}}),
            "response_format",
        ),
        (
            json!({"messages": [user("hi")], "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
            "response_format.json_schema.name",
        ),
    ];
    for (mut body, param) in cases {
        body["model"] = "claude".into();
        let e = translate_err(&body);
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{body}: {e}");
    }
}

#[test]
fn temperature_is_capped_at_one_and_lower_values_pass() {
    for (t, want) in [
        (json!(1.5), json!(1.0)),
        (json!(2), json!(1.0)),
        (json!(0.3), json!(0.3)),
        (json!(0), json!(0)),
    ] {
        let out =
            translate(&json!({"model": "claude", "messages": [user("hi")], "temperature": t}))
                .unwrap();
        assert!(
            same(&out["temperature"], &want),
            "{t} gave {}",
            out["temperature"]
        );
    }
}

fn tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "parameters": {"type": "object"}}})
}

#[test]
fn tool_choice_forms() {
    let with = |choice: Value, parallel: Value| {
        let mut body = json!({"model": "claude", "messages": [user("hi")], "tools": [tool("f")]});
        if !choice.is_null() {
            body["tool_choice"] = choice;
        }
        if !parallel.is_null() {
            body["parallel_tool_calls"] = parallel;
        }
        translate(&body).unwrap().get("tool_choice").cloned()
    };
    assert_eq!(
        with(json!("auto"), Value::Null),
        Some(json!({"type": "auto"}))
    );
    assert_eq!(
        with(json!("required"), Value::Null),
        Some(json!({"type": "any"}))
    );
    assert_eq!(
        with(json!("none"), Value::Null),
        Some(json!({"type": "none"}))
    );
    assert_eq!(with(Value::Null, Value::Null), None);
    assert_eq!(
        with(Value::Null, json!(false)),
        Some(json!({"type": "auto", "disable_parallel_tool_use": true}))
    );
    assert_eq!(
        with(json!("required"), json!(false)),
        Some(json!({"type": "any", "disable_parallel_tool_use": true}))
    );
    assert_eq!(
        with(json!("none"), json!(false)),
        Some(json!({"type": "none"}))
    );
    assert_eq!(
        with(json!("auto"), json!(true)),
        Some(json!({"type": "auto"}))
    );
    // No tools: no tool_choice and no tools at all.
    let out = translate(
        &json!({"model": "claude", "messages": [user("hi")], "tool_choice": "auto",
        "parallel_tool_calls": false}),
    )
    .unwrap();
    assert!(
        out.get("tools").is_none() && out.get("tool_choice").is_none(),
        "{out}"
    );
}

#[test]
fn json_schema_with_the_clients_own_tools() {
    let schema = json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}});
    let run = |choice: Option<Value>| {
        let mut body = json!({"model": "claude", "messages": [user("hi")], "tools": [tool("f")],
            "response_format": schema});
        if let Some(c) = choice {
            body["tool_choice"] = c;
        }
        translate(&body).unwrap()
    };
    let out = run(None);
    let names: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["f", "json_response__answer"]);
    assert_eq!(
        out["tool_choice"],
        json!({"type": "any"}),
        "a client tool or the answer"
    );
    assert_eq!(
        run(Some(json!("none")))["tool_choice"],
        json!({"type": "tool", "name": "json_response__answer"})
    );
    assert_eq!(
        run(Some(json!({"type": "function", "function": {"name": "f"}})))["tool_choice"],
        json!({"type": "tool", "name": "f"})
    );
    let long = "x".repeat(80);
    let out = translate(&json!({"model": "claude", "messages": [user("hi")],
        "response_format": {"type": "json_schema", "json_schema": {"name": long}}}))
    .unwrap();
    assert_eq!(out["tools"][0]["name"].as_str().unwrap().len(), 64);
    assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(out["tool_choice"]["name"], out["tools"][0]["name"]);
}

#[test]
fn turns_alternate_and_empty_assistant_text_is_left_out() {
    let out = translate(&json!({"model": "claude", "messages": [
        user("one"), user("two"),
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "system", "content": "late system"},
        {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]}
    ]}))
    .unwrap();
    assert_eq!(out["system"], "late system");
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "done"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]}
        ])
    );
}

#[test]
fn pdf_file_data_becomes_a_document() {
    let out = translate(&json!({"model": "claude", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}}]}]}))
    .unwrap();
    assert_eq!(
        out["messages"][0]["content"][0],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}})
    );
}

#[test]
fn errors_that_are_not_anthropic_json_keep_status_and_text() {
    let (shape, out) = translate_response(503, "text/html", b"<html>upstream connect error</html>");
    assert_eq!(shape, ResponseShape::JSON);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "upstream_error");
    assert_eq!(v["error"]["code"], "upstream_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream connect error"),
        "{v}"
    );
    // An error status with an event-stream content type is still an error body.
    let (shape, out) =
        translate_response(500, "text/event-stream", &read("error_529.anthropic.json"));
    assert_eq!(shape, ResponseShape::JSON);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (v["error"]["message"].as_str(), v["error"]["type"].as_str()),
        (Some("Overloaded"), Some("upstream_error"))
    );
    // A 200 that is no message is not passed off as an answer.
    let (_, out) = translate_response(200, "application/json", b"{\"unexpected\": true}");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a message")),
        "{v}"
    );
}

#[test]
fn a_json_answer_arriving_in_pieces_is_translated_once_whole() {
    let body = read("response_text.anthropic.json");
    let mut t = AnthropicResponse::new(CREATED);
    assert_eq!(t.start(200, Some("application/json")), ResponseShape::JSON);
    let (a, b) = body.split_at(body.len() / 2);
    assert!(t.body(a, false).is_empty());
    let out: Value = serde_json::from_slice(&t.body(b, true)).unwrap();
    assert_same(&out, &read_json("response_text.openai.json"), "pieces");
}

#[test]
fn a_tool_only_answer_has_null_content() {
    let msg = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 2}});
    let (_, out) = translate_response(200, "application/json", msg.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    for (reason, want) in [
        ("refusal", "content_filter"),
        ("stop_sequence", "stop"),
        ("model_context_window_exceeded", "length"),
    ] {
        let mut m = msg.clone();
        m["content"] = json!([{"type": "text", "text": "x"}]);
        m["stop_reason"] = reason.into();
        let (_, out) = translate_response(200, "application/json", m.to_string().as_bytes());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], want, "{reason}");
    }
}

#[test]
fn cache_markers_beyond_four_or_malformed_are_refused_naming_the_parameter() {
    let marked =
        |text: &str| json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}});
    // Four are Anthropic's limit ([AC] "You can define up to 4 cache breakpoints"): four pass.
    let four = json!({"messages": [{"role": "system", "content": [marked("s")]},
        {"role": "user", "content": [marked("a"), marked("b")], "cache_control": {"type": "ephemeral"}}]});
    let body = translate(&four).unwrap();
    assert_eq!(body["messages"][0]["content"].as_array().unwrap().len(), 2);
    let five = json!({"messages": [{"role": "system", "content": [marked("s")]},
        {"role": "user", "content": [marked("a"), marked("b"), marked("c")]}],
        "tools": [{"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}]});
    let e = translate_err(&five);
    assert_eq!((e.status(), e.param()), (400, Some("cache_control")), "{e}");
    for (body, param) in [
        (
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {"type": "persistent"}}]}]}),
            "messages[0].content[0].cache_control",
        ),
        (
            json!({"messages": [{"role": "user", "content": "a", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]}),
            "messages[0].cache_control.ttl",
        ),
    ] {
        let e = translate_err(&body);
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{e}");
    }
}

#[test]
fn without_markers_the_system_prompt_stays_one_string() {
    let body = translate(&json!({"messages": [{"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, user("hi")]})).unwrap();
    assert_eq!(body["system"], json!("a\nb"));
    assert!(body["messages"][0]["content"][0]
        .get("cache_control")
        .is_none());
}
