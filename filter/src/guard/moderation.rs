//! The OpenAI moderation adapter: the texts of a request (or of a non-streamed answer) posted to
//! OpenAI's moderation endpoint with a configured OpenAI provider's key, through a cluster of
//! its own (never the provider's: its provider filter would trap the VM).
//!
//! Reference: https://platform.openai.com/docs/api-reference/moderations/create — `POST
//! /v1/moderations` with `{"model", "input": [texts]}`; the answer `{"id", "model", "results":
//! [{"flagged", "categories": {name: bool}, "category_scores": {name: number},
//! "category_applied_input_types"}]}`, one result per input, in order.
//!
//! A text is flagged by OpenAI's own `flagged`, or, when the guard names `categories` with
//! thresholds, by any of those categories' scores at or above its threshold (then only those).

use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

use crate::config_error::{err, ConfigError};
use crate::provider::Provider;

pub const DEFAULT_MODEL: &str = "omni-moderation-latest";
pub const DEFAULT_PATH: &str = "/v1/moderations";

/// What a moderation guard asks and how it reads the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Moderation {
    /// Index of the OpenAI provider whose key the call uses.
    pub provider: usize,
    pub model: String,
    /// Category → threshold; empty: OpenAI's `flagged` decides.
    pub categories: Vec<(String, f64)>,
}

/// The moderation adapter's provider (an OpenAI one, whose key the call uses), model and
/// category thresholds.
pub fn compile(
    provider: Option<&str>,
    model: Option<String>,
    categories: Option<&BTreeMap<String, f64>>,
    at: &str,
    providers: &[Provider],
) -> Result<Moderation, ConfigError> {
    let (index, _) = super::config::named_provider(
        provider,
        "openai",
        at,
        providers,
        (
            "the OpenAI provider whose key the moderation call uses",
            "the moderation endpoint is OpenAI's",
        ),
    )?;
    let configured = categories;
    let mut categories = Vec::new();
    for (category, threshold) in configured.into_iter().flatten() {
        if !(0.0..=1.0).contains(threshold) || category.is_empty() {
            return Err(err(
                format!("{at}.categories.{category}"),
                "a category name with a threshold between 0 and 1",
            ));
        }
        categories.push((category.clone(), *threshold));
    }
    if configured.is_some() && categories.is_empty() {
        return Err(err(
            format!("{at}.categories"),
            "name at least one category (or leave it out: OpenAI's `flagged` decides)",
        ));
    }
    let model = model.unwrap_or_else(|| DEFAULT_MODEL.into());
    if model.is_empty() {
        return Err(err(format!("{at}.model"), "must not be empty"));
    }
    Ok(Moderation {
        provider: index,
        model,
        categories,
    })
}

pub fn request_body(m: &Moderation, texts: &[String]) -> Vec<u8> {
    json!({"model": m.model, "input": texts})
        .to_string()
        .into_bytes()
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<ModerationResult>,
}

#[derive(Deserialize)]
struct ModerationResult {
    flagged: bool,
    #[serde(default)]
    categories: BTreeMap<String, bool>,
    #[serde(default)]
    category_scores: BTreeMap<String, f64>,
}

/// The categories that flag the answer to `texts` (empty: allowed), or why the answer cannot
/// be used.
pub fn flagged(m: &Moderation, body: &[u8], texts: &[String]) -> Result<Vec<String>, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable answer ({e})"))?;
    if answer.results.len() != texts.len() {
        return Err(format!(
            "{} results for {} inputs",
            answer.results.len(),
            texts.len()
        ));
    }
    let mut found: Vec<String> = Vec::new();
    for r in &answer.results {
        if m.categories.is_empty() {
            if r.flagged {
                let named = r.categories.iter().filter(|(_, on)| **on).map(|(c, _)| c);
                found.extend(named.cloned());
                if !r.categories.values().any(|on| *on) {
                    found.push("flagged".into());
                }
            }
            continue;
        }
        for (category, threshold) in &m.categories {
            if r.category_scores
                .get(category)
                .is_some_and(|s| s >= threshold)
            {
                found.push(category.clone());
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer in the published shape (the reference's example, scores shortened).
    fn answer(flagged: bool, harassment: f64, violence: f64) -> Vec<u8> {
        json!({"id": "modr-0001", "model": "omni-moderation-latest", "results": [{
            "flagged": flagged,
            "categories": {"harassment": flagged && harassment > 0.5, "harassment/threatening": false,
                           "violence": flagged && violence > 0.5, "sexual": false},
            "category_scores": {"harassment": harassment, "harassment/threatening": 0.0001,
                                "violence": violence, "sexual": 0.00002},
            "category_applied_input_types": {"harassment": ["text"], "violence": ["text"]}}]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn flagged_follows_openai_or_the_configured_thresholds() {
        let texts = vec!["t".to_string()];
        let mut m = Moderation {
            provider: 0,
            model: DEFAULT_MODEL.into(),
            categories: vec![],
        };
        assert_eq!(
            flagged(&m, &answer(false, 0.1, 0.2), &texts),
            Ok(Vec::<String>::new())
        );
        assert_eq!(
            flagged(&m, &answer(true, 0.9, 0.8), &texts),
            Ok(vec!["harassment".to_string(), "violence".to_string()])
        );
        // Configured: only violence at 0.3 counts, whatever OpenAI's own flag says.
        m.categories = vec![("violence".into(), 0.3)];
        assert_eq!(
            flagged(&m, &answer(true, 0.9, 0.2), &texts),
            Ok(Vec::<String>::new())
        );
        assert_eq!(
            flagged(&m, &answer(false, 0.1, 0.35), &texts),
            Ok(vec!["violence".to_string()])
        );
        // One result per input, or the answer is not usable.
        let two = vec!["a".to_string(), "b".to_string()];
        assert!(flagged(&m, &answer(false, 0.1, 0.1), &two).is_err());
        assert!(flagged(&m, b"{\"error\": {}}", &texts).is_err());
        let body: serde_json::Value = serde_json::from_slice(&request_body(&m, &two)).unwrap();
        assert_eq!(
            body,
            json!({"model": "omni-moderation-latest", "input": ["a", "b"]})
        );
    }
}
