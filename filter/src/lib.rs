//! AI gateway filter for Envoy (proxy-wasm).
//!
//! Two roles in one module, chosen by the plugin's `root_id`:
//! - `gateway`, a downstream HTTP filter: validates OpenAI requests, answers `/v1/models`,
//!   picks the route, reads usage from responses, emits stats and access-log fields;
//! - `provider`, an upstream HTTP filter in every provider cluster: translates each attempt
//!   (path, credentials, body) for the provider that Envoy picked.
//!
//! Everything but `wasm/` is plain Rust without host calls, unit-tested natively.

pub mod cache;
pub mod chat;
pub mod config;
pub mod config_error;
pub mod error;
pub mod gateway;
pub mod guard;
pub mod header_map;
pub mod inbound;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod pipeline;
pub mod pricing;
pub mod provider;
pub mod quota;
pub mod ratelimit;
pub mod response;
pub mod routing;
pub mod scrub;
pub mod sha256;
pub mod sse;
pub mod state;
pub mod usage;

#[cfg(test)]
mod test_json;

#[cfg(target_arch = "wasm32")]
mod wasm;
