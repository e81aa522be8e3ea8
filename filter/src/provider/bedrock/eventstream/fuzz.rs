//! Property-based fuzzing of the event-stream decoder (private to Bedrock, so fuzzed here; the
//! other parsers are fuzzed from `filter/tests/fuzz/`). Random bytes, and frames built with
//! every header type and sometimes one byte flipped: no panic, the same messages whole and cut
//! at random offsets, the frames' string headers and payloads given back, and nothing held
//! beyond one message (`MAX_MESSAGE`). `PROPTEST_CASES` overrides the default case count.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

use super::*;

fn runner(default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = None;
    config
}

/// Everything the decoder gives for `input` fed in pieces cut at `cuts`, up to its first error.
fn decode(input: &[u8], cuts: &[Index]) -> Vec<Result<Message, DecodeError>> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    at.sort_unstable();
    at.push(input.len());
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at {
        decoder.push(&input[start..cut]);
        start = cut;
        while let Some(next) = decoder.next_message() {
            let failed = next.is_err();
            out.push(next);
            if failed {
                // Corruption is final: the same error again, and nothing kept.
                assert_eq!(decoder.next_message(), out.last().cloned());
                assert_eq!(decoder.pending(), 0);
                return out;
            }
        }
        // What waits is less than one message.
        assert!(
            decoder.pending() < MAX_MESSAGE,
            "{} bytes held",
            decoder.pending()
        );
    }
    out
}

/// A header value of each type of the reference (type byte, value bytes) with its string
/// form when it is a string (type 7).
fn header_value() -> impl Strategy<Value = (u8, Vec<u8>, Option<String>)> {
    prop_oneof![
        (0u8..=1).prop_map(|t| (t, Vec::new(), None)),
        any::<u8>().prop_map(|b| (2, vec![b], None)),
        any::<[u8; 2]>().prop_map(|b| (3, b.to_vec(), None)),
        any::<[u8; 4]>().prop_map(|b| (4, b.to_vec(), None)),
        any::<[u8; 8]>().prop_map(|b| (5, b.to_vec(), None)),
        any::<[u8; 8]>().prop_map(|b| (8, b.to_vec(), None)),
        any::<[u8; 16]>().prop_map(|b| (9, b.to_vec(), None)),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| {
            let mut v = (b.len() as u16).to_be_bytes().to_vec();
            v.extend(b);
            (6, v, None)
        }),
        "[ -~é]{0,12}".prop_map(|s| {
            let mut v = (s.len() as u16).to_be_bytes().to_vec();
            v.extend(s.as_bytes());
            (7, v, Some(s))
        }),
    ]
}

/// One frame and the string headers and payload it carries.
fn frame() -> impl Strategy<Value = (Vec<u8>, Message)> {
    let header = ("[:a-z-]{1,16}", header_value());
    (
        prop::collection::vec(header, 0..5),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(headers, payload)| {
            let mut section = Vec::new();
            let mut strings = Vec::new();
            for (name, (kind, value, string)) in headers {
                section.push(name.len() as u8);
                section.extend(name.as_bytes());
                section.push(kind);
                section.extend(value);
                if let Some(s) = string {
                    strings.push((name, s));
                }
            }
            let total = (PRELUDE + section.len() + payload.len() + 4) as u32;
            let mut bytes = total.to_be_bytes().to_vec();
            bytes.extend((section.len() as u32).to_be_bytes());
            let prelude_crc = crc32(&bytes);
            bytes.extend(prelude_crc.to_be_bytes());
            bytes.extend(section);
            bytes.extend(&payload);
            let crc = crc32(&bytes);
            bytes.extend(crc.to_be_bytes());
            let message = Message {
                headers: strings,
                payload,
            };
            (bytes, message)
        })
}

proptest! {
    #![proptest_config(runner(256))]

    #[test]
    fn random_bytes_decode_the_same_whole_and_split(
        input in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let whole = decode(&input, &[]);
        prop_assert_eq!(decode(&input, &cuts), whole);
    }

    #[test]
    fn frames_decode_to_what_they_carry(
        frames in prop::collection::vec(frame(), 0..6),
        flip in prop::option::weighted(0.2, (any::<Index>(), 1u8..=255)),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let mut input: Vec<u8> = frames.iter().flat_map(|(bytes, _)| bytes.clone()).collect();
        let whole = decode(&input, &[]);
        let expected: Vec<_> = frames.iter().map(|(_, m)| Ok(m.clone())).collect();
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(decode(&input, &cuts), whole);
        if let (Some((at, bits)), false) = (flip, input.is_empty()) {
            // One byte flipped: the CRCs catch it (or it becomes a shorter wait); never a
            // message that differs from the one sent.
            let i = at.index(input.len());
            input[i] ^= bits;
            let corrupted = decode(&input, &[]);
            prop_assert_eq!(decode(&input, &cuts), corrupted.clone());
            for (got, sent) in corrupted.iter().zip(&expected) {
                if let Ok(message) = got {
                    prop_assert_eq!(Ok(message.clone()), sent.clone());
                }
            }
        }
    }
}
