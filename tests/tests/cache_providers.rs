//! The response cache with every provider family (the shipped configuration, the fake provider
//! answering in each native format): answers translated from Anthropic, Gemini, Bedrock and
//! Cohere streams are stored, and the official OpenAI Python SDK reads their replays, as
//! streams with usage and as JSON, without a second provider request.

use gateway_tests::envoy::{load_config, repo_root, Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider};
use serde_json::{json, Value};

/// The shipped plugin configuration (every provider family), with a cache for some models.
fn shipped_plugin_with_cache(cache: Value) -> Value {
    let config = load_config(&repo_root().join("envoy/envoy.yaml"));
    fn find(v: &Value) -> Option<String> {
        match v {
            Value::Object(o) => {
                if let Some(c) = o.get("configuration") {
                    if c["@type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("StringValue"))
                    {
                        return c["value"].as_str().map(str::to_string);
                    }
                }
                o.values().find_map(find)
            }
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    let mut plugin: Value =
        serde_json::from_str(&find(&config).expect("the plugin configuration")).unwrap();
    plugin["cache"] = cache;
    plugin
}

#[test]
fn translated_answers_are_cached_and_the_openai_sdk_reads_the_replays() {
    let fake = FakeProvider::start(0).unwrap();
    let cached = [
        "claude-haiku-4-5",
        "gemini-2.5-flash",
        "bedrock-nova-lite",
        "command-a",
    ];
    let models: serde_json::Map<String, Value> =
        cached.iter().map(|m| (m.to_string(), json!({}))).collect();
    let gw = Envoy::start(Options {
        plugin_config: Some(shipped_plugin_with_cache(json!({"models": models}))),
        concurrency: 2,
        ..Options::every_provider_family(fake.port)
    });
    for model in cached {
        // The first answer comes from the provider in its own format (Anthropic Messages,
        // Gemini, Bedrock ConverseStream, Cohere v2), translated to an OpenAI stream, and is
        // stored from that; the second and third come from the cache.
        let question = format!("cache this for {model}");
        let before = fake.received().len();
        let output = std::process::Command::new(repo_root().join(".venv/bin/python"))
            .arg(repo_root().join("tests/sdk/cache_client.py"))
            .arg(format!("http://127.0.0.1:{}/v1", gw.port))
            .arg(model)
            .arg(&question)
            .output()
            .expect("running the SDK client");
        assert!(
            output.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: Value = serde_json::from_slice(&output.stdout).expect("JSON from the SDK client");
        let (answer, _, completion) =
            demo_answer(&json!({"messages": [{"role": "user", "content": question}]}));
        let expected = json!([
            {"cache": "miss", "text": answer, "usage": completion, "finish": "stop"},
            {"cache": "hit", "text": answer, "usage": completion, "finish": "stop"},
            {"cache": "hit", "text": answer, "usage": completion, "finish": "stop"}]);
        assert_eq!(seen, expected, "{model}");
        assert_eq!(
            fake.received().len(),
            before + 1,
            "{model}: one provider request"
        );
    }
}
