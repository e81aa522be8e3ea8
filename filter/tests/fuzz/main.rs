//! Property-based fuzzing of every parser of the filter: requests, the SSE parser, each
//! provider's response translator, the Responses API front end, the downstream observers and the configuration compiler.
//! Each property feeds random bytes and structured, mostly-valid inputs (so the deep paths are
//! reached) and checks: no panic, output bounded by its input, and for streams the same result
//! whole and cut at random offsets. Bedrock's event-stream decoder is private to its module and
//! fuzzed there (`src/provider/bedrock/eventstream/fuzz.rs`).
//!
//! Case counts are modest so `cargo test` stays fast; `PROPTEST_CASES=20000` (what `make fuzz`
//! sets) runs the same properties longer. Failures are not persisted to files: each finding
//! becomes a plain `#[test]` with its minimal input next to the property that found it.

// `cfg(test)` tells clippy these are tests (clippy.toml lets tests index, unwrap and panic).
#[cfg(test)]
mod cache;
#[cfg(test)]
mod cache_semantic;
#[cfg(test)]
mod common;
#[cfg(test)]
mod config;
#[cfg(test)]
mod observers;
#[cfg(test)]
mod requests;
#[cfg(test)]
mod responses;
#[cfg(test)]
mod sse;
#[cfg(test)]
mod translators;
