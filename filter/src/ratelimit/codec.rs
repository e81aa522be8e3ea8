//! The protobuf encoding of `RateLimitRequest` and decoding of `RateLimitResponse`, written by
//! hand from the .proto files (no protobuf crate in the .wasm); checked against prost in tests.
//!
//! Messages, from `api/envoy/service/ratelimit/v3/rls.proto`,
//! `api/envoy/extensions/common/ratelimit/v3/ratelimit.proto` and
//! `api/envoy/config/core/v3/base.proto` (field numbers in brackets):
//!
//! ```text
//! RateLimitRequest   { string domain [1]; repeated RateLimitDescriptor descriptors [2]; uint32 hits_addend [3] }
//! RateLimitDescriptor{ repeated Entry entries [1] }          Entry { string key [1]; string value [2] }
//! RateLimitResponse  { Code overall_code [1]; repeated DescriptorStatus statuses [2];
//!                      repeated HeaderValue response_headers_to_add [3]; request_headers_to_add [4] }
//! DescriptorStatus   { Code code [1]; RateLimit current_limit [2]; uint32 limit_remaining [3];
//!                      google.protobuf.Duration duration_until_reset [4] }
//! RateLimit          { uint32 requests_per_unit [1]; Unit unit [2]; string name [3] }
//! Duration           { int64 seconds [1]; int32 nanos [2] }
//! HeaderValue        { string key [1]; string value [2]; bytes raw_value [3] }
//! Code: UNKNOWN 0, OK 1, OVER_LIMIT 2.  Unit: UNKNOWN 0, SECOND 1, MINUTE 2, HOUR 3, DAY 4, MONTH 5, YEAR 6.
//! ```
//! Other response fields (raw_body, dynamic_metadata, quota) are skipped.

use std::fmt;

/// One descriptor: ordered key/value entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitRequest {
    pub domain: String,
    pub descriptors: Vec<Descriptor>,
    /// 0 means 1 to the service.
    pub hits_addend: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    Ok,
    OverLimit,
    /// A value this version does not know.
    Other(i32),
}

impl Code {
    fn from_i32(v: i32) -> Self {
        match v {
            0 => Self::Unknown,
            1 => Self::Ok,
            2 => Self::OverLimit,
            n => Self::Other(n),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Unknown,
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
    Other(i32),
}

impl Unit {
    fn from_i32(v: i32) -> Self {
        match v {
            0 => Self::Unknown,
            1 => Self::Second,
            2 => Self::Minute,
            3 => Self::Hour,
            4 => Self::Day,
            5 => Self::Month,
            6 => Self::Year,
            n => Self::Other(n),
        }
    }

    /// The unit's length in seconds (31 days for a month, 366 for a year: upper bounds).
    pub fn seconds(self) -> Option<u64> {
        match self {
            Self::Second => Some(1),
            Self::Minute => Some(60),
            Self::Hour => Some(3600),
            Self::Day => Some(86_400),
            Self::Month => Some(31 * 86_400),
            Self::Year => Some(366 * 86_400),
            Self::Unknown | Self::Other(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub name: String,
    pub requests_per_unit: u32,
    pub unit: Unit,
}

/// `google.protobuf.Duration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duration {
    pub seconds: i64,
    pub nanos: i32,
}

impl Duration {
    /// Whole seconds, rounded up, never negative.
    pub fn ceil_seconds(&self) -> u64 {
        let s = u64::try_from(self.seconds).unwrap_or(0);
        if self.nanos > 0 {
            s.saturating_add(1)
        } else {
            s
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorStatus {
    pub code: Code,
    pub current_limit: Option<RateLimit>,
    pub limit_remaining: u32,
    pub duration_until_reset: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitResponse {
    pub overall_code: Code,
    pub statuses: Vec<DescriptorStatus>,
    pub response_headers_to_add: Vec<(String, String)>,
    pub request_headers_to_add: Vec<(String, String)>,
}

/// A response that is not valid protobuf for these messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid RateLimitResponse: {}", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A proto3 string: omitted when empty.
fn put_string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, field, s.as_bytes());
    }
}

impl Descriptor {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in &self.entries {
            let mut entry = Vec::with_capacity(key.len() + value.len() + 4);
            put_string(&mut entry, 1, key);
            put_string(&mut entry, 2, value);
            put_bytes(&mut out, 1, &entry);
        }
        out
    }
}

impl RateLimitRequest {
    /// The protobuf bytes (proto3: default values omitted, fields in number order).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_string(&mut out, 1, &self.domain);
        for d in &self.descriptors {
            put_bytes(&mut out, 2, &d.encode());
        }
        if self.hits_addend != 0 {
            put_tag(&mut out, 3, 0);
            put_varint(&mut out, u64::from(self.hits_addend));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32 or 64 bits: no field here uses them; skipped.
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let byte = *self.take(1)?.first().ok_or(DecodeError("truncated"))?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && byte > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            v |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    /// The next field, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(DecodeError("bad field number"));
        }
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed
            }
            _ => return Err(DecodeError("unsupported wire type")),
        };
        Ok(Some((number, field)))
    }
}

fn varint_of(field: Field<'_>) -> Result<u64, DecodeError> {
    match field {
        Field::Varint(v) => Ok(v),
        _ => Err(DecodeError("wrong wire type for a varint field")),
    }
}

fn bytes_of(field: Field<'_>) -> Result<&[u8], DecodeError> {
    match field {
        Field::Bytes(b) => Ok(b),
        _ => Err(DecodeError("wrong wire type for a length-delimited field")),
    }
}

fn string_of(field: Field<'_>) -> Result<String, DecodeError> {
    String::from_utf8(bytes_of(field)?.to_vec()).map_err(|_| DecodeError("string is not UTF-8"))
}

/// int32/enum: the low 32 bits (negative values are sign-extended to 64 on the wire).
fn i32_of(field: Field<'_>) -> Result<i32, DecodeError> {
    Ok(varint_of(field)? as i32)
}

fn u32_of(field: Field<'_>) -> Result<u32, DecodeError> {
    Ok(varint_of(field)? as u32)
}

fn decode_header(buf: &[u8]) -> Result<(String, String), DecodeError> {
    let (mut key, mut value, mut raw) = (String::new(), String::new(), None);
    let mut r = Reader::new(buf);
    while let Some((n, f)) = r.field()? {
        match n {
            1 => key = string_of(f)?,
            2 => value = string_of(f)?,
            3 => raw = Some(String::from_utf8_lossy(bytes_of(f)?).into_owned()),
            _ => {}
        }
    }
    // `raw_value` is used when `value` is empty (base.proto).
    if value.is_empty() {
        value = raw.unwrap_or_default();
    }
    Ok((key, value))
}

fn decode_rate_limit(buf: &[u8]) -> Result<RateLimit, DecodeError> {
    let mut limit = RateLimit {
        name: String::new(),
        requests_per_unit: 0,
        unit: Unit::Unknown,
    };
    let mut r = Reader::new(buf);
    while let Some((n, f)) = r.field()? {
        match n {
            1 => limit.requests_per_unit = u32_of(f)?,
            2 => limit.unit = Unit::from_i32(i32_of(f)?),
            3 => limit.name = string_of(f)?,
            _ => {}
        }
    }
    Ok(limit)
}

fn decode_duration(buf: &[u8]) -> Result<Duration, DecodeError> {
    let mut d = Duration::default();
    let mut r = Reader::new(buf);
    while let Some((n, f)) = r.field()? {
        match n {
            1 => d.seconds = varint_of(f)? as i64,
            2 => d.nanos = i32_of(f)?,
            _ => {}
        }
    }
    Ok(d)
}

fn decode_status(buf: &[u8]) -> Result<DescriptorStatus, DecodeError> {
    let mut s = DescriptorStatus {
        code: Code::Unknown,
        current_limit: None,
        limit_remaining: 0,
        duration_until_reset: None,
    };
    let mut r = Reader::new(buf);
    while let Some((n, f)) = r.field()? {
        match n {
            1 => s.code = Code::from_i32(i32_of(f)?),
            2 => s.current_limit = Some(decode_rate_limit(bytes_of(f)?)?),
            3 => s.limit_remaining = u32_of(f)?,
            4 => s.duration_until_reset = Some(decode_duration(bytes_of(f)?)?),
            _ => {}
        }
    }
    Ok(s)
}

impl RateLimitResponse {
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut out = Self {
            overall_code: Code::Unknown,
            statuses: Vec::new(),
            response_headers_to_add: Vec::new(),
            request_headers_to_add: Vec::new(),
        };
        let mut r = Reader::new(buf);
        while let Some((n, f)) = r.field()? {
            match n {
                1 => out.overall_code = Code::from_i32(i32_of(f)?),
                2 => out.statuses.push(decode_status(bytes_of(f)?)?),
                3 => out
                    .response_headers_to_add
                    .push(decode_header(bytes_of(f)?)?),
                4 => out
                    .request_headers_to_add
                    .push(decode_header(bytes_of(f)?)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
