//! The official OpenAI Python SDK (from the project's .venv) works against the gateway unchanged.

use std::process::Command;

use gateway_tests::envoy::{repo_root, Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider};
use serde_json::{json, Value};

#[test]
fn the_official_openai_python_sdk_works_unchanged() {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        ..Default::default()
    });
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run `make test`",
        python.display()
    );
    let output = Command::new(&python)
        .arg(repo_root().join("tests/sdk/openai_client.py"))
        .arg(format!("http://127.0.0.1:{}/v1", gw.port))
        .output()
        .expect("running the SDK client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("SDK client output is JSON");

    let (answer, prompt, completion) =
        demo_answer(&json!({"messages": [{"role": "user", "content": "Hello from the SDK"}]}));
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    assert_eq!(seen["chat"]["content"], answer);
    assert_eq!(seen["chat"]["finish"], "stop");
    assert_eq!(seen["chat"]["usage"]["total_tokens"], usage["total_tokens"]);
    assert_eq!(seen["stream"]["content"], answer);
    assert_eq!(
        seen["stream"]["usage"]["prompt_tokens"],
        usage["prompt_tokens"]
    );
    assert_eq!(
        seen["stream"]["usage"]["completion_tokens"],
        usage["completion_tokens"]
    );
    assert_eq!(seen["stream_no_usage"]["content"], answer);
    assert_eq!(seen["models"], json!(["demo-chat"]));
    assert_eq!(
        seen["not_found"],
        json!({"raised": "NotFoundError", "status": 404, "code": "model_not_found", "param": "model"})
    );
    assert_eq!(
        seen["bad_request"],
        json!({"raised": "BadRequestError", "status": 400, "code": "invalid_parameter", "param": "temperature"})
    );
}
