//! Golden-file tests of the Bedrock translator against `filter/testdata/bedrock/` (see the
//! README there for where each expected value comes from).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::eventstream;
use super::*;
use crate::config::Config;
use crate::provider::{Attempt, Operation, ResponseShape, ResponseTranslator, Translator};
use crate::usage::Usage;

fn read(name: &str) -> String {
    let path = format!("{}/testdata/bedrock/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn golden(name: &str) -> Value {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn config() -> Config {
    let json = r#"{"providers": {
            "aws": {"type": "bedrock", "region": "us-east-1", "aws_session_token_env": "NO_SUCH_TOKEN"},
            "aws-eu": {"type": "bedrock", "region": "eu-west-3", "aws_session_token_env": "TEST_SESSION_TOKEN"}},
        "models": {
            "claude": {"provider": "aws", "model": "anthropic.claude-3-haiku-20240307-v1:0"},
            "llama": {"provider": "aws-eu", "model": "meta.llama3-8b-instruct-v1:0"},
            "titan": {"provider": "aws", "model": "amazon.titan-embed-text-v2:0"},
            "cohere-embed": {"provider": "aws", "model": "cohere.embed-english-v3"},
            "nova-embed": {"provider": "aws", "model": "amazon.nova-2-multimodal-embeddings-v1:0"}}}"#;
    let env = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLEGATEWAY".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string()),
        "TEST_SESSION_TOKEN" => Some("IQoJb3JpZ2luX2VjEXAMPLE/+token==".to_string()),
        _ => None,
    };
    Config::from_json(json.as_bytes(), &env).unwrap()
}

fn attempt<'a>(
    c: &'a Config,
    model: &'a str,
    operation: Operation,
    stream: bool,
    now_unix: u64,
) -> Attempt<'a> {
    let m = &c.models[model];
    Attempt {
        provider: c.provider_of(m).unwrap(),
        operation,
        client_model: model,
        upstream_model: &m.route.targets[0].upstream_model,
        stream,
        client_asked_usage: false,
        embeddings_base64: false,
        key_index: 0,
        now_unix,
    }
}

fn chat(c: &Config, body: &Value) -> Result<UpstreamRequest, GatewayError> {
    Bedrock.request(
        &attempt(c, "claude", Operation::Chat, false, 1_700_000_000),
        body.to_string().as_bytes(),
    )
}

fn body_json(r: &UpstreamRequest) -> Value {
    serde_json::from_slice(r.body.as_ref().unwrap()).unwrap()
}

fn test_id() -> CompletionId {
    CompletionId {
        id: "chatcmpl-test".into(),
        created: 1_700_000_000,
        model: "claude".into(),
    }
}

// ------------------------------------------------------------------------------------------
// Requests.

#[test]
fn request_goldens() {
    let c = config();
    for name in [
        "request_system_multiturn.json",
        "request_image.json",
        "request_tools_round_trip.json",
        "request_cache_control.json",
    ] {
        let g = golden(name);
        let r = chat(&c, &g["openai"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            r.path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            "{name}"
        );
        assert_eq!(body_json(&r), g["converse"], "{name}");
    }
}

#[test]
fn tool_choice_and_structured_output_goldens() {
    let c = config();
    for (i, case) in golden("request_tool_choice_and_json_schema.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let r = chat(&c, &case["openai"]).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(body_json(&r), case["converse"], "case {i}");
    }
}

#[test]
fn requests_bedrock_cannot_honour_are_refused_naming_the_parameter() {
    let c = config();
    for case in golden("request_refusals.json")["cases"].as_array().unwrap() {
        let e = chat(&c, &case["openai"]).expect_err(&case["openai"].to_string());
        assert_eq!(
            (e.status(), e.code(), e.param()),
            (400, "invalid_parameter", case["param"].as_str()),
            "{}: {e}",
            case["openai"]
        );
    }
}

#[test]
fn streaming_chat_goes_to_converse_stream() {
    let c = config();
    let body = br#"{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = Bedrock
        .request(&attempt(&c, "claude", Operation::Chat, true, 0), body)
        .unwrap();
    assert_eq!(
        r.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    );
}

/// The signed headers for a fixed clock and fixed credentials equal those computed by the
/// independent Python implementation recorded in the testdata README.
#[test]
fn signed_request_goldens() {
    let c = config();
    for case in golden("signed_requests.json")["cases"].as_array().unwrap() {
        let model = case["model"].as_str().unwrap();
        let operation = Operation::parse(case["operation"].as_str().unwrap()).unwrap();
        let a = attempt(
            &c,
            model,
            operation,
            case["stream"].as_bool().unwrap(),
            case["now_unix"].as_u64().unwrap(),
        );
        let r = Bedrock
            .request(&a, case["openai"].to_string().as_bytes())
            .unwrap();
        assert_eq!(r.path, case["path"], "{model}");
        assert_eq!(
            std::str::from_utf8(r.body.as_ref().unwrap()).unwrap(),
            case["body"],
            "{model}: the exact bytes that were signed"
        );
        assert_eq!(
            sigv4::canonical_uri(&r.path),
            case["canonical_uri"].as_str().unwrap()
        );
        let got: BTreeMap<&str, &str> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let want: BTreeMap<&str, &str> = case["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        assert_eq!(got, want, "{model}");
        assert_eq!(r.headers.len(), want.len(), "no header twice");
    }
}

#[test]
fn a_provider_without_aws_credentials_is_an_operator_error() {
    let json = r#"{"providers": {"aws": {"type": "bedrock", "region": "us-east-1"}},
        "models": {"claude": {"provider": "aws", "model": "anthropic.claude-v2"}}}"#;
    let c = Config::from_json(json.as_bytes(), &|_| None).unwrap();
    let e = Bedrock
        .request(
            &attempt(&c, "claude", Operation::Chat, false, 0),
            br#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap_err();
    assert_eq!(e.status(), 500);
}

// ------------------------------------------------------------------------------------------
// Whole answers.

fn translate_whole(status: u32, content_type: &str, body: &[u8]) -> (ResponseShape, Vec<u8>) {
    let mut t = ChatResponse::new(test_id());
    let shape = t.start(status, Some(content_type));
    // Pieces before the end are held back; the whole is translated at the end.
    let (a, b) = body.split_at(body.len() / 2);
    assert!(t.body(a, false).is_empty());
    (shape, t.body(b, true))
}

#[test]
fn response_goldens() {
    for name in [
        "response_text.json",
        "response_tool_use.json",
        "response_cache_usage.json",
    ] {
        let g = golden(name);
        let (shape, out) = translate_whole(
            200,
            "application/json",
            g["converse"].to_string().as_bytes(),
        );
        assert_eq!(shape, ResponseShape::JSON);
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out, g["openai"], "{name}");
        // The gateway's own usage reader sees the normalized usage.
        assert!(Usage::from_openai(&out["usage"]).is_some());
    }
}

#[test]
fn error_goldens() {
    for case in golden("response_errors.json")["cases"].as_array().unwrap() {
        let (shape, out) = translate_whole(
            case["status"].as_u64().unwrap() as u32,
            case["content_type"].as_str().unwrap(),
            case["body"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(shape, ResponseShape::JSON);
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out, case["openai"], "{}", case["body"]);
    }
    // An error answered with the event-stream content type is still an error body.
    let mut t = ChatResponse::new(test_id());
    assert_eq!(
        t.start(403, Some("application/vnd.amazon.eventstream")),
        ResponseShape::JSON
    );
}

// ------------------------------------------------------------------------------------------
// Streams.

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn frames(name: &str) -> Vec<Vec<u8>> {
    read(name).lines().map(unhex).collect()
}

/// The `data:` payloads of an SSE text: JSON values, or the `[DONE]` string.
fn events(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text}");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an SSE data event: {e:?}"));
            if data == "[DONE]" {
                Value::String(data.into())
            } else {
                serde_json::from_str(data).unwrap_or_else(|err| panic!("{data}: {err}"))
            }
        })
        .collect()
}

fn stream_translator() -> ChatResponse {
    let mut t = ChatResponse::new(test_id());
    assert_eq!(
        t.start(200, Some("application/vnd.amazon.eventstream")),
        ResponseShape::SSE
    );
    t
}

fn translate_pieces(pieces: &[&[u8]]) -> Vec<u8> {
    let mut t = stream_translator();
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(t.body(piece, i + 1 == pieces.len()));
    }
    out
}

#[test]
fn stream_goldens_whole_and_split_at_every_byte() {
    for name in ["stream_text", "stream_tool_use", "stream_exception"] {
        let bytes: Vec<u8> = frames(&format!("{name}.hex")).concat();
        let want = events(read(&format!("{name}.sse")).as_bytes());
        let whole = translate_pieces(&[&bytes]);
        assert_eq!(events(&whole), want, "{name}");
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(translate_pieces(&[a, b]), whole, "{name} cut at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(translate_pieces(&singles), whole, "{name} byte by byte");
    }
}

#[test]
fn each_event_leaves_as_soon_as_its_frame_is_whole() {
    let frames = frames("stream_text.hex");
    let mut t = stream_translator();
    let first = &frames[0];
    assert!(t.body(&first[..first.len() - 1], false).is_empty());
    let role = events(&t.body(&first[first.len() - 1..], false));
    assert_eq!(role.len(), 1);
    assert_eq!(
        role[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let hello = events(&t.body(&frames[1], false));
    assert_eq!(hello[0]["choices"][0]["delta"]["content"], "Hello");
}

#[test]
fn a_crc_error_ends_the_stream_with_an_error_event() {
    let mut bytes = frames("stream_text.hex");
    // Flip one payload byte of the second message: its message CRC no longer matches.
    let second = &mut bytes[1];
    let at = second.len() - 10;
    second[at] ^= 0x01;
    let out = events(&translate_pieces(&[&bytes.concat()]));
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(out[1]["error"]["type"], "upstream_error");
    assert!(out[1]["error"]["message"].as_str().unwrap().contains("CRC"));
    assert_eq!(out[2], "[DONE]");

    // A corrupted prelude too; nothing follows the error, whatever comes after.
    let mut bytes = frames("stream_text.hex");
    bytes[0][2] ^= 0x10;
    let mut t = stream_translator();
    let out = events(&t.body(&bytes.concat(), false));
    assert_eq!((out.len(), &out[1]), (2, &json!("[DONE]")));
    assert!(t.body(&bytes.concat(), true).is_empty());
}

#[test]
fn a_stream_cut_short_is_an_error_but_a_missing_metadata_event_is_not() {
    let frames = frames("stream_text.hex");
    // Cut inside the messageStop frame.
    let mut cut = frames[..4].concat();
    cut.extend_from_slice(&frames[4][..7]);
    let out = events(&translate_pieces(&[&cut]));
    assert_eq!(out.len(), 5, "{out:?}");
    assert!(out[3]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ended before"));
    assert_eq!(out[4], "[DONE]");
    // Everything but the metadata event: the answer is whole, only its usage is missing.
    let out = events(&translate_pieces(&[&frames[..5].concat()]));
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(out[4], "[DONE]");
    // An empty stream.
    let out = events(&translate_pieces(&[b""]));
    assert_eq!(out[0]["error"]["type"], "upstream_error");
}

#[test]
fn error_messages_and_other_exceptions_in_streams() {
    let start = eventstream::encode(
        &[
            (":event-type", "messageStart"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        br#"{"role":"assistant"}"#,
    );
    let validation = eventstream::encode(
        &[
            (":exception-type", "validationException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Input is too long for requested model."}"#,
    );
    let out = events(&translate_pieces(&[&[start.clone(), validation].concat()]));
    assert_eq!(
        out[1]["error"],
        json!({"message": "Input is too long for requested model.", "type": "invalid_request_error",
               "param": null, "code": "upstream_rejected"})
    );
    let error = eventstream::encode(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "boom"),
        ],
        b"",
    );
    let out = events(&translate_pieces(&[&[start, error].concat()]));
    assert_eq!(
        out[1]["error"]["message"],
        "Bedrock stream failed: InternalFailure: boom"
    );
    assert_eq!(out[2], "[DONE]");
}

/// Escaped characters in Bedrock's JSON (`\"`, `\n`, `\u00e9`) come out as the characters
/// they stand for (read into borrowed strings, they cannot be borrowed as they are), in a
/// whole answer, a text delta, a tool's name and a piece of its input.
#[test]
fn escaped_strings_in_answers_and_events_come_out_as_their_characters() {
    let answer = br#"{"output":{"message":{"role":"assistant","content":[
        {"text":"Say \"caf\u00e9\"\n"},
        {"toolUse":{"toolUseId":"t\u002d1","name":"get_\u0077eather","input":{"city":"K\u00f6ln"}}}]}},
        "stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7}}"#;
    let (_, out) = translate_whole(200, "application/json", answer);
    let out: Value = serde_json::from_slice(&out).unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], "Say \"café\"\n");
    assert_eq!(message["tool_calls"][0]["id"], "t-1");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        message["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(arguments, json!({"city": "Köln"}));
    assert_eq!(out["usage"]["total_tokens"], 7);

    let event = |kind: &str, payload: &[u8]| {
        eventstream::encode(
            &[(":event-type", kind), (":message-type", "event")],
            payload,
        )
    };
    let stream = [
        event("messageStart", br#"{"role":"assistant"}"#),
        event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"\u00e9t\u00e9 \"hot\""}}"#,
        ),
        event(
            "contentBlockStart",
            br#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"f\u00fcr"}}}"#,
        ),
        event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":\"\u00e9\"}"}}}"#,
        ),
        event("messageStop", br#"{"stopReason":"tool_use"}"#),
    ]
    .concat();
    let out = events(&translate_pieces(&[&stream]));
    assert_eq!(out[1]["choices"][0]["delta"]["content"], "été \"hot\"");
    assert_eq!(
        out[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "für"
    );
    assert_eq!(
        out[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":\"é\"}"
    );
    assert_eq!(out[4]["choices"][0]["finish_reason"], "tool_calls");
}

/// A 2xx body that is not a Converse answer is a 502 naming what was wrong, never an empty
/// answer; an event payload that cannot be read counts as empty (the event's kind still acts).
#[test]
fn bodies_and_events_of_another_shape() {
    for (body, says) in [
        (&b"not json"[..], "a body that is not JSON"),
        (
            br#"{"output":{"message":{"content":"text"}}}"#,
            "no output.message.content",
        ),
        (br#"{"output":null}"#, "no output.message.content"),
    ] {
        let (_, out) = translate_whole(200, "application/json", body);
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["error"]["message"],
            format!("Bedrock answered with {says}."),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(out["error"]["type"], "upstream_error");
    }
    // A token count of another type counts as missing; the answer is still served.
    let (_, out) = translate_whole(
        200,
        "application/json",
        br#"{"output":{"message":{"content":[{"text":"hi"}]}},"usage":{"inputTokens":"3","outputTokens":2}}"#,
    );
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "hi");
    assert_eq!(
        (
            &out["usage"]["prompt_tokens"],
            &out["usage"]["completion_tokens"]
        ),
        (&json!(0), &json!(2))
    );
    let event = |kind: &str, payload: &[u8]| {
        eventstream::encode(
            &[(":event-type", kind), (":message-type", "event")],
            payload,
        )
    };
    let stream = [
        event("messageStart", b"garbage"),
        event("contentBlockDelta", br#"{"delta":{"text":7}}"#),
        event("messageStop", b"[]"),
        event("metadata", b"{}"),
    ]
    .concat();
    let out = events(&translate_pieces(&[&stream]));
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(out[1]["choices"][0]["finish_reason"], "stop");
    assert_eq!(out[2], "[DONE]");
}

// ------------------------------------------------------------------------------------------
// Embeddings.

fn embed(c: &Config, model: &str, body: &Value) -> Result<UpstreamRequest, GatewayError> {
    Bedrock.request(
        &attempt(c, model, Operation::Embeddings, false, 1_700_000_000),
        body.to_string().as_bytes(),
    )
}

/// request() then response() for one attempt, as the upstream filter calls them.
fn embed_round_trip(c: &Config, model: &str, request: &Value, answer: &Value) -> Value {
    let mut a = attempt(c, model, Operation::Embeddings, false, 1_700_000_000);
    a.embeddings_base64 = request["encoding_format"] == "base64";
    Bedrock.request(&a, request.to_string().as_bytes()).unwrap();
    let mut t = Bedrock.response(&a).unwrap();
    assert_eq!(t.start(200, Some("application/json")), ResponseShape::JSON);
    let out = t.body(answer.to_string().as_bytes(), true);
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn titan_embeddings_golden() {
    let c = config();
    let g = golden("embeddings_titan.json");
    let r = embed(&c, "titan", &g["openai"]).unwrap();
    assert_eq!(r.path, g["path"]);
    assert_eq!(body_json(&r), g["invoke"]);
    assert_eq!(
        embed_round_trip(&c, "titan", &g["openai"], &g["answer"]),
        g["openai_answer"]
    );
    assert_eq!(
        embed_round_trip(&c, "titan", &g["openai_base64"], &g["answer"]),
        g["openai_answer_base64"]
    );
    let e = embed(&c, "titan", &g["refused_two_inputs"]).unwrap_err();
    assert_eq!((e.status(), e.param()), (400, Some("input")));
}

#[test]
fn cohere_embeddings_golden() {
    let c = config();
    let g = golden("embeddings_cohere.json");
    let r = embed(&c, "cohere-embed", &g["openai"]).unwrap();
    assert_eq!(r.path, g["path"]);
    assert_eq!(body_json(&r), g["invoke"]);
    assert_eq!(
        embed_round_trip(&c, "cohere-embed", &g["openai"], &g["answer"]),
        g["openai_answer"]
    );
    assert_eq!(
        embed_round_trip(&c, "cohere-embed", &g["openai"], &g["answer_by_type"]),
        g["openai_answer"]
    );
    let e = embed(&c, "cohere-embed", &g["refused_tokens"]).unwrap_err();
    assert_eq!((e.status(), e.param()), (400, Some("input")));
    let e = embed(
        &c,
        "nova-embed",
        &json!({"model": "nova-embed", "input": "x"}),
    )
    .unwrap_err();
    assert_eq!((e.status(), e.param()), (400, Some("model")));
}

#[test]
fn embedding_errors_keep_bedrock_status_and_message() {
    let mut t = EmbeddingsResponse::new("titan".into(), false);
    assert_eq!(t.start(400, Some("application/json")), ResponseShape::JSON);
    let out: Value = serde_json::from_slice(&t.body(
        br#"{"message":"Malformed input request: expected maxLength: 50000"}"#,
        true,
    ))
    .unwrap();
    assert_eq!(
        out["error"]["message"],
        "Malformed input request: expected maxLength: 50000"
    );
    assert_eq!(out["error"]["code"], "upstream_rejected");
}
