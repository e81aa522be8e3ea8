//! `envoy.service.ratelimit.v3` messages as prost structs, written from the .proto files
//! (api/envoy/service/ratelimit/v3/rls.proto, api/envoy/extensions/common/ratelimit/v3/
//! ratelimit.proto, api/envoy/config/core/v3/base.proto) so that no protoc is needed; and the
//! gRPC plumbing tonic-build would generate for the one method, written out by hand.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::{empty_body, http, Body, BoxFuture, StdError};

pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `RateLimitResponse.Code`.
pub mod code {
    pub const UNKNOWN: i32 = 0;
    pub const OK: i32 = 1;
    pub const OVER_LIMIT: i32 = 2;
}

/// `RateLimitResponse.RateLimit.Unit`.
pub mod unit {
    pub const UNKNOWN: i32 = 0;
    pub const SECOND: i32 = 1;
    pub const MINUTE: i32 = 2;
    pub const HOUR: i32 = 3;
    pub const DAY: i32 = 4;
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(int32, tag = "2")]
    pub unit: i32,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    #[prost(int32, tag = "1")]
    pub overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
    #[prost(message, repeated, tag = "3")]
    pub response_headers_to_add: Vec<HeaderValue>,
}

/// What answers `ShouldRateLimit`.
pub trait RateLimitService: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        request: RateLimitRequest,
    ) -> BoxFuture<RateLimitResponse, tonic::Status>;
}

/// The tonic service for a [`RateLimitService`] (what tonic-build's `…Server` would be).
pub struct RateLimitServiceServer<T>(pub Arc<T>);

impl<T> Clone for RateLimitServiceServer<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> tonic::server::NamedService for RateLimitServiceServer<T> {
    const NAME: &'static str = SERVICE;
}

struct Unary<T>(Arc<T>);

impl<T: RateLimitService> tonic::server::UnaryService<RateLimitRequest> for Unary<T> {
    type Response = RateLimitResponse;
    type Future = BoxFuture<tonic::Response<RateLimitResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<RateLimitRequest>) -> Self::Future {
        let call = self.0.clone().handle(request.into_inner());
        Box::pin(async move { call.await.map(tonic::Response::new) })
    }
}

impl<T, B> tonic::codegen::Service<http::Request<B>> for RateLimitServiceServer<T>
where
    T: RateLimitService,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() == PATH {
            let inner = self.0.clone();
            return Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic::codec::ProstCodec::default());
                Ok(grpc.unary(Unary(inner), request).await)
            });
        }
        Box::pin(async {
            let mut response = http::Response::new(empty_body());
            let headers = response.headers_mut();
            headers.insert(
                tonic::Status::GRPC_STATUS,
                (tonic::Code::Unimplemented as i32).into(),
            );
            headers.insert(
                http::header::CONTENT_TYPE,
                tonic::metadata::GRPC_CONTENT_TYPE,
            );
            Ok(response)
        })
    }
}

/// A tonic client for `ShouldRateLimit` (what tonic-build's `…Client` would be).
#[derive(Clone)]
pub struct RateLimitServiceClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl RateLimitServiceClient {
    pub async fn connect(url: String) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(url)?
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    pub async fn should_rate_limit(
        &mut self,
        request: RateLimitRequest,
    ) -> Result<RateLimitResponse, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static(PATH);
        self.grpc
            .unary(
                tonic::Request::new(request),
                path,
                tonic::codec::ProstCodec::default(),
            )
            .await
            .map(tonic::Response::into_inner)
    }
}
