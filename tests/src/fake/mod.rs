//! The fake provider's native wire formats, one module per provider family. Every format gives
//! the same deterministic behaviour (see `tests/src/fake/README.md`) so that one integration
//! test can run against every family and expect the same answer.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod guardrails;
pub mod openai_responses;
