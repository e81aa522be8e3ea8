//! The generic webhook guard: the gateway posts a request's texts to a configured Envoy
//! cluster and acts on the verdict. The JSON contract (README "Guardrails and data privacy"):
//!
//! request  `{"guard": "<name>", "phase": "request", "model": "<model>", "key_id": "<id>"|null,
//!            "texts": ["<text>", ...]}`
//! answer   `200 {"action": "allow"}`, `200 {"action": "block", "reason": "<why>"}`, or
//!          `200 {"action": "mask", "replacements": [{"text": <index>, "start": <byte>,
//!                "end": <byte>, "label": "<LABEL>"? | "replacement": "<text>"?}, ...]}`
//!          (spans checked by `replace::validate`)
//!
//! Anything else (another status, a body that does not parse, another action, no answer within
//! `timeout_ms`) is a failure, handled by the guard's failure mode: `closed` (the default) blocks,
//! `open` lets the request through; both are counted.
//!
//! The Presidio adapter speaks Microsoft Presidio's analyzer REST API instead
//! (microsoft.github.io/presidio/api-docs: `POST /analyze` with `text`, `language`, optional
//! `entities` and `score_threshold`; the answer is an array of recognizer results
//! `{entity_type, start, end, score}`): the texts go as one (joined by `replace::JOIN`), and
//! any result at or above the threshold flags the request; its span (code points) becomes a
//! replacement labelled with the entity type.

use serde::Deserialize;
use serde_json::json;

use super::bedrock::{self, BedrockGuardrail};
use super::moderation::{self, Moderation};
use super::replace::{self, CodePointSpan, RawReplacement, Replacement};

/// Where and how a webhook guard calls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub cluster: String,
    pub path: String,
    pub timeout_ms: u64,
    /// `failure_mode: open`: a webhook that cannot answer lets the request through.
    pub fail_open: bool,
    pub protocol: Protocol,
}

/// Which contract the service speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    /// The gateway's own (above).
    Generic,
    /// Presidio's analyzer: the entity types to look for (all when empty), the language, and
    /// the lowest score that counts.
    Presidio {
        entities: Vec<String>,
        language: String,
        score_threshold: f64,
    },
    /// OpenAI's moderation endpoint (`moderation.rs`), with a provider's key.
    OpenAiModeration(Moderation),
    /// AWS Bedrock Guardrails' `ApplyGuardrail` (`bedrock.rs`), signed with a provider's keys.
    BedrockGuardrail(BedrockGuardrail),
}

impl Eq for Protocol {}

/// What the webhook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block(String),
    /// Spans to mask (checked against the texts sent), and what was found (for the log).
    Mask(Vec<Replacement>, String),
    /// It could not answer (or answered outside the contract): why.
    Failed(String),
}

/// The body posted to the service.
pub fn request_body(
    webhook: &Webhook,
    guard: &str,
    phase: &str,
    model: &str,
    key_id: Option<&str>,
    texts: &[String],
) -> Vec<u8> {
    let body = match &webhook.protocol {
        Protocol::Generic => {
            json!({"guard": guard, "phase": phase, "model": model, "key_id": key_id, "texts": texts})
        }
        Protocol::Presidio {
            entities,
            language,
            score_threshold,
        } => {
            let mut body = json!({"text": texts.join(replace::JOIN), "language": language,
                "score_threshold": score_threshold});
            if let (false, Some(obj)) = (entities.is_empty(), body.as_object_mut()) {
                obj.insert("entities".into(), json!(entities));
            }
            body
        }
        Protocol::OpenAiModeration(m) => return moderation::request_body(m, texts),
        Protocol::BedrockGuardrail(_) => return bedrock::request_body(phase, texts),
    };
    body.to_string().into_bytes()
}

#[derive(Deserialize)]
struct PresidioResult {
    entity_type: String,
    start: usize,
    end: usize,
    score: f64,
}

#[derive(Deserialize)]
struct Answer {
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    replacements: Option<Vec<RawReplacement>>,
}

/// The verdict of an answer to a call that sent `texts` (`status` empty when Envoy could not
/// reach the cluster; Envoy answers a callout that ran out of time with its own 504).
pub fn verdict(webhook: &Webhook, status: &str, body: &[u8], texts: &[String]) -> Verdict {
    match status {
        "200" => {}
        "504" => return Verdict::Failed("timed out".into()),
        "" | "503" => return Verdict::Failed("unreachable".into()),
        other => return Verdict::Failed(format!("answered {other}")),
    }
    if let Protocol::BedrockGuardrail(_) = &webhook.protocol {
        return match bedrock::outcome(body, texts) {
            Ok(bedrock::Outcome::Allow) => Verdict::Allow,
            Ok(bedrock::Outcome::Block(reason)) => Verdict::Block(reason),
            Ok(bedrock::Outcome::Masked(replacements, reason)) => {
                Verdict::Mask(replacements, reason)
            }
            Err(e) => Verdict::Failed(e),
        };
    }
    if let Protocol::OpenAiModeration(m) = &webhook.protocol {
        return match moderation::flagged(m, body, texts) {
            Ok(found) if found.is_empty() => Verdict::Allow,
            Ok(found) => Verdict::Block(format!("flagged {}", found.join(", "))),
            Err(e) => Verdict::Failed(e),
        };
    }
    if let Protocol::Presidio {
        score_threshold, ..
    } = &webhook.protocol
    {
        return match serde_json::from_slice::<Vec<PresidioResult>>(body) {
            Ok(results) => {
                let flagged: Vec<&PresidioResult> = results
                    .iter()
                    .filter(|r| r.score >= *score_threshold)
                    .collect();
                let mut found: Vec<&str> = flagged.iter().map(|r| r.entity_type.as_str()).collect();
                found.sort_unstable();
                found.dedup();
                if found.is_empty() {
                    return Verdict::Allow;
                }
                let spans: Vec<CodePointSpan> = flagged
                    .iter()
                    .map(|r| CodePointSpan {
                        start: r.start,
                        end: r.end,
                        entity: &r.entity_type,
                    })
                    .collect();
                match replace::from_code_points(&spans, texts) {
                    Ok(replacements) => {
                        Verdict::Mask(replacements, format!("found {}", found.join(", ")))
                    }
                    Err(e) => Verdict::Failed(format!("unusable answer ({e})")),
                }
            }
            Err(e) => Verdict::Failed(format!("unreadable answer ({e})")),
        };
    }
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) if a.action == "allow" => Verdict::Allow,
        Ok(a) if a.action == "block" => Verdict::Block(a.reason.unwrap_or_default()),
        Ok(a) if a.action == "mask" => {
            match replace::validate(a.replacements.unwrap_or_default(), texts) {
                Ok(r) if r.is_empty() => Verdict::Allow,
                Ok(r) => {
                    let reason = a.reason.unwrap_or_else(|| format!("{} spans", r.len()));
                    Verdict::Mask(r, reason)
                }
                Err(e) => Verdict::Failed(format!("unusable replacements ({e})")),
            }
        }
        Ok(a) => Verdict::Failed(format!("unknown action '{}'", a.action)),
        Err(e) => Verdict::Failed(format!("unreadable answer ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic() -> Webhook {
        Webhook {
            cluster: "c".into(),
            path: "/guard".into(),
            timeout_ms: 100,
            fail_open: false,
            protocol: Protocol::Generic,
        }
    }

    fn presidio() -> Webhook {
        Webhook {
            protocol: Protocol::Presidio {
                entities: vec!["EMAIL_ADDRESS".into(), "PERSON".into()],
                language: "en".into(),
                score_threshold: 0.5,
            },
            ..generic()
        }
    }

    #[test]
    fn presidio_requests_and_results() {
        // Presidio's API reference: AnalyzeRequest and a list of RecognizerResult.
        let body: serde_json::Value = serde_json::from_slice(&request_body(
            &presidio(),
            "pii",
            "request",
            "gpt",
            None,
            &["a".into(), "b".into()],
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({"text": "a\n\nb", "language": "en", "score_threshold": 0.5, "entities": ["EMAIL_ADDRESS", "PERSON"]})
        );
        let p = presidio();
        let texts = vec![
            "Hi".to_string(),
            "John Smith, mail john@example.org".to_string(),
        ];
        let verdict = |status: &str, body: &[u8]| verdict(&p, status, body, &texts);
        assert_eq!(verdict("200", b"[]"), Verdict::Allow);
        // Offsets into "Hi\n\nJohn Smith, mail john@example.org" (code points).
        let results = br#"[{"entity_type":"PERSON","start":4,"end":14,"score":0.85,"analysis_explanation":null},
            {"entity_type":"EMAIL_ADDRESS","start":21,"end":37,"score":1.0},
            {"entity_type":"URL","start":26,"end":37,"score":0.3}]"#;
        let Verdict::Mask(replacements, reason) = verdict("200", results) else {
            panic!("not flagged");
        };
        assert_eq!(reason, "found EMAIL_ADDRESS, PERSON");
        let cut: Vec<(&str, &str)> = replacements
            .iter()
            .map(|r| {
                (
                    &texts[r.text][r.start..r.end],
                    r.label.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            cut,
            [
                ("John Smith", "PERSON"),
                ("john@example.org", "EMAIL_ADDRESS")
            ]
        );
        for bad in [
            &br#"{"error":"x"}"#[..],
            br#"[{"entity_type":"PERSON","start":30,"end":99,"score":0.9}]"#,
        ] {
            assert!(matches!(verdict("200", bad), Verdict::Failed(_)));
        }
        assert!(matches!(verdict("504", b""), Verdict::Failed(_)));
    }

    #[test]
    fn mask_verdicts_carry_checked_replacements() {
        let g = generic();
        let texts = vec!["call Anna".to_string()];
        let verdict = |b: &[u8]| verdict(&g, "200", b, &texts);
        let Verdict::Mask(r, _) = verdict(
            br#"{"action":"mask","replacements":[{"text":0,"start":5,"end":9,"label":"NAME"}]}"#,
        ) else {
            panic!("no mask");
        };
        assert_eq!(
            (r[0].start, r[0].end, r[0].label.as_deref()),
            (5, 9, Some("NAME"))
        );
        assert_eq!(
            verdict(br#"{"action":"mask","replacements":[]}"#),
            Verdict::Allow
        );
        for bad in [
            &br#"{"action":"mask","replacements":[{"text":0,"start":5,"end":10}]}"#[..],
            br#"{"action":"mask","replacements":[{"text":1,"start":0,"end":1}]}"#,
            br#"{"action":"mask","replacements":[{"text":0,"start":0,"end":1,"colour":"red"}]}"#,
        ] {
            assert!(matches!(verdict(bad), Verdict::Failed(_)), "{bad:?}");
        }
    }

    #[test]
    fn verdicts_follow_the_contract() {
        let g = generic();
        let verdict = |s: &str, b: &[u8]| verdict(&g, s, b, &[]);
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
        let body: serde_json::Value = serde_json::from_slice(&request_body(
            &generic(),
            "tox",
            "request",
            "gpt",
            None,
            &["a".into(), "b".into()],
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({"guard": "tox", "phase": "request", "model": "gpt", "key_id": null, "texts": ["a", "b"]})
        );
    }
}
