//! The SSE parser (`ai_gateway::sse`) on random bytes and on generated streams whose events are
//! known, so the parse can be checked against the WHATWG grammar, not against itself.
//!
//! Finding for the lead: `SseParser` has no cap on the unfinished line or event it keeps
//! (`pending()` grows with every byte until a blank line comes); the property below checks
//! only that it keeps nothing beyond the bytes of the current event.

use ai_gateway::sse::{SseEvent, SseParser};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::common::{cuts, line_end, pieces, runner, LineEnd};

/// Parses `input` fed in pieces; also checks that the parser never holds more than the bytes
/// received since the last event it handed out.
fn parse(input: &[u8], cuts: &[Index]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut fed = 0;
    for piece in pieces(input, cuts) {
        parser.feed(piece, &mut events);
        fed += piece.len();
        let handed_out: usize = events.iter().map(|e| e.raw.len()).sum();
        assert_eq!(
            parser.pending(),
            fed - handed_out,
            "pending after {fed} bytes"
        );
    }
    parser.finish(&mut events);
    assert_eq!(parser.pending(), 0, "nothing kept after finish");
    events
}

/// What a generated block holds, line by line.
#[derive(Debug, Clone)]
enum Line {
    Data(String),
    /// `data` without a colon: an empty data line.
    BareData,
    Event(String),
    Comment(String),
    Id(String),
    Unknown(String),
}

/// Field values: no CR or LF (they would end the line). Rendered after `: `, so a value's own
/// leading space must survive (the parser strips exactly one).
fn value() -> impl Strategy<Value = String> {
    "[ a-z:é€🦀{}\"\\[\\]]{0,12}"
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        5 => value().prop_map(Line::Data),
        1 => Just(Line::BareData),
        2 => value().prop_map(Line::Event),
        1 => value().prop_map(Line::Comment),
        1 => value().prop_map(Line::Id),
        1 => value().prop_map(Line::Unknown),
    ]
}

fn render(blocks: &[Vec<Line>], end: LineEnd, terminate_last: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        for line in block {
            let text = match line {
                Line::Data(v) => format!("data: {v}"),
                Line::BareData => "data".to_string(),
                Line::Event(v) => format!("event: {v}"),
                Line::Comment(v) => format!(":{v}"),
                Line::Id(v) => format!("id: {v}"),
                Line::Unknown(v) => format!("x-{v}"),
            };
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(end.bytes());
        }
        if terminate_last || i + 1 < blocks.len() {
            out.extend_from_slice(end.bytes());
        }
    }
    out
}

/// The events of the blocks by the grammar: `data` lines joined with LF, the last `event`
/// (WHATWG HTML, "Server-sent events", "Interpreting an event stream").
fn expected(blocks: &[Vec<Line>]) -> Vec<(Option<String>, Option<String>)> {
    blocks
        .iter()
        .map(|block| {
            let mut event = None;
            let mut data: Option<String> = None;
            for line in block {
                let value = match line {
                    Line::Data(v) => v.as_str(),
                    Line::BareData => "",
                    Line::Event(v) => {
                        event = Some(v.clone());
                        continue;
                    }
                    _ => continue,
                };
                data = Some(match data {
                    Some(d) => format!("{d}\n{value}"),
                    None => value.to_string(),
                });
            }
            (event, data)
        })
        .collect()
}

proptest! {
    #![proptest_config(runner(256))]

    #[test]
    fn random_bytes_parse_the_same_whole_and_split(
        input in prop::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'\r'), 1 => Just(b':')],
            0..300,
        ),
        cuts in cuts(),
    ) {
        let whole = parse(&input, &[]);
        prop_assert_eq!(&parse(&input, &cuts), &whole);
        let rejoined: Vec<u8> = whole.iter().flat_map(|e| e.raw.clone()).collect();
        prop_assert_eq!(rejoined, input.clone(), "raw bytes give back the stream");
        for event in &whole {
            // Lossy UTF-8 turns one bad byte into at most 3 bytes (U+FFFD).
            let data = event.data.as_deref().map_or(0, str::len);
            prop_assert!(data <= 3 * event.raw.len(), "data {} raw {}", data, event.raw.len());
        }
    }

    #[test]
    fn generated_streams_parse_as_the_grammar_says(
        blocks in prop::collection::vec(prop::collection::vec(line(), 1..5), 0..6),
        end in line_end(),
        terminate_last in any::<bool>(),
        cuts in cuts(),
    ) {
        let input = render(&blocks, end, terminate_last);
        let events = parse(&input, &cuts);
        let got: Vec<_> = events.iter().map(|e| (e.event.clone(), e.data.clone())).collect();
        prop_assert_eq!(got, expected(&blocks));
    }
}
