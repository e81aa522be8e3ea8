//! The generic webhook guard: the gateway posts a request's texts to a configured Envoy
//! cluster and acts on the verdict. The JSON contract (README "Guardrails and data privacy"):
//!
//! request  `{"guard": "<name>", "phase": "request", "model": "<model>", "key_id": "<id>"|null,
//!            "texts": ["<text>", ...]}`
//! answer   `200 {"action": "allow"}` or `200 {"action": "block", "reason": "<why>"}`
//!
//! Anything else (another status, a body that does not parse, another action, no answer within
//! `timeout_ms`) is a failure, handled by the guard's failure mode: `closed` (the default) blocks,
//! `open` lets the request through; both are counted.

use serde::Deserialize;
use serde_json::json;

/// Where and how a webhook guard calls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub cluster: String,
    pub path: String,
    pub timeout_ms: u64,
    /// `failure_mode: open`: a webhook that cannot answer lets the request through.
    pub fail_open: bool,
}

/// What the webhook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block(String),
    /// It could not answer (or answered outside the contract): why.
    Failed(String),
}

/// The body posted to the webhook.
pub fn request_body(guard: &str, model: &str, key_id: Option<&str>, texts: &[String]) -> Vec<u8> {
    json!({"guard": guard, "phase": "request", "model": model, "key_id": key_id, "texts": texts})
        .to_string()
        .into_bytes()
}

#[derive(Deserialize)]
struct Answer {
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The verdict of an answer (`status` empty when Envoy could not reach the cluster; Envoy
/// answers a callout that ran out of time with its own 504).
pub fn verdict(status: &str, body: &[u8]) -> Verdict {
    match status {
        "200" => {}
        "504" => return Verdict::Failed("timed out".into()),
        "" | "503" => return Verdict::Failed("unreachable".into()),
        other => return Verdict::Failed(format!("answered {other}")),
    }
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) if a.action == "allow" => Verdict::Allow,
        Ok(a) if a.action == "block" => Verdict::Block(a.reason.unwrap_or_default()),
        Ok(a) => Verdict::Failed(format!("unknown action '{}'", a.action)),
        Err(e) => Verdict::Failed(format!("unreadable answer ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_contract() {
        assert_eq!(verdict("200", br#"{"action":"allow"}"#), Verdict::Allow);
        assert_eq!(
            verdict("200", br#"{"action":"block","reason":"toxic"}"#),
            Verdict::Block("toxic".into())
        );
        for (status, body) in [
            ("504", &b""[..]),
            ("", b""),
            ("503", b""),
            ("500", br#"{"action":"allow"}"#),
            ("200", b"not json"),
            ("200", br#"{"action":"maybe"}"#),
            ("200", br#"{"verdict":"allow"}"#),
        ] {
            assert!(
                matches!(verdict(status, body), Verdict::Failed(_)),
                "{status} {body:?}"
            );
        }
    }

    #[test]
    fn the_request_names_guard_phase_and_texts() {
        let body: serde_json::Value =
            serde_json::from_slice(&request_body("tox", "gpt", None, &["a".into(), "b".into()]))
                .unwrap();
        assert_eq!(
            body,
            json!({"guard": "tox", "phase": "request", "model": "gpt", "key_id": null, "texts": ["a", "b"]})
        );
    }
}
