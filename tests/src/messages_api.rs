//! What the Messages API tests share (`tests/tests/messages_api.rs`, `claude_code.rs`): a
//! plugin configuration with a model of every provider family, a chain Anthropic -> OpenAI and
//! gateway keys, and a request helper.

use serde_json::{json, Value};

use crate::check::sha256_hex;
use crate::envoy::{Envoy, Options};
use crate::fake_provider::FakeProvider;
use crate::http::Response;

pub const KEY: &str = "gw-messages-5d2c7e";
pub const LIMITED: &str = "gw-limited-0a9b11";

/// Every provider family, one chat model each, a chain Anthropic -> OpenAI, and two keys (one
/// limited to a single request a minute).
pub fn plugin() -> Value {
    json!({
        "providers": {
            "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
            "anthropic": {"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"},
            "gemini": {"type": "gemini", "api_key_env": "GEMINI_API_KEY"},
            "bedrock": {"type": "bedrock", "region": "us-east-1"},
            "cohere": {"type": "cohere", "api_key_env": "COHERE_API_KEY"},
            "azure": {"type": "azure", "api_key_env": "AZURE_OPENAI_API_KEY", "api_version": "2024-10-21"}
        },
        "models": {
            "claude-haiku-4-5": {"provider": "anthropic", "model": "claude-haiku-4-5-20251001"},
            "gpt-4o-mini": {"provider": "openai"},
            "azure-gpt-4o": {"provider": "azure", "model": "gpt-4o"},
            "gemini-2.5-flash": {"provider": "gemini"},
            "bedrock-nova-lite": {"provider": "bedrock", "model": "us.amazon.nova-lite-v1:0"},
            "command-a": {"provider": "cohere", "model": "command-a-03-2025"},
            "claude-then-gpt": {"targets": [
                {"provider": "anthropic", "model": "claude-haiku-4-5", "weight": 1},
                {"provider": "openai", "model": "gpt-4o-mini", "weight": 0}]}
        },
        "keys": {
            "sdk": {"sha256": sha256_hex(KEY)},
            "limited": {"sha256": sha256_hex(LIMITED), "limits": {"requests_per_minute": 1}}
        }
    })
}

pub fn start(fake: &FakeProvider) -> Envoy {
    Envoy::start(Options {
        plugin_config: Some(plugin()),
        ..Options::every_provider_family(fake.port)
    })
}

/// `POST path` with the gateway key in `x-api-key`, as Anthropic's SDKs send it.
pub fn post(gw: &Envoy, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut all = vec![
        ("content-type", "application/json"),
        ("x-api-key", KEY),
        ("anthropic-version", "2023-06-01"),
    ];
    all.extend_from_slice(headers);
    gw.request("POST", path, &all, body.to_string().as_bytes())
}
