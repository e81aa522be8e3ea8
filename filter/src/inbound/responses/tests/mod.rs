//! Tests of the Responses API translation. Expected files in `filter/testdata/openai_responses/`
//! were written by hand from the references its README cites, not copied from the output.

mod golden;
mod refusals;
mod stream;

use crate::test_json::assert_same;
use serde_json::Value;

use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/openai_responses");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_json(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The context of one of the request files.
fn context_of(request: &str) -> Context {
    to_chat(&read(request))
        .unwrap_or_else(|e| panic!("{request}: {e}"))
        .1
}

/// A Responses SSE stream → its events' data, checking each block is `event: <type>` then
/// `data: <json>` with that same `type`.
fn events_of(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).expect("the stream is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "unterminated: {text}"
    );
    text.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block
                .strip_prefix("event: ")
                .and_then(|b| b.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not an event block: {block}"));
            let data: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
            assert_eq!(data["type"], event, "{block}");
            data
        })
        .collect()
}

/// Feeds a stream in the given pieces and ends it.
fn run_stream(ctx: &Context, pieces: &[&[u8]]) -> Vec<u8> {
    let mut s = StreamFromChat::new(ctx);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(s.push(piece, false));
    }
    out.extend(s.push(b"", true));
    out
}
