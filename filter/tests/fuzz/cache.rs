//! The response cache's parsers: a stored entry read back from shared data (any bytes may be
//! there: an emptied slot, another version's format), and a provider's stream reassembled into
//! the completion that is stored and replayed. No panic; what is stored stays within its cap;
//! a reassembled completion replays to a stream that reassembles to the same completion.

use ai_gateway::cache::assemble::Assembler;
use ai_gateway::cache::entry::Entry;
use ai_gateway::cache::replay::to_sse;
use ai_gateway::sse::SseParser;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::common::{cuts, mostly, pieces, runner, sse_event, text, LineEnd};

const KEYS: &[&str] = &[
    "id",
    "choices",
    "delta",
    "content",
    "role",
    "refusal",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "index",
    "finish_reason",
    "usage",
    "error",
];

/// One chunk of an OpenAI chat stream, often with a finish reason or a tool call delta.
fn chunk() -> impl Strategy<Value = Value> {
    let finish = prop_oneof![
        3 => Just(Value::Null),
        2 => Just(json!("stop")),
        1 => Just(json!("length")),
        1 => Just(json!("tool_calls")),
    ];
    let choice = (0u64..3, text(), finish, prop::option::of((0u64..2, text()))).prop_map(
        |(index, content, finish, call)| {
            let mut delta = json!({"content": content});
            if let Some((i, args)) = call {
                delta["tool_calls"] = json!([{"index": i, "id": "c", "type": "function",
                    "function": {"name": "f", "arguments": args}}]);
            }
            json!({"index": index, "delta": delta, "finish_reason": finish})
        },
    );
    mostly(
        choice.prop_map(|c| json!({"id": "x", "created": 1, "model": "m", "choices": [c]})),
        KEYS,
    )
}

fn assemble(stream: &[u8], cuts: &[Index], cap: usize, tools: bool) -> Option<Value> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut assembler = Assembler::new(cap);
    for piece in pieces(stream, cuts) {
        parser.feed(piece, &mut events);
    }
    parser.finish(&mut events);
    for event in events {
        if let Some(data) = event.data {
            assembler.add(&data);
        }
    }
    assembler.finish(tools).ok()
}

proptest! {
    #![proptest_config(runner(192))]

    #[test]
    fn stored_entries_are_read_safely(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut framed = b"GWC1".to_vec();
        framed.extend_from_slice(&bytes);
        for input in [&bytes, &framed] {
            if let Some(entry) = Entry::decode(input) {
                prop_assert_eq!(&entry.encode(), input);
            }
        }
    }

    #[test]
    fn streams_reassemble_within_the_cap_and_replay_to_themselves(
        chunks in prop::collection::vec(chunk(), 0..8),
        done in any::<bool>(),
        cuts in cuts(),
        cap in 0usize..200,
        tools in any::<bool>(),
    ) {
        let mut stream: Vec<u8> = chunks
            .iter()
            .flat_map(|c| sse_event(None, &c.to_string(), LineEnd::Lf))
            .collect();
        if done {
            stream.extend(sse_event(None, "[DONE]", LineEnd::Lf));
        }
        let whole = assemble(&stream, &[], cap, tools);
        prop_assert_eq!(&assemble(&stream, &cuts, cap, tools), &whole, "the same cut anywhere");
        if let Some(completion) = whole {
            prop_assert!(done, "stored without [DONE]");
            let text_bytes: usize = completion["choices"].as_array().into_iter().flatten()
                .map(|c| c["message"]["content"].as_str().map_or(0, str::len))
                .sum();
            prop_assert!(text_bytes <= cap);
            let replayed = to_sse(&completion, true);
            prop_assert_eq!(assemble(&replayed, &[], usize::MAX, tools), Some(completion));
        }
    }

    #[test]
    fn random_streams_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), cuts in cuts()) {
        let whole = assemble(&bytes, &[], 100, true);
        prop_assert_eq!(assemble(&bytes, &cuts, 100, true), whole);
    }
}
