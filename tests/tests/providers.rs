//! Every provider family through the real Envoy with the shipped envoy/envoy.yaml: the same
//! OpenAI requests go to OpenAI, Azure, Anthropic, Gemini, Bedrock and Cohere (a fake server
//! speaking each native wire format), and the client must get the same OpenAI answers.

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider, Received};
use serde_json::{json, Value};

/// A client model of each family in the shipped configuration, and what its provider must see.
struct Family {
    model: &'static str,
    provider: &'static str,
    /// The path (and query) the provider must receive for a non-streamed chat.
    path: &'static str,
    /// A header the provider must receive, with its value.
    credential: (&'static str, &'static str),
}

const FAMILIES: &[Family] = &[
    Family {
        model: "gpt-4o-mini",
        provider: "openai",
        path: "/v1/chat/completions",
        credential: ("authorization", "Bearer test-openai-key"),
    },
    Family {
        model: "azure-gpt-4o",
        provider: "azure",
        path: "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        credential: ("api-key", "test-azure-key"),
    },
    Family {
        model: "claude-haiku-4-5",
        provider: "anthropic",
        path: "/v1/messages",
        credential: ("x-api-key", "test-anthropic-key"),
    },
    Family {
        model: "gemini-2.5-flash",
        provider: "gemini",
        path: "/v1beta/models/gemini-2.5-flash:generateContent",
        credential: ("x-goog-api-key", "test-gemini-key"),
    },
    Family {
        model: "bedrock-nova-lite",
        provider: "bedrock",
        path: "/model/us.amazon.nova-lite-v1%3A0/converse",
        credential: ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
    },
    Family {
        model: "command-a",
        provider: "cohere",
        path: "/v2/chat",
        credential: ("authorization", "Bearer test-cohere-key"),
    },
];

const CLIENT_KEY: &str = "client-secret-key";

struct Setup {
    fake: FakeProvider,
    envoy: Envoy,
}

/// A fake provider behind the shipped configuration with test keys, every provider cluster
/// pointed at it. One per test: a shared one in a static would never be dropped, and its Envoy
/// would outlive the test binary.
fn setup() -> Setup {
    let fake = FakeProvider::start(0).expect("fake provider");
    let envoy = Envoy::start(Options::every_provider_family(fake.port));
    Setup { fake, envoy }
}

fn chat(model: &str, text: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// The request the provider received whose body holds `marker`.
fn received_with(fake: &FakeProvider, marker: &str) -> Received {
    let all = fake.received();
    all.iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains(marker))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no provider request holds {marker:?}; got {:?}",
                all.iter().map(|r| &r.path).collect::<Vec<_>>()
            )
        })
}

/// Content, tool-call arguments, finish reason, usage chunk and whether `[DONE]` came, of a stream.
struct Stream {
    content: String,
    tool_name: String,
    tool_arguments: String,
    finish: Option<String>,
    usage: Option<Value>,
    error: Option<Value>,
    done: bool,
}

fn parse_stream(text: &str) -> Stream {
    let mut s = Stream {
        content: String::new(),
        tool_name: String::new(),
        tool_arguments: String::new(),
        finish: None,
        usage: None,
        error: None,
        done: false,
    };
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data = block
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an OpenAI SSE block: {block:?} in {text}"));
        if data == "[DONE]" {
            s.done = true;
            continue;
        }
        let v: Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("bad event {data:?}: {e}"));
        if v.get("error").is_some() {
            s.error = Some(v["error"].clone());
            continue;
        }
        assert_eq!(v["object"], "chat.completion.chunk", "{v}");
        if !v["usage"].is_null() && v.get("usage").is_some() {
            s.usage = Some(v["usage"].clone());
        }
        let choice = &v["choices"][0];
        s.content
            .push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        if let Some(call) = choice["delta"]["tool_calls"].get(0) {
            s.tool_name
                .push_str(call["function"]["name"].as_str().unwrap_or_default());
            s.tool_arguments
                .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            s.finish = Some(f.to_string());
        }
    }
    s
}

fn for_each_family(test: impl Fn(&Family)) {
    for family in FAMILIES {
        test(family);
    }
}

#[test]
fn chat_is_translated_for_every_family_with_its_own_credentials() {
    let setup = setup();
    let gw = &setup.envoy;
    for_each_family(|f| {
        let text = format!("plain chat for {}", f.provider);
        let request = chat(f.model, &text, json!({"max_tokens": 50}));
        let r = gw.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {CLIENT_KEY}")),
                ("content-type", "application/json"),
            ],
            request.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}: {}", f.provider, r.text());
        let (answer, prompt, completion) = demo_answer(&request);
        let body = r.json();
        assert_eq!(body["object"], "chat.completion", "{}: {body}", f.provider);
        assert_eq!(
            body["choices"][0]["message"]["content"], answer,
            "{}",
            f.provider
        );
        assert_eq!(
            body["choices"][0]["finish_reason"], "stop",
            "{}",
            f.provider
        );
        assert_eq!(
            body["usage"]["prompt_tokens"], prompt,
            "{}: {body}",
            f.provider
        );
        assert_eq!(
            body["usage"]["completion_tokens"], completion,
            "{}",
            f.provider
        );
        assert_eq!(r.header("x-gateway-provider"), Some(f.provider));

        let sent = received_with(&setup.fake, &text);
        assert_eq!(sent.path, f.path, "{}", f.provider);
        assert_eq!(
            sent.header(f.credential.0),
            Some(f.credential.1),
            "{}: {:?}",
            f.provider,
            sent.head.headers
        );
        let headers = format!("{:?}", sent.head.headers);
        assert!(
            !headers.contains(CLIENT_KEY),
            "{}: the client's key reached the provider",
            f.provider
        );
    });
}

#[test]
fn streams_are_translated_event_by_event_for_every_family() {
    let setup = setup();
    let gw = &setup.envoy;
    for_each_family(|f| {
        for asked in [false, true] {
            let text = format!("stream for {} usage {asked}", f.provider);
            let mut extra = json!({"stream": true});
            if asked {
                extra["stream_options"] = json!({"include_usage": true});
            }
            let request = chat(f.model, &text, extra);
            let r = gw.chat(&request);
            assert_eq!(r.status, 200, "{}: {}", f.provider, r.text());
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("text/event-stream")),
                "{}",
                f.provider
            );
            let s = parse_stream(&r.text());
            let (answer, prompt, completion) = demo_answer(&request);
            assert_eq!(s.content, answer, "{}", f.provider);
            assert_eq!(s.finish.as_deref(), Some("stop"), "{}", f.provider);
            assert!(s.done && s.error.is_none(), "{}: {}", f.provider, r.text());
            match (asked, &s.usage) {
                (true, Some(u)) => {
                    assert_eq!(
                        (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
                        (Some(prompt), Some(completion)),
                        "{}",
                        f.provider
                    )
                }
                (false, None) => {}
                (asked, usage) => panic!("{}: asked for usage {asked}, got {usage:?}", f.provider),
            }
            assert!(
                r.pieces.len() > 3,
                "{}: the stream arrived in {} piece(s)",
                f.provider,
                r.pieces.len()
            );
        }
    });
}

#[test]
fn tool_calls_round_trip_for_every_family() {
    let setup = setup();
    let gw = &setup.envoy;
    let tools = json!([{"type": "function", "function": {"name": "lookup", "description": "Look a text up.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}]);
    for_each_family(|f| {
        let text = format!("tool call for {}", f.provider);
        for stream in [false, true] {
            let r = gw.chat(&chat(
                f.model,
                &text,
                json!({"tools": tools, "stream": stream}),
            ));
            assert_eq!(r.status, 200, "{}: {}", f.provider, r.text());
            let (name, arguments, finish) = if stream {
                let s = parse_stream(&r.text());
                (s.tool_name, s.tool_arguments, s.finish)
            } else {
                let b = r.json();
                let call = &b["choices"][0]["message"]["tool_calls"][0];
                assert!(
                    call["id"].as_str().is_some_and(|id| !id.is_empty()),
                    "{}: {b}",
                    f.provider
                );
                (
                    call["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    call["function"]["arguments"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    b["choices"][0]["finish_reason"].as_str().map(String::from),
                )
            };
            assert_eq!(name, "lookup", "{} stream={stream}", f.provider);
            let args: Value = serde_json::from_str(&arguments)
                .unwrap_or_else(|e| panic!("{}: arguments {arguments:?}: {e}", f.provider));
            assert_eq!(
                args,
                json!({"text": text}),
                "{} stream={stream}",
                f.provider
            );
            assert_eq!(
                finish.as_deref(),
                Some("tool_calls"),
                "{} stream={stream}",
                f.provider
            );
        }
        // Second round: the tool's result goes back and the model answers from it.
        let result = format!("forty-two for {}", f.provider);
        let round = json!({"model": f.model, "tools": tools, "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": json!({"text": text}).to_string()}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": result}]});
        let r = gw.chat(&round);
        assert_eq!(r.status, 200, "{}: {}", f.provider, r.text());
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            format!("Tool said: {result}"),
            "{}",
            f.provider
        );
    });
}

#[test]
fn provider_errors_keep_their_status_and_get_the_openai_shape() {
    let setup = setup();
    let gw = &setup.envoy;
    for_each_family(|f| {
        let r = gw.chat(&chat(f.model, "FAIL 429", json!({})));
        assert_eq!(r.status, 429, "{}: {}", f.provider, r.text());
        let err = &r.json()["error"];
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: {err}",
            f.provider
        );
        assert!(err["type"].is_string(), "{}: {err}", f.provider);
        if f.provider != "bedrock" {
            assert_eq!(
                r.header("retry-after"),
                Some("1"),
                "{}: retry-after is kept",
                f.provider
            );
        }
        // An error in the middle of a stream ends it with an OpenAI error event, never a hang.
        let r = gw.chat(&chat(f.model, "FAIL STREAM", json!({"stream": true})));
        assert_eq!(r.status, 200, "{}", f.provider);
        let s = parse_stream(&r.text());
        assert!(
            s.error.is_some(),
            "{}: no error event in {}",
            f.provider,
            r.text()
        );
        // Translated streams end with [DONE] after the error; OpenAI-family streams pass as the
        // provider sent them (OpenAI itself closes after the error event).
        if !matches!(f.provider, "openai" | "azure") {
            assert!(
                s.done,
                "{}: the stream ends with [DONE] after the error",
                f.provider
            );
        }
        assert!(
            !s.content.is_empty(),
            "{}: the deltas before the error arrive",
            f.provider
        );
    });
}

#[test]
fn embeddings_for_every_family_that_has_them() {
    let setup = setup();
    let gw = &setup.envoy;
    for (model, provider) in [
        ("text-embedding-3-small", "openai"),
        ("gemini-embedding-001", "gemini"),
        ("titan-embed-text-v2", "bedrock"),
        ("embed-v4", "cohere"),
    ] {
        for base64 in [false, true] {
            let text = format!("embed me for {provider}");
            let mut request = json!({"model": model, "input": [text]});
            if base64 {
                request["encoding_format"] = "base64".into();
            }
            let r = gw.request(
                "POST",
                "/v1/embeddings",
                &[("content-type", "application/json")],
                request.to_string().as_bytes(),
            );
            assert_eq!(r.status, 200, "{provider}: {}", r.text());
            let body = r.json();
            assert_eq!(body["object"], "list", "{provider}: {body}");
            let embedding = &body["data"][0]["embedding"];
            let vector: Vec<f64> = if base64 {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(embedding.as_str().unwrap_or_default())
                    .unwrap_or_default();
                bytes
                    .chunks(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect()
            } else {
                embedding
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default()
            };
            assert_eq!(
                vector,
                gateway_tests::fake_provider::fake_vector(&text),
                "{provider} base64={base64}"
            );
        }
    }
    // A provider without embeddings says so, before any provider is contacted.
    let r = gw.request(
        "POST",
        "/v1/embeddings",
        &[("content-type", "application/json")],
        json!({"model": "claude-haiku-4-5", "input": "x"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "model");
}
