//! Keeps the gateway's secrets out of what providers send back. A provider's error message may
//! quote the key it was sent (or an AWS credential); the message itself is useful to the
//! client, the key is not. The [`Scrubber`] holds every configured secret, built once from the
//! configuration, and replaces each occurrence with [`REDACTED`]. [`StreamScrub`] does the same
//! over a body that arrives in pieces, catching a secret split across two pieces.

use std::borrow::Cow;
use std::fmt;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not scrubbed: replacing every "abc" would mangle messages, and
/// no provider issues keys that short (the configuration warns about them).
pub const MIN_SECRET_LEN: usize = 8;

/// The configured secrets, ready to search for. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Each secret and its JSON-escaped spellings, longest first, with the offset of the byte
    /// searched for first (see [`find`]).
    patterns: Vec<(Vec<u8>, usize)>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} patterns)", self.patterns.len())
    }
}

impl Scrubber {
    /// The scrubber of these secrets; those shorter than [`MIN_SECRET_LEN`] are left out.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.into_iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            // JSON may escape a secret's `/` (AWS secret keys hold some) or other characters.
            let json = serde_json::to_string(secret).unwrap_or_default();
            let json = json
                .strip_prefix('"')
                .and_then(|j| j.strip_suffix('"'))
                .unwrap_or(secret);
            for spelling in [
                secret.to_string(),
                json.to_string(),
                json.replace('/', "\\/"),
            ] {
                if !patterns.contains(&spelling.as_bytes().to_vec()) {
                    patterns.push(spelling.into_bytes());
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let patterns = patterns
            .into_iter()
            .map(|p| {
                let offset = rarest(&p);
                (p, offset)
            })
            .collect();
        Self { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The bytes with every secret replaced; `None` when there was none.
    pub fn scrub(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.scrub_marked(bytes).0
    }

    /// Where the secrets occur in `bytes` (start, end), earliest first: the guardrails' secret
    /// detector finds the gateway's own keys with this.
    pub fn spans(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut pos = 0;
        while let Some((at, len)) = self.next_match(bytes.get(pos..).unwrap_or_default()) {
            let start = pos.saturating_add(at);
            spans.push((start, start.saturating_add(len)));
            pos = start.saturating_add(len);
        }
        spans
    }

    /// The earliest occurrence of any pattern in `rest` and its length; the longest wins a tie
    /// (patterns are sorted longest first and `min_by_key` keeps the first of equals).
    fn next_match(&self, rest: &[u8]) -> Option<(usize, usize)> {
        self.patterns
            .iter()
            .filter_map(|(p, offset)| find(rest, p, *offset).map(|at| (at, p.len())))
            .min_by_key(|&(at, _)| at)
    }

    /// Like [`Self::scrub`], and where the last replacement ends in the output (0 if none).
    fn scrub_marked(&self, bytes: &[u8]) -> (Option<Vec<u8>>, usize) {
        let mut out: Option<Vec<u8>> = None;
        let mut pos = 0;
        loop {
            let rest = bytes.get(pos..).unwrap_or_default();
            let Some((at, len)) = self.next_match(rest) else {
                break;
            };
            let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            buf.extend_from_slice(rest.get(..at).unwrap_or_default());
            buf.extend_from_slice(REDACTED.as_bytes());
            pos = pos.saturating_add(at).saturating_add(len);
        }
        match out {
            Some(mut buf) => {
                let marked = buf.len();
                buf.extend_from_slice(bytes.get(pos..).unwrap_or_default());
                (Some(buf), marked)
            }
            None => (None, 0),
        }
    }

    /// The length of the longest end of `bytes[from..]` that begins some secret (a secret the
    /// next piece may complete).
    fn partial_suffix(&self, bytes: &[u8], from: usize) -> usize {
        let Some(&last) = bytes.last() else {
            return 0;
        };
        let available = bytes.len().saturating_sub(from);
        let mut longest = 0;
        for (needle, _) in &self.patterns {
            let most = needle.len().saturating_sub(1).min(available);
            for k in (longest + 1..=most).rev() {
                let begins = needle.get(..k).unwrap_or_default();
                if begins.last() == Some(&last) && bytes.ends_with(begins) {
                    longest = k;
                    break;
                }
            }
        }
        longest
    }
}

/// Where `needle` first occurs in `haystack`. Candidates are found with memchr on the needle's
/// rarest byte (by [`commonness`] in text), so ordinary prose is skipped at memchr speed; a full
/// substring searcher (memchr's memmem) would add 20 KB of .wasm.
fn find(haystack: &[u8], needle: &[u8], offset: usize) -> Option<usize> {
    let &rare = needle.get(offset)?;
    let mut from = offset;
    while let Some(at) = haystack.get(from..).and_then(|h| memchr::memchr(rare, h)) {
        let start = from.saturating_add(at).saturating_sub(offset);
        if haystack.get(start..)?.starts_with(needle) {
            return Some(start);
        }
        from = start.saturating_add(offset).saturating_add(1);
    }
    None
}

/// The offset of the needle's rarest byte.
fn rarest(needle: &[u8]) -> usize {
    needle
        .iter()
        .enumerate()
        .min_by_key(|&(_, &b)| commonness(b))
        .map_or(0, |(i, _)| i)
}

/// A rough rank of how often a byte occurs in provider answers (prose and JSON): lower is rarer.
fn commonness(b: u8) -> u8 {
    match b {
        b' ' | b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'h' => 5,
        b'a'..=b'z' | b'"' | b',' | b'.' | b':' | b'\n' => 4,
        b'A'..=b'Z' => 3,
        b'0'..=b'9' | b'-' | b'_' => 2,
        _ => 1,
    }
}

/// Scrubs a body that arrives in pieces. A piece that ends with the beginning of a secret keeps
/// that end back until the next piece tells whether the secret follows (a secret holds no line
/// break, so SSE events, which end in one, are never held).
#[derive(Debug, Default)]
pub struct StreamScrub {
    held: Vec<u8>,
}

impl StreamScrub {
    /// The bytes to send in place of `piece`, or `None` when it goes on unchanged.
    pub fn feed(&mut self, scrubber: &Scrubber, piece: &[u8], end: bool) -> Option<Vec<u8>> {
        if scrubber.is_empty() {
            return None;
        }
        let had_held = !self.held.is_empty();
        let input: Cow<[u8]> = if had_held {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(piece);
            Cow::Owned(joined)
        } else {
            Cow::Borrowed(piece)
        };
        let (scrubbed, marked) = scrubber.scrub_marked(&input);
        let changed = scrubbed.is_some();
        let out = scrubbed.map_or(input, Cow::Owned);
        let hold = if end {
            0
        } else {
            scrubber.partial_suffix(&out, marked)
        };
        if hold == 0 && !changed && !had_held {
            return None;
        }
        let mut out = out.into_owned();
        self.held = out.split_off(out.len().saturating_sub(hold));
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-0123456789abcdef";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn scrubber() -> Scrubber {
        Scrubber::new([KEY, AWS_SECRET, "short"])
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn every_occurrence_of_every_secret_is_replaced() {
        let body = format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {KEY}. Signed with {AWS_SECRET} ({KEY})"}}}}"#
        );
        let out = text(&scrubber().scrub(body.as_bytes()).unwrap());
        assert_eq!(
            out,
            r#"{"error":{"message":"Incorrect API key provided: [REDACTED]. Signed with [REDACTED] ([REDACTED])"}}"#
        );
    }

    #[test]
    fn near_misses_around_the_searched_byte_do_not_hide_the_key() {
        let body = format!("--sk--sk-test-0123-sk-test-0123456789abcde-{KEY}-{KEY}");
        assert_eq!(
            text(&scrubber().scrub(body.as_bytes()).unwrap()),
            "--sk--sk-test-0123-sk-test-0123456789abcde-[REDACTED]-[REDACTED]"
        );
    }

    #[test]
    fn json_escaped_slashes_are_caught_too() {
        let escaped = AWS_SECRET.replace('/', "\\/");
        let out = scrubber()
            .scrub(format!(r#"{{"message":"bad {escaped}"}}"#).as_bytes())
            .unwrap();
        assert_eq!(text(&out), r#"{"message":"bad [REDACTED]"}"#);
    }

    #[test]
    fn clean_bodies_and_short_secrets_pass_unchanged() {
        let s = scrubber();
        assert_eq!(s.scrub(b"a short message, nothing secret"), None);
        assert_eq!(
            s.scrub(KEY.get(..KEY.len() - 1).unwrap().as_bytes()),
            None,
            "a part of a key is not the key"
        );
        assert!(Scrubber::new(["1234567"]).is_empty());
        assert_eq!(
            format!("{s:?}"),
            "Scrubber(3 patterns)",
            "no secret in Debug"
        );
    }

    /// Split at every offset (and every pair of offsets), the pieces put back together equal
    /// the scrubbed whole, and no piece ever holds the secret.
    #[test]
    fn a_secret_split_across_pieces_is_caught_at_every_offset() {
        let s = scrubber();
        let stream = format!(
            "data: {{\"choices\":[]}}\n\ndata: {{\"error\":{{\"message\":\"key {KEY} refused\"}}}}\n\ndata: [DONE]\n\n"
        );
        let stream = stream.as_bytes();
        let expected = s.scrub(stream).unwrap();
        let mut cuts: Vec<Vec<usize>> = (0..=stream.len()).map(|a| vec![a]).collect();
        for a in (0..=stream.len()).step_by(3) {
            for b in (a..=stream.len()).step_by(5) {
                cuts.push(vec![a, b]);
            }
        }
        for cut in cuts {
            let mut scrub = StreamScrub::default();
            let mut sent = Vec::new();
            let mut start = 0;
            let bounds: Vec<usize> = cut.iter().copied().chain([stream.len()]).collect();
            for (i, &end) in bounds.iter().enumerate() {
                let piece = &stream[start..end];
                let last = i == bounds.len() - 1;
                let out = scrub.feed(&s, piece, last);
                let out = out.as_deref().unwrap_or(piece);
                assert!(
                    !text(out).contains(&KEY[..12]),
                    "cut {cut:?}: {}",
                    text(out)
                );
                sent.extend_from_slice(out);
                start = end;
            }
            assert_eq!(text(&sent), text(&expected), "cut {cut:?}");
        }
    }

    #[test]
    fn ordinary_events_pass_without_a_copy() {
        let s = scrubber();
        let mut scrub = StreamScrub::default();
        assert_eq!(
            scrub.feed(
                &s,
                b"data: {\"choices\":[{\"delta\":{\"content\":\"sk\"}}]}\n\n",
                false
            ),
            None
        );
        // A piece ending in the first characters of a key waits for the next one.
        assert_eq!(
            scrub.feed(&s, b"the key is sk-te", false).as_deref(),
            Some(&b"the key is "[..])
        );
        assert_eq!(
            scrub.feed(&s, b"a, not a key", true).as_deref(),
            Some(&b"sk-tea, not a key"[..])
        );
    }
}
