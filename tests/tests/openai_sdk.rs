//! The official OpenAI Python SDK (from the project's .venv) works against the gateway unchanged:
//! chat, streams with and without usage, tools and tool results (plain and streamed), errors and
//! embeddings, for the demo provider and for every provider family.

use gateway_tests::check::run_python_client;
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, fake_vector, FakeProvider};
use serde_json::{json, Value};

fn run_sdk(port: u16, chat_models: &[&str], embedding_models: &[&str]) -> Value {
    let base = format!("http://127.0.0.1:{port}/v1");
    run_python_client(
        "openai_client.py",
        &[base, chat_models.join(","), embedding_models.join(",")],
    )
}

/// Checks what the SDK saw of one chat model against the fake provider's known behaviour.
fn check_chat(seen: &Value, model: &str) {
    let s = &seen["chat"][model];
    let request = json!({"messages": [{"role": "user", "content": format!("Hello from the SDK to {model}")}]});
    let (answer, prompt, completion) = demo_answer(&request);
    assert_eq!(s["chat"]["content"], answer, "{model}: {s}");
    assert_eq!(s["chat"]["finish"], "stop", "{model}");
    assert_eq!(s["chat"]["usage"]["prompt_tokens"], prompt, "{model}");
    assert_eq!(
        s["chat"]["usage"]["completion_tokens"], completion,
        "{model}"
    );
    assert_eq!(s["stream"]["content"], answer, "{model}");
    assert_eq!(
        s["stream"]["usage"]["prompt_tokens"], prompt,
        "{model}: {s}"
    );
    assert_eq!(
        s["stream"]["usage"]["completion_tokens"], completion,
        "{model}"
    );
    assert_eq!(s["stream_no_usage"]["content"], answer, "{model}");
    let args = json!({"text": format!("Hello from the SDK to {model}")});
    assert_eq!(
        s["tools"],
        json!({"name": "lookup", "arguments": args, "finish": "tool_calls"}),
        "{model}"
    );
    assert_eq!(s["tool_result"]["content"], "Tool said: 42", "{model}");
    assert_eq!(
        s["stream_tools"],
        json!({"name": "lookup", "arguments": args}),
        "{model}"
    );
    assert_eq!(
        s["rate_limited"]["raised"], "RateLimitError",
        "{model}: {s}"
    );
    assert_eq!(s["rate_limited"]["status"], 429, "{model}");
    assert_eq!(
        s["bad_request"],
        json!({"raised": "BadRequestError", "status": 400, "code": "invalid_parameter", "param": "temperature"}),
        "{model}"
    );
}

#[test]
fn the_official_openai_python_sdk_works_unchanged_with_the_demo_provider() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        ..Default::default()
    });
    let seen = run_sdk(gw.port, &["demo-chat"], &[]);
    check_chat(&seen, "demo-chat");
    assert_eq!(seen["models"], json!(["demo-chat"]));
    assert_eq!(
        seen["not_found"],
        json!({"raised": "NotFoundError", "status": 404, "code": "model_not_found", "param": "model"})
    );
}

#[test]
fn the_official_openai_python_sdk_works_unchanged_with_every_provider_family() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        concurrency: 2,
        ..Options::every_provider_family(fake.port)
    });
    let chat_models = [
        "gpt-4o-mini",
        "azure-gpt-4o",
        "claude-haiku-4-5",
        "gemini-2.5-flash",
        "bedrock-nova-lite",
        "command-a",
    ];
    let embedding_models = [
        "text-embedding-3-small",
        "gemini-embedding-001",
        "titan-embed-text-v2",
        "embed-v4",
    ];
    let seen = run_sdk(gw.port, &chat_models, &embedding_models);
    for model in chat_models {
        check_chat(&seen, model);
    }
    for model in embedding_models {
        let e = &seen["embeddings"][model];
        let expected: Vec<f64> = fake_vector(e["text"].as_str().unwrap_or_default());
        assert_eq!(
            e["vector"],
            json!(expected),
            "{model}: the SDK decodes the vector"
        );
        assert_eq!(e["count"], 1, "{model}");
    }
}
