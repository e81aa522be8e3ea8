//! `make bench-native`'s fixtures: the bench's 1.5 KB chat request for each provider wire
//! format, and the provider's answers to it, built and checked once; the stages they run are in
//! `super::stages`, the timing and the table in `src/bin/bench-native.rs`. [`dump`] writes them
//! to files for `make bench-v8`, which times the same stages in V8.
//!
//! The provider answers come from the test fakes (`crate::fake`, written from each provider's
//! published API reference and cited there), given the request the gateway translated, so every
//! format answers the same text and every fixture is checked end to end before it is timed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ai_gateway::config::Config;
use ai_gateway::provider::UpstreamRequest;
use serde_json::{json, Value};

use super::stages::{Answer, Dump, Fixture};
use super::workload;
use crate::fake_provider::{demo_answer, stream_events, Received, Reply};
use crate::http::Head;

/// A wire format: the client model that the native config routes to a provider of it.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub name: &'static str,
    /// The client's model name.
    model: &'static str,
    /// The provider id in [`plugin_config`].
    provider: &'static str,
}

pub const FORMATS: [Format; 5] = [
    Format {
        name: "OpenAI-compatible",
        model: "gpt-4o-mini",
        provider: "openai",
    },
    Format {
        name: "Anthropic",
        model: "claude-haiku-4-5",
        provider: "anthropic",
    },
    Format {
        name: "Gemini",
        model: "gemini-2.5-flash",
        provider: "gemini",
    },
    Format {
        name: "Bedrock",
        model: "bedrock-claude-haiku",
        provider: "bedrock",
    },
    Format {
        name: "Cohere",
        model: "command-a",
        provider: "cohere",
    },
];

/// The plugin configuration: one provider of each wire format, keyed, as shipped in
/// envoy/envoy.yaml.
fn plugin_config() -> Value {
    json!({
        "providers": {
            "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
            "anthropic": {"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
            "gemini": {"type": "gemini", "api_key_env": "GEMINI_API_KEY"},
            "bedrock": {"type": "bedrock", "region": "us-east-1"},
            "cohere": {"type": "cohere", "api_key_env": "COHERE_API_KEY"}
        },
        "models": {
            "gpt-4o-mini": {"provider": "openai"},
            "claude-haiku-4-5": {"provider": "anthropic"},
            "gemini-2.5-flash": {"provider": "gemini"},
            "bedrock-claude-haiku": {"provider": "bedrock", "model": "us.anthropic.claude-3-5-haiku-20241022-v1:0"},
            "command-a": {"provider": "cohere", "model": "command-a-03-2025"}
        }
    })
}

fn env(name: &str) -> Option<String> {
    use crate::fake::bedrock::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
    let value = match name {
        "AWS_ACCESS_KEY_ID" => TEST_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY" => TEST_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN" => return None,
        other => return Some(format!("sk-native-bench-{}", other.to_lowercase())),
    };
    Some(value.to_string())
}

/// Builds one format's fixture and runs its whole pipeline once, checking every step's result.
pub fn build(format: Format) -> Result<Fixture, String> {
    let config = Config::from_json(plugin_config().to_string().as_bytes(), &env)
        .map_err(|e| format!("plugin configuration: {e}"))?;
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut fixture = Fixture::new(
        format.name,
        config,
        workload::chat_request(format.model, false),
        workload::chat_request(format.model, true),
        now_unix,
    )?;
    let provider = fixture.routed_provider()?;
    if provider != format.provider {
        return Err(format!(
            "routed to {provider}, expected {}",
            format.provider
        ));
    }
    for stream in [false, true] {
        let request = fixture
            .translate_request(stream)
            .map_err(|e| format!("translate the request: {e}"))?;
        let answer = provider_answer(format, &request, fixture.request_body(stream))?;
        fixture.set_answer(stream, answer);
    }
    fixture.check()?;
    Ok(fixture)
}

/// Writes the built fixtures to `dir` for `make bench-v8` (`tests/v8-bench` reads them back):
/// `config.json`, the plugin configuration, and `fixtures.json`, a [`Dump`] (the environment
/// values the configuration reads, test keys only; each format's requests and answers).
pub fn dump(dir: &Path, fixtures: &[Fixture], stamp: &str, machine: &str) -> Result<(), String> {
    let seen = RefCell::new(BTreeMap::new());
    let recording = |name: &str| {
        let value = env(name);
        seen.borrow_mut().insert(name.to_string(), value.clone());
        value
    };
    let config = plugin_config();
    Config::from_json(config.to_string().as_bytes(), &recording)
        .map_err(|e| format!("plugin configuration: {e}"))?;
    let dumped = Dump {
        stamp: stamp.to_string(),
        machine: machine.to_string(),
        env: seen.into_inner(),
        fixtures: fixtures.iter().map(Fixture::saved).collect(),
    };
    let write = |name: &str, bytes: Result<Vec<u8>, serde_json::Error>| {
        let path = dir.join(name);
        bytes
            .map_err(|e| e.to_string())
            .and_then(|b| fs::write(&path, b).map_err(|e| e.to_string()))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    };
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    write("config.json", serde_json::to_vec_pretty(&config))?;
    write("fixtures.json", serde_json::to_vec(&dumped))
}

/// What the provider answers the translated request: the test fake of its format. The OpenAI
/// answer is built here from the fake's demo answer, in the shape of the chat completion object
/// (https://platform.openai.com/docs/api-reference/chat/object) and, streamed, the fake's
/// chunk stream (https://platform.openai.com/docs/api-reference/chat-streaming).
fn provider_answer(
    format: Format,
    request: &UpstreamRequest,
    client_body: &[u8],
) -> Result<Answer, String> {
    let body = request.body.clone().unwrap_or_else(|| client_body.to_vec());
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| {
            let name = if *k == ":authority" { "host" } else { k };
            (name.to_string(), v.clone())
        })
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    let received = Received {
        method: "POST".into(),
        path: request.path.clone(),
        head: Head {
            first_line: format!("POST {} HTTP/1.1", request.path),
            headers,
        },
        body,
    };
    let reply = match format.provider {
        "anthropic" => crate::fake::anthropic::reply(&received),
        "gemini" => crate::fake::gemini::reply(&received),
        "bedrock" => crate::fake::bedrock::reply(&received),
        "cohere" => crate::fake::cohere::reply(&received),
        _ => openai_reply(&received.json()),
    };
    let answer = Answer {
        content_type: reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        pieces: reply.pieces.iter().map(|(_, p)| p.clone()).collect(),
    };
    if reply.status != 200 {
        return Err(format!(
            "the fake {} answered {}: {}",
            format.name,
            reply.status,
            String::from_utf8_lossy(&answer.pieces.concat())
        ));
    }
    Ok(answer)
}

fn openai_reply(request: &Value) -> Reply {
    let model = request["model"].as_str().unwrap_or_default();
    let (text, prompt, completion) = demo_answer(request);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion});
    if request["stream"] == true {
        let include_usage = request["stream_options"]["include_usage"] == true;
        return Reply::sse(
            &stream_events(model, &text, include_usage.then_some(&usage)),
            std::time::Duration::ZERO,
        );
    }
    Reply::json(
        200,
        &json!({"id": "chatcmpl-native", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": text}}],
            "usage": usage}),
    )
}
