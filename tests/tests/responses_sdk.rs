//! The Responses API translators' output (filter/src/inbound/responses) goes through the official
//! OpenAI Python SDK (tests/sdk/responses_check.py): every answer, stream event and error body
//! the translators make from the golden inputs in filter/testdata/openai_responses/ is accepted
//! by the SDK's own types and client, and the requests the SDK sends are translated. And
//! tests/sdk/responses_client.py runs against a stand-in for the pipeline (the four translator
//! calls around the fake provider, no Envoy), which isolates the translators from the pipeline;
//! the same script runs through Envoy in tests/tests/responses_api.rs.

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ai_gateway::error::GatewayError;
use ai_gateway::inbound::responses::{
    answer_from_chat, error_from_chat, to_chat, Context, StreamFromChat,
};
use gateway_tests::check::run_python_client;
use gateway_tests::envoy::repo_root;
use gateway_tests::fake_provider::{demo_answer, FakeProvider};
use gateway_tests::http::{read_body, read_head, request, write_chunked, write_full};
use serde_json::{json, Value};

fn testdata(name: &str) -> Vec<u8> {
    let path = repo_root()
        .join("filter/testdata/openai_responses")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn context(request: &str) -> Context {
    to_chat(&testdata(request)).expect("a golden request").1
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("responses-sdk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the translators' output for every golden input, and the case list.
fn write_cases(dir: &Path) {
    let mut cases = Vec::new();
    let minimal = context("request_minimal.responses.json");
    for (name, request) in [
        ("answer_text", "request_text.responses.json"),
        ("answer_tool_calls", "request_tools.responses.json"),
        ("answer_length", "request_minimal.responses.json"),
    ] {
        let out = answer_from_chat(&testdata(&format!("{name}.chat.json")), &context(request));
        std::fs::write(dir.join(format!("{name}.json")), out).unwrap();
        cases.push(json!({"name": name, "kind": "answer", "file": format!("{name}.json")}));
    }
    for name in [
        "stream_text",
        "stream_tools",
        "stream_error",
        "stream_truncated",
    ] {
        let mut stream = StreamFromChat::new(&minimal);
        let mut out = stream.push(&testdata(&format!("{name}.chat.sse")), false);
        out.extend(stream.push(b"", true));
        std::fs::write(dir.join(format!("{name}.sse")), out).unwrap();
        cases.push(json!({"name": name, "kind": "stream", "file": format!("{name}.sse")}));
    }
    let errors: [(&str, u32, Vec<u8>); 2] = [
        ("error_429", 429, testdata("error_429.chat.json")),
        (
            "error_503_html",
            503,
            b"<html>no healthy upstream</html>".to_vec(),
        ),
    ];
    for (name, status, body) in errors {
        std::fs::write(
            dir.join(format!("{name}.json")),
            error_from_chat(status, &body),
        )
        .unwrap();
        cases.push(json!({"name": name, "kind": "error", "file": format!("{name}.json"), "status": status}));
    }
    std::fs::write(dir.join("cases.json"), Value::Array(cases).to_string()).unwrap();
}

fn run_sdk(dir: &Path) -> Value {
    run_python_client("responses_check.py", &[dir])
}

#[test]
fn the_official_sdk_accepts_answers_streams_and_errors() {
    let dir = scratch();
    write_cases(&dir);
    let seen = run_sdk(&dir);

    // Answers: figures from the golden chat completions.
    let text = &seen["answer_text"];
    assert_eq!(
        (&text["validated"], &text["status"]),
        (&json!("completed"), &json!("completed")),
        "{text}"
    );
    assert_eq!(text["output_text"], "Hello!");
    assert_eq!(text["usage"]["input_tokens"], 19);
    assert_eq!(text["usage"]["output_tokens"], 3);
    assert_eq!(text["usage"]["total_tokens"], 22);
    let calls = &seen["answer_tool_calls"];
    assert_eq!(
        calls["calls"],
        json!([
            {"call_id": "call_a1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"call_id": "call_b2", "name": "get_weather", "arguments": {"city": "Rome"}},
        ]),
        "{calls}"
    );
    assert_eq!(calls["usage"]["input_tokens_details"]["cached_tokens"], 64);
    assert_eq!(
        calls["usage"]["output_tokens_details"]["reasoning_tokens"],
        8
    );
    let cut = &seen["answer_length"];
    assert_eq!(
        (&cut["status"], &cut["incomplete_reason"]),
        (&json!("incomplete"), &json!("max_output_tokens"))
    );

    // Streams: the SDK yields every event, and its helper rebuilds the final response.
    let s = &seen["stream_text"];
    assert_eq!(s["streamed_text"], "Hello, Zoë!", "{s}");
    assert_eq!(s["helper"]["output_text"], "Hello, Zoë!", "{s}");
    assert_eq!(s["helper"]["usage"]["total_tokens"], 13);
    assert_eq!(s["events"][0], "response.created");
    assert_eq!(
        s["events"].as_array().unwrap().last().unwrap(),
        "response.completed"
    );
    let s = &seen["stream_tools"];
    assert_eq!(
        s["arguments"],
        json!([{"city": "Paris"}, {"city": "Rome"}]),
        "{s}"
    );
    assert_eq!(s["helper"]["output_text"], "Let me check.", "{s}");
    for (name, code, message) in [
        ("stream_error", "upstream_unavailable", "Overloaded"),
        (
            "stream_truncated",
            "upstream_stream_reset",
            "The provider's stream ended before the answer was complete.",
        ),
    ] {
        let s = &seen[name];
        let events = s["events"].as_array().unwrap();
        assert_eq!(
            &events[events.len() - 2..],
            [json!("error"), json!("response.failed")],
            "{name}: {s}"
        );
        assert_eq!(
            s["failed"],
            json!({"code": code, "message": message, "response_error": {"code": "server_error", "message": message}}),
            "{name}"
        );
        assert!(
            s["helper"]["raised"]
                .as_str()
                .is_some_and(|m| m.contains("response.completed")),
            "{name}: {s}"
        );
    }

    // Errors: the SDK raises the exception of the status with the body's code.
    assert_eq!(
        (
            &seen["error_429"]["raised"],
            &seen["error_429"]["status"],
            &seen["error_429"]["code"]
        ),
        (
            &json!("RateLimitError"),
            &json!(429),
            &json!("rate_limit_exceeded")
        )
    );
    let html = &seen["error_503_html"];
    assert_eq!(
        (&html["raised"], &html["code"]),
        (
            &json!("InternalServerError"),
            &json!("upstream_unavailable")
        ),
        "{html}"
    );

    // The requests the SDK sent (plain with options, a tool result follow-up, streams) all
    // translate into valid chat requests.
    let mut translated = 0;
    for entry in std::fs::read_dir(dir.join("requests")).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read(&path).unwrap();
        let (chat, ctx) = to_chat(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        ai_gateway::chat::parse_chat_request(&chat)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(ctx.model, "gpt-4.1");
        translated += 1;
    }
    assert!(translated >= 9, "{translated} requests");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the pipeline will do around the translators, in a few lines: `POST /v1/responses` →
/// `to_chat` → the fake provider's chat completions → `answer_from_chat`, `StreamFromChat` (fed
/// the provider's pieces as they came) or `error_from_chat`. Keep-alive, as the SDK's client is.
fn serve_stand_in(listener: TcpListener, provider_port: u16) {
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = serve_connection(conn, provider_port);
        });
    }
}

fn serve_connection(conn: TcpStream, provider_port: u16) -> std::io::Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    while let Some(head) = read_head(&mut reader)? {
        let body = read_body(&mut reader, &head, false, |_| {})?;
        let json_type = [("content-type".to_string(), "application/json".to_string())];
        let (chat, ctx) = match to_chat(&body) {
            Ok(_) if body.windows(13).any(|w| w == b"no-such-model") => {
                let e = GatewayError::ModelNotFound("no-such-model".into());
                write_full(&mut writer, e.status() as u16, &json_type, &e.to_json())?;
                continue;
            }
            // What only a Responses provider takes: refused for the chat provider, as the
            // pipeline's attempt at one does (`pipeline/attempt.rs`).
            Ok((
                _,
                Context {
                    untranslatable: Some(reason),
                    ..
                },
            )) => {
                let e = ai_gateway::error::invalid("model", reason);
                write_full(&mut writer, e.status() as u16, &json_type, &e.to_json())?;
                continue;
            }
            Ok(translated) => translated,
            Err(e) => {
                write_full(&mut writer, e.status() as u16, &json_type, &e.to_json())?;
                continue;
            }
        };
        let answer = request(
            provider_port,
            "POST",
            "/v1/chat/completions",
            &[("content-type", "application/json")],
            &chat,
        )?;
        if answer.status != 200 {
            let body = error_from_chat(u32::from(answer.status), &answer.body);
            write_full(&mut writer, answer.status, &json_type, &body)?;
        } else if ctx.stream {
            let mut stream = StreamFromChat::new(&ctx);
            let mut pieces: Vec<(Duration, Vec<u8>)> = answer
                .pieces
                .iter()
                .map(|(_, piece)| (Duration::ZERO, stream.push(piece, false)))
                .collect();
            pieces.push((Duration::ZERO, stream.push(b"", true)));
            let sse = [("content-type".to_string(), "text/event-stream".to_string())];
            write_chunked(&mut writer, 200, &sse, &pieces)?;
        } else {
            write_full(
                &mut writer,
                200,
                &json_type,
                &answer_from_chat(&answer.body, &ctx),
            )?;
        }
    }
    Ok(())
}

#[test]
fn the_sdk_client_script_works_through_the_translators() {
    let provider = FakeProvider::start(0).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let provider_port = provider.port;
    std::thread::spawn(move || serve_stand_in(listener, provider_port));

    let model = "demo";
    let base = format!("http://127.0.0.1:{port}/v1");
    let seen = run_python_client(
        "responses_client.py",
        &[base.as_str(), "gateway-key", model],
    );
    let s = &seen[model];

    // The fake provider's answers, computed from the chat request the translation must make.
    let prompt = format!("Hello from the SDK to {model}");
    let with_instructions = json!({"messages": [
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": prompt}]});
    let (answer, input, output_tokens) = demo_answer(&with_instructions);
    assert_eq!(s["plain"]["output_text"], answer, "{s}");
    assert_eq!(s["plain"]["status"], "completed");
    assert_eq!(s["plain"]["store"], false);
    assert_eq!(s["plain"]["model"], model);
    assert!(s["plain"]["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(
        s["plain"]["usage"]["input_tokens"], input,
        "instructions are counted: {s}"
    );
    assert_eq!(s["plain"]["usage"]["output_tokens"], output_tokens);

    let (answer, input, output_tokens) =
        demo_answer(&json!({"messages": [{"role": "user", "content": prompt}]}));
    let stream = &s["stream"];
    assert_eq!(stream["text"], answer, "{stream}");
    assert_eq!(stream["events"][0], "response.created");
    assert_eq!(stream["final"]["status"], "completed");
    assert_eq!(stream["final"]["output_text"], answer);
    assert_eq!(stream["final"]["usage"]["input_tokens"], input);
    assert_eq!(stream["final"]["usage"]["output_tokens"], output_tokens);
    assert_eq!(s["stream_helper"]["output_text"], answer);
    assert_eq!(s["json_schema"]["output_text"], answer);

    let call = json!({"name": "lookup", "arguments": {"text": prompt}});
    let calls = s["tools"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{s}");
    assert_eq!(
        (&calls[0]["name"], &calls[0]["arguments"]),
        (&call["name"], &call["arguments"])
    );
    assert_eq!(s["tool_result"]["output_text"], "Tool said: 42", "{s}");
    let streamed = &s["stream_tools"]["calls"][0];
    assert_eq!(
        (&streamed["name"], &streamed["arguments"]),
        (&call["name"], &call["arguments"]),
        "{s}"
    );

    assert_eq!(
        (&s["rate_limited"]["raised"], &s["rate_limited"]["status"]),
        (&json!("RateLimitError"), &json!(429)),
        "{s}"
    );
    for (case, param) in [
        ("bad_request", "temperature"),
        ("previous_response_id", "previous_response_id"),
        ("web_search", "model"),
    ] {
        assert_eq!(
            (&s[case]["raised"], &s[case]["status"], &s[case]["param"]),
            (&json!("BadRequestError"), &json!(400), &json!(param)),
            "{case}: {s}"
        );
    }
    assert_eq!(seen["not_found"]["raised"], "NotFoundError");
}
