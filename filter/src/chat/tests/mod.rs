//! Tables of valid and invalid requests. The shapes and bounds come from the OpenAI API
//! reference (see `filter/testdata/openai/README.md`), not from the code under test.

use serde_json::{json, Value};

use super::*;

mod refusals;

const MINIMAL: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

/// The minimal request with `field` set to `value` (JSON text).
fn with(field: &str, value: &str) -> String {
    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"{field}":{value}}}"#)
}

/// The minimal request with two fields set.
fn with2(field: &str, value: &str, field2: &str, value2: &str) -> String {
    format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"{field}":{value},"{field2}":{value2}}}"#
    )
}

/// A request whose messages are `messages` (JSON text of an array).
fn messages(messages: &str) -> String {
    format!(r#"{{"model":"m","messages":{messages}}}"#)
}

/// A request with one user message whose content is these parts.
fn user_parts(parts: &str) -> String {
    messages(&format!(r#"[{{"role":"user","content":{parts}}}]"#))
}

fn assert_refused(body: &str, param: &str, code: &str) {
    let e = match parse_chat_request(body.as_bytes()) {
        Ok(r) => panic!("accepted: {body}\n{r:?}"),
        Err(e) => e,
    };
    assert_eq!(e.status(), 400, "{body}");
    assert_eq!(e.code(), code, "{body}: {e}");
    assert_eq!(e.param().unwrap_or(""), param, "{body}: {e}");
    assert!(!e.to_string().is_empty(), "{body}");
}

fn assert_passes(body: &str) -> ChatRequest {
    parse_chat_request(body.as_bytes()).unwrap_or_else(|e| panic!("refused: {body}\n{e}"))
}

#[test]
fn minimal_and_full_requests_pass() {
    let r = assert_passes(MINIMAL);
    assert_eq!(
        (r.model.as_str(), r.stream, r.include_usage, r.max_tokens),
        ("m", false, false, None)
    );
    assert_eq!(
        (r.facts.images, r.facts.tools, r.facts.code),
        (false, false, false)
    );
    assert_eq!(
        r.facts.prompt_tokens,
        1 + 4,
        "'hi' is one token, plus four for the message"
    );
    let full = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},
        "max_completion_tokens":50,"temperature":0.2,"top_p":1,"n":1,"stop":["x"],"seed":7,"user":"u",
        "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"auto",
        "response_format":{"type":"json_object"},
        "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"},
          {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
          {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"42"}]}"#;
    let r = assert_passes(full);
    assert!(r.facts.images && r.facts.tools && !r.facts.code);
    assert_eq!(r.facts.user.as_deref(), Some("u"));
    let code = assert_passes(
        r#"{"model":"m","messages":[{"role":"user","content":"Fix:\n```rust\nfn main() {}\n```"}]}"#,
    );
    assert!(code.facts.code && code.facts.text.contains("fix:"));
    assert!(r.stream && r.include_usage);
    assert_eq!(r.max_tokens, Some(50));
}

#[test]
fn texts_are_gathered_only_when_routing_reads_them() {
    // Five texts of 3, 4, 1, 7 and 2 characters (the image part has none): 17 characters, a
    // line break before each, 4 tokens a message for the 4 messages -> ceil(22 / 4) + 16 = 22.
    let body = br#"{"model":"m","messages":[{"role":"system","content":"Sys"},
        {"role":"user","content":[{"type":"text","text":"Fix:"},{"type":"text","text":"x"},
          {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
        {"role":"user","content":"```\nfn "},{"role":"assistant","content":"ok"}]}"#;
    let asked = std::cell::RefCell::new(Vec::new());
    let without = parse_chat_request_for(body, |m| {
        asked.borrow_mut().push(m.to_string());
        false
    })
    .unwrap();
    assert_eq!(
        asked.into_inner(),
        vec!["m".to_string()],
        "asked for the request's model"
    );
    let with = parse_chat_request(body).unwrap();
    assert_eq!(with.facts.prompt_tokens, 22);
    assert_eq!(
        without.facts.prompt_tokens, 22,
        "the estimate needs no kept text"
    );
    assert!(with.facts.code && with.facts.text.contains("fix:") && with.facts.images);
    assert!(without.facts.text.is_empty() && without.facts.raw_text.is_empty());
    assert!(!without.facts.code, "code is read from the texts");
    assert!(without.facts.images, "images are not a text fact");
}

/// Every shape the reference allows, each variant at least once, plus fields this gateway
/// does not know (top-level and nested): all must pass.
#[test]
fn every_valid_variant_passes() {
    let bodies = [
        // Message roles and content shapes.
        messages(r#"[{"role":"developer","content":"d","name":"n"},{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"u","name":"alice"}]"#),
        messages(r#"[{"role":"user","content":""}]"#),
        messages(r#"[{"role":"user","content":"q"},{"role":"assistant","content":"a","name":"bot"},{"role":"user","content":"q2"}]"#),
        messages(r#"[{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"refusal","refusal":"no"}]}]"#),
        messages(r#"[{"role":"assistant","refusal":"I can't help with that."}]"#),
        messages(r#"[{"role":"assistant","content":null,"audio":{"id":"audio_1"}}]"#),
        messages(r#"[{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}},{"role":"function","name":"f","content":"42"}]"#),
        messages(r#"[{"role":"function","name":"f","content":null}]"#),
        messages(r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"sql","input":"SELECT 1"}}]},{"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"1"}]}]"#),
        // Content parts of a user message.
        user_parts(r#"[{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]"#),
        user_parts(r#"[{"type":"image_url","image_url":{"url":"http://example.com/a.png","detail":"high"}}]"#),
        user_parts(r#"[{"type":"image_url","image_url":{"url":"DATA:image/png;base64,AA==","detail":"auto"}}]"#),
        user_parts(r#"[{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},{"type":"input_audio","input_audio":{"data":"SUQz","format":"mp3"}}]"#),
        user_parts(r#"[{"type":"file","file":{"file_id":"file-abc"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE","filename":"a.pdf"}}]"#),
        // Fields unknown to this gateway pass, top-level and inside known objects.
        with("some_future_parameter", r#"{"anything":[1,2]}"#),
        user_parts(r#"[{"type":"text","text":"t","cache_control":{"type":"ephemeral"},"prompt_cache_breakpoint":{"mode":"explicit"}}]"#),
        with("tools", r#"[{"type":"function","function":{"name":"f","x-extra":1},"extra":true}]"#),
        // Tools and choices.
        with("tools", r#"[{"type":"function","function":{"name":"get_weather-2","description":"d","parameters":{"type":"object"},"strict":true}}]"#),
        with("tools", r#"[{"type":"function","function":{"name":"f","strict":null}}]"#),
        with("tools", "[]"),
        with("tools", r#"[{"type":"custom","custom":{"name":"sql","description":"d","format":{"type":"text"}}},{"type":"custom","custom":{"name":"g","format":{"type":"grammar","grammar":{"definition":"start: x","syntax":"lark"}}}}]"#),
        with("tool_choice", r#""none""#),
        with("tool_choice", r#""auto""#),
        with2("tools", r#"[{"type":"function","function":{"name":"f"}}]"#, "tool_choice", r#""required""#),
        with2("tools", r#"[{"type":"function","function":{"name":"f"}}]"#, "tool_choice", r#"{"type":"function","function":{"name":"f"}}"#),
        with2("tools", r#"[{"type":"custom","custom":{"name":"c"}}]"#, "tool_choice", r#"{"type":"custom","custom":{"name":"c"}}"#),
        with2("tools", r#"[{"type":"function","function":{"name":"f"}}]"#, "tool_choice", r#"{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"f"}}]}}"#),
        with2("functions", r#"[{"name":"f","description":"d","parameters":{}}]"#, "function_call", r#"{"name":"f"}"#),
        with("function_call", r#""auto""#),
        with("function_call", r#""none""#),
        // Response formats.
        with("response_format", r#"{"type":"text"}"#),
        with("response_format", r#"{"type":"json_object"}"#),
        with("response_format", r#"{"type":"json_schema","json_schema":{"name":"person_v2","description":"d","schema":{"type":"object"},"strict":true}}"#),
        with("response_format", r#"{"type":"json_schema","json_schema":{"name":"p"}}"#),
        // Scalars at their bounds and every enum value.
        with("temperature", "0"),
        with("temperature", "2"),
        with("top_p", "0.5"),
        with("presence_penalty", "-2"),
        with("frequency_penalty", "2.0"),
        with("n", "128"),
        with("seed", "-9223372036854775808"),
        with("seed", "9223372036854775807"),
        with("max_tokens", "1"),
        with("user", r#""""#),
        with("safety_identifier", &format!("\"{}\"", "s".repeat(64))),
        with("prompt_cache_key", r#""k""#),
        with("prompt_cache_retention", r#""24h""#),
        with("store", "false"),
        with("parallel_tool_calls", "false"),
        with("logprobs", "false"),
        with2("logprobs", "true", "top_logprobs", "20"),
        with2("logprobs", "true", "top_logprobs", "0"),
        with("stop", r#""\n""#),
        with("stop", r#"["a","b","c","d"]"#),
        with("logit_bias", r#"{"50256":-100,"11":100,"7":0.5}"#),
        with("metadata", r#"{"team":"search","run":"7"}"#),
        with("modalities", r#"["text"]"#),
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}}"#.into(),
        with("audio", r#"{"voice":{"id":"voice_123"},"format":"pcm16"}"#),
        with("prediction", r#"{"type":"content","content":"old code"}"#),
        with("prediction", r#"{"type":"content","content":[{"type":"text","text":"old"}]}"#),
        with("web_search_options", r#"{"search_context_size":"high","user_location":{"type":"approximate","approximate":{"city":"Paris","country":"FR","region":"IDF","timezone":"Europe/Paris"}}}"#),
        with("web_search_options", r#"{"user_location":null}"#),
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":false,"include_obfuscation":false}}"#.into(),
        // `null` stands for "not set" on every optional field.
        with("temperature", "null"),
        with("tools", "null"),
        with("response_format", "null"),
        with("stream_options", "null"),
        with("metadata", "null"),
    ];
    let enums: [(&str, &[&str]); 3] = [
        (
            "reasoning_effort",
            &["none", "minimal", "low", "medium", "high", "xhigh", "max"],
        ),
        (
            "service_tier",
            &["auto", "default", "flex", "scale", "priority", "fast"],
        ),
        ("verbosity", &["low", "medium", "high"]),
    ];
    for body in &bodies {
        assert_passes(body);
    }
    for (field, values) in enums {
        for v in values {
            assert_passes(&with(field, &format!("\"{v}\"")));
        }
    }
}

/// The OpenAI requests of the translators' golden files (written from the providers'
/// references) all pass.
#[test]
fn golden_openai_requests_pass() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut checked = 0;
    for dir in ["anthropic", "gemini", "cohere", "bedrock"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            // Bedrock's files hold {"openai": request, ...} or {"cases": [{"openai": ..,
            // "param": ..}]}, requests its translator refuses naming `param`.
            let mut requests: Vec<(Value, Option<&str>)> = vec![];
            if name.contains("request") && name.ends_with(".openai.json") {
                requests.push((v.clone(), None));
            }
            requests.extend(v.get("openai").map(|r| (r.clone(), None)));
            for case in v["cases"].as_array().into_iter().flatten() {
                requests.extend(
                    case.get("openai")
                        .map(|r| (r.clone(), case["param"].as_str())),
                );
            }
            for (request, refused) in requests.iter().filter(|(r, _)| r.get("messages").is_some()) {
                let body = request.to_string();
                match (parse_chat_request(body.as_bytes()), refused) {
                    (Ok(_), _) => {}
                    // Refused here already, for the same parameter (or a part of it).
                    (Err(e), Some(param)) if e.param().is_some_and(|p| p.starts_with(param)) => {}
                    (Err(e), _) => panic!("{dir}/{name} refused: {e}\n{body}"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "only {checked} golden requests found");
}

#[test]
fn missing_or_malformed_bodies() {
    assert_refused("{", "", "invalid_json");
    assert_refused("[1,2]", "", "invalid_json");
    assert_refused("", "", "invalid_json");
    assert_refused(
        r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        "model",
        "missing_required_parameter",
    );
    assert_refused(r#"{"model":"m"}"#, "messages", "missing_required_parameter");
    assert_refused(
        r#"{"model":"m","messages":null}"#,
        "messages",
        "missing_required_parameter",
    );
}

/// `max_tokens` / `max_completion_tokens`: 1 ..= 2^24, whole numbers only.
#[test]
fn absurd_token_counts_are_refused_at_the_boundary() {
    for field in ["max_tokens", "max_completion_tokens"] {
        let max = assert_passes(&with(field, "16777216"));
        assert_eq!(max.max_tokens, Some(16_777_216), "{field}");
        assert_eq!(max.facts.max_tokens, Some(16_777_216), "{field}");
        for bad in [
            "16777217",
            "18446744073709551615",
            "18446744073709551616",
            "1e30",
            "-1",
            "0",
            "-9223372036854775808",
            "100.0",
            "\"100\"",
        ] {
            assert_refused(&with(field, bad), field, "invalid_parameter");
        }
    }
    assert_eq!(MAX_OUTPUT_TOKENS, 16_777_216);
}

#[test]
fn prompt_estimate_saturates() {
    assert_eq!(estimate_prompt_tokens(8, 2), 2 + 8);
    assert_eq!(estimate_prompt_tokens(usize::MAX, usize::MAX), u64::MAX);
    assert_eq!(estimate_prompt_tokens(0, usize::MAX), u64::MAX);
}

/// Client strings quoted in errors are cut, so a huge value does not make a huge error.
#[test]
fn errors_quote_client_values_briefly() {
    let long = "x".repeat(100_000);
    let e = parse_chat_request(with("reasoning_effort", &format!("\"{long}\"")).as_bytes())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("reasoning_effort") && e.len() < 300, "{e}");
}

#[test]
fn embeddings_requests() {
    let ok = parse_embeddings_request(
        br#"{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":256,"user":"u","future":1}"#,
    )
    .unwrap();
    assert_eq!(
        ok,
        EmbeddingsRequest {
            model: "e".into(),
            base64: true
        }
    );
    for body in [
        json!({"model": "e", "input": "a"}),
        json!({"model": "e", "input": [[1, 2], [3]]}),
        json!({"model": "e", "input": [1, 2, 3]}),
        json!({"model": "e", "input": "a", "encoding_format": "float"}),
        json!({"model": "e", "input": "a", "encoding_format": null, "dimensions": null}),
        json!({"model": "e", "input": vec!["a"; 2048]}),
    ] {
        let r = parse_embeddings_request(body.to_string().as_bytes());
        assert!(r.is_ok(), "{body}: {r:?}");
    }
    let cases: &[(Value, &str, &str)] = &[
        (json!({"input": "a"}), "model", "missing_required_parameter"),
        (json!({"model": "e"}), "input", "missing_required_parameter"),
        (
            json!({"model": 1, "input": "a"}),
            "model",
            "invalid_parameter",
        ),
        (
            json!({"model": "", "input": "a"}),
            "model",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": ""}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": []}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": [1, "a"]}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": ["a", ""]}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": [[]]}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": [-1]}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": {"text": "a"}}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": 5}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": vec!["a"; 2049]}),
            "input",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": "a", "encoding_format": "hex"}),
            "encoding_format",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": "a", "encoding_format": 1}),
            "encoding_format",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": "a", "dimensions": 0}),
            "dimensions",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": "a", "dimensions": 1.5}),
            "dimensions",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": "a", "dimensions": "256"}),
            "dimensions",
            "invalid_parameter",
        ),
        (
            json!({"model": "e", "input": "a", "user": 5}),
            "user",
            "invalid_parameter",
        ),
    ];
    for (body, param, code) in cases {
        let e = parse_embeddings_request(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            (e.status(), e.param(), e.code()),
            (400, Some(*param), *code),
            "{body}"
        );
    }
}
