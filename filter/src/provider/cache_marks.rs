//! Prompt-cache markers in OpenAI-format requests: `"cache_control": {"type": "ephemeral"}`
//! (optionally with `"ttl": "5m" | "1h"`) on a content part, on a whole message (the form
//! LiteLLM accepts for string content; it marks the message's last block), or on `tools[i]`.
//! OpenAI itself caches prefixes without markers; Anthropic and Bedrock need them.
//!
//! References:
//! - Anthropic prompt caching (`cache_control` on tools, system blocks and message content
//!   blocks; `ttl` "5m" or "1h"; at most 4 breakpoints per request):
//!   https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
//! - Bedrock prompt caching (`cachePoint {"type": "default"}` blocks after the cached content in
//!   `system`, `messages[].content` and `toolConfig.tools`):
//!   https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html and
//!   https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CachePointBlock.html

use serde_json::{json, Map, Value};

use crate::error::{invalid, GatewayError};

/// Anthropic's limit on `cache_control` breakpoints in one request.
pub const MAX_ANTHROPIC_BREAKPOINTS: usize = 4;

/// The client's marker on `item` (a part, message or tool) in Anthropic's form, checked; `None`
/// when there is none. `at` names `item` in the client's request.
pub fn marker(item: &Value, at: &str) -> Result<Option<Value>, GatewayError> {
    let Some(mark) = item.get("cache_control").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let param = format!("{at}.cache_control");
    if mark.get("type").and_then(Value::as_str) != Some("ephemeral") {
        return Err(invalid(
            param,
            "Invalid 'cache_control': use {\"type\": \"ephemeral\"} (optionally with \"ttl\": \"5m\" or \"1h\").",
        ));
    }
    let mut out = Map::new();
    out.insert("type".into(), "ephemeral".into());
    match mark.get("ttl") {
        None | Some(Value::Null) => {}
        Some(Value::String(ttl)) if ttl == "5m" || ttl == "1h" => {
            out.insert("ttl".into(), ttl.as_str().into());
        }
        Some(_) => {
            return Err(invalid(
                format!("{param}.ttl"),
                "Invalid 'cache_control.ttl': use \"5m\" or \"1h\".",
            ))
        }
    }
    Ok(Some(Value::Object(out)))
}

/// Whether `item` carries a valid marker (Bedrock has no TTL choice, so only presence counts).
pub fn is_marked(item: &Value, at: &str) -> Result<bool, GatewayError> {
    marker(item, at).map(|m| m.is_some())
}

/// Sets Anthropic's `cache_control` on a translated block (an object; anything else is left).
pub fn set_on(block: &mut Value, mark: Value) {
    if let Some(obj) = block.as_object_mut() {
        obj.insert("cache_control".into(), mark);
    }
}

/// Bedrock's cache checkpoint block.
pub fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

/// Refuses more breakpoints than Anthropic allows, before Anthropic does.
pub fn check_anthropic_count(count: usize) -> Result<(), GatewayError> {
    if count > MAX_ANTHROPIC_BREAKPOINTS {
        return Err(invalid(
            "cache_control",
            format!("Anthropic allows at most {MAX_ANTHROPIC_BREAKPOINTS} 'cache_control' breakpoints in one request; this one has {count}."),
        ));
    }
    Ok(())
}
