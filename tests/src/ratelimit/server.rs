//! A rate limit service for the tests, speaking Envoy's RateLimitService API, built on the
//! `limitador` crate with Redis storage, so that several instances (and the Envoys using them)
//! share one set of counters.
//!
//! Limits come from a small YAML (or JSON) file:
//!
//! ```yaml
//! domain: ai-gateway
//! limits:
//!   - name: key-tokens          # unique; shown in the response's current_limit
//!     when: {unit: tokens}      # descriptor entries that must be present with these values
//!     per: key                  # entry whose value gets its own counter (absent: one counter)
//!     max: 1000
//!     seconds: 60
//! ```
//!
//! A descriptor matches a limit when it has every `when` entry and the `per` entry. The call is
//! admitted only if every matched counter has room for `hits_addend` (0 counts as 1); the
//! statuses list one entry per descriptor (its tightest counter), in order.
//!
//! Exactness: limitador's check-and-update on Redis reads the counters, then increments them
//! (its documentation says the Redis storage "sacrifices a bit of accuracy"), so concurrent
//! calls could all pass the last unit. This server holds a Redis lock per domain (`SET NX PX`,
//! released by token) around each check-and-update, so its answers are exact across any number
//! of instances sharing the Redis. Meant for tests, not for throughput.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use limitador::limit::{Limit, Namespace};
use limitador::storage::redis::AsyncRedisStorage;
use limitador::AsyncRateLimiter;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use tonic::codegen::BoxFuture;

use super::proto::{
    self, code, unit, DescriptorStatus, RateLimit, RateLimitRequest, RateLimitResponse,
    RateLimitServiceServer,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub domain: String,
    pub limits: Vec<LimitSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    pub name: String,
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    pub per: Option<String>,
    pub max: u64,
    pub seconds: u64,
}

impl LimitsFile {
    /// Parses and checks a limits file (YAML, or JSON which is YAML too).
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: Self = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if file.domain.is_empty() {
            return Err("domain must not be empty".into());
        }
        for (i, l) in file.limits.iter().enumerate() {
            if l.name.is_empty() || file.limits[..i].iter().any(|o| o.name == l.name) {
                return Err(format!("limits[{i}]: names must be non-empty and unique"));
            }
            if l.max == 0 || l.seconds == 0 {
                return Err(format!("limits[{i}]: max and seconds must be at least 1"));
            }
        }
        Ok(file)
    }

    /// The variable that carries a limit's counter value in limitador's values: derived from
    /// the name, so counters survive a reordering of the file.
    fn binding(spec: &LimitSpec) -> String {
        let hex: String = spec.name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("l_{hex}")
    }

    fn limitador_limits(&self) -> Vec<Limit> {
        self.limits
            .iter()
            .map(|spec| {
                let mut limit = Limit::new(
                    self.domain.as_str(),
                    i64::try_from(spec.max).unwrap_or(i64::MAX),
                    spec.seconds,
                    Vec::<&str>::new(),
                    [Self::binding(spec)],
                );
                limit.set_name(spec.name.clone());
                limit
            })
            .collect()
    }
}

impl LimitSpec {
    /// The counter value for this descriptor when the limit applies to it.
    fn value_for(&self, entries: &HashMap<&str, &str>) -> Option<String> {
        let when_ok = self
            .when
            .iter()
            .all(|(k, v)| entries.get(k.as_str()) == Some(&v.as_str()));
        if !when_ok {
            return None;
        }
        match &self.per {
            None => Some("*".to_string()),
            Some(per) => entries.get(per.as_str()).map(|v| v.to_string()),
        }
    }

    fn unit(&self) -> (u32, i32) {
        let max = u32::try_from(self.max).unwrap_or(u32::MAX);
        let unit = match self.seconds {
            1 => unit::SECOND,
            60 => unit::MINUTE,
            3600 => unit::HOUR,
            86_400 => unit::DAY,
            _ => unit::UNKNOWN,
        };
        (max, unit)
    }
}

/// The service: limitador over Redis.
pub struct Limiter {
    limiter: AsyncRateLimiter,
    redis: ConnectionManager,
    file: LimitsFile,
    calls: AtomicU64,
}

/// How long a lock is held at most (a crashed holder's lock expires after this).
const LOCK_TTL_MS: u64 = 2000;
/// How long a call waits for the lock before answering UNAVAILABLE.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Deletes the lock only if it is still ours.
const UNLOCK: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

impl Limiter {
    pub async fn new(file: LimitsFile, redis_url: &str) -> Result<Self, String> {
        let client = redis::Client::open(redis_url).map_err(|e| format!("{redis_url}: {e}"))?;
        let redis = ConnectionManager::new(client)
            .await
            .map_err(|e| format!("redis at {redis_url}: {e}"))?;
        let storage = AsyncRedisStorage::new_with_conn_manager(redis.clone());
        let limiter = AsyncRateLimiter::new_with_storage(Box::new(storage));
        for limit in file.limitador_limits() {
            limiter.add_limit(limit);
        }
        Ok(Self {
            limiter,
            redis,
            file,
            calls: AtomicU64::new(0),
        })
    }

    fn lock_key(&self) -> String {
        format!("gateway-tests:ratelimit-lock:{{{}}}", self.file.domain)
    }

    async fn lock(&self) -> Result<String, tonic::Status> {
        let token = format!(
            "{}-{}-{}",
            std::process::id(),
            NEXT_TOKEN.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut con = self.redis.clone();
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(self.lock_key())
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL_MS)
                .query_async(&mut con)
                .await
                .map_err(|e| tonic::Status::unavailable(format!("redis: {e}")))?;
            if taken.is_some() {
                return Ok(token);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(tonic::Status::unavailable("rate limit lock not acquired"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn unlock(&self, token: &str) {
        let mut con = self.redis.clone();
        let _: Result<i64, _> = redis::Script::new(UNLOCK)
            .key(self.lock_key())
            .arg(token)
            .invoke_async(&mut con)
            .await;
    }

    /// How many `ShouldRateLimit` calls were answered.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub async fn should_rate_limit(
        &self,
        request: RateLimitRequest,
    ) -> Result<RateLimitResponse, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.domain != self.file.domain || request.descriptors.is_empty() {
            // No limits for this domain (limitador answers UNKNOWN too for an empty domain).
            return Ok(RateLimitResponse {
                overall_code: if request.domain.is_empty() {
                    code::UNKNOWN
                } else {
                    code::OK
                },
                statuses: vec![DescriptorStatus::default(); request.descriptors.len()],
                response_headers_to_add: vec![],
            });
        }
        let hits = i64::from(request.hits_addend.max(1));
        // (limit index) per descriptor, and the context binding each matched limit's value.
        let mut matched: Vec<Vec<usize>> = Vec::with_capacity(request.descriptors.len());
        let mut bindings: HashMap<String, String> = HashMap::new();
        for d in &request.descriptors {
            let entries: HashMap<&str, &str> = d
                .entries
                .iter()
                .map(|e| (e.key.as_str(), e.value.as_str()))
                .collect();
            let mut mine = Vec::new();
            for (i, spec) in self.file.limits.iter().enumerate() {
                if let Some(value) = spec.value_for(&entries) {
                    let binding = LimitsFile::binding(spec);
                    if bindings.insert(binding, value).is_some() {
                        return Err(tonic::Status::invalid_argument(format!(
                            "limit '{}' matches two descriptors of one request",
                            spec.name
                        )));
                    }
                    mine.push(i);
                }
            }
            matched.push(mine);
        }
        let namespace = Namespace::from(self.file.domain.as_str());
        let token = self.lock().await?;
        let checked = self
            .limiter
            .check_rate_limited_and_update(&namespace, &bindings, hits, true)
            .await;
        self.unlock(&token).await;
        let result = checked.map_err(|e| tonic::Status::unavailable(format!("limitador: {e}")))?;
        let statuses = matched
            .iter()
            .map(|limits| {
                // the tightest counter of this descriptor's limits
                let tightest = result
                    .counters
                    .iter()
                    .filter(|c| {
                        limits
                            .iter()
                            .any(|&i| c.limit().name() == Some(self.file.limits[i].name.as_str()))
                    })
                    .min_by_key(|c| c.remaining().unwrap_or(c.max_value()));
                let Some(counter) = tightest else {
                    return DescriptorStatus {
                        code: code::OK,
                        ..Default::default()
                    };
                };
                let spec = limits
                    .iter()
                    .map(|&i| &self.file.limits[i])
                    .find(|s| counter.limit().name() == Some(s.name.as_str()));
                // limitador's remaining is max - (value + hits), negative for a counter the call
                // does not fit in; a refused call counted nothing, so its hits are added back.
                let remaining = counter.remaining().unwrap_or(counter.max_value());
                let over = result.limited && remaining < 0;
                let remaining = if result.limited {
                    remaining + hits
                } else {
                    remaining
                };
                let (requests_per_unit, unit) = spec.map_or((0, unit::UNKNOWN), LimitSpec::unit);
                let reset = counter
                    .expires_in()
                    .unwrap_or(Duration::from_secs(counter.seconds()));
                DescriptorStatus {
                    code: if over { code::OVER_LIMIT } else { code::OK },
                    current_limit: Some(RateLimit {
                        name: spec.map(|s| s.name.clone()).unwrap_or_default(),
                        requests_per_unit,
                        unit,
                    }),
                    limit_remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                    duration_until_reset: Some(proto::Duration {
                        seconds: i64::try_from(reset.as_secs()).unwrap_or(i64::MAX),
                        nanos: i32::try_from(reset.subsec_nanos()).unwrap_or(0),
                    }),
                }
            })
            .collect();
        Ok(RateLimitResponse {
            overall_code: if result.limited {
                code::OVER_LIMIT
            } else {
                code::OK
            },
            statuses,
            response_headers_to_add: vec![],
        })
    }
}

impl proto::RateLimitService for Limiter {
    fn handle(
        self: Arc<Self>,
        request: RateLimitRequest,
    ) -> BoxFuture<RateLimitResponse, tonic::Status> {
        Box::pin(async move { self.should_rate_limit(request).await })
    }
}

/// A service running on its own tokio runtime; stopped when dropped.
pub struct RateLimitServer {
    pub port: u16,
    limiter: Arc<Limiter>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RateLimitServer {
    /// Starts the service on `127.0.0.1:port` (0: a free port) with `file`'s limits, counters in
    /// the Redis at `redis_url`. Returns once it accepts connections.
    pub fn start(file: LimitsFile, redis_url: &str, port: u16) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (limiter, incoming, port) = runtime.block_on(async {
            let limiter = Limiter::new(file, redis_url).await?;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| e.to_string())?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let incoming =
                tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
                    .map_err(|e| e.to_string())?;
            Ok::<_, String>((Arc::new(limiter), incoming, port))
        })?;
        let service = RateLimitServiceServer(limiter.clone());
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        Ok(Self {
            port,
            limiter,
            runtime: Some(runtime),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn calls(&self) -> u64 {
        self.limiter.calls()
    }

    /// Stops at once, as a crashed service would: the listener and every open connection are
    /// closed when this returns (clients see resets, not a graceful drain).
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for RateLimitServer {
    fn drop(&mut self) {
        self.stop();
    }
}
