//! Incremental decoder of the binary `application/vnd.amazon.eventstream` framing that
//! ConverseStream answers in. Bytes arrive in pieces cut anywhere; whole messages come out.
//!
//! Reference: "Event stream encoding", https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html
//! (same text: https://docs.aws.amazon.com/lexv2/latest/dg/event-stream-encoding.html).
//! A message is, all integers big-endian:
//!
//! ```text
//! total length u32 | headers length u32 | prelude CRC32 u32 (of the 8 bytes before)
//! headers (headers length bytes) | payload | message CRC32 u32 (of every byte before it)
//! ```
//!
//! and a header is `name length u8 | name | value type u8 | value`, the value's size given by
//! its type (0/1 bool true/false: none, 2 byte: 1, 3 short: 2, 4 int: 4, 5 long: 8,
//! 6 bytes and 7 string: u16 length then the bytes, 8 timestamp: 8, 9 uuid: 16).
//! Both CRCs are CRC-32 (IEEE 802.3, the gzip one).

/// Largest message accepted. The format caps payloads at 16 MiB and headers at 128 KiB; a
/// larger prelude is a corrupted stream, not a message to wait for.
const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 128 * 1024 + 16;
const PRELUDE: usize = 12;

/// One decoded message, read in place in the decoder's buffer: its header section (checked
/// whole) and its payload. Nothing is copied out of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef<'a> {
    headers: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// The value of the string header `name` (other header types are skipped); `None` when it
    /// is absent or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let mut found = None;
        // The section was walked whole when the message was decoded: this walk cannot fail.
        let _ = walk_headers(self.headers, |n, kind, value| {
            if found.is_none() && kind == 7 && n == name.as_bytes() {
                found = Some(std::str::from_utf8(value).ok());
            }
        });
        found.flatten()
    }

    /// An owned copy: its string headers and payload.
    #[cfg(test)]
    pub fn to_owned(self) -> Message {
        Message {
            headers: parse_headers(self.headers).unwrap_or_default(),
            payload: self.payload.to_vec(),
        }
    }
}

/// An owned message (the tests keep messages past the next push).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

#[cfg(test)]
impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    PreludeCrc,
    MessageCrc,
    /// Lengths that cannot describe a message.
    BadLength,
    /// A header that runs past its section or has an unknown value type.
    BadHeader,
}

impl DecodeError {
    pub fn describe(self) -> &'static str {
        match self {
            Self::PreludeCrc => "a message prelude failed its CRC check",
            Self::MessageCrc => "a message failed its CRC check",
            Self::BadLength => "a message prelude holds impossible lengths",
            Self::BadHeader => "a message has a malformed header",
        }
    }
}

/// Accumulates bytes and hands out whole messages. After an error the stream cannot be
/// resynchronised: every later call returns the same error.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already handed out as messages: dropped at the next push,
    /// not after every message (a chunk holds many).
    consumed: usize,
    failed: Option<DecodeError>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that do not make a whole message yet.
    pub fn pending(&self) -> usize {
        self.buf.len().saturating_sub(self.consumed)
    }

    /// The next whole message, read in place; `None` while the next one is incomplete.
    pub fn next_message_ref(&mut self) -> Option<Result<MessageRef<'_>, DecodeError>> {
        if let Some(e) = self.failed {
            return Some(Err(e));
        }
        match self.next_frame()? {
            Err(e) => {
                self.failed = Some(e);
                self.buf = Vec::new();
                self.consumed = 0;
                Some(Err(e))
            }
            Ok((headers_len, total)) => {
                let start = self.consumed;
                self.consumed = start.saturating_add(total);
                let frame = self.buf.get(start..self.consumed).unwrap_or_default();
                Some(Ok(MessageRef {
                    headers: frame
                        .get(PRELUDE..PRELUDE + headers_len)
                        .unwrap_or_default(),
                    payload: frame
                        .get(PRELUDE + headers_len..total - 4)
                        .unwrap_or_default(),
                }))
            }
        }
    }

    /// [`Self::next_message_ref`], copied out.
    #[cfg(test)]
    pub fn next_message(&mut self) -> Option<Result<Message, DecodeError>> {
        self.next_message_ref()
            .map(|next| next.map(MessageRef::to_owned))
    }

    /// The header section's and the whole message's lengths of the next message, checked
    /// (both CRCs, the lengths, every header); `None` while it is incomplete.
    fn next_frame(&self) -> Option<Result<(usize, usize), DecodeError>> {
        let buf = self.buf.get(self.consumed..)?;
        let total = be_u32(buf, 0)? as usize;
        let headers_len = be_u32(buf, 4)? as usize;
        let prelude_crc = be_u32(buf, 8)?;
        if Some(prelude_crc) != buf.get(..8).map(crc32) {
            return Some(Err(DecodeError::PreludeCrc));
        }
        if !(PRELUDE + 4..=MAX_MESSAGE).contains(&total) || headers_len > total - PRELUDE - 4 {
            return Some(Err(DecodeError::BadLength));
        }
        if buf.len() < total {
            return None;
        }
        let message_crc = be_u32(buf, total - 4)?;
        if Some(message_crc) != buf.get(..total - 4).map(crc32) {
            return Some(Err(DecodeError::MessageCrc));
        }
        match buf
            .get(PRELUDE..PRELUDE + headers_len)
            .map(|section| walk_headers(section, |_, _, _| {}))
        {
            Some(Ok(())) => Some(Ok((headers_len, total))),
            _ => Some(Err(DecodeError::BadHeader)),
        }
    }
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    Some(u32::from_be_bytes(b))
}

/// Walks a header section, handing each header's name, value type and value bytes to `each`;
/// an error when a header runs past the section or has an unknown value type.
fn walk_headers<'a>(
    mut section: &'a [u8],
    mut each: impl FnMut(&'a [u8], u8, &'a [u8]),
) -> Result<(), DecodeError> {
    while let Some((&name_len, rest)) = section.split_first() {
        let name_len = usize::from(name_len);
        let name = rest.get(..name_len).ok_or(DecodeError::BadHeader)?;
        let (&kind, rest) = rest
            .get(name_len..)
            .and_then(<[u8]>::split_first)
            .ok_or(DecodeError::BadHeader)?;
        let (value_len, prefix) = match kind {
            0 | 1 => (0, 0),
            2 => (1, 0),
            3 => (2, 0),
            4 => (4, 0),
            5 | 8 => (8, 0),
            9 => (16, 0),
            6 | 7 => {
                let mut len = [0u8; 2];
                len.copy_from_slice(rest.get(..2).ok_or(DecodeError::BadHeader)?);
                (usize::from(u16::from_be_bytes(len)), 2)
            }
            _ => return Err(DecodeError::BadHeader),
        };
        let value = rest
            .get(prefix..prefix + value_len)
            .ok_or(DecodeError::BadHeader)?;
        each(name, kind, value);
        section = rest.get(prefix + value_len..).unwrap_or_default();
    }
    Ok(())
}

/// The string headers of a section (other types skipped), names and values read lossily.
#[cfg(test)]
fn parse_headers(section: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut headers = Vec::new();
    walk_headers(section, |name, kind, value| {
        if kind == 7 {
            headers.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
    })?;
    Ok(headers)
}

/// CRC-32/IEEE (reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF), a byte at
/// a time from a 1 KiB table built at compile time: every byte of a stream goes through it
/// twice, and bit by bit it took most of a ConverseStream's translation time.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        // A u8 index into 256 entries: always there.
        let entry = CRC_TABLE
            .get(usize::from((c as u8) ^ b))
            .copied()
            .unwrap_or(0);
        c = entry ^ (c >> 8);
    }
    !c
}

const CRC_TABLE: [u32; 256] = crc_table();

// `n < 256` by the loop; `get_mut` is not available in a const fn.
#[allow(clippy::indexing_slicing)]
const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut bit = 0;
        while bit < 8 {
            c = (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg());
            bit += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// Encodes one message with string headers (the tests build streams with it).
#[cfg(test)]
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The catalogue check value of CRC-32/ISO-HDLC (the gzip/zlib CRC-32).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // The table agrees with the polynomial applied bit by bit, for every byte value.
        let bitwise = |data: &[u8]| {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        (c >> 1) ^ 0xEDB8_8320
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        };
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for end in 0..all.len() {
            assert_eq!(crc32(&all[..end]), bitwise(&all[..end]), "{end} bytes");
        }
    }

    /// Two frames published with the Elixir `event_stream` package's documentation
    /// (hex.pm event_stream 0.1.0, `EventStream.encode!/2` examples), CRCs by `:erlang.crc32`.
    const ELIXIR_NO_HEADERS: [u8; 30] = [
        0, 0, 0, 30, 0, 0, 0, 0, 186, 242, 246, 138, 123, 34, 102, 111, 111, 34, 58, 32, 34, 98,
        97, 114, 34, 125, 174, 114, 88, 228,
    ];
    const ELIXIR_CONTENT_TYPE: [u8; 62] = [
        0, 0, 0, 62, 0, 0, 0, 32, 64, 93, 249, 70, 12, 99, 111, 110, 116, 101, 110, 116, 45, 116,
        121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115,
        111, 110, 123, 34, 102, 111, 111, 34, 58, 32, 34, 98, 97, 114, 34, 125, 111, 162, 191, 59,
    ];

    #[test]
    fn decodes_published_frames() {
        let mut d = Decoder::default();
        d.push(&ELIXIR_NO_HEADERS);
        d.push(&ELIXIR_CONTENT_TYPE);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(
            (m.headers.len(), m.payload.as_slice()),
            (0, &br#"{"foo": "bar"}"#[..])
        );
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(m.header("content-type"), Some("application/json"));
        assert_eq!(m.payload, br#"{"foo": "bar"}"#);
        assert_eq!(d.next_message(), None);
        assert_eq!(d.pending(), 0);
        // The encoder used by the other tests produces the same bytes.
        assert_eq!(
            encode(
                &[("content-type", "application/json")],
                br#"{"foo": "bar"}"#
            ),
            ELIXIR_CONTENT_TYPE
        );
    }

    #[test]
    fn incomplete_frames_wait_at_every_cut() {
        for cut in 0..ELIXIR_CONTENT_TYPE.len() {
            let mut d = Decoder::default();
            d.push(&ELIXIR_CONTENT_TYPE[..cut]);
            assert_eq!(d.next_message(), None, "cut {cut}");
            d.push(&ELIXIR_CONTENT_TYPE[cut..]);
            assert!(d.next_message().unwrap().is_ok(), "cut {cut}");
        }
    }

    #[test]
    fn every_header_type_is_skipped_by_its_size() {
        let mut h = Vec::new();
        let mut add = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        add("t", 0, &[]);
        add("f", 1, &[]);
        add("b", 2, &[7]);
        add("s", 3, &[0, 7]);
        add("i", 4, &[0, 0, 0, 7]);
        add("l", 5, &[0; 8]);
        add("bytes", 6, &[0, 3, 1, 2, 3]);
        add(":event-type", 7, &[0, 4, b'p', b'i', b'n', b'g']);
        add("ts", 8, &[0; 8]);
        add("uuid", 9, &[0; 16]);
        add(":message-type", 7, &[0, 5, b'e', b'v', b'e', b'n', b't']);
        assert_eq!(
            parse_headers(&h).unwrap(),
            vec![
                (":event-type".to_string(), "ping".to_string()),
                (":message-type".to_string(), "event".to_string())
            ]
        );
        assert_eq!(parse_headers(&[1, b'x', 10]), Err(DecodeError::BadHeader));
        assert_eq!(
            parse_headers(&[1, b'x', 7, 0, 9, b'a']),
            Err(DecodeError::BadHeader)
        );
    }

    #[test]
    fn corruption_is_reported_once_and_stays() {
        let mut bad_prelude = ELIXIR_NO_HEADERS;
        bad_prelude[3] ^= 1;
        let mut d = Decoder::default();
        d.push(&bad_prelude[..12]);
        assert_eq!(d.next_message(), Some(Err(DecodeError::PreludeCrc)));
        d.push(&ELIXIR_NO_HEADERS);
        assert_eq!(d.next_message(), Some(Err(DecodeError::PreludeCrc)));

        let mut bad_payload = ELIXIR_NO_HEADERS;
        bad_payload[15] ^= 0x20;
        let mut d = Decoder::default();
        d.push(&bad_payload);
        assert_eq!(d.next_message(), Some(Err(DecodeError::MessageCrc)));

        // A prelude with a valid CRC but an impossible size is refused, not waited for.
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32(&huge);
        huge.extend_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::default();
        d.push(&huge);
        assert_eq!(d.next_message(), Some(Err(DecodeError::BadLength)));
    }
}
