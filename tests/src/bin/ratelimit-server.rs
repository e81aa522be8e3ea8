//! Envoy's RateLimitService on limitador + Redis, for tests and local runs:
//!
//! ```sh
//! cargo run -p gateway-tests --bin ratelimit-server -- \
//!     --limits limits.yaml --redis redis://127.0.0.1:6379 [--port 8081]
//! ```
//!
//! Prints `listening on 127.0.0.1:<port>` once it accepts connections, then serves until
//! killed. The limits file is described in tests/src/ratelimit/server.rs.

use gateway_tests::ratelimit::{LimitsFile, RateLimitServer};

fn main() {
    if let Err(e) = run() {
        eprintln!("ratelimit-server: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut limits = None;
    let mut redis = None;
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--limits" => limits = Some(value()?),
            "--redis" => redis = Some(value()?),
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            _ => {
                return Err(format!(
                    "unknown argument {arg}; usage: --limits FILE --redis URL [--port N]"
                ))
            }
        }
    }
    let path = limits.ok_or("--limits FILE is required")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let file = LimitsFile::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    let redis = redis.ok_or("--redis URL is required")?;
    let server = RateLimitServer::start(file, &redis, port)?;
    println!("listening on 127.0.0.1:{}", server.port);
    loop {
        std::thread::park();
    }
}
