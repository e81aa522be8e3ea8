//! Fake guardrail services of the hosted providers, in their published shapes (references in
//! filter/testdata/guardrails/README.md):
//!
//! - OpenAI moderation, `POST /v1/moderations` `{"model", "input": string | [strings]}` →
//!   `{"id", "model", "results": [{"flagged", "categories", "category_scores",
//!   "category_applied_input_types"}]}`, one result per input, after checking the bearer key
//!   like OpenAI (401 in OpenAI's error shape without one). Scores are deterministic: a text
//!   holding "hurt" scores violence 0.91 and harassment/threatening 0.62 (flagged); one holding
//!   "rude" scores harassment 0.35 (not flagged by OpenAI's own thresholds); others 0.0001.

use serde_json::{json, Map, Value};

use crate::fake_provider::{Received, Reply};

/// The moderation model's categories (omni-moderation-latest).
const CATEGORIES: &[&str] = &[
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

pub fn moderations(req: &Received) -> Reply {
    let bearer = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|k| !k.is_empty());
    if !bearer {
        return Reply::json(
            401,
            &json!({"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error", "param": null, "code": null}}),
        );
    }
    let request = req.json();
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            return Reply::json(
                400,
                &json!({"error": {"message": "'input' is a required property", "type": "invalid_request_error", "param": "input", "code": null}}),
            )
        }
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("omni-moderation-latest");
    let results: Vec<Value> = inputs.iter().map(|t| moderation_result(t)).collect();
    Reply::json(
        200,
        &json!({"id": "modr-fake-0001", "model": model, "results": results}),
    )
}

fn moderation_result(text: &str) -> Value {
    let mut scores = Map::new();
    for c in CATEGORIES {
        scores.insert((*c).into(), json!(0.0001));
    }
    if text.contains("hurt") {
        scores.insert("violence".into(), json!(0.91));
        scores.insert("harassment/threatening".into(), json!(0.62));
    }
    if text.contains("rude") {
        scores.insert("harassment".into(), json!(0.35));
    }
    let flagged_at = 0.5;
    let categories: Map<String, Value> = scores
        .iter()
        .map(|(c, s)| (c.clone(), json!(s.as_f64().unwrap_or(0.0) >= flagged_at)))
        .collect();
    let applied: Map<String, Value> = CATEGORIES
        .iter()
        .map(|c| ((*c).to_string(), json!(["text"])))
        .collect();
    json!({
        "flagged": categories.values().any(|v| v == true),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    })
}
