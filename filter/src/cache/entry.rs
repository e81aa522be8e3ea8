//! One stored answer: the OpenAI JSON body (a chat completion, or an embeddings list) stored
//! once, whichever way it came (a stream is reassembled first, `assemble.rs`), with who served
//! it (for the cost a hit saves) and its times. Serialized into one shared-data value:
//!
//! ```text
//! "GWC1" | key (32) | created (u64 LE) | expires (u64 LE)
//!        | provider length (u16 LE) | provider | upstream model length (u16 LE) | model | body
//! ```

use serde_json::Value;

use crate::usage::Usage;

const MAGIC: &[u8; 4] = b"GWC1";
/// Bytes of the value before the variable parts.
pub const HEADER_BYTES: usize = 4 + 32 + 8 + 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: [u8; 32],
    /// Unix seconds when stored.
    pub created: u64,
    /// Unix seconds from which it is no longer served.
    pub expires: u64,
    /// The provider and its model name that produced the answer.
    pub provider: String,
    pub upstream_model: String,
    /// The answer as OpenAI JSON.
    pub body: Vec<u8>,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let provider = cut(&self.provider);
        let model = cut(&self.upstream_model);
        let mut out =
            Vec::with_capacity(HEADER_BYTES + 4 + provider.len() + model.len() + self.body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.created.to_le_bytes());
        out.extend_from_slice(&self.expires.to_le_bytes());
        for text in [provider, model] {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text);
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// `None` for anything that is not a whole entry (an emptied slot, another format).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let (key, created, expires) = header(&mut r)?;
        let provider = r.text()?;
        let upstream_model = r.text()?;
        Some(Self {
            key,
            created,
            expires,
            provider,
            upstream_model,
            body: r.0.to_vec(),
        })
    }

    /// The key and times only, without copying the body (a slot's owner check).
    pub fn peek(bytes: &[u8]) -> Option<([u8; 32], u64, u64)> {
        header(&mut Reader(bytes))
    }

    pub fn usage(&self) -> Option<Usage> {
        Usage::from_openai_body(&self.body)
    }
}

/// An entry's magic, key, creation and expiry times.
fn header(r: &mut Reader<'_>) -> Option<([u8; 32], u64, u64)> {
    if r.take(4)? != MAGIC {
        return None;
    }
    let key: [u8; 32] = r.take(32)?.try_into().ok()?;
    Some((key, r.u64()?, r.u64()?))
}

/// Provider and model names are configuration names, far below 64 KiB; cut to fit the length.
fn cut(text: &str) -> &[u8] {
    let bytes = text.as_bytes();
    bytes
        .get(..bytes.len().min(usize::from(u16::MAX)))
        .unwrap_or(bytes)
}

/// Reads the little-endian records the cache keeps in shared data (entries here, the semantic
/// index's buckets too); `None` when the bytes end early.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let len = self.u16()?;
        String::from_utf8(self.take(usize::from(len))?.to_vec()).ok()
    }
}

/// Why an answer is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// Larger than the model's `max_entry_bytes`.
    TooLarge,
    /// It calls tools and the model caches no tool calls.
    ToolCalls,
    /// Cut short (`length`), filtered (`content_filter`), or with no finish reason.
    Incomplete,
    /// Not an answer of the expected shape, or the stream failed.
    Malformed,
    /// A stream carried what the stored completion would lose (log probabilities, audio, or
    /// another delta field the cache does not reassemble).
    Unsupported,
}

impl NotStored {
    pub fn name(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::ToolCalls => "tool_calls",
            Self::Incomplete => "incomplete",
            Self::Malformed => "malformed",
            Self::Unsupported => "unsupported",
        }
    }
}

/// Whether a chat completion body may be stored: every choice ended naturally (`stop`), or
/// called tools when `tool_calls` allows it.
pub fn check_chat(body: &Value, tool_calls: bool) -> Result<(), NotStored> {
    let choices = body
        .get("choices")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or(NotStored::Malformed)?;
    for choice in choices {
        let calls = choice
            .get("message")
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        match choice.get("finish_reason").and_then(Value::as_str) {
            Some("tool_calls" | "function_call") if !tool_calls => {
                return Err(NotStored::ToolCalls)
            }
            Some("stop") if calls && !tool_calls => return Err(NotStored::ToolCalls),
            Some("stop" | "tool_calls" | "function_call") => {}
            _ => return Err(NotStored::Incomplete),
        }
    }
    Ok(())
}

/// Whether an embeddings body may be stored: a list with data.
pub fn check_embeddings(body: &Value) -> Result<(), NotStored> {
    match body.get("data").and_then(Value::as_array) {
        Some(data) if !data.is_empty() => Ok(()),
        _ => Err(NotStored::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry() -> Entry {
        Entry {
            key: [7; 32],
            created: 1_780_000_000,
            expires: 1_780_000_300,
            provider: "openai".into(),
            upstream_model: "gpt-4o-mini".into(),
            body: br#"{"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#
                .to_vec(),
        }
    }

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        let e = entry();
        let bytes = e.encode();
        assert_eq!(&bytes[..4], b"GWC1");
        assert_eq!(Entry::decode(&bytes), Some(e.clone()));
        assert_eq!(Entry::peek(&bytes), Some(([7; 32], e.created, e.expires)));
        assert_eq!(e.usage().map(|u| u.total), Some(5));
        for cut in 0..HEADER_BYTES + 4 {
            assert_eq!(Entry::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Entry::decode(b""), None);
        assert_eq!(Entry::decode(b"GWC2rest"), None);
    }

    #[test]
    fn only_complete_answers_are_stored() {
        let answer = |finish: &str, calls: bool| {
            let mut message = json!({"role": "assistant", "content": "x"});
            if calls {
                message["tool_calls"] = json!([{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
            }
            json!({"choices": [{"index": 0, "message": message, "finish_reason": finish}]})
        };
        assert_eq!(check_chat(&answer("stop", false), false), Ok(()));
        assert_eq!(
            check_chat(&answer("length", false), false),
            Err(NotStored::Incomplete)
        );
        assert_eq!(
            check_chat(&answer("content_filter", false), true),
            Err(NotStored::Incomplete)
        );
        assert_eq!(
            check_chat(&answer("tool_calls", true), false),
            Err(NotStored::ToolCalls)
        );
        assert_eq!(
            check_chat(&answer("stop", true), false),
            Err(NotStored::ToolCalls)
        );
        assert_eq!(check_chat(&answer("tool_calls", true), true), Ok(()));
        assert_eq!(
            check_chat(&json!({"choices": []}), false),
            Err(NotStored::Malformed)
        );
        assert_eq!(
            check_chat(&json!({"error": {}}), false),
            Err(NotStored::Malformed)
        );
        assert_eq!(
            check_embeddings(&json!({"data": [{"embedding": [1]}]})),
            Ok(())
        );
        assert_eq!(
            check_embeddings(&json!({"data": []})),
            Err(NotStored::Malformed)
        );
    }
}
