use super::*;
use crate::ratelimit::prost_messages as pb;
use prost::Message;

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
