//! Incremental Server-Sent Events parser over bytes.
//!
//! Network chunks do not follow event boundaries: a line, a CRLF pair or a UTF-8 character may
//! be split anywhere. The parser keeps the unfinished tail between calls and yields each event
//! (a block ended by a blank line) with its parsed fields and its exact raw bytes, so a caller
//! can re-emit it untouched. Follows the WHATWG SSE grammar: LF, CRLF and CR line ends,
//! `:` comments, multi-line `data:`, one optional space after the colon.
//!
//! The provider controls how long an event is: past [`MAX_EVENT_BYTES`] the parser drops what
//! it holds, reports [`SseParser::overflowed`] and ignores the rest of the stream, so a
//! never-ending line cannot grow the VM's memory. The caller ends the client's stream with an
//! error event.

/// Largest event (its raw bytes) the parser holds. OpenAI, Anthropic, Gemini and Cohere chat
/// events are a few hundred bytes; a streamed tool call's argument delta or a refusal stays far
/// below this.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Largest buffer reserved ahead for the next event's raw bytes (a larger event grows it).
const RAW_CAPACITY_HINT: usize = 4096;

/// One block of the stream, ended by a blank line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; `None` when the block had no data line (comments only).
    pub data: Option<String>,
    /// The block's bytes as received, terminators included (empty from a parser made with
    /// [`SseParser::fields_only`]).
    pub raw: Vec<u8>,
}

#[derive(Debug)]
pub struct SseParser {
    limit: usize,
    /// An event grew past `limit`: everything after it is ignored.
    overflowed: bool,
    /// A line split across chunks, until its end arrives (a whole line is read in place).
    line: Vec<u8>,
    /// Keep each event's raw bytes (callers that re-emit events untouched).
    keep_raw: bool,
    raw: Vec<u8>,
    /// Bytes of the event being read, counted against `limit` whether kept or not.
    event_len: usize,
    event: Option<String>,
    data: Option<Vec<u8>>,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    pending_cr: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that gives up on events larger than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            overflowed: false,
            line: Vec::new(),
            keep_raw: true,
            raw: Vec::new(),
            event_len: 0,
            event: None,
            data: None,
            pending_cr: false,
        }
    }

    /// A parser for callers that read events' fields and never re-emit their bytes
    /// (translators): no copy of each event's raw bytes is kept.
    pub fn fields_only() -> Self {
        Self {
            keep_raw: false,
            ..Self::default()
        }
    }

    /// An event was larger than the limit; the parser has dropped it and ignores what follows.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Feeds one chunk; appends each event completed by it to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) {
        if chunk.is_empty() || self.overflowed {
            return;
        }
        if self.pending_cr {
            // The line ended in CR at the end of the last chunk; its LF, if any, is here.
            self.pending_cr = false;
            if let Some((b'\n', rest)) = chunk.split_first() {
                self.take_raw(b"\n");
                chunk = rest;
            }
            self.end_line(out);
        }
        while !chunk.is_empty() {
            let end = memchr::memchr2(b'\n', b'\r', chunk);
            let text_len = end.unwrap_or(chunk.len());
            if self.event_len.saturating_add(text_len) > self.limit {
                self.overflow();
                return;
            }
            let Some(end) = end else {
                self.line.extend_from_slice(chunk);
                self.take_raw(chunk);
                return;
            };
            let (text, rest) = chunk.split_at(end);
            self.take_raw(text);
            // `rest` starts with the terminator found above.
            let terminator_len = match rest {
                [b'\r', b'\n', ..] => 2,
                [b'\r'] => {
                    // CR or CRLF? Only the next chunk can tell; the line ends there.
                    self.line.extend_from_slice(text);
                    self.take_raw(b"\r");
                    self.pending_cr = true;
                    return;
                }
                _ => 1,
            };
            let (terminator, after) = rest.split_at(terminator_len);
            self.take_raw(terminator);
            chunk = after;
            if self.line.is_empty() {
                // The whole line is in this chunk: read in place, no copy.
                if text.is_empty() {
                    self.dispatch(out);
                } else {
                    Self::field(text, &mut self.data, &mut self.event);
                }
            } else {
                self.line.extend_from_slice(text);
                self.process_field();
            }
        }
    }

    /// Ends the stream: an unterminated last line or event is still delivered, so no byte the
    /// provider sent is lost.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if self.overflowed {
            return;
        }
        if self.pending_cr {
            self.pending_cr = false;
            self.end_line(out);
        }
        if !self.line.is_empty() {
            self.process_field();
        }
        if self.event_len > 0 {
            self.dispatch(out);
        }
    }

    /// Bytes received that do not yet form a complete event.
    pub fn pending(&self) -> usize {
        self.event_len
    }

    fn take_raw(&mut self, bytes: &[u8]) {
        self.event_len = self.event_len.saturating_add(bytes.len());
        if self.keep_raw {
            self.raw.extend_from_slice(bytes);
        }
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        // Give the memory back, not only the length.
        self.line = Vec::new();
        self.raw = Vec::new();
        self.event_len = 0;
        self.data = None;
        self.event = None;
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            self.dispatch(out);
        } else {
            self.process_field();
        }
    }

    fn process_field(&mut self) {
        // The line buffer is kept (cleared, not replaced): one allocation per stream, not per line.
        let Self {
            line, data, event, ..
        } = self;
        let line_bytes: &[u8] = line;
        Self::field(line_bytes, data, event);
        line.clear();
    }

    fn field(line: &[u8], data: &mut Option<Vec<u8>>, event: &mut Option<String>) {
        if line.first() == Some(&b':') {
            return; // comment
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let (name, rest) = line.split_at(colon);
                let value = rest.get(1..).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => match data {
                Some(data) => {
                    data.push(b'\n');
                    data.extend_from_slice(value);
                }
                None => *data = Some(value.to_vec()),
            },
            b"event" => *event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry and unknown fields need no action here; they stay in `raw`.
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        out.push(SseEvent {
            event: self.event.take(),
            data: self
                .data
                .take()
                // No copy when the data is UTF-8, as it nearly always is.
                .map(|d| {
                    String::from_utf8(d)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                }),
            // The next event is likely as long as this one: one allocation, not a regrowth.
            raw: std::mem::replace(
                &mut self.raw,
                Vec::with_capacity(if self.keep_raw {
                    self.event_len.min(RAW_CAPACITY_HINT)
                } else {
                    0
                }),
            ),
        });
        self.event_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_split(stream: &[u8], split_at: &[usize]) -> Vec<SseEvent> {
        parse_split_with(SseParser::new(), stream, split_at)
    }

    fn parse_split_with(mut p: SseParser, stream: &[u8], split_at: &[usize]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in split_at {
            p.feed(&stream[start..cut], &mut out);
            start = cut;
        }
        p.feed(&stream[start..], &mut out);
        p.finish(&mut out);
        out
    }

    /// Every stream parsed whole must equal the same stream split at every byte offset, and at
    /// every pair of offsets; the raw bytes concatenated give back the stream exactly. A parser
    /// that keeps no raw bytes finds the same events at every offset.
    fn assert_split_invariant(stream: &[u8]) -> Vec<SseEvent> {
        let whole = parse_split(stream, &[]);
        let fields: Vec<SseEvent> = whole
            .iter()
            .map(|e| SseEvent {
                raw: Vec::new(),
                ..e.clone()
            })
            .collect();
        for a in 0..=stream.len() {
            assert_eq!(parse_split(stream, &[a]), whole, "split at {a}");
            assert_eq!(
                parse_split_with(SseParser::fields_only(), stream, &[a]),
                fields,
                "fields only, split at {a}"
            );
            for b in a..=stream.len() {
                assert_eq!(parse_split(stream, &[a, b]), whole, "split at {a},{b}");
            }
        }
        let rejoined: Vec<u8> = whole.iter().flat_map(|e| e.raw.clone()).collect();
        assert_eq!(rejoined, stream);
        whole
    }

    fn data(events: &[SseEvent]) -> Vec<Option<&str>> {
        events.iter().map(|e| e.data.as_deref()).collect()
    }

    #[test]
    fn openai_stream_with_lf() {
        let s = b"data: {\"a\":1}\n\ndata: {\"b\":\"\xc3\xa9\"}\n\ndata: [DONE]\n\n";
        let ev = assert_split_invariant(s);
        assert_eq!(
            data(&ev),
            [
                Some("{\"a\":1}"),
                Some("{\"b\":\"\u{e9}\"}"),
                Some("[DONE]")
            ]
        );
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        let ev = assert_split_invariant(b"event: ping\r\ndata: x\r\n\r\ndata: y\r\rdata:z\n\n");
        assert_eq!(data(&ev), [Some("x"), Some("y"), Some("z")]);
        assert_eq!(ev[0].event.as_deref(), Some("ping"));
        assert_eq!(ev[1].event, None);
    }

    #[test]
    fn multiline_data_comments_and_fields() {
        let ev = assert_split_invariant(
            b": keep-alive\n\nid: 7\nretry: 10\ndata: one\ndata:two\ndata\n\n",
        );
        assert_eq!(data(&ev), [None, Some("one\ntwo\n")]);
    }

    #[test]
    fn anthropic_named_events() {
        let s = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let ev = assert_split_invariant(s);
        let names: Vec<_> = ev.iter().map(|e| e.event.as_deref()).collect();
        assert_eq!(names, [Some("message_start"), Some("message_stop")]);
    }

    #[test]
    fn unterminated_tail_is_delivered_at_finish() {
        let ev = assert_split_invariant(b"data: a\n\ndata: b");
        assert_eq!(data(&ev), [Some("a"), Some("b")]);
    }

    #[test]
    fn an_event_past_the_limit_is_dropped_with_all_that_follows() {
        // Whole and split at every offset: the events before the big one come out, the big one
        // and everything after it do not, and nothing is kept.
        let stream = b"data: a\n\ndata: 0123456789\n\ndata: b\n\n";
        for cut in 0..=stream.len() {
            for keep_raw in [true, false] {
                let mut p = SseParser {
                    keep_raw,
                    ..SseParser::with_limit(12)
                };
                let mut out = Vec::new();
                p.feed(&stream[..cut], &mut out);
                p.feed(&stream[cut..], &mut out);
                p.finish(&mut out);
                assert_eq!(data(&out), [Some("a")], "cut {cut}, raw kept: {keep_raw}");
                assert!(p.overflowed(), "cut {cut}, raw kept: {keep_raw}");
                assert_eq!(p.pending(), 0);
            }
        }
        // An event at the limit passes: the line `data: 12345` and its LF are 12 bytes, the
        // blank line adds no text.
        let mut p = SseParser::with_limit(12);
        let mut out = Vec::new();
        p.feed(b"data: 12345\n\n", &mut out);
        assert_eq!(data(&out), [Some("12345")]);
        assert!(!p.overflowed());
    }

    #[test]
    fn one_endless_line_keeps_no_more_than_the_limit() {
        let mut p = SseParser::with_limit(1000);
        let mut out = Vec::new();
        p.feed(b"data: ", &mut out);
        for _ in 0..100 {
            p.feed(&[b'x'; 100], &mut out);
            assert!(p.pending() <= 1000);
        }
        assert!(p.overflowed() && out.is_empty());
    }

    #[test]
    fn incomplete_events_wait_for_the_blank_line() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.feed(b"data: a\n", &mut out);
        assert!(out.is_empty());
        assert_eq!(p.pending(), 8);
        p.feed(b"\n", &mut out);
        assert_eq!(data(&out), [Some("a")]);
        assert_eq!(p.pending(), 0);
    }
}
