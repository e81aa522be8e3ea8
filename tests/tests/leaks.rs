//! Nothing leaks through the real Envoy: the client's headers reach a provider only when they
//! are on its allow-list, provider secrets quoted in error bodies or stream events never reach
//! the client or the logs, and an Azure stream reaches the client as chunks of one id.

use std::time::Duration;

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake::bedrock::TEST_SECRET_ACCESS_KEY;
use gateway_tests::fake_provider::{demo_answer, stream_events, FakeProvider, Reply};
use serde_json::{json, Value};

const OPENAI_KEY: &str = "test-openai-key";
const ANTHROPIC_KEY: &str = "test-anthropic-key";

/// The shipped providers (keys from `every_provider_family`), OpenAI forwarding `x-custom`, and
/// models that log their bodies.
fn gateway() -> (FakeProvider, Envoy) {
    let fake = FakeProvider::start(0).expect("fake provider");
    let mut options = Options::every_provider_family(fake.port);
    options.plugin_config = Some(json!({
        "providers": {
            "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY", "forward_headers": ["x-custom"]},
            "anthropic": {"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
            "bedrock": {"type": "bedrock", "region": "us-east-1"},
            "azure": {"type": "azure", "api_key_env": "AZURE_OPENAI_API_KEY"}
        },
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini", "log_bodies": true},
            "claude": {"provider": "anthropic", "model": "claude-haiku-4-5", "log_bodies": true},
            "nova": {"provider": "bedrock", "model": "us.amazon.nova-lite-v1:0", "log_bodies": true},
            "azure-gpt": {"provider": "azure", "model": "gpt-4o"}
        }
    }));
    let envoy = Envoy::start(options);
    (fake, envoy)
}

fn chat(model: &str, text: &str, stream: bool) -> Vec<u8> {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]})
        .to_string()
        .into_bytes()
}

/// Headers that say who or where the client is, or carry its credentials.
const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("proxy-authorization", "Basic Y2xpZW50OnNlY3JldA=="),
    ("x-forwarded-for", "203.0.113.7"),
    ("x-real-ip", "203.0.113.7"),
    ("x-forwarded-host", "intranet.example"),
    (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    ("te", "trailers"),
    ("cookie", "session=client-session"),
    ("x-custom", "client-value"),
    ("anthropic-beta", "prompt-caching-2024-07-31"),
    ("accept-encoding", "gzip"),
];

#[test]
fn providers_receive_only_the_allowed_headers_and_the_gateway_user_agent() {
    let (fake, gw) = gateway();
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", "Bearer client-secret-key"),
        ("user-agent", "OpenAI/Python 1.50.0"),
    ];
    headers.extend_from_slice(CLIENT_HEADERS);
    for model in ["gpt", "claude"] {
        let r = gw.request(
            "POST",
            "/v1/chat/completions",
            &headers,
            &chat(model, "hi", false),
        );
        assert_eq!(r.status, 200, "{model}: {}", r.text());
    }
    let received = fake.received();
    assert_eq!(received.len(), 2);
    let user_agent = format!("ai-gateway/{}", env!("CARGO_PKG_VERSION"));
    for (req, model) in received.iter().zip(["gpt", "claude"]) {
        for (name, _) in CLIENT_HEADERS {
            let allowed = matches!(
                (model, *name),
                ("gpt", "x-custom") | ("claude", "anthropic-beta")
            );
            if !allowed {
                assert_eq!(
                    req.header(name),
                    None,
                    "{model}: {name} reached the provider"
                );
            }
        }
        assert_eq!(
            req.header("user-agent"),
            Some(user_agent.as_str()),
            "{model}"
        );
        let leaked: Vec<&str> = req
            .head
            .headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with("x-envoy-") || n.starts_with("x-forwarded-"))
            .collect();
        assert!(leaked.is_empty(), "{model}: {leaked:?}");
    }
    assert_eq!(
        received[0].header("x-custom"),
        Some("client-value"),
        "configured in forward_headers"
    );
    assert_eq!(
        received[1].header("anthropic-beta"),
        Some("prompt-caching-2024-07-31"),
        "Anthropic's documented beta header"
    );
    assert_eq!(
        received[1].header("x-custom"),
        None,
        "not configured for it"
    );
    assert_eq!(
        received[1].header("authorization"),
        None,
        "the client's key never"
    );
    // Envoy's header map is shared with the access log, which still has the request id.
    let log = gw.access_log(2);
    assert!(
        log.iter()
            .all(|l| l["request_id"].as_str().is_some_and(|id| id.len() > 8)),
        "{log:?}"
    );
}

/// A provider quoting the gateway's secret, in each shape an error takes.
#[test]
fn secrets_quoted_by_providers_never_reach_the_client_or_the_logs() {
    let (fake, gw) = gateway();
    let cases: Vec<(&str, bool, Reply, &str)> = vec![
        // OpenAI's error body passes in its own shape.
        (
            "gpt",
            false,
            Reply::json(
                400,
                &json!({"error": {"message": format!("Incorrect API key provided: {OPENAI_KEY}."), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
            ),
            OPENAI_KEY,
        ),
        // Anthropic's error is translated (https://docs.anthropic.com/en/api/errors).
        (
            "claude",
            false,
            Reply::json(
                400,
                &json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("key {ANTHROPIC_KEY} may not use this model")}}),
            ),
            ANTHROPIC_KEY,
        ),
        // Bedrock's `{"message"}` error with the AWS secret key.
        (
            "nova",
            false,
            Reply::json(
                400,
                &json!({"message": format!("The request signature we calculated does not match ({TEST_SECRET_ACCESS_KEY})")}),
            ),
            TEST_SECRET_ACCESS_KEY,
        ),
        // A text body, not JSON.
        (
            "gpt",
            false,
            Reply {
                status: 400,
                headers: vec![("content-type".into(), "text/plain".into())],
                pieces: vec![(Duration::ZERO, format!("bad key {OPENAI_KEY}").into_bytes())],
                chunked: false,
            },
            OPENAI_KEY,
        ),
    ];
    let mut stream_error = stream_events("gpt-4o-mini", "partial answer", None);
    stream_error.truncate(2);
    stream_error.push(format!(
        "data: {}\n\n",
        json!({"error": {"message": format!("key {OPENAI_KEY} was revoked mid-stream"), "type": "server_error", "param": null, "code": null}})
    ));
    let stream_text: String = stream_error.concat();
    // Cut inside the key: the secret arrives in two network chunks.
    let cut = stream_text.find(OPENAI_KEY).unwrap() + 6;
    let stream_reply = Reply::sse(&stream_error, Duration::ZERO).split_at(&[cut]);

    let headers = [
        ("content-type", "application/json"),
        ("authorization", "Bearer client-secret-key"),
    ];
    let mut answers = Vec::new();
    for (model, stream, reply, secret) in
        cases
            .into_iter()
            .chain([("gpt", true, stream_reply, OPENAI_KEY)])
    {
        fake.push_reply(reply);
        let r = gw.request(
            "POST",
            "/v1/chat/completions",
            &headers,
            &chat(model, "hi", stream),
        );
        let text = r.text();
        assert!(!text.contains(secret), "{model}: {text}");
        assert!(
            text.contains("[REDACTED]"),
            "{model}: the message stays: {text}"
        );
        answers.push(text);
    }
    let bodies = gw.body_log(answers.len());
    assert_eq!(bodies.len(), answers.len(), "{bodies:?}");
    let access = gw.access_log(answers.len());
    let logged = format!("{bodies:?}{access:?}");
    for secret in [OPENAI_KEY, ANTHROPIC_KEY, TEST_SECRET_ACCESS_KEY] {
        assert!(!logged.contains(secret), "{secret} in the logs: {logged}");
    }
    assert!(logged.contains("[REDACTED]"), "{logged}");
}

#[test]
fn an_azure_stream_reaches_the_client_as_chunks_of_one_id() {
    let (fake, gw) = gateway();
    let r = gw.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer client-secret-key"),
        ],
        &chat("azure-gpt", "stream me please", true),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = fake.received();
    assert!(
        sent[0].path.starts_with("/openai/deployments/gpt-4o/"),
        "{}",
        sent[0].path
    );
    let text = r.text();
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect();
    assert!(chunks.len() > 3, "{text}");
    let id = chunks[0]["id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{text}");
    for chunk in &chunks {
        assert_eq!(chunk["id"], id, "{text}");
        assert_eq!(chunk["object"], "chat.completion.chunk", "{text}");
        assert!(chunk.get("prompt_filter_results").is_none(), "{text}");
    }
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let (answer, _, _) =
        demo_answer(&json!({"messages": [{"role": "user", "content": "stream me please"}]}));
    assert_eq!(content, answer);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}
