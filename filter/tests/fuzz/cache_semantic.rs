//! The semantic cache's parsers: a bucket of vectors read back from shared data (any bytes may
//! be there), an embeddings answer (whatever the provider sent, through the gateway), and the
//! query of a chat body. No panic; a bucket that reads is the bytes it came from; a vector that
//! reads has length 1 and at most the dimensions allowed; a query's text is never empty.

use ai_gateway::cache::semantic::{parse_embedding, query, MAX_TEXT_BYTES};
use ai_gateway::cache::semantic_index::Bucket;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::{runner, text};

/// A message of a random role, with text or parts.
fn message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        Just("user"),
        Just("assistant"),
        Just("system"),
        Just("tool")
    ];
    let content = prop_oneof![
        text().prop_map(Value::String),
        prop::collection::vec((any::<bool>(), text()), 0..3).prop_map(|parts| {
            Value::Array(
                parts
                    .into_iter()
                    .map(|(is_text, t)| {
                        if is_text {
                            json!({"type": "text", "text": t})
                        } else {
                            json!({"type": "image_url", "image_url": {"url": t}})
                        }
                    })
                    .collect(),
            )
        }),
        Just(Value::Null),
    ];
    (role, content).prop_map(|(role, content)| json!({"role": role, "content": content}))
}

proptest! {
    #![proptest_config(runner(192))]

    #[test]
    fn stored_buckets_are_read_safely(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut framed = b"GWS1".to_vec();
        framed.extend_from_slice(&bytes);
        for input in [&bytes, &framed] {
            if let Some(bucket) = Bucket::decode(input) {
                prop_assert_eq!(&bucket.encode(), input);
            }
        }
    }

    #[test]
    fn embeddings_answers_are_read_safely(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        numbers in prop::collection::vec(any::<f64>(), 0..40),
        max in 1u16..32,
    ) {
        // Any bytes: no panic.
        let _ = parse_embedding(&bytes, max);
        let answer = json!({"data": [{"embedding": numbers}]}).to_string();
        if let Ok(v) = parse_embedding(answer.as_bytes(), max) {
            prop_assert!(!v.is_empty() && v.len() <= usize::from(max));
            let norm: f64 = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
            prop_assert!((norm - 1.0).abs() < 1e-3, "norm {}", norm);
        }
    }

    #[test]
    fn a_query_has_text_and_a_context(
        messages in prop::collection::vec(message(), 0..5),
        max_turns in 1u32..4,
    ) {
        let body = json!({"model": "m", "messages": messages}).to_string();
        if let Ok(q) = query(body.as_bytes(), "team:a", "chat", max_turns) {
            prop_assert!(!q.text.trim().is_empty() && q.text.len() <= MAX_TEXT_BYTES);
            prop_assert_eq!(messages.last().map(|m| m["role"].clone()), Some(json!("user")));
        }
    }
}
