//! The AWS Bedrock Guardrails adapter: the texts of a request (source `INPUT`) or of a
//! non-streamed answer (`OUTPUT`) posted to `ApplyGuardrail` with a configured Bedrock
//! provider's region and credentials (signed with SigV4 as the provider's requests are),
//! through a cluster of its own.
//!
//! Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ApplyGuardrail.html
//! — `POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply` on
//! `bedrock-runtime.{region}.amazonaws.com` with `{"source": "INPUT" | "OUTPUT", "content":
//! [{"text": {"text": "..."}}]}`; the answer `{"action": "GUARDRAIL_INTERVENED" | "NONE",
//! "actionReason", "outputs": [{"text": "..."}], "assessments": [...], "usage": {...}}`.
//! Identifier pattern `[a-z0-9]+` or a guardrail ARN; version `[1-9][0-9]{0,7}` or `DRAFT`.
//!
//! `GUARDRAIL_INTERVENED` flags the texts. A mask guard uses the outputs as the texts' new
//! values when the guardrail only anonymized (no assessment says `BLOCKED`) and there is one
//! output per text sent; anything else it cannot map is a block.

use serde::Deserialize;
use serde_json::{json, Value};

use super::replace::Replacement;
use crate::config_error::{err, ConfigError};
use crate::provider::{percent_encode, Provider};

/// What a Bedrock guardrail guard calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockGuardrail {
    /// Index of the Bedrock provider whose region and credentials sign the call.
    pub provider: usize,
    pub guardrail_id: String,
    pub guardrail_version: String,
}

impl BedrockGuardrail {
    /// The request path (the identifier percent-encoded: an ARN holds `:` and `/`).
    pub fn path(&self) -> String {
        format!(
            "/guardrail/{}/version/{}/apply",
            percent_encode(&self.guardrail_id),
            percent_encode(&self.guardrail_version)
        )
    }
}

/// The guard's provider (a Bedrock one), guardrail identifier and version.
pub fn compile(
    provider: Option<&str>,
    guardrail_id: Option<&str>,
    guardrail_version: Option<&str>,
    at: &str,
    providers: &[Provider],
) -> Result<BedrockGuardrail, ConfigError> {
    let (index, _) = super::config::named_provider(
        provider,
        "bedrock",
        at,
        providers,
        (
            "the Bedrock provider whose region and credentials sign the call",
            "ApplyGuardrail is Bedrock's",
        ),
    )?;
    let id = guardrail_id.unwrap_or_default();
    let is_arn = id.starts_with("arn:aws") && id.contains(":guardrail/");
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(plain || is_arn) || id.len() > 2048 {
        return Err(err(
            format!("{at}.guardrail_id"),
            "required: the guardrail's identifier (lower-case letters and digits) or ARN",
        ));
    }
    let version = guardrail_version.unwrap_or_default();
    let numbered = !version.is_empty()
        && version.len() <= 8
        && !version.starts_with('0')
        && version.bytes().all(|b| b.is_ascii_digit());
    if !(numbered || version == "DRAFT") {
        return Err(err(
            format!("{at}.guardrail_version"),
            "required: a version number (1, 2, ...) or DRAFT",
        ));
    }
    Ok(BedrockGuardrail {
        provider: index,
        guardrail_id: id.to_string(),
        guardrail_version: version.to_string(),
    })
}

/// The body: the texts as text content blocks, from the request (`INPUT`) or the answer.
pub fn request_body(phase: &str, texts: &[String]) -> Vec<u8> {
    let source = if phase == "response" {
        "OUTPUT"
    } else {
        "INPUT"
    };
    let content: Vec<Value> = texts.iter().map(|t| json!({"text": {"text": t}})).collect();
    json!({"source": source, "content": content})
        .to_string()
        .into_bytes()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    action: String,
    #[serde(default)]
    action_reason: Option<String>,
    #[serde(default)]
    outputs: Vec<Output>,
    #[serde(default)]
    assessments: Vec<Value>,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    text: String,
}

/// What the guardrail said of the `texts` sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    /// Blocked (or intervened in a way a mask cannot use), and why.
    Block(String),
    /// Anonymized: each text's new value.
    Masked(Vec<Replacement>, String),
}

pub fn outcome(body: &[u8], texts: &[String]) -> Result<Outcome, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable answer ({e})"))?;
    match answer.action.as_str() {
        "NONE" => return Ok(Outcome::Allow),
        "GUARDRAIL_INTERVENED" => {}
        other => return Err(format!("unknown action '{other}'")),
    }
    let reason = answer
        .action_reason
        .unwrap_or_else(|| "guardrail intervened".into());
    let blocked = answer.assessments.iter().any(says_blocked);
    if blocked || answer.outputs.len() != texts.len() {
        return Ok(Outcome::Block(reason));
    }
    let replacements = answer
        .outputs
        .into_iter()
        .zip(texts)
        .enumerate()
        .filter(|(_, (out, text))| out.text != **text)
        .map(|(i, (out, text))| Replacement {
            text: i,
            start: 0,
            end: text.len(),
            label: None,
            replacement: Some(out.text),
        })
        .collect();
    Ok(Outcome::Masked(replacements, reason))
}

/// Whether an assessment (any policy, any depth) holds an entry whose action is `BLOCKED`.
fn says_blocked(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == "action" && v == "BLOCKED") || says_blocked(v)),
        Value::Array(items) => items.iter().any(says_blocked),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_and_path_follow_the_reference() {
        let body: Value =
            serde_json::from_slice(&request_body("request", &["hi".to_string()])).unwrap();
        assert_eq!(
            body,
            json!({"source": "INPUT", "content": [{"text": {"text": "hi"}}]})
        );
        let out: Value = serde_json::from_slice(&request_body("response", &[])).unwrap();
        assert_eq!(out["source"], "OUTPUT");
        let g = BedrockGuardrail {
            provider: 0,
            guardrail_id: "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123".into(),
            guardrail_version: "DRAFT".into(),
        };
        assert_eq!(
            g.path(),
            "/guardrail/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fabc123/version/DRAFT/apply"
        );
    }

    #[test]
    fn interventions_block_or_anonymize() {
        let texts = vec!["Be brief.".to_string(), "Mail jane@example.com".to_string()];
        assert_eq!(
            outcome(
                br#"{"action":"NONE","outputs":[],"assessments":[{}]}"#,
                &texts
            ),
            Ok(Outcome::Allow)
        );
        // Anonymized (the reference's sensitiveInformationPolicy.piiEntities, action ANONYMIZED).
        let anonymized = json!({"action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail anonymized PII.",
            "outputs": [{"text": "Be brief."}, {"text": "Mail {EMAIL}"}],
            "assessments": [{"sensitiveInformationPolicy": {"piiEntities": [
                {"type": "EMAIL", "match": "jane@example.com", "action": "ANONYMIZED", "detected": true}]}}]});
        let Ok(Outcome::Masked(r, _)) = outcome(anonymized.to_string().as_bytes(), &texts) else {
            panic!("not anonymized");
        };
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].text, r[0].end, r[0].replacement.as_deref()),
            (1, texts[1].len(), Some("Mail {EMAIL}"))
        );
        // Blocked by a topic policy.
        let blocked = json!({"action": "GUARDRAIL_INTERVENED", "actionReason": "denied topic",
            "outputs": [{"text": "Sorry, I cannot answer."}],
            "assessments": [{"topicPolicy": {"topics": [{"name": "Finance", "type": "DENY", "action": "BLOCKED"}]}}]});
        assert_eq!(
            outcome(blocked.to_string().as_bytes(), &texts),
            Ok(Outcome::Block("denied topic".into()))
        );
        assert!(outcome(br#"{"action":"MAYBE"}"#, &texts).is_err());
        assert!(outcome(br#"{"message":"The security token is invalid."}"#, &texts).is_err());
    }
}
