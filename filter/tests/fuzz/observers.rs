//! The downstream observers of answers already in the OpenAI format (the OpenAI and Azure path
//! has no translator, so this is all of it): `StreamObserver`, `normalize_error_body` and
//! `Usage::from_openai_body`.

use ai_gateway::response::{normalize_error_body, StreamObserver};
use ai_gateway::usage::Usage;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::common::{cuts, json, line_end, mostly, number, pieces, runner, set, sse_event, text};

const KEYS: &[&str] = &[
    "id",
    "object",
    "choices",
    "delta",
    "content",
    "usage",
    "error",
    "message",
    "index",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "tool_calls",
    "finish_reason",
];

/// What an observer saw and sent.
#[derive(Debug, PartialEq)]
struct Observed {
    sent: Vec<u8>,
    usage: Option<Usage>,
    saw_done: bool,
    error: bool,
}

fn observe(input: &[u8], cuts: &[Index], strip: bool) -> Observed {
    let mut observer = StreamObserver::new(strip);
    let mut sent = Vec::new();
    let pieces = pieces(input, cuts);
    let last = pieces.len() - 1;
    for (i, piece) in pieces.into_iter().enumerate() {
        match observer.on_chunk(piece, i == last) {
            Some(replacement) => sent.extend(replacement),
            None => sent.extend_from_slice(piece),
        }
    }
    Observed {
        sent,
        usage: observer.usage,
        saw_done: observer.saw_done,
        error: observer.error,
    }
}

fn check_stream(input: &[u8], cuts: &[Index]) -> Result<(), TestCaseError> {
    let kept = observe(input, &[], false);
    // Not stripping: the stream passes byte for byte, followed only by the ending the gateway
    // adds to a stream that ended without `[DONE]`: an error event (unless the provider sent its
    // own) and `[DONE]`.
    prop_assert!(kept.sent.starts_with(input));
    let added = kept.sent.get(input.len()..).unwrap_or_default().to_vec();
    if kept.saw_done {
        prop_assert!(added.is_empty());
    } else {
        prop_assert!(added.ends_with(b"data: [DONE]\n\n"));
        let names_cut = added.windows(21).any(|w| w == b"upstream_stream_reset");
        prop_assert_eq!(names_cut, !kept.error);
    }
    prop_assert_eq!(&observe(input, cuts, false), &kept);
    let stripped = observe(input, &[], true);
    prop_assert_eq!(&observe(input, cuts, true), &stripped);
    // Stripping only removes events: never more bytes but the same ending, and the same usage.
    prop_assert!(stripped.sent.ends_with(&added));
    prop_assert!(stripped.sent.len() - added.len() <= input.len());
    prop_assert_eq!(stripped.usage, kept.usage);
    Ok(())
}

/// An OpenAI `usage` object (chat completion object reference), `total_tokens` sometimes
/// missing (some compatible servers omit it) and counts up to `u64::MAX`.
fn usage() -> impl Strategy<Value = Value> {
    (
        number(),
        number(),
        prop::option::of(number()),
        number(),
        number(),
    )
        .prop_map(|(prompt, completion, total, cached, reasoning)| {
            let mut u = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                               "prompt_tokens_details": {"cached_tokens": cached},
                               "completion_tokens_details": {"reasoning_tokens": reasoning}});
            if let Some(total) = total {
                set(&mut u, &["total_tokens"], total);
            }
            u
        })
}

/// One `chat.completion.chunk` (OpenAI "The chat completion chunk object").
fn chunk() -> impl Strategy<Value = Value> {
    let choice = (text(), prop::option::of(text())).prop_map(|(content, finish)| {
        json!({
        "index": 0, "delta": {"content": content}, "finish_reason": finish})
    });
    mostly(
        prop_oneof![
            4 => choice.prop_map(|c| json!({"id": "c", "object": "chat.completion.chunk", "choices": [c], "usage": null})),
            2 => usage().prop_map(|u| json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": u})),
            1 => text().prop_map(|m| json!({"error": {"message": m, "type": "server_error"}})),
        ],
        KEYS,
    )
}

fn openai_stream() -> impl Strategy<Value = Vec<u8>> {
    let event = prop_oneof![
        8 => chunk().prop_map(|v| v.to_string()),
        1 => Just("[DONE]".to_string()),
        1 => text(),
    ];
    (prop::collection::vec(event, 0..10), line_end()).prop_map(|(events, end)| {
        events
            .iter()
            .flat_map(|data| sse_event(None, data, end))
            .collect()
    })
}

/// `Usage::from_openai_body` reads what the body holds; the generator knows what it put.
fn check_usage_body(
    prompt: &Value,
    completion: &Value,
    total: Option<&Value>,
) -> Result<(), TestCaseError> {
    let mut body = json!({"id": "c", "object": "chat.completion", "choices": [],
                          "usage": {"prompt_tokens": prompt, "completion_tokens": completion}});
    if let Some(total) = total {
        body["usage"]["total_tokens"] = total.clone();
    }
    let usage = Usage::from_openai_body(body.to_string().as_bytes());
    let Some(usage) = usage else {
        return Err(TestCaseError::fail("usage object not read"));
    };
    let read = |v: &Value| v.as_u64().unwrap_or(0);
    prop_assert_eq!(usage.prompt, read(prompt));
    prop_assert_eq!(usage.completion, read(completion));
    if let Some(total) = total.and_then(Value::as_u64) {
        prop_assert_eq!(usage.total, total);
    } else {
        // Derived; saturates rather than wrapping or panicking on absurd counts.
        prop_assert_eq!(usage.total, read(prompt).saturating_add(read(completion)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(runner(192))]

    #[test]
    fn stream_observer_on_generated_streams(input in openai_stream(), cuts in cuts()) {
        check_stream(&input, &cuts)?;
    }

    #[test]
    fn stream_observer_on_random_bytes(
        input in prop::collection::vec(any::<u8>(), 0..300),
        cuts in cuts(),
    ) {
        check_stream(&input, &cuts)?;
    }

    #[test]
    fn error_bodies_get_the_openai_shape(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2000),
            json(KEYS).prop_map(|v| v.to_string().into_bytes()),
            text().prop_map(|m| json!({"error": {"message": m}}).to_string().into_bytes()),
        ],
        status in 100u32..1000,
    ) {
        match normalize_error_body(status, &body) {
            None => {
                let v: Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(format!("passed a non-JSON body: {e}")))?;
                prop_assert!(v["error"]["message"].is_string());
            }
            Some(out) => {
                // The message is cut to 1 KiB; escaped, at most 6 bytes a byte, plus the frame.
                prop_assert!(out.len() <= 6 * 1024 + 512, "{} bytes", out.len());
                let v: Value = serde_json::from_slice(&out)
                    .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
                prop_assert!(v["error"]["message"].is_string());
                prop_assert_eq!(normalize_error_body(status, &out), None, "shaped once");
            }
        }
    }

    #[test]
    fn usage_is_read_from_any_body(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json(KEYS).prop_map(|v| v.to_string().into_bytes()),
    ]) {
        let _ = Usage::from_openai_body(&body);
    }

    #[test]
    fn usage_is_read_as_sent(prompt in number(), completion in number(), total in prop::option::of(number())) {
        check_usage_body(&prompt, &completion, total.as_ref())?;
    }
}

/// Finding: a derived `total_tokens` overflowed (`prompt + completion`) on counts near
/// `u64::MAX`; the minimal input found. It saturates now.
#[test]
fn derived_total_saturates() {
    let body = br#"{"usage": {"prompt_tokens": 1, "completion_tokens": 18446744073709551615}}"#;
    let usage = Usage::from_openai_body(body).map(|u| u.total);
    assert_eq!(usage, Some(u64::MAX));
}
