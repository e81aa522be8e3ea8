use super::*;
use crate::quota::Kind;
use prost::Message;
use prost_messages as pb;
use serde_json::json;

fn service(failure_mode: &str) -> Service {
    compile_service(
        &json!({"cluster": "ratelimit", "domain": "ai-gateway", "failure_mode": failure_mode}),
        "rate_limit_service",
    )
    .unwrap()
}

#[test]
fn requests_carry_unit_and_key_team_model_descriptors() {
    let s = service("deny");
    let subject = Subject {
        key_id: Some("search-backend"),
        team: Some("search"),
        model: "gpt-4o",
    };
    let r = s.request(Kind::Tokens, subject, 1500);
    assert_eq!(r.domain, "ai-gateway");
    assert_eq!(r.hits_addend, 1500);
    let d: Vec<Vec<(&str, &str)>> = r
        .descriptors
        .iter()
        .map(|d| {
            d.entries
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .collect();
    assert_eq!(
        d,
        vec![
            vec![("unit", "tokens"), ("key", "search-backend")],
            vec![("unit", "tokens"), ("team", "search")],
            vec![("unit", "tokens"), ("model", "gpt-4o")],
        ]
    );
    let anonymous = Subject {
        key_id: None,
        team: Some(""),
        model: "gpt-4o",
    };
    let r = s.request(Kind::Requests, anonymous, 99);
    assert_eq!(r.descriptors.len(), 1);
    assert_eq!(r.hits_addend, 1);
    // cost in units of $0.0001, rounded up, at least one
    assert_eq!(s.hits(Kind::Cost, 0), 1);
    assert_eq!(s.hits(Kind::Cost, 100), 1);
    assert_eq!(s.hits(Kind::Cost, 101), 2);
    assert_eq!(s.hits(Kind::Tokens, u64::MAX), u32::MAX);
}

fn ok_status(limit: u32, remaining: u32) -> pb::DescriptorStatus {
    pb::DescriptorStatus {
        code: 1,
        current_limit: Some(pb::RateLimit {
            name: String::new(),
            requests_per_unit: limit,
            unit: 2,
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(pb::Duration {
            seconds: 30,
            nanos: 0,
        }),
        quota: None,
    }
}

#[test]
fn verdicts_follow_the_answer_and_the_failure_mode() {
    let allow = service("allow");
    let deny = service("deny");
    let ok = pb::RateLimitResponse {
        overall_code: 1,
        statuses: vec![ok_status(10, 3)],
        ..Default::default()
    }
    .encode_to_vec();
    assert!(matches!(
        deny.verdict(Kind::Requests, 0, Some(&ok)),
        Verdict::Allowed { ref statuses, .. } if statuses[0].limit_remaining == 3
    ));
    // UNKNOWN (e.g. no domain) lets the request through, as Envoy's filter does
    assert!(matches!(
        deny.verdict(Kind::Requests, 0, Some(&[])),
        Verdict::Allowed { .. }
    ));
    let mut over_status = ok_status(10, 0);
    over_status.code = 2;
    over_status.duration_until_reset = Some(pb::Duration {
        seconds: 12,
        nanos: 1,
    });
    let over = pb::RateLimitResponse {
        overall_code: 2,
        statuses: vec![ok_status(100, 50), over_status],
        response_headers_to_add: vec![pb::HeaderValue {
            key: "x-ratelimit-limit".into(),
            value: "10".into(),
            raw_value: vec![],
        }],
        ..Default::default()
    }
    .encode_to_vec();
    match allow.verdict(Kind::Tokens, 0, Some(&over)) {
        Verdict::OverLimit {
            retry_after,
            descriptor,
            headers,
            service_headers,
        } => {
            assert_eq!(retry_after, 13);
            assert_eq!(descriptor, Some(1));
            assert_eq!(
                headers,
                vec![
                    ("retry-after", "13".to_string()),
                    ("x-ratelimit-limit-tokens", "10".to_string()),
                    ("x-ratelimit-remaining-tokens", "0".to_string()),
                    ("x-ratelimit-reset-tokens", "13s".to_string()),
                ]
            );
            assert_eq!(service_headers.len(), 1);
        }
        v => panic!("{v:?}"),
    }
    // the service is down or answers garbage: the failure mode decides
    for (grpc, body) in [(14u32, None), (0, Some(&[0xffu8][..])), (4, Some(&ok[..]))] {
        assert!(matches!(
            allow.verdict(Kind::Requests, grpc, body),
            Verdict::Failed { allowed: true, .. }
        ));
        assert!(matches!(
            deny.verdict(Kind::Requests, grpc, body),
            Verdict::Failed { allowed: false, .. }
        ));
    }
}

#[test]
fn global_budget_thresholds_are_seen_by_the_call_that_crossed() {
    let status = |limit: u32, remaining: u32| {
        RateLimitResponse::decode(
            &pb::RateLimitResponse {
                overall_code: 1,
                statuses: vec![ok_status(limit, remaining)],
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .unwrap()
        .statuses
        .remove(0)
    };
    assert!(crossed_thresholds(&status(1000, 250), 40).is_empty()); // 710 → 750
    assert_eq!(crossed_thresholds(&status(1000, 200), 50), vec![80]); // 750 → 800
    assert_eq!(crossed_thresholds(&status(1000, 0), 300), vec![80, 90, 100]);
    assert!(crossed_thresholds(&status(1000, 150), 10).is_empty()); // 840 → 850
    let mut over = status(1000, 0);
    over.code = Code::OverLimit;
    assert!(crossed_thresholds(&over, 300).is_empty());
}

#[test]
fn service_config_refusals_name_the_field() {
    let at = "rate_limit_service";
    let cases = [
        (json!({"domain": "d"}), at.to_string()),
        (
            json!({"cluster": "", "domain": "d"}),
            format!("{at}.cluster"),
        ),
        (
            json!({"cluster": "c", "domain": ""}),
            format!("{at}.domain"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "timeout_ms": 0}),
            format!("{at}.timeout_ms"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "failure_mode": "open"}),
            format!("{at}.failure_mode"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "units": ["tokens", "bytes"]}),
            format!("{at}.units[1]"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "units": ["cost", "cost"]}),
            format!("{at}.units[1]"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "units": []}),
            format!("{at}.units"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "cost_unit_usd": 0}),
            format!("{at}.cost_unit_usd"),
        ),
        (
            json!({"cluster": "c", "domain": "d", "extra": 1}),
            at.to_string(),
        ),
    ];
    for (doc, field) in cases {
        let e = compile_service(&doc, at).unwrap_err();
        assert_eq!(e.field, field, "{doc}: {e}");
    }
    let s = compile_service(
        &json!({"cluster": "c", "domain": "d", "units": ["cost"], "cost_unit_usd": 0.01, "timeout_ms": 50}),
        at,
    )
    .unwrap();
    assert_eq!(
        (s.units, s.cost_unit_micros, s.timeout_ms, s.failure_mode),
        (vec![Kind::Cost], 10_000, 50, FailureMode::Allow)
    );
}
