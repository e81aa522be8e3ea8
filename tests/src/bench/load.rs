//! Load and measurement: wrk (Debian) for throughput and latency percentiles, and a small client
//! of our own for the time to first and last byte of streams, over one kept-alive connection.

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{read_body, read_head};

/// Where and how to send the benchmark's requests.
#[derive(Debug, Clone)]
pub struct Target {
    pub port: u16,
    pub path: String,
    /// Besides content-type and content-length.
    pub headers: Vec<(String, String)>,
}

/// What wrk measured in one run.
#[derive(Debug, Clone, Default)]
pub struct WrkFigures {
    pub connections: u32,
    pub requests: u64,
    pub duration_s: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Connect, read, write errors and timeouts.
    pub errors: u64,
    /// Responses with a status other than 2xx/3xx.
    pub non_2xx: u64,
    /// Requests the script generated (wrk-mix.lua only: how far its sequence went).
    pub sent: Option<u64>,
}

impl WrkFigures {
    pub fn to_json(&self) -> Value {
        json!({"connections": self.connections, "requests": self.requests,
            "duration_s": round(self.duration_s, 3), "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 4), "p90_ms": round(self.p90_ms, 4),
            "p99_ms": round(self.p99_ms, 4), "mean_ms": round(self.mean_ms, 4),
            "max_ms": round(self.max_ms, 3), "errors": self.errors, "non_2xx": self.non_2xx})
    }

    /// Whether every request succeeded.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.non_2xx == 0 && self.requests > 0
    }
}

pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Runs wrk (one thread, `connections` kept-alive connections) against `target` for `duration`,
/// POSTing the file `body`.
pub fn wrk(
    lua: &Path,
    target: &Target,
    body: &Path,
    connections: u32,
    duration: Duration,
) -> Result<WrkFigures, String> {
    wrk_with_env(lua, target, body, connections, duration, &[])
}

/// [`wrk`] with more environment for the script (wrk-mix.lua's bodies and sequence).
pub fn wrk_with_env(
    lua: &Path,
    target: &Target,
    body: &Path,
    connections: u32,
    duration: Duration,
    env: &[(String, String)],
) -> Result<WrkFigures, String> {
    let headers: String = target
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    let url = format!("http://127.0.0.1:{}{}", target.port, target.path);
    let out = Command::new("wrk")
        .args(["-t1", "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["--timeout", "10s", "-s"])
        .arg(lua)
        .arg(&url)
        .env("BENCH_BODY", body)
        .env("BENCH_HEADERS", headers)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("running wrk: {e} (is it installed? `make bench` installs it)"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .ok_or_else(|| {
            format!(
                "wrk printed no figures (exit {}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("wrk output {line}: {e}"))?;
    let num = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let duration_s = num("duration_us") / 1e6;
    let requests = num("requests") as u64;
    Ok(WrkFigures {
        connections,
        requests,
        duration_s,
        rps: if duration_s > 0.0 {
            requests as f64 / duration_s
        } else {
            0.0
        },
        p50_ms: num("p50_us") / 1e3,
        p90_ms: num("p90_us") / 1e3,
        p99_ms: num("p99_us") / 1e3,
        mean_ms: num("mean_us") / 1e3,
        max_ms: num("max_us") / 1e3,
        errors: ["connect_errors", "read_errors", "write_errors", "timeouts"]
            .iter()
            .map(|k| num(k) as u64)
            .sum(),
        non_2xx: num("status_errors") as u64,
        sent: v["sent"].as_u64(),
    })
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort();
        let at = |q: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e3
        };
        Self {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
        }
    }

    pub fn to_json(self) -> Value {
        json!({"p50_ms": round(self.p50_ms, 4), "p90_ms": round(self.p90_ms, 4), "p99_ms": round(self.p99_ms, 4)})
    }
}

/// Time to first and to last byte of streamed answers, one request after the other.
#[derive(Debug, Clone, Default)]
pub struct StreamFigures {
    pub requests: usize,
    pub ttfb: Percentiles,
    pub ttlb: Percentiles,
    /// SSE `data:` events in the last answer.
    pub events: usize,
    pub body_bytes: usize,
    /// Share of the proxy's cores other processes took meanwhile (see `report::Measured`).
    pub foreign_share: Option<f64>,
}

impl StreamFigures {
    pub fn to_json(&self) -> Value {
        json!({"requests": self.requests, "ttfb": self.ttfb.to_json(), "ttlb": self.ttlb.to_json(),
            "events_received": self.events, "body_bytes": self.body_bytes,
            "foreign_share_of_proxy_cpus": self.foreign_share.map(|x| round(x, 3))})
    }
}

/// One response as the stream client saw it.
pub struct Timed {
    pub status: u16,
    pub body: Vec<u8>,
    pub first_byte: Duration,
    pub last_byte: Duration,
    pub headers: Vec<(String, String)>,
}

/// A kept-alive HTTP/1.1 connection that times each response.
pub struct Client {
    target: Target,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Client {
    pub fn new(target: Target) -> Self {
        Self { target, conn: None }
    }

    pub fn send(&mut self, body: &[u8]) -> io::Result<Timed> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", self.target.port))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            let reader = BufReader::new(stream.try_clone()?);
            self.conn = Some((stream, reader));
        }
        let result = self.exchange(body);
        if result.as_ref().map_or(true, |t| {
            t.headers
                .iter()
                .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"))
        }) {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, body: &[u8]) -> io::Result<Timed> {
        let Some((stream, reader)) = self.conn.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let mut req = format!(
            "POST {} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            self.target.path,
            self.target.port,
            body.len()
        )
        .into_bytes();
        for (k, v) in &self.target.headers {
            req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        let sent = Instant::now();
        stream.write_all(&req)?;
        let head = read_head(reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))?;
        let status = head
            .first_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut first_byte = None;
        let until_eof =
            head.header("content-length").is_none() && head.header("transfer-encoding").is_none();
        let body = read_body(reader, &head, until_eof, |piece| {
            if first_byte.is_none() && !piece.is_empty() {
                first_byte = Some(sent.elapsed());
            }
        })?;
        let last_byte = sent.elapsed();
        Ok(Timed {
            status,
            body,
            first_byte: first_byte.unwrap_or(last_byte),
            last_byte,
            headers: head.headers,
        })
    }
}

/// SSE `data:` lines in a body.
pub fn count_events(body: &[u8]) -> usize {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| l.starts_with("data:"))
        .count()
}

/// Streams `body` to `target` one request after the other: `warmup` untimed requests, then up
/// to `max` timed ones within `max_time`.
pub fn stream_run(
    target: &Target,
    body: &[u8],
    warmup: usize,
    max: usize,
    max_time: Duration,
) -> Result<StreamFigures, String> {
    let mut client = Client::new(target.clone());
    let mut send = |i: usize| -> Result<Timed, String> {
        let t = client
            .send(body)
            .map_err(|e| format!("stream request {i}: {e}"))?;
        if t.status != 200 {
            return Err(format!(
                "stream request {i}: status {}: {}",
                t.status,
                String::from_utf8_lossy(&t.body)
            ));
        }
        Ok(t)
    };
    for i in 0..warmup {
        send(i)?;
    }
    let mut ttfb = Vec::with_capacity(max);
    let mut ttlb = Vec::with_capacity(max);
    let mut last = None;
    let started = Instant::now();
    while ttfb.len() < max.max(1) && (ttfb.is_empty() || started.elapsed() < max_time) {
        let t = send(warmup + ttfb.len())?;
        ttfb.push(t.first_byte);
        ttlb.push(t.last_byte);
        last = Some(t);
    }
    let last = last.ok_or("no stream request was made")?;
    Ok(StreamFigures {
        requests: ttfb.len(),
        ttfb: Percentiles::of(&mut ttfb),
        ttlb: Percentiles::of(&mut ttlb),
        events: count_events(&last.body),
        body_bytes: last.body.len(),
        foreign_share: None,
    })
}
