//! Token usage in the OpenAI shape, normalized so cost maths sees one form whatever the
//! provider: `prompt` counts every input token, `cached_prompt` (read from cache) and
//! `cache_write` (written to cache, Anthropic) included, as OpenAI counts them; `completion`
//! includes `reasoning`. Translators of providers that report these apart (Anthropic's
//! `input_tokens` excludes cache reads and writes) add them up when they build OpenAI usage.

use std::fmt;

use crate::json::{Json, JsonValue};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Reads a provider's token count in a typed answer (`#[serde(default, deserialize_with =
/// "crate::usage::token_count")]`): a whole number, or a non-negative number with a fraction,
/// rounded (Cohere types its counts as doubles). Any other value (a string, a negative number,
/// an object) counts as missing: an odd counter never makes the whole answer unreadable.
pub fn token_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct CountVisitor;

    impl<'de> Visitor<'de> for CountVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a token count")
        }

        fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }

        fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(n).ok())
        }

        fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
            // 2^64 and beyond, NaN and negatives are no count (`as` would saturate or wrap).
            Ok((0.0..18_446_744_073_709_551_616.0)
                .contains(&n)
                .then(|| n.round() as u64))
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    deserializer.deserialize_any(CountVisitor)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
    pub cached_prompt: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Usage {
    /// Reads an OpenAI `usage` object (a JSON tree, or read in place); `None` when it is
    /// absent, null or not an object.
    pub fn from_openai<V: JsonValue>(usage: &V) -> Option<Self> {
        if !usage.is_object() {
            return None;
        }
        let count = |v: Option<&V>| v.and_then(V::as_count);
        let prompt = count(usage.member("prompt_tokens")).unwrap_or(0);
        let completion = count(usage.member("completion_tokens")).unwrap_or(0);
        let prompt_details = usage.member("prompt_tokens_details");
        let detail = |details: Option<&V>, key| count(details.and_then(|d| d.member(key)));
        Some(Self {
            prompt,
            completion,
            total: count(usage.member("total_tokens")).unwrap_or(prompt.saturating_add(completion)),
            cached_prompt: detail(prompt_details, "cached_tokens").unwrap_or(0),
            cache_write: detail(prompt_details, "cache_creation_tokens").unwrap_or(0),
            reasoning: detail(
                usage.member("completion_tokens_details"),
                "reasoning_tokens",
            )
            .unwrap_or(0),
        })
    }

    /// Usage from a whole (non-streamed) OpenAI chat completion body. Only `usage` is
    /// read, in place; the rest of the answer is skipped without being built.
    pub fn from_openai_body(body: &[u8]) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct OnlyUsage<'a> {
            #[serde(borrow)]
            usage: Option<Json<'a>>,
        }
        let v: OnlyUsage = serde_json::from_slice(body).ok()?;
        v.usage.as_ref().and_then(Self::from_openai)
    }
}

/// Where the usage a request is charged and logged with comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSource {
    /// The provider's answer said.
    Reported,
    /// The provider does not report it for this operation (embeddings of some providers): the
    /// gateway's estimate of the input.
    Estimated,
    /// The answer should have said but could not be read (compressed, cut, malformed): the
    /// reserved estimate stays charged, so an answered request is never free.
    Missing,
}

impl UsageSource {
    pub fn name(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::Estimated => "estimated",
            Self::Missing => "missing",
        }
    }
}

/// The usage a finished request is charged with: what the provider reported; for an answered
/// request that reported none (or, for embeddings, reported zero tokens), the estimate made at
/// admission. A request that failed is charged nothing.
pub fn charged_usage(
    reported: Option<Usage>,
    answered: bool,
    embeddings: bool,
    estimate: Usage,
) -> Option<(Usage, UsageSource)> {
    match reported {
        Some(u) if embeddings && answered && u.total == 0 => {
            Some((estimate, UsageSource::Estimated))
        }
        Some(u) => Some((u, UsageSource::Reported)),
        None if !answered => None,
        None if embeddings => Some((estimate, UsageSource::Estimated)),
        None => Some((estimate, UsageSource::Missing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Counts as JSON writes them: whole numbers, doubles rounded, anything else missing.
    #[test]
    fn token_counts_are_read_leniently() {
        #[derive(serde::Deserialize)]
        struct Counted {
            #[serde(default, deserialize_with = "token_count")]
            n: Option<u64>,
        }
        let read = |json: &str| serde_json::from_str::<Counted>(json).map(|c| c.n);
        for (json, want) in [
            (r#"{"n": 5}"#, Some(5)),
            (r#"{"n": 0}"#, Some(0)),
            (r#"{"n": 18446744073709551615}"#, Some(u64::MAX)),
            (r#"{"n": 5.0}"#, Some(5)),
            (r#"{"n": 5.6}"#, Some(6)),
            (r#"{"n": 1e3}"#, Some(1000)),
            (r#"{"n": 1e30}"#, None),
            (r#"{"n": -1}"#, None),
            (r#"{"n": -0.5}"#, None),
            (r#"{"n": "5"}"#, None),
            (r#"{"n": true}"#, None),
            (r#"{"n": null}"#, None),
            (r#"{"n": [1, [2]]}"#, None),
            (r#"{"n": {"a": {"b": 1}}}"#, None),
            (r#"{}"#, None),
        ] {
            assert_eq!(read(json).ok(), Some(want), "{json}");
        }
        // Through a JSON tree too (Anthropic's usage is read from one).
        let read_tree = |v: Value| {
            serde::Deserialize::deserialize(&v)
                .map(|c: Counted| c.n)
                .ok()
        };
        assert_eq!(read_tree(json!({"n": "7"})), Some(None));
        assert_eq!(read_tree(json!({"n": 7})), Some(Some(7)));
    }

    #[test]
    fn reads_openai_usage_with_details() {
        let u = Usage::from_openai(&json!({
            "prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256}
        }))
        .unwrap();
        assert_eq!(
            u,
            Usage {
                prompt: 1200,
                completion: 300,
                total: 1500,
                cached_prompt: 1024,
                cache_write: 0,
                reasoning: 256
            }
        );
    }

    #[test]
    fn answered_requests_are_never_free() {
        let estimate = Usage {
            prompt: 10,
            completion: 1024,
            total: 1034,
            ..Usage::default()
        };
        let reported = Usage {
            prompt: 3,
            completion: 4,
            total: 7,
            ..Usage::default()
        };
        use UsageSource::*;
        let cases = [
            // (reported, answered, embeddings) -> charged total and source
            (Some(reported), true, false, Some((7, Reported))),
            (Some(reported), false, false, Some((7, Reported))),
            (None, true, false, Some((1034, Missing))),
            (None, false, false, None),
            (None, true, true, Some((1034, Estimated))),
            (Some(Usage::default()), true, true, Some((1034, Estimated))),
            (Some(reported), true, true, Some((7, Reported))),
        ];
        for (reported, answered, embeddings, expected) in cases {
            let got = charged_usage(reported, answered, embeddings, estimate)
                .map(|(u, source)| (u.total, source));
            assert_eq!(got, expected, "{reported:?} {answered} {embeddings}");
        }
    }

    #[test]
    fn provider_numbers_saturate() {
        let u = Usage::from_openai(&json!({"prompt_tokens": u64::MAX, "completion_tokens": 5}))
            .unwrap();
        assert_eq!(u.total, u64::MAX);
    }

    #[test]
    fn total_is_derived_when_missing_and_null_is_none() {
        let u = Usage::from_openai(&json!({"prompt_tokens": 3, "completion_tokens": 4})).unwrap();
        assert_eq!(u.total, 7);
        assert_eq!(Usage::from_openai(&Value::Null), None);
        assert_eq!(Usage::from_openai_body(b"{\"choices\":[]}"), None);
        assert_eq!(Usage::from_openai_body(b"not json"), None);
    }

    /// The body's usage is read in place; the same object as a tree reads the same, odd
    /// members included (a count that is not a whole number counts 0, details not objects).
    #[test]
    fn usage_read_in_place_and_from_a_tree_agree() {
        for usage in [
            r#"{"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 8, "cache_creation_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 3}}"#,
            r#"{"prompt_tokens": 1.5, "completion_tokens": "5", "prompt_tokens_details": 7,
                "completion_tokens_details": null}"#,
            r#"{"prompt_tokens": 2, "pr\u006fmpt_tokens": 9}"#,
            r#"[1, 2]"#,
            r#"null"#,
        ] {
            let body = format!(r#"{{"id": "x", "usage": {usage}, "choices": []}}"#);
            let tree: Value = serde_json::from_str(usage).unwrap();
            assert_eq!(
                Usage::from_openai_body(body.as_bytes()),
                Usage::from_openai(&tree),
                "{usage}"
            );
        }
        let in_place = Usage::from_openai_body(
            br#"{"usage": {"prompt_tokens": 12, "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 8}}}"#,
        );
        assert_eq!(
            in_place,
            Some(Usage {
                prompt: 12,
                completion: 5,
                total: 17,
                cached_prompt: 8,
                ..Usage::default()
            })
        );
    }
}
