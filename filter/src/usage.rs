//! Token usage in the OpenAI shape, normalized so cost maths sees one form whatever the
//! provider: `prompt` counts every input token, `cached_prompt` (read from cache) and
//! `cache_write` (written to cache, Anthropic) included, as OpenAI counts them; `completion`
//! includes `reasoning`. Translators of providers that report these apart (Anthropic's
//! `input_tokens` excludes cache reads and writes) add them up when they build OpenAI usage.

use serde_json::Value;

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
    /// Reads an OpenAI `usage` object; `None` when it is absent, null or not an object.
    pub fn from_openai(usage: &Value) -> Option<Self> {
        let u = usage.as_object()?;
        let num = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        let prompt = num(u.get("prompt_tokens"));
        let completion = num(u.get("completion_tokens"));
        let prompt_details = u.get("prompt_tokens_details");
        let total = u
            .get("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(prompt.saturating_add(completion));
        Some(Self {
            prompt,
            completion,
            total,
            cached_prompt: num(prompt_details.and_then(|d| d.get("cached_tokens"))),
            cache_write: num(prompt_details.and_then(|d| d.get("cache_creation_tokens"))),
            reasoning: num(u
                .get("completion_tokens_details")
                .and_then(|d| d.get("reasoning_tokens"))),
        })
    }

    /// Usage from a whole (non-streamed) OpenAI chat completion body. Only `usage` is
    /// materialised; the rest of the answer is skipped without being built.
    pub fn from_openai_body(body: &[u8]) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct OnlyUsage {
            usage: Option<Value>,
        }
        let v: OnlyUsage = serde_json::from_slice(body).ok()?;
        v.usage.as_ref().and_then(Self::from_openai)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn total_is_derived_when_missing_and_null_is_none() {
        let u = Usage::from_openai(&json!({"prompt_tokens": 3, "completion_tokens": 4})).unwrap();
        assert_eq!(u.total, 7);
        assert_eq!(Usage::from_openai(&Value::Null), None);
        assert_eq!(Usage::from_openai_body(b"{\"choices\":[]}"), None);
        assert_eq!(Usage::from_openai_body(b"not json"), None);
    }
}
