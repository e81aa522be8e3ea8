use super::*;
use prost::Message;
use serde_json::json;

/// The messages as prost derives them from the .proto field declarations: an independent
/// encoder/decoder to check ours against.
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimitOverride {
        #[prost(uint32, tag = "1")]
        pub requests_per_unit: u32,
        #[prost(int32, tag = "2")]
        pub unit: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimitDescriptor {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<Entry>,
        #[prost(message, optional, tag = "2")]
        pub limit: Option<RateLimitOverride>,
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
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimit {
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(uint32, tag = "1")]
        pub requests_per_unit: u32,
        #[prost(int32, tag = "2")]
        pub unit: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Quota {
        #[prost(uint32, tag = "1")]
        pub requests: u32,
        #[prost(message, optional, tag = "2")]
        pub valid_until: Option<Duration>,
        #[prost(string, tag = "3")]
        pub id: String,
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
        #[prost(message, optional, tag = "5")]
        pub quota: Option<Quota>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HeaderValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
        #[prost(bytes = "vec", tag = "3")]
        pub raw_value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimitResponse {
        #[prost(int32, tag = "1")]
        pub overall_code: i32,
        #[prost(message, repeated, tag = "2")]
        pub statuses: Vec<DescriptorStatus>,
        #[prost(message, repeated, tag = "3")]
        pub response_headers_to_add: Vec<HeaderValue>,
        #[prost(message, repeated, tag = "4")]
        pub request_headers_to_add: Vec<HeaderValue>,
        #[prost(bytes = "vec", tag = "5")]
        pub raw_body: Vec<u8>,
        // dynamic_metadata (google.protobuf.Struct) stands in as opaque bytes: same wire type.
        #[prost(bytes = "vec", tag = "6")]
        pub dynamic_metadata: Vec<u8>,
        #[prost(message, optional, tag = "7")]
        pub quota: Option<Quota>,
    }
}

fn entry(k: &str, v: &str) -> pb::Entry {
    pb::Entry {
        key: k.into(),
        value: v.into(),
    }
}

fn sample_request() -> RateLimitRequest {
    RateLimitRequest {
        domain: "ai-gateway".into(),
        descriptors: vec![
            Descriptor {
                entries: vec![
                    ("unit".into(), "tokens".into()),
                    ("key".into(), "search-backend".into()),
                ],
            },
            Descriptor {
                entries: vec![("model".into(), "gpt-4o-mini".into())],
            },
        ],
        hits_addend: 1234,
    }
}

#[test]
fn request_bytes_equal_prosts() {
    let ours = sample_request();
    let theirs = pb::RateLimitRequest {
        domain: "ai-gateway".into(),
        descriptors: vec![
            pb::RateLimitDescriptor {
                entries: vec![entry("unit", "tokens"), entry("key", "search-backend")],
                limit: None,
            },
            pb::RateLimitDescriptor {
                entries: vec![entry("model", "gpt-4o-mini")],
                limit: None,
            },
        ],
        hits_addend: 1234,
    };
    assert_eq!(ours.encode(), theirs.encode_to_vec());
    assert_eq!(
        pb::RateLimitRequest::decode(&ours.encode()[..]).unwrap(),
        theirs
    );
}

#[test]
fn request_edge_values_round_trip_through_prost() {
    let long = "v".repeat(300); // a two-byte length
    for hits in [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX] {
        let ours = RateLimitRequest {
            domain: String::new(),
            descriptors: vec![
                Descriptor::default(),
                Descriptor {
                    entries: vec![("k".into(), long.clone()), ("é".into(), "✓".into())],
                },
            ],
            hits_addend: hits,
        };
        let decoded = pb::RateLimitRequest::decode(&ours.encode()[..]).unwrap();
        assert_eq!(decoded.hits_addend, hits);
        assert_eq!(decoded.domain, "");
        assert_eq!(decoded.descriptors.len(), 2);
        assert!(decoded.descriptors[0].entries.is_empty());
        assert_eq!(decoded.descriptors[1].entries[0].value, long);
        assert_eq!(decoded.descriptors[1].entries[1], entry("é", "✓"));
        assert_eq!(
            ours.encode(),
            decoded.encode_to_vec(),
            "same bytes as prost for hits {hits}"
        );
    }
}

fn full_response() -> pb::RateLimitResponse {
    pb::RateLimitResponse {
        overall_code: 2,
        statuses: vec![
            pb::DescriptorStatus {
                code: 1,
                current_limit: Some(pb::RateLimit {
                    name: "key-tokens".into(),
                    requests_per_unit: 50_000,
                    unit: 2,
                }),
                limit_remaining: 49_000,
                duration_until_reset: Some(pb::Duration {
                    seconds: 42,
                    nanos: 500_000_000,
                }),
                quota: Some(pb::Quota {
                    requests: 3,
                    valid_until: Some(pb::Duration {
                        seconds: 9,
                        nanos: 0,
                    }),
                    id: "q".into(),
                }),
            },
            pb::DescriptorStatus {
                code: 2,
                current_limit: Some(pb::RateLimit {
                    name: String::new(),
                    requests_per_unit: u32::MAX,
                    unit: 4,
                }),
                limit_remaining: 0,
                duration_until_reset: Some(pb::Duration {
                    seconds: 3600,
                    nanos: 0,
                }),
                quota: None,
            },
            pb::DescriptorStatus::default(),
        ],
        response_headers_to_add: vec![
            pb::HeaderValue {
                key: "x-ratelimit-limit".into(),
                value: "10, 10;w=60".into(),
                raw_value: vec![],
            },
            pb::HeaderValue {
                key: "x-raw".into(),
                value: String::new(),
                raw_value: b"raw\xffvalue".to_vec(),
            },
        ],
        request_headers_to_add: vec![pb::HeaderValue {
            key: "x-seen".into(),
            value: "1".into(),
            raw_value: vec![],
        }],
        raw_body: b"over the limit".to_vec(),
        dynamic_metadata: vec![0x0a, 0x03, b'a', b'b', b'c'],
        quota: Some(pb::Quota {
            requests: 1,
            valid_until: None,
            id: String::new(),
        }),
    }
}

#[test]
fn response_decodes_what_prost_encodes() {
    let bytes = full_response().encode_to_vec();
    let r = RateLimitResponse::decode(&bytes).unwrap();
    assert_eq!(r.overall_code, Code::OverLimit);
    assert_eq!(r.statuses.len(), 3);
    assert_eq!(
        r.statuses[0],
        DescriptorStatus {
            code: Code::Ok,
            current_limit: Some(RateLimit {
                name: "key-tokens".into(),
                requests_per_unit: 50_000,
                unit: Unit::Minute,
            }),
            limit_remaining: 49_000,
            duration_until_reset: Some(Duration {
                seconds: 42,
                nanos: 500_000_000
            }),
        }
    );
    assert_eq!(r.statuses[1].code, Code::OverLimit);
    assert_eq!(
        r.statuses[1]
            .current_limit
            .as_ref()
            .unwrap()
            .requests_per_unit,
        u32::MAX
    );
    assert_eq!(
        r.statuses[1].current_limit.as_ref().unwrap().unit,
        Unit::Day
    );
    assert_eq!(
        r.statuses[2],
        DescriptorStatus {
            code: Code::Unknown,
            current_limit: None,
            limit_remaining: 0,
            duration_until_reset: None
        }
    );
    assert_eq!(
        r.response_headers_to_add,
        vec![
            ("x-ratelimit-limit".to_string(), "10, 10;w=60".to_string()),
            ("x-raw".to_string(), "raw\u{fffd}value".to_string()),
        ]
    );
    assert_eq!(
        r.request_headers_to_add,
        vec![("x-seen".to_string(), "1".to_string())]
    );
}

#[test]
fn negative_and_unknown_enum_values_survive() {
    let msg = pb::RateLimitResponse {
        overall_code: 7,
        statuses: vec![pb::DescriptorStatus {
            code: -1,
            current_limit: Some(pb::RateLimit {
                name: String::new(),
                requests_per_unit: 1,
                unit: 9,
            }),
            limit_remaining: 0,
            duration_until_reset: Some(pb::Duration {
                seconds: -5,
                nanos: -1,
            }),
            quota: None,
        }],
        ..Default::default()
    };
    let r = RateLimitResponse::decode(&msg.encode_to_vec()).unwrap();
    assert_eq!(r.overall_code, Code::Other(7));
    assert_eq!(r.statuses[0].code, Code::Other(-1));
    assert_eq!(
        r.statuses[0].current_limit.as_ref().unwrap().unit,
        Unit::Other(9)
    );
    let d = r.statuses[0].duration_until_reset.unwrap();
    assert_eq!((d.seconds, d.nanos), (-5, -1));
    assert_eq!(d.ceil_seconds(), 0);
}

#[test]
fn an_empty_response_is_unknown_and_broken_ones_are_errors() {
    let r = RateLimitResponse::decode(&[]).unwrap();
    assert_eq!(r.overall_code, Code::Unknown);
    assert!(r.statuses.is_empty());
    let bad: [&[u8]; 7] = [
        &[0x08],             // truncated varint
        &[0x12, 0x05, 0x08], // length past the end
        &[0x00, 0x01],       // field number 0
        &[0x0b],             // start group: unsupported
        &[0x0a, 0x01, 0x00], // field 1 (varint) sent length-delimited
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ], // varint > 64 bits
        &[0x1a, 0x02, 0x0a, 0xff], // header key: truncated inner length
    ];
    for b in bad {
        assert!(RateLimitResponse::decode(b).is_err(), "{b:02x?}");
    }
}

#[test]
fn decoding_never_panics_on_truncated_or_random_input() {
    let bytes = full_response().encode_to_vec();
    for cut in 0..bytes.len() {
        let _ = RateLimitResponse::decode(&bytes[..cut]);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..2000usize {
        let mut buf = Vec::with_capacity(len % 64);
        for _ in 0..len % 64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        let _ = RateLimitResponse::decode(&buf);
    }
    // flipping each byte of a valid message
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        let _ = RateLimitResponse::decode(&b);
    }
}

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
