//! Response caching, host-free: the exact key of a request (`key`), the stored entry and what
//! may be stored (`entry`), a stream reassembled into the completion it stands for
//! (`assemble`) and a completion replayed as a stream (`replay`), the client's
//! `Cache-Control` (`control`), the configuration (`config`) and the local tier in shared data
//! (`local`, whose doc describes its slots, expiry and byte budget), the shared tier every
//! Envoy sees (`shared`: an HTTP vector store, entries sealed), the semantic layer's query,
//! context hash and embeddings (`semantic`) and its index of vectors (`semantic_index`). The
//! pipeline stage that uses them is `pipeline/cache.rs` (and `pipeline/cache/semantic.rs`).
//!
//! An answer is stored once, as OpenAI JSON, whichever way it came, and served either way: as
//! JSON to a client that did not ask for a stream, as SSE to one that did.

pub mod assemble;
pub mod config;
pub mod control;
pub mod entry;
pub mod key;
pub mod local;
pub mod replay;
pub mod semantic;
pub mod semantic_index;
pub mod shared;

pub use config::{CacheConfig, ModelCache, Scope};
