//! Anthropic's native structured outputs for `response_format: json_schema` with `strict: true`
//! (and so for the Responses API's `text.format` json_schema, which becomes it): the schema goes
//! as `output_config.format = {"type": "json_schema", "schema": ...}` and Claude's text answer is
//! the JSON, instead of the schema tool the other models are made to call.
//!
//! Reference: Anthropic, "Structured outputs",
//! https://platform.claude.com/docs/en/build-with-claude/structured-outputs: JSON outputs are
//! `output_config.format` (the beta `output_format` field and its `structured-outputs-2025-11-13`
//! header moved there; no beta header needed), generally available on the Claude API for Claude
//! Opus 4.6, Claude Sonnet 4.6, Claude Sonnet 4.5, Claude Opus 4.5 and Claude Haiku 4.5. Only
//! `strict` schemas go this way: OpenAI's strict mode already asks for what constrained decoding
//! needs (every object closed with `additionalProperties: false`, every property required); a
//! schema without `strict` may be open, and keeps the schema tool. `json_object` keeps its
//! system instruction: the stored reference gives no open object schema as accepted.

use serde_json::{json, Value};

/// The model id prefixes the reference names (Anthropic's ids: `claude-haiku-4-5-20251001`,
/// `claude-sonnet-4-5`, `claude-opus-4-6`, ...).
const SUPPORTED: &[&str] = &[
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-haiku-4-5",
];

/// Whether `model` (the provider's id) takes `output_config.format`.
pub fn supports(model: &str) -> bool {
    SUPPORTED.iter().any(|prefix| {
        model
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-') || rest.starts_with('@'))
    })
}

/// `output_config` for a chat `response_format.json_schema` spec, when it is strict and the
/// model takes it; `None` keeps the schema tool.
pub fn output_config(model: &str, spec: &Value) -> Option<Value> {
    if spec.get("strict") != Some(&Value::Bool(true)) || !supports(model) {
        return None;
    }
    let schema = spec.get("schema").filter(|s| s.is_object())?;
    Some(json!({"format": {"type": "json_schema", "schema": schema}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_models_the_reference_names_take_it() {
        for model in [
            "claude-haiku-4-5-20251001",
            "claude-haiku-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-6",
            "claude-opus-4-5-20251101",
            "claude-opus-4-6",
        ] {
            assert!(supports(model), "{model}");
        }
        for model in [
            "claude-3-5-haiku-20241022",
            "claude-sonnet-4-20250514",
            "claude-opus-4-1-20250805",
            "claude-opus-4-50",
            "gpt-4o",
        ] {
            assert!(!supports(model), "{model}");
        }
    }

    #[test]
    fn a_strict_schema_becomes_output_config_and_others_do_not() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}},
            "required": ["a"], "additionalProperties": false});
        let strict = json!({"name": "answer", "strict": true, "schema": schema});
        assert_eq!(
            output_config("claude-haiku-4-5-20251001", &strict),
            Some(json!({"format": {"type": "json_schema", "schema": schema}}))
        );
        assert_eq!(output_config("claude-3-5-haiku-20241022", &strict), None);
        let loose = json!({"name": "answer", "schema": schema});
        assert_eq!(output_config("claude-haiku-4-5", &loose), None);
        let no_schema = json!({"name": "answer", "strict": true});
        assert_eq!(output_config("claude-haiku-4-5", &no_schema), None);
    }
}
