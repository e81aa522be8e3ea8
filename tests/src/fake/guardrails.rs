//! Fake guardrail services of the hosted providers, in their published shapes (references in
//! filter/testdata/guardrails/README.md):
//!
//! - OpenAI moderation, `POST /v1/moderations` `{"model", "input": string | [strings]}` →
//!   `{"id", "model", "results": [{"flagged", "categories", "category_scores",
//!   "category_applied_input_types"}]}`, one result per input, after checking the bearer key
//!   like OpenAI (401 in OpenAI's error shape without one). Scores are deterministic: a text
//!   holding "hurt" scores violence 0.91 and harassment/threatening 0.62 (flagged); one holding
//!   "rude" scores harassment 0.35 (not flagged by OpenAI's own thresholds); others 0.0001.
//! - AWS Bedrock Guardrails `ApplyGuardrail`, `POST /guardrail/{id}/version/{version}/apply`
//!   `{"source": "INPUT" | "OUTPUT", "content": [{"text": {"text"}}]}` → `{"action":
//!   "GUARDRAIL_INTERVENED" | "NONE", "actionReason", "outputs": [{"text"}], "assessments",
//!   "usage", "guardrailCoverage"}`, after verifying the SigV4 signature as the fake Bedrock
//!   runtime does (service `bedrock`, host `bedrock-runtime.{region}.amazonaws.com`). Guardrail
//!   `gwtest1` (versions `1` and `DRAFT`) denies the topic "stock tips" (BLOCKED) and
//!   anonymizes e-mail addresses to `{EMAIL}` (ANONYMIZED, one output per content block);
//!   another identifier is answered 404 `ResourceNotFoundException`.

use serde_json::{json, Map, Value};

use crate::fake::bedrock::verify_signature;
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

fn aws_error(status: u16, kind: &str, message: &str) -> Reply {
    let mut r = Reply::json(status, &json!({ "message": message }));
    r.headers.push(("x-amzn-errortype".into(), kind.into()));
    r
}

pub fn apply_guardrail(req: &Received) -> Reply {
    if let Err(refusal) = verify_signature(req) {
        return refusal;
    }
    let path = req.path.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["guardrail", id, "version", version, "apply"] = parts.as_slice() else {
        return aws_error(404, "UnknownOperationException", "no such operation");
    };
    if *id != "gwtest1" || !matches!(*version, "1" | "DRAFT") {
        return aws_error(
            404,
            "ResourceNotFoundException",
            "The guardrail identifier or version provided does not exist.",
        );
    }
    let body = req.json();
    let source_ok = matches!(body["source"].as_str(), Some("INPUT" | "OUTPUT"));
    let texts: Option<Vec<String>> = body["content"].as_array().map(|blocks| {
        blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
            .collect()
    });
    let Some(texts) = texts.filter(|t| source_ok && !t.is_empty()) else {
        return aws_error(400, "ValidationException", "Malformed input request.");
    };
    let units = json!({"topicPolicyUnits": texts.len(), "contentPolicyUnits": texts.len(),
        "wordPolicyUnits": 0, "sensitiveInformationPolicyUnits": texts.len(),
        "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0});
    let characters: usize = texts.iter().map(|t| t.chars().count()).sum();
    let coverage = json!({"textCharacters": {"guarded": characters, "total": characters}});
    if texts.iter().any(|t| t.contains("stock tips")) {
        return Reply::json(
            200,
            &json!({
            "action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail blocked.",
            "outputs": [{"text": "Sorry, I cannot discuss that topic."}],
            "assessments": [{"topicPolicy": {"topics": [
                {"name": "Investment advice", "type": "DENY", "action": "BLOCKED", "detected": true}]}}],
            "usage": units, "guardrailCoverage": coverage}),
        );
    }
    let mut found = Vec::new();
    let outputs: Vec<Value> = texts
        .iter()
        .map(|t| {
            let words: Vec<String> = t
                .split(' ')
                .map(|w| {
                    let core = w.trim_end_matches(['.', ',', '!', '?', ';', ':']);
                    if core.contains('@') && core.contains('.') {
                        found.push(core.to_string());
                        w.replacen(core, "{EMAIL}", 1)
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            json!({"text": words.join(" ")})
        })
        .collect();
    if found.is_empty() {
        return Reply::json(
            200,
            &json!({"action": "NONE", "outputs": [],
            "assessments": [{}], "usage": units, "guardrailCoverage": coverage}),
        );
    }
    let entities: Vec<Value> = found
        .iter()
        .map(|m| json!({"type": "EMAIL", "match": m, "action": "ANONYMIZED", "detected": true}))
        .collect();
    Reply::json(
        200,
        &json!({
        "action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail anonymized sensitive information.",
        "outputs": outputs,
        "assessments": [{"sensitiveInformationPolicy": {"piiEntities": entities}}],
        "usage": units, "guardrailCoverage": coverage}),
    )
}
