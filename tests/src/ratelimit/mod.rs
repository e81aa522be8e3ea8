//! A real rate limit service for the tests: Envoy's `RateLimitService` over gRPC (tonic), on
//! the `limitador` crate with Redis storage ([`server`]), a throwaway Redis ([`redis`]), and a
//! blocking client for tests ([`Client`]). `cargo run -p gateway-tests --bin ratelimit-server`
//! runs the service on its own.

pub mod proto;
pub mod redis;
pub mod server;

pub use redis::RedisServer;
pub use server::{LimitSpec, LimitsFile, RateLimitServer};

/// A blocking `ShouldRateLimit` client (a tonic client on its own small runtime).
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: proto::RateLimitServiceClient,
}

impl Client {
    pub fn connect(url: &str) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let inner = runtime
            .block_on(proto::RateLimitServiceClient::connect(url.to_string()))
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Self { runtime, inner })
    }

    // The error is tonic's `Status`, as tonic's own generated clients return it.
    #[allow(clippy::result_large_err)]
    pub fn should_rate_limit(
        &mut self,
        request: proto::RateLimitRequest,
    ) -> Result<proto::RateLimitResponse, tonic::Status> {
        self.runtime.block_on(self.inner.should_rate_limit(request))
    }
}

/// A request with one descriptor per `(key, value)` list.
pub fn request(
    domain: &str,
    descriptors: &[&[(&str, &str)]],
    hits: u32,
) -> proto::RateLimitRequest {
    proto::RateLimitRequest {
        domain: domain.to_string(),
        descriptors: descriptors
            .iter()
            .map(|entries| proto::RateLimitDescriptor {
                entries: entries
                    .iter()
                    .map(|(k, v)| proto::Entry {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            })
            .collect(),
        hits_addend: hits,
    }
}
