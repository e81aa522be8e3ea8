//! A generated sweep of bad requests through one real Envoy with every provider family behind
//! it: every known request field with several wrong values, malformed JSON, wrong methods,
//! paths and content, empty and oversized bodies, bad embeddings, unknown models, absurd
//! token counts, and the refusals only some providers' translators make. Each must get the
//! right status, a body in OpenAI's error shape naming the parameter where there is one, and
//! must never reach a provider. Valid requests in between show the VM still answers.
//!
//! Shapes and bounds come from the OpenAI API reference (see filter/testdata/openai/README.md);
//! the provider refusals from the README's Providers section and each translator's reference.

use std::time::Instant;

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::FakeProvider;
use serde_json::{json, Value};

const CHAT: &str = "/v1/chat/completions";
const EMBEDDINGS: &str = "/v1/embeddings";
const JSON: &str = "application/json";

/// What the error must say about `param`.
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Named(String),
    Null,
}

#[derive(Debug)]
struct Case {
    label: String,
    method: &'static str,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    param: Param,
}

fn named(p: &str) -> Param {
    Param::Named(p.to_string())
}

/// A chat request to an OpenAI-family model with `patch`'s fields set (replacing any).
fn chat_with(model: &str, patch: Value) -> Vec<u8> {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
        b.extend(p.clone());
    }
    body.to_string().into_bytes()
}

fn chat_case(label: String, body: Vec<u8>, status: u16, code: &'static str, param: Param) -> Case {
    Case {
        label,
        method: "POST",
        path: CHAT.into(),
        content_type: JSON,
        body,
        status,
        code,
        param,
    }
}

fn bad_param(label: String, body: Vec<u8>, param: &str) -> Case {
    chat_case(label, body, 400, "invalid_parameter", named(param))
}

/// What a scalar field holds (OpenAI API reference, CreateChatCompletionRequest).
enum Kind {
    Bool,
    Str,
    Int(i64, i64),
    Num(f64, f64),
    Enum,
}

const SCALARS: &[(&str, Kind)] = &[
    ("stream", Kind::Bool),
    ("logprobs", Kind::Bool),
    ("store", Kind::Bool),
    ("parallel_tool_calls", Kind::Bool),
    ("user", Kind::Str),
    ("prompt_cache_key", Kind::Str),
    ("safety_identifier", Kind::Str),
    ("n", Kind::Int(1, 128)),
    ("top_logprobs", Kind::Int(0, 20)),
    ("max_tokens", Kind::Int(1, 1 << 24)),
    ("max_completion_tokens", Kind::Int(1, 1 << 24)),
    ("seed", Kind::Int(i64::MIN, i64::MAX)),
    ("temperature", Kind::Num(0.0, 2.0)),
    ("top_p", Kind::Num(0.0, 1.0)),
    ("presence_penalty", Kind::Num(-2.0, 2.0)),
    ("frequency_penalty", Kind::Num(-2.0, 2.0)),
    ("reasoning_effort", Kind::Enum),
    ("service_tier", Kind::Enum),
    ("verbosity", Kind::Enum),
    ("prompt_cache_retention", Kind::Enum),
];

/// Several wrong values for each kind: wrong JSON types, and just outside each bound.
fn wrong_values(kind: &Kind) -> Vec<Value> {
    match kind {
        Kind::Bool => vec![json!("true"), json!(1), json!([]), json!({})],
        Kind::Str => vec![json!(1), json!(true), json!(["u"]), json!({})],
        Kind::Int(min, max) => {
            let mut v = vec![json!(1.5), json!("1"), json!(true), json!([1])];
            // The signed 64-bit range has no integer outside it below; above, u64 has one.
            if *min > i64::MIN {
                v.push(json!(min - 1));
            }
            v.push(if *max < i64::MAX {
                json!(max + 1)
            } else {
                json!(u64::MAX)
            });
            v
        }
        Kind::Num(min, max) => vec![
            json!(min - 0.5),
            json!(max + 0.5),
            json!("0.5"),
            json!(false),
            json!([0.5]),
        ],
        Kind::Enum => vec![json!("bogus"), json!(1), json!(["low"]), json!({})],
    }
}

fn scalar_cases() -> Vec<Case> {
    let mut cases = vec![];
    for (field, kind) in SCALARS {
        for value in wrong_values(kind) {
            let body = chat_with("gpt-4o-mini", json!({ *field: value }));
            cases.push(bad_param(format!("{field}: {value}"), body, field));
        }
    }
    cases
}

/// Nested shapes: (fields to set, parameter the 400 names).
fn nested_cases() -> Vec<Case> {
    let user = |content: Value| json!({"messages": [{"role": "user", "content": content}]});
    let msgs = |m: Value| json!({ "messages": m });
    let tool = |t: Value| json!({ "tools": [t] });
    let f = |name: &str| json!({"type": "function", "function": {"name": name}});
    let table: Vec<(Value, &str)> = vec![
        (msgs(json!("hi")), "messages"),
        (msgs(json!([])), "messages"),
        (msgs(json!([1])), "messages[0]"),
        (msgs(json!([{"content": "x"}])), "messages[0].role"),
        (
            msgs(json!([{"role": "robot", "content": "x"}])),
            "messages[0].role",
        ),
        (msgs(json!([{"role": "user"}])), "messages[0].content"),
        (
            msgs(json!([{"role": "user", "content": 5}])),
            "messages[0].content",
        ),
        (
            msgs(json!([{"role": "user", "content": null}])),
            "messages[0].content",
        ),
        (
            msgs(json!([{"role": "user", "content": "x", "name": 1}])),
            "messages[0].name",
        ),
        (
            msgs(json!([{"role": "system", "content": {}}])),
            "messages[0].content",
        ),
        (msgs(json!([{"role": "developer"}])), "messages[0].content"),
        (
            msgs(json!([{"role": "tool", "content": "x"}])),
            "messages[0].tool_call_id",
        ),
        (
            msgs(json!([{"role": "function", "content": "x"}])),
            "messages[0].name",
        ),
        (msgs(json!([{"role": "assistant"}])), "messages[0].content"),
        (
            msgs(json!([{"role": "assistant", "tool_calls": []}])),
            "messages[0].tool_calls",
        ),
        (
            msgs(
                json!([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]),
            ),
            "messages[0].tool_calls[0].id",
        ),
        (
            msgs(
                json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "retrieval", "function": {"name": "f", "arguments": "{}"}}]}]),
            ),
            "messages[0].tool_calls[0].type",
        ),
        (
            msgs(
                json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]),
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            msgs(json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}])),
            "messages[0].tool_calls[0].function",
        ),
        (
            msgs(json!([{"role": "assistant", "refusal": 5}])),
            "messages[0].refusal",
        ),
        (
            msgs(json!([{"role": "assistant", "audio": {}}])),
            "messages[0].audio.id",
        ),
        (
            msgs(
                json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]),
            ),
            "messages[1].content[0].type",
        ),
        (user(json!([])), "messages[0].content"),
        (user(json!([1])), "messages[0].content[0]"),
        (user(json!([{"text": "x"}])), "messages[0].content[0].type"),
        (
            user(json!([{"type": "video"}])),
            "messages[0].content[0].type",
        ),
        (
            user(json!([{"type": "text"}])),
            "messages[0].content[0].text",
        ),
        (
            user(json!([{"type": "text", "text": 1}])),
            "messages[0].content[0].text",
        ),
        (
            user(json!([{"type": "image_url"}])),
            "messages[0].content[0].image_url",
        ),
        (
            user(json!([{"type": "image_url", "image_url": {}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            user(json!([{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            user(
                json!([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "ultra"}}]),
            ),
            "messages[0].content[1].image_url.detail",
        ),
        (
            user(json!([{"type": "input_audio", "input_audio": {"data": "AA"}}])),
            "messages[0].content[0].input_audio.format",
        ),
        (
            user(json!([{"type": "input_audio", "input_audio": {"format": "flac", "data": "AA"}}])),
            "messages[0].content[0].input_audio.format",
        ),
        (
            user(json!([{"type": "file", "file": {}}])),
            "messages[0].content[0].file.file_data",
        ),
        (
            user(json!([{"type": "file", "file": "a.pdf"}])),
            "messages[0].content[0].file",
        ),
        (json!({"tools": {}}), "tools"),
        (tool(json!(1)), "tools[0]"),
        (tool(json!({"function": {"name": "f"}})), "tools[0].type"),
        (tool(json!({"type": "function"})), "tools[0].function"),
        (
            tool(json!({"type": "function", "function": {}})),
            "tools[0].function.name",
        ),
        (tool(f("get weather")), "tools[0].function.name"),
        (tool(f(&"x".repeat(65))), "tools[0].function.name"),
        (
            tool(json!({"type": "function", "function": {"name": "f", "parameters": "{}"}})),
            "tools[0].function.parameters",
        ),
        (
            tool(json!({"type": "function", "function": {"name": "f", "strict": "yes"}})),
            "tools[0].function.strict",
        ),
        (
            tool(json!({"type": "custom", "custom": {}})),
            "tools[0].custom.name",
        ),
        (json!({"tool_choice": "any"}), "tool_choice"),
        (json!({"tool_choice": 1}), "tool_choice"),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"tools": [f("f")], "tool_choice": {"type": "tool"}}),
            "tool_choice.type",
        ),
        (
            json!({"tools": [f("f")], "tool_choice": {"type": "function"}}),
            "tool_choice.function",
        ),
        (
            json!({"tools": [f("f")], "tool_choice": {"type": "function", "function": {}}}),
            "tool_choice.function.name",
        ),
        (json!({"functions": []}), "functions"),
        (json!({"functions": [{"name": "a b"}]}), "functions[0].name"),
        (json!({"function_call": "required"}), "function_call"),
        (json!({"response_format": "json"}), "response_format"),
        (
            json!({"response_format": {"type": "yaml"}}),
            "response_format.type",
        ),
        (
            json!({"response_format": {"type": "json_schema"}}),
            "response_format.json_schema",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
            "response_format.json_schema.name",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": []}}}),
            "response_format.json_schema.schema",
        ),
        (
            json!({"stream_options": {"include_usage": true}}),
            "stream_options",
        ),
        (
            json!({"stream": true, "stream_options": {"include_usage": "yes"}}),
            "stream_options.include_usage",
        ),
        (json!({"top_logprobs": 5}), "top_logprobs"),
        (json!({"logit_bias": [1]}), "logit_bias"),
        (json!({"logit_bias": {"hello": 1}}), "logit_bias"),
        (json!({"logit_bias": {"50256": 200}}), "logit_bias"),
        (json!({"metadata": {"k": 1}}), "metadata.k"),
        (json!({"metadata": "m"}), "metadata"),
        (json!({"stop": [1]}), "stop[0]"),
        (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop"),
        (json!({"modalities": ["smell"]}), "modalities[0]"),
        (json!({"modalities": ["text", "audio"]}), "audio"),
        (
            json!({"audio": {"voice": "alloy", "format": "ogg"}}),
            "audio.format",
        ),
        (json!({"audio": {"format": "wav"}}), "audio.voice"),
        (
            json!({"prediction": {"type": "content"}}),
            "prediction.content",
        ),
        (
            json!({"prediction": {"type": "diff", "content": "x"}}),
            "prediction.type",
        ),
        (
            json!({"web_search_options": {"search_context_size": "max"}}),
            "web_search_options.search_context_size",
        ),
        (
            json!({"web_search_options": {"user_location": {"type": "exact"}}}),
            "web_search_options.user_location.type",
        ),
        (json!({"model": 4}), "model"),
        (json!({"model": ""}), "model"),
    ];
    table
        .into_iter()
        .map(|(patch, param)| bad_param(format!("{patch}"), chat_with("gpt-4o-mini", patch), param))
        .collect()
}

/// `max_tokens` and `max_completion_tokens` far out of range, to a model of each family.
fn absurd_token_cases() -> Vec<Case> {
    let mut cases = vec![];
    for model in [
        "gpt-4o-mini",
        "claude-haiku-4-5",
        "gemini-2.5-flash",
        "bedrock-nova-lite",
    ] {
        for field in ["max_tokens", "max_completion_tokens"] {
            for value in [json!(u64::MAX), json!(16_777_217), json!(1e30), json!(-5)] {
                let body = chat_with(model, json!({ field: value }));
                cases.push(bad_param(format!("{model} {field}: {value}"), body, field));
            }
        }
    }
    cases
}

fn malformed_cases() -> Vec<Case> {
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("unclosed object", b"{".to_vec()),
        ("missing value", br#"{"model":}"#.to_vec()),
        ("trailing comma", br#"{"model":"gpt-4o-mini","messages":[],}"#.to_vec()),
        ("single quotes", b"{'model':'gpt-4o-mini'}".to_vec()),
        ("NaN", br#"{"model":"gpt-4o-mini","temperature":NaN}"#.to_vec()),
        ("array", b"[1,2]".to_vec()),
        ("string", br#""hello""#.to_vec()),
        ("number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("two objects", br#"{"model":"a"}{"model":"b"}"#.to_vec()),
        ("invalid UTF-8", b"{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec()),
        ("truncated", chat_with("gpt-4o-mini", json!({}))[..30].to_vec()),
        ("empty", vec![]),
        ("whitespace", b"  \n ".to_vec()),
    ];
    let mut cases = vec![];
    for (path, kind) in [(CHAT, "chat"), (EMBEDDINGS, "embeddings")] {
        for (label, body) in &bodies {
            cases.push(Case {
                label: format!("{kind}: {label}"),
                method: "POST",
                path: path.into(),
                content_type: JSON,
                body: body.clone(),
                status: 400,
                code: "invalid_json",
                param: Param::Null,
            });
        }
    }
    // Not JSON at all, whatever the content type says.
    let form: [(&str, &'static str, &[u8]); 3] = [
        (
            "form",
            "application/x-www-form-urlencoded",
            b"model=gpt-4o-mini&messages=hi",
        ),
        ("plain text", "text/plain", b"Hello, what is Envoy?"),
        (
            "xml",
            "application/xml",
            b"<request><model>gpt-4o-mini</model></request>",
        ),
    ];
    for (label, content_type, body) in form {
        cases.push(Case {
            label: format!("chat: {label}"),
            method: "POST",
            path: CHAT.into(),
            content_type,
            body: body.to_vec(),
            status: 400,
            code: "invalid_json",
            param: Param::Null,
        });
    }
    cases.push(chat_case(
        "no model".into(),
        br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
        400,
        "missing_required_parameter",
        named("model"),
    ));
    cases.push(chat_case(
        "no messages".into(),
        br#"{"model":"gpt-4o-mini"}"#.to_vec(),
        400,
        "missing_required_parameter",
        named("messages"),
    ));
    cases
}

fn method_and_path_cases() -> Vec<Case> {
    let mut cases = vec![];
    let body = chat_with("gpt-4o-mini", json!({}));
    for (path, methods) in [
        (CHAT, &["GET", "PUT", "DELETE", "PATCH"][..]),
        (EMBEDDINGS, &["GET", "PUT", "DELETE"][..]),
        ("/v1/models", &["POST", "DELETE"][..]),
        ("/v1/models/gpt-4o-mini", &["POST", "PUT"][..]),
    ] {
        for method in methods {
            cases.push(Case {
                label: format!("{method} {path}"),
                method,
                path: path.into(),
                content_type: JSON,
                body: if *method == "GET" {
                    vec![]
                } else {
                    body.clone()
                },
                status: 405,
                code: "method_not_allowed",
                param: Param::Null,
            });
        }
    }
    for path in [
        "/",
        "/v1",
        "/v1/completions",
        "/v1/chat",
        "/v2/chat/completions",
        "/v1/chat/completions/extra",
        "/v1/embedding",
        "/v1/audio/speech",
        "/V1/CHAT/COMPLETIONS",
        "/v1/images/generations",
    ] {
        cases.push(Case {
            label: format!("POST {path}"),
            method: "POST",
            path: path.into(),
            content_type: JSON,
            body: body.clone(),
            status: 404,
            code: "unknown_url",
            param: Param::Null,
        });
    }
    // A chat body on the Responses endpoint (served since the Responses API was wired): its
    // required `input` is missing.
    cases.push(Case {
        label: "POST /v1/responses with a chat body".into(),
        method: "POST",
        path: "/v1/responses".into(),
        content_type: JSON,
        body: body.clone(),
        status: 400,
        code: "missing_required_parameter",
        param: Param::Named("input".into()),
    });
    cases
}

fn embeddings_case(
    label: String,
    body: Value,
    status: u16,
    code: &'static str,
    param: &str,
) -> Case {
    Case {
        label,
        method: "POST",
        path: EMBEDDINGS.into(),
        content_type: JSON,
        body: body.to_string().into_bytes(),
        status,
        code,
        param: named(param),
    }
}

fn embeddings_cases() -> Vec<Case> {
    let m = "text-embedding-3-small";
    let bad = |body: Value, param: &str| {
        embeddings_case(
            format!("embeddings {body}"),
            body,
            400,
            "invalid_parameter",
            param,
        )
    };
    vec![
        embeddings_case(
            "embeddings without input".into(),
            json!({"model": m}),
            400,
            "missing_required_parameter",
            "input",
        ),
        embeddings_case(
            "embeddings without model".into(),
            json!({"input": "x"}),
            400,
            "missing_required_parameter",
            "model",
        ),
        bad(json!({"model": m, "input": ""}), "input"),
        bad(json!({"model": m, "input": []}), "input"),
        bad(json!({"model": m, "input": [""]}), "input"),
        bad(json!({"model": m, "input": ["a", 1]}), "input"),
        bad(json!({"model": m, "input": [[]]}), "input"),
        bad(json!({"model": m, "input": [-1, 2]}), "input"),
        bad(json!({"model": m, "input": {"text": "a"}}), "input"),
        bad(json!({"model": m, "input": 7}), "input"),
        bad(json!({"model": m, "input": vec!["a"; 2049]}), "input"),
        bad(
            json!({"model": m, "input": "a", "encoding_format": "hex"}),
            "encoding_format",
        ),
        bad(
            json!({"model": m, "input": "a", "encoding_format": true}),
            "encoding_format",
        ),
        bad(
            json!({"model": m, "input": "a", "dimensions": 0}),
            "dimensions",
        ),
        bad(
            json!({"model": m, "input": "a", "dimensions": -3}),
            "dimensions",
        ),
        bad(
            json!({"model": m, "input": "a", "dimensions": "256"}),
            "dimensions",
        ),
        bad(
            json!({"model": m, "input": "a", "dimensions": 2.5}),
            "dimensions",
        ),
        bad(json!({"model": m, "input": "a", "user": 1}), "user"),
        bad(json!({"model": 3, "input": "a"}), "model"),
        bad(json!({"model": "", "input": "a"}), "model"),
    ]
}

fn unknown_model_cases() -> Vec<Case> {
    let mut cases = vec![];
    for model in [
        "gpt-9",
        "claude-unknown",
        "GPT-4O-MINI",
        "gpt-4o-mini ",
        "a/b",
        "💥",
    ] {
        cases.push(chat_case(
            format!("chat to unknown model {model:?}"),
            chat_with(model, json!({})),
            404,
            "model_not_found",
            named("model"),
        ));
        cases.push(embeddings_case(
            format!("embeddings to unknown model {model:?}"),
            json!({"model": model, "input": "x"}),
            404,
            "model_not_found",
            "model",
        ));
    }
    for model in ["gpt-9", "nope"] {
        cases.push(Case {
            label: format!("GET unknown model {model}"),
            method: "GET",
            path: format!("/v1/models/{model}"),
            content_type: JSON,
            body: vec![],
            status: 404,
            code: "model_not_found",
            param: named("model"),
        });
    }
    cases
}

/// Valid OpenAI requests that one provider's translator must refuse, because the provider
/// cannot honour them without changing the answer's meaning (README, Providers).
fn translator_refusal_cases() -> Vec<Case> {
    let chat = |model: &str, patch: Value, param: &str| {
        bad_param(
            format!("{model} refuses {patch}"),
            chat_with(model, patch),
            param,
        )
    };
    let image = |url: &str| json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]});
    let embed = |model: &str, input: Value, param: &str| {
        embeddings_case(
            format!("{model} refuses input {input}"),
            json!({"model": model, "input": input}),
            400,
            "invalid_parameter",
            param,
        )
    };
    let mut cases = vec![];
    // n > 1 everywhere but the OpenAI family and Azure.
    for model in [
        "claude-haiku-4-5",
        "gemini-2.5-flash",
        "bedrock-nova-lite",
        "bedrock-claude-haiku",
        "command-a",
    ] {
        cases.push(chat(model, json!({"n": 2}), "n"));
    }
    cases.extend([
        chat(
            "bedrock-nova-lite",
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
        chat(
            "bedrock-claude-haiku",
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
        chat(
            "bedrock-nova-lite",
            image("https://example.com/cat.png"),
            "messages[0].content[0].image_url.url",
        ),
        chat("command-a", json!({"temperature": 1.5}), "temperature"),
        chat(
            "command-a",
            json!({"presence_penalty": -0.5}),
            "presence_penalty",
        ),
        chat("command-a", json!({"seed": -1}), "seed"),
        chat("gemini-2.5-flash", json!({"logprobs": true}), "logprobs"),
        chat(
            "gemini-2.5-flash",
            json!({"logit_bias": {"50256": 5}}),
            "logit_bias",
        ),
        chat(
            "claude-haiku-4-5",
            json!({"functions": [{"name": "f"}]}),
            "functions",
        ),
        chat(
            "command-a",
            json!({"functions": [{"name": "f"}]}),
            "functions",
        ),
        embed("titan-embed-text-v2", json!(["one", "two"]), "input"),
        embed("titan-embed-text-v2", json!([1, 2, 3]), "input"),
        embed("gemini-embedding-001", json!([[1, 2]]), "input"),
        embed("embed-v4", json!([[1, 2]]), "input"),
        // A provider without embeddings: refused before any translator.
        embed("claude-haiku-4-5", json!("x"), "model"),
    ]);
    cases
}

fn oversized_cases() -> Vec<Case> {
    // Over the shipped max_request_bytes (8 MiB), then over Envoy's own 10 MiB buffer.
    [8 * 1024 * 1024 + 1024, 11 * 1024 * 1024]
        .into_iter()
        .map(|size| {
            let body = chat_with(
                "gpt-4o-mini",
                json!({"messages": [{"role": "user", "content": "x".repeat(size)}]}),
            );
            chat_case(
                format!("{size}-byte body"),
                body,
                413,
                "request_too_large",
                Param::Null,
            )
        })
        .collect()
}

/// What is wrong with one answer, if anything: (status right, OpenAI-shaped, param right).
fn judge(
    case: &Case,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> (bool, bool, bool, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = &v["error"];
    let shaped = content_type.is_some_and(|t| t.starts_with(JSON))
        && v.as_object().is_some_and(|o| o.len() == 1)
        && err["message"].as_str().is_some_and(|m| !m.is_empty())
        && err["type"].as_str().is_some_and(|t| !t.is_empty())
        && err
            .get("param")
            .is_some_and(|p| p.is_null() || p.is_string())
        && err
            .get("code")
            .is_some_and(|c| c.is_null() || c.is_string())
        && err["code"] == case.code;
    let param_ok = match &case.param {
        Param::Named(p) => err["param"] == p.as_str(),
        Param::Null => err["param"].is_null(),
    };
    let detail = format!(
        "{status} {}",
        String::from_utf8_lossy(&body[..body.len().min(400)])
    );
    (status == case.status, shaped, param_ok, detail)
}

#[test]
fn every_bad_request_gets_an_openai_error_and_never_reaches_a_provider() {
    let fake = FakeProvider::start(0).expect("fake provider");
    let envoy = Envoy::start(Options::every_provider_family(fake.port));
    let started = Instant::now();

    let groups = [
        scalar_cases(),
        nested_cases(),
        absurd_token_cases(),
        malformed_cases(),
        method_and_path_cases(),
        embeddings_cases(),
        unknown_model_cases(),
        translator_refusal_cases(),
        oversized_cases(),
    ];
    let cases: Vec<Case> = groups.into_iter().flatten().collect();
    let valid_models = [
        "gpt-4o-mini",
        "claude-haiku-4-5",
        "gemini-2.5-flash",
        "bedrock-nova-lite",
        "command-a",
        "azure-gpt-4o",
    ];

    let (mut right_status, mut shaped, mut param_named, mut reached) = (0, 0, 0, 0);
    let mut failures = vec![];
    let mut valid_answered = 0;
    let mut provider_seen = 0;
    for (i, case) in cases.iter().enumerate() {
        let r = envoy.request(
            case.method,
            &case.path,
            &[("content-type", case.content_type)],
            &case.body,
        );
        let (status_ok, shape_ok, param_ok, detail) =
            judge(case, r.status, r.header("content-type"), &r.body);
        let received = fake.received().len();
        let leaked = received != provider_seen;
        provider_seen = received;
        right_status += usize::from(status_ok);
        shaped += usize::from(shape_ok);
        param_named += usize::from(param_ok);
        reached += usize::from(leaked);
        if !(status_ok && shape_ok && param_ok) || leaked {
            failures.push(format!(
                "{}: expected {} {} param {:?}; got {detail}{}",
                case.label,
                case.status,
                case.code,
                case.param,
                if leaked {
                    " (REACHED THE PROVIDER)"
                } else {
                    ""
                }
            ));
        }
        // Every 40 bad requests, a valid one: the VM still answers, on every family in turn.
        if i % 40 == 39 {
            let model = valid_models[(i / 40) % valid_models.len()];
            let ok = envoy.request(
                "POST",
                CHAT,
                &[("content-type", JSON)],
                &chat_with(model, json!({})),
            );
            assert_eq!(
                ok.status,
                200,
                "valid request to {model} after {} bad ones: {}",
                i + 1,
                ok.text()
            );
            assert!(
                ok.json()["choices"][0]["message"]["content"].is_string(),
                "{model}: {}",
                ok.text()
            );
            valid_answered += 1;
            provider_seen = fake.received().len();
        }
    }
    let n = cases.len();
    let tally = format!(
        "{n} cases: {right_status} right status, {shaped} OpenAI-shaped, {param_named} right param, {reached} reached a provider; {valid_answered} valid requests answered in between; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    eprintln!("{tally}");
    assert!(failures.is_empty(), "{tally}\n{}", failures.join("\n"));
    assert!(n >= 300, "{tally}");
    assert_eq!(
        (right_status, shaped, param_named, reached),
        (n, n, n, 0),
        "{tally}"
    );
    assert!(valid_answered >= 7, "{tally}");
}
