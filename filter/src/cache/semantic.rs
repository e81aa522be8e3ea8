//! The semantic layer, host-free: its configuration (`semantic/config.rs`), what a request
//! compares (the text of its last user message) and what must match exactly (the
//! context hash: the exact key's canonical form without that message), the embeddings call's
//! request and answer, and cosine similarity. The index of vectors in shared data is
//! `semantic_index.rs`; the stage that uses both is `pipeline/cache/semantic.rs`.
//!
//! ```json
//! "cache": {"local": {"semantic": {"slots": 512, "bucket_entries": 4, "max_dimensions": 3072}},
//!           "models": {"chat": {"semantic": {"embeddings_model": "embed", "key_env": "GW_SEMANTIC_KEY",
//!                      "threshold": 0.95, "max_turns": 1, "timeout_ms": 1000,
//!                      "cluster": "gateway_loopback"}}}}
//! ```

mod config;

use serde_json::Value;

use super::key::exact_key;
pub use config::{
    check_key_models, compile, compile_bounds, Context, IndexBounds, KeyInfo, Semantic,
    DEFAULT_CLUSTER,
};

/// Longer texts are not embedded: a long prompt rarely repeats in other words, and an
/// embeddings model takes a few thousand tokens at most.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The path of the embeddings call on the gateway's own listener.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";

/// Why a request is not looked up semantically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The last message is not the user's (a tool result in an agent loop, an assistant prefill).
    NotUser,
    /// The last user message has no text.
    Empty,
    TooLong,
    /// More user messages than `max_turns`.
    TooManyTurns,
    Malformed,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Self::NotUser => "not_user",
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::TooManyTurns => "too_many_turns",
            Self::Malformed => "malformed",
        }
    }
}

/// What a request compares, and what must match exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The text parts of the last user message, joined with a newline.
    pub text: String,
    /// The exact key of the request without its last message (namespace and endpoint in it).
    pub context: [u8; 32],
}

/// The query of a chat body (already validated) in `namespace`, for `endpoint` (the exact
/// key's endpoint text).
pub fn query(body: &[u8], namespace: &str, endpoint: &str, max_turns: u32) -> Result<Query, Skip> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(Skip::Malformed);
    };
    let Some(Value::Array(messages)) = fields.get_mut("messages") else {
        return Err(Skip::Malformed);
    };
    let last = messages.pop().ok_or(Skip::Malformed)?;
    if last.get("role").and_then(Value::as_str) != Some("user") {
        return Err(Skip::NotUser);
    }
    let turns = 1 + messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .count();
    if turns > max_turns as usize {
        return Err(Skip::TooManyTurns);
    }
    let text = match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    if text.trim().is_empty() {
        return Err(Skip::Empty);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(Skip::TooLong);
    }
    let rest = Value::Object(fields).to_string();
    let context = exact_key(
        namespace,
        &format!("{endpoint}|semantic-context"),
        rest.as_bytes(),
    )
    .ok_or(Skip::Malformed)?;
    Ok(Query { text, context })
}

/// The body of the embeddings call.
pub fn embeddings_request(model: &str, text: &str) -> Vec<u8> {
    serde_json::json!({"model": model, "input": text})
        .to_string()
        .into_bytes()
}

/// Why an embeddings answer is of no use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// Not an OpenAI embeddings list with one vector of numbers.
    Malformed,
    /// More dimensions than the index takes.
    TooManyDimensions,
    /// All zeros, or not finite: no direction to compare.
    Degenerate,
}

impl BadAnswer {
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_answer",
            Self::TooManyDimensions => "too_many_dimensions",
            Self::Degenerate => "degenerate_vector",
        }
    }
}

/// The vector of an OpenAI embeddings answer, scaled to length 1 (so a cosine is a dot
/// product).
pub fn parse_embedding(answer: &[u8], max_dimensions: u16) -> Result<Vec<f32>, BadAnswer> {
    let value: Value = serde_json::from_slice(answer).map_err(|_| BadAnswer::Malformed)?;
    let numbers = value
        .get("data")
        .and_then(|d| d.get(0))
        .and_then(|d| d.get("embedding"))
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(BadAnswer::Malformed)?;
    if numbers.len() > usize::from(max_dimensions) {
        return Err(BadAnswer::TooManyDimensions);
    }
    let mut vector = Vec::with_capacity(numbers.len());
    for n in numbers {
        let x = n.as_f64().ok_or(BadAnswer::Malformed)? as f32;
        if !x.is_finite() {
            return Err(BadAnswer::Degenerate);
        }
        vector.push(x);
    }
    normalize(&mut vector)?;
    Ok(vector)
}

fn normalize(v: &mut [f32]) -> Result<(), BadAnswer> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return Err(BadAnswer::Degenerate);
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(())
}

/// Cosine similarity; `None` when the lengths differ (another embeddings model) or a vector
/// has no direction.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let denominator = (na * nb).sqrt();
    (denominator > 0.0 && denominator.is_finite()).then(|| (dot / denominator) as f32)
}

#[cfg(test)]
#[path = "semantic_tests.rs"]
mod tests;
