//! The test-side rate limit service (tests/src/ratelimit/): Envoy's RateLimitService API on
//! limitador with a real Redis, checked with a tonic client: OK until the limit, then
//! OVER_LIMIT; `hits_addend` counts; two instances share one count through Redis, exactly,
//! even under concurrent calls; a Redis outage answers UNAVAILABLE (so the gateway's failure
//! mode applies).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gateway_tests::ratelimit::proto::{code, unit, RateLimitResponse};
use gateway_tests::ratelimit::{request, Client, LimitsFile, RateLimitServer, RedisServer};

const LIMITS: &str = r#"
domain: ai-gateway
limits:
  - name: key-requests
    when: {unit: requests}
    per: key
    max: 3
    seconds: 60
  - name: key-tokens
    when: {unit: tokens}
    per: key
    max: 1000
    seconds: 60
  - name: team-tokens
    when: {unit: tokens}
    per: team
    max: 1500
    seconds: 3600
  - name: all-cost
    when: {unit: cost}
    max: 10
    seconds: 86400
"#;

fn limits() -> LimitsFile {
    LimitsFile::parse(LIMITS).expect("limits")
}

fn server(redis: &RedisServer) -> RateLimitServer {
    RateLimitServer::start(limits(), &redis.url(), 0).expect("rate limit server")
}

fn client(server: &RateLimitServer) -> Client {
    Client::connect(&server.url()).expect("client")
}

fn ask(c: &mut Client, unit: &str, key: &str, hits: u32) -> RateLimitResponse {
    c.should_rate_limit(request(
        "ai-gateway",
        &[&[("unit", unit), ("key", key)]],
        hits,
    ))
    .expect("ShouldRateLimit")
}

#[test]
fn answers_ok_until_the_limit_then_over_limit() {
    let redis = RedisServer::start();
    let server = server(&redis);
    let mut c = client(&server);
    for remaining in [2u32, 1, 0] {
        let r = ask(&mut c, "requests", "app", 1);
        assert_eq!(r.overall_code, code::OK, "{r:?}");
        let s = &r.statuses[0];
        assert_eq!((s.code, s.limit_remaining), (code::OK, remaining), "{r:?}");
        let limit = s.current_limit.as_ref().unwrap();
        assert_eq!(
            (limit.name.as_str(), limit.requests_per_unit, limit.unit),
            ("key-requests", 3, unit::MINUTE)
        );
        let reset = s.duration_until_reset.as_ref().unwrap();
        assert!((1..=60).contains(&reset.seconds), "{reset:?}");
    }
    let r = ask(&mut c, "requests", "app", 1);
    assert_eq!(r.overall_code, code::OVER_LIMIT, "{r:?}");
    assert_eq!(
        (r.statuses[0].code, r.statuses[0].limit_remaining),
        (code::OVER_LIMIT, 0)
    );
    // another key has its own counter; a descriptor no limit matches is OK
    assert_eq!(ask(&mut c, "requests", "other", 1).overall_code, code::OK);
    let r = c
        .should_rate_limit(request(
            "ai-gateway",
            &[&[("unit", "requests"), ("model", "gpt-4o")]],
            1,
        ))
        .unwrap();
    assert_eq!(r.overall_code, code::OK);
    assert_eq!(r.statuses[0].current_limit, None);
    // an unknown domain has no limits; an empty one is UNKNOWN
    let r = c
        .should_rate_limit(request(
            "elsewhere",
            &[&[("unit", "requests"), ("key", "app")]],
            1,
        ))
        .unwrap();
    assert_eq!(r.overall_code, code::OK);
    let r = c
        .should_rate_limit(request("", &[&[("key", "app")]], 1))
        .unwrap();
    assert_eq!(r.overall_code, code::UNKNOWN);
    assert_eq!(server.calls(), 8);
}

#[test]
fn hits_addend_counts_and_zero_counts_as_one() {
    let redis = RedisServer::start();
    let server = server(&redis);
    let mut c = client(&server);
    let r = ask(&mut c, "tokens", "app", 600);
    assert_eq!(
        (r.overall_code, r.statuses[0].limit_remaining),
        (code::OK, 400)
    );
    // 500 does not fit in the 400 left: refused, and nothing is counted
    let r = ask(&mut c, "tokens", "app", 500);
    assert_eq!(r.overall_code, code::OVER_LIMIT);
    assert_eq!(r.statuses[0].limit_remaining, 400);
    let r = ask(&mut c, "tokens", "app", 399);
    assert_eq!(
        (r.overall_code, r.statuses[0].limit_remaining),
        (code::OK, 1)
    );
    // hits_addend 0 means 1
    let r = ask(&mut c, "tokens", "app", 0);
    assert_eq!(
        (r.overall_code, r.statuses[0].limit_remaining),
        (code::OK, 0)
    );
    assert_eq!(
        ask(&mut c, "tokens", "app", 0).overall_code,
        code::OVER_LIMIT
    );
}

#[test]
fn every_descriptor_is_checked_and_reported_in_order() {
    let redis = RedisServer::start();
    let server = server(&redis);
    let mut c = client(&server);
    let call = |c: &mut Client, key: &str, hits: u32| {
        c.should_rate_limit(request(
            "ai-gateway",
            &[
                &[("unit", "tokens"), ("key", key)],
                &[("unit", "tokens"), ("team", "search")],
                &[("unit", "tokens"), ("model", "gpt-4o")],
            ],
            hits,
        ))
        .unwrap()
    };
    let r = call(&mut c, "a", 900);
    assert_eq!(r.overall_code, code::OK);
    let remaining: Vec<u32> = r.statuses.iter().map(|s| s.limit_remaining).collect();
    assert_eq!(remaining, vec![100, 600, 0]);
    assert_eq!(
        r.statuses[1].current_limit.as_ref().unwrap().unit,
        unit::HOUR
    );
    // key b is fresh, but the team has 600 left: the team descriptor is the one over
    let r = call(&mut c, "b", 700);
    assert_eq!(r.overall_code, code::OVER_LIMIT);
    let codes: Vec<i32> = r.statuses.iter().map(|s| s.code).collect();
    assert_eq!(codes, vec![code::OK, code::OVER_LIMIT, code::OK]);
    // nothing was counted for the refused call
    assert_eq!(call(&mut c, "b", 600).overall_code, code::OK);
}

#[test]
fn two_instances_share_one_count_through_redis() {
    let redis = RedisServer::start();
    let (one, two) = (server(&redis), server(&redis));
    let (mut a, mut b) = (client(&one), client(&two));
    // a shared cost budget of 10 units: 4 + 4 fit, 3 does not, 2 does
    assert_eq!(ask(&mut a, "cost", "k1", 4).overall_code, code::OK);
    let r = ask(&mut b, "cost", "k2", 4);
    assert_eq!(
        (r.overall_code, r.statuses[0].limit_remaining),
        (code::OK, 2)
    );
    assert_eq!(ask(&mut a, "cost", "k3", 3).overall_code, code::OVER_LIMIT);
    assert_eq!(ask(&mut b, "cost", "k1", 2).overall_code, code::OK);
    assert_eq!(ask(&mut a, "cost", "k1", 1).overall_code, code::OVER_LIMIT);
    assert_eq!((one.calls(), two.calls()), (3, 2));
}

#[test]
fn concurrent_calls_across_two_instances_admit_exactly_the_limit() {
    let redis = RedisServer::start();
    let servers = [server(&redis), server(&redis)];
    let admitted = Arc::new(AtomicUsize::new(0));
    let urls: Vec<String> = servers.iter().map(RateLimitServer::url).collect();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let url = urls[i % 2].clone();
            let admitted = admitted.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&url).unwrap();
                for _ in 0..25 {
                    // 200 calls of 7 tokens against key-tokens' 1000: 142 fit
                    if ask(&mut c, "tokens", "busy", 7).overall_code == code::OK {
                        admitted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 142);
    let mut c = Client::connect(&urls[0]).unwrap();
    let r = ask(&mut c, "tokens", "busy", 6);
    assert_eq!(
        (r.overall_code, r.statuses[0].limit_remaining),
        (code::OK, 0)
    );
}

#[test]
fn a_redis_outage_answers_unavailable() {
    let redis = RedisServer::start();
    let server = server(&redis);
    let mut c = client(&server);
    assert_eq!(ask(&mut c, "requests", "app", 1).overall_code, code::OK);
    drop(redis);
    let e = c
        .should_rate_limit(request(
            "ai-gateway",
            &[&[("unit", "requests"), ("key", "app")]],
            1,
        ))
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
}

#[test]
fn a_stopped_service_refuses_connections() {
    let redis = RedisServer::start();
    let mut server = server(&redis);
    let url = server.url();
    let mut c = client(&server);
    assert_eq!(ask(&mut c, "requests", "app", 1).overall_code, code::OK);
    server.stop();
    // the open connection fails, and no new one is accepted
    assert!(c
        .should_rate_limit(request(
            "ai-gateway",
            &[&[("unit", "requests"), ("key", "app")]],
            1
        ))
        .is_err());
    assert!(Client::connect(&url).is_err());
}

#[test]
fn the_binary_serves_a_limits_file() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("gw-rls-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("limits.yaml");
    std::fs::write(&file, LIMITS).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratelimit-server"))
        .arg("--limits")
        .arg(&file)
        .args(["--redis", &redis.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let mut c = Client::connect(&format!("http://127.0.0.1:{port}")).unwrap();
    let results: Vec<i32> = (0..4)
        .map(|_| ask(&mut c, "requests", "bin", 1).overall_code)
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        results,
        vec![code::OK, code::OK, code::OK, code::OVER_LIMIT]
    );
}

#[test]
fn bad_limits_files_are_refused() {
    for bad in [
        "domain: ''\nlimits: []",
        "domain: d\nlimits: [{name: a, max: 0, seconds: 1}]",
        "domain: d\nlimits: [{name: a, max: 1, seconds: 1}, {name: a, max: 1, seconds: 1}]",
        "domain: d\nlimits: [{name: a, max: 1, seconds: 1, colour: red}]",
    ] {
        assert!(LimitsFile::parse(bad).is_err(), "{bad}");
    }
}
