//! Generators and helpers shared by the fuzz properties.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::{Map, Number, Value};

/// The runner configuration: `default_cases` unless `PROPTEST_CASES` asks for more (or fewer),
/// and no failure persistence (findings are kept as regression tests instead).
pub fn runner(default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = None;
    config
}

/// Cut points for splitting an input: up to 8 indices, resolved against the input's length.
pub fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..8)
}

/// The pieces of `input` cut at `cuts` (sorted, empty pieces kept: a host may send them).
pub fn pieces<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for cut in at {
        out.push(&input[start..cut]);
        start = cut;
    }
    out.push(&input[start..]);
    out
}

/// Text that exercises escaping and multi-byte UTF-8: ASCII, quotes, backslashes, control
/// characters, 2-, 3- and 4-byte characters.
pub fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            1 => Just(' '),
            1 => Just('"'),
            1 => Just('\\'),
            1 => Just('\n'),
            1 => Just('\u{1}'),
            1 => Just('é'),
            1 => Just('€'),
            1 => Just('🦀'),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Numbers as providers send them, edges included: token counts up to `u64::MAX`, negatives,
/// fractions and a float too large for any integer type.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u64..5000).prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        1 => Just(Value::from(u64::MAX / 2 + 1)),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => Just(Value::from(2.5)),
        1 => Just(Value::from(-1)),
        1 => Just(Value::Number(Number::from_f64(1e300).unwrap_or(Number::from(0)))),
    ]
}

/// Any JSON value, a few levels deep, keys from `keys` so objects look like the real thing.
pub fn json(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
        prop::sample::select(keys).prop_map(|k| Value::String(k.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
    .boxed()
}

/// Sets `path` (object keys) in `root` to `value`, creating objects on the way.
pub fn set(root: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut at = root;
    for key in parents {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        at = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !at.is_object() {
        *at = Value::Object(Map::new());
    }
    if let Value::Object(map) = at {
        map.insert(last.to_string(), value);
    }
}

/// A value that is usually the expected kind of thing and sometimes anything at all. Boxed:
/// nested strategy types make stack frames of debug builds overflow the test thread's stack.
pub fn mostly<S>(good: S, keys: &'static [&'static str]) -> BoxedStrategy<Value>
where
    S: Strategy<Value = Value> + 'static,
{
    prop_oneof![6 => good.boxed(), 1 => json(keys)].boxed()
}

/// How SSE lines end: one style per stream (a CR followed by an LF line would be one CRLF).
#[derive(Debug, Clone, Copy)]
pub enum LineEnd {
    Lf,
    CrLf,
    Cr,
}

impl LineEnd {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Self::Lf => b"\n",
            Self::CrLf => b"\r\n",
            Self::Cr => b"\r",
        }
    }
}

pub fn line_end() -> impl Strategy<Value = LineEnd> {
    prop_oneof![
        3 => Just(LineEnd::Lf),
        1 => Just(LineEnd::CrLf),
        1 => Just(LineEnd::Cr),
    ]
}

/// One SSE event as bytes: an optional `event:` line and one `data:` line per line of `data`.
pub fn sse_event(event: Option<&str>, data: &str, end: LineEnd) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(end.bytes());
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(end.bytes());
    }
    out.extend_from_slice(end.bytes());
    out
}

/// The `data` of every event of an OpenAI stream the gateway produced (always LF-terminated).
pub fn sse_data(stream: &[u8]) -> Vec<String> {
    let mut parser = ai_gateway::sse::SseParser::new();
    let mut events = Vec::new();
    parser.feed(stream, &mut events);
    parser.finish(&mut events);
    events.into_iter().filter_map(|e| e.data).collect()
}
