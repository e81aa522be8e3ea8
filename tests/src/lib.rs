//! Test-side code: the fake provider (also `make run`'s demo provider), a small HTTP/1.1 layer,
//! and the harness that runs the real Envoy with the real .wasm.

#[cfg(feature = "bench")]
pub mod bench;
pub mod check;
pub mod chroma;
pub mod envoy;
pub mod fake;
pub mod fake_provider;
pub mod http;
pub mod k8s;
pub mod messages_api;
pub mod ratelimit;
pub mod scripted;
