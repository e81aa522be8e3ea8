//! Personal-data detectors: e-mail addresses, phone numbers, payment card numbers, IBANs, US
//! Social Security numbers and IP addresses. Each finds candidates with a linear-time regular
//! expression (`regex-lite`, no backtracking on client text) and then checks what a pattern
//! cannot: the Luhn digit of a card, the mod-97 checksum and country length of an IBAN, the
//! SSA's never-issued SSN ranges, the octets of an IPv4 address, the groups of an IPv6 one.
//! Each returns byte spans of the text; none keeps the text.

use std::net::Ipv6Addr;

use regex_lite::Regex;

/// A span of the text: `start..end` in bytes (always on character boundaries).
pub type Span = (usize, usize);

/// The candidate patterns, compiled once at plugin start.
#[derive(Debug, Clone)]
pub struct PiiPatterns {
    email: Regex,
    phone: Regex,
    card: Regex,
    iban: Regex,
    ssn: Regex,
    ipv4: Regex,
}

/// RFC 5321's limits (64-byte local part, 255-byte domain) bound the e-mail pattern.
const EMAIL: &str = r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}\b";
/// International (`+` and a country code, E.164) or national: North American `(415) 555-2671`,
/// and trunk-prefix `0` numbers in groups (`020 7946 0958`, `06 12 34 56 78`, `030/1234567`).
const PHONE: &str = r"\+[1-9][0-9]{0,3}(?:[ .-]?\(?[0-9]{1,5}\)?){1,6}|\(?\b[2-9][0-9]{2}\)?[ .-][0-9]{3}[ .-][0-9]{4}\b|\b0[1-9][0-9]{0,4}[ /-]?[0-9]{2,8}(?:[ -][0-9]{2,4}){0,4}\b";
/// 13 to 19 digits, optionally grouped by spaces or dashes (ISO/IEC 7812 lengths).
const CARD: &str = r"\b[0-9](?:[ -]?[0-9]){12,18}\b";
/// Country code, check digits, then the BBAN, optionally in groups of four.
const IBAN: &str = r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b";
const SSN: &str = r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b";
const IPV4: &str = r"\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b";

/// The longest match of each pattern, in bytes: what a stream holds back at most.
pub const LONGEST_EMAIL: usize = 64 + 255;
pub const LONGEST_PHONE: usize = 32;
pub const LONGEST_CARD: usize = 19 + 18;
pub const LONGEST_IBAN: usize = 34 + 8;
pub const LONGEST_SSN: usize = 11;
pub const LONGEST_IP: usize = 45;

impl PiiPatterns {
    /// The compiled patterns (constants: a failure here is a bug the unit tests catch).
    pub fn new() -> Result<Self, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| e.to_string());
        Ok(Self {
            email: re(EMAIL)?,
            phone: re(PHONE)?,
            card: re(CARD)?,
            iban: re(IBAN)?,
            ssn: re(SSN)?,
            ipv4: re(IPV4)?,
        })
    }

    pub fn emails(&self, text: &str, out: &mut Vec<Span>) {
        // Most texts hold no `@`: one memchr instead of the pattern's walk.
        if memchr::memchr(b'@', text.as_bytes()).is_none() {
            return;
        }
        out.extend(self.email.find_iter(text).map(|m| (m.start(), m.end())));
    }

    pub fn phones(&self, text: &str, out: &mut Vec<Span>) {
        for_number_stretches(text, 8, &self.phone, |m| {
            let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
            // E.164 allows at most 15 digits; fewer than 8 is a short code or a year. A
            // trunk-prefix number has at least 9 (a date like 01-02-2024 has 8).
            let least = if m.as_str().starts_with('0') { 9 } else { 8 };
            if (least..=15).contains(&digits) && isolated(text, m.start, m.end) {
                out.push((m.start, m.end));
            }
        });
    }

    pub fn cards(&self, text: &str, out: &mut Vec<Span>) {
        for_number_stretches(text, 13, &self.card, |m| {
            let digits: Vec<u8> = m
                .as_str()
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|d| d - b'0')
                .collect();
            if luhn(&digits) && digits.iter().any(|&d| d != 0) && isolated(text, m.start, m.end) {
                out.push((m.start, m.end));
            }
        });
    }

    pub fn ibans(&self, text: &str, out: &mut Vec<Span>) {
        // Every IBAN starts with two capitals and two digits; prose seldom holds that.
        let starts = text.as_bytes().windows(4).any(|w| {
            matches!(w, [a, b, c, d] if a.is_ascii_uppercase() && b.is_ascii_uppercase()
                && c.is_ascii_digit() && d.is_ascii_digit())
        });
        if !starts {
            return;
        }
        for m in self.iban.find_iter(text) {
            // The pattern may run on into a following group of capitals ("... 00 AND"): the
            // longest prefix ending before a space that passes the checksum wins.
            let candidate = m.as_str();
            let mut end = candidate.len();
            while let Some(part) = candidate.get(..end) {
                if iban_valid(part) {
                    out.push((m.start(), m.start().saturating_add(end)));
                    break;
                }
                match part.rfind(' ') {
                    Some(space) => end = space,
                    None => break,
                }
            }
        }
    }

    pub fn ssns(&self, text: &str, out: &mut Vec<Span>) {
        for_number_stretches(text, 9, &self.ssn, |m| {
            let s = m.as_str().as_bytes();
            // One separator style, not "123-45 6789".
            if s.get(3) == s.get(6) && ssn_valid(m.as_str()) && isolated(text, m.start, m.end) {
                out.push((m.start, m.end));
            }
        });
    }

    pub fn ips(&self, text: &str, out: &mut Vec<Span>) {
        for_number_stretches(text, 4, &self.ipv4, |m| {
            let octets_ok = m
                .as_str()
                .split('.')
                .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
            // "1.2.3.4.5" is a version, not an address.
            let dotted_on = |b: Option<&u8>, c: Option<&u8>| {
                b == Some(&b'.') && c.is_some_and(u8::is_ascii_digit)
            };
            let bytes = text.as_bytes();
            let before = dotted_on(
                m.start.checked_sub(1).and_then(|i| bytes.get(i)),
                m.start.checked_sub(2).and_then(|i| bytes.get(i)),
            );
            let after = dotted_on(bytes.get(m.end), bytes.get(m.end.saturating_add(1)));
            if octets_ok && !before && !after {
                out.push((m.start, m.end));
            }
        });
        ipv6s(text, out);
    }
}

/// A match of a number pattern, at its place in the whole text.
struct NumberMatch<'t> {
    start: usize,
    end: usize,
    text: &'t str,
}

impl NumberMatch<'_> {
    fn as_str(&self) -> &str {
        self.text
    }
}

/// Whether the number patterns (phone, card, SSN, IPv4) use this byte: digits, spaces and
/// `.-/()+`.
fn number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b' ' | b'.' | b'-' | b'/' | b'(' | b')' | b'+')
}

/// Runs `pattern` only over the stretches of `text` made of [`number_byte`]s that hold at
/// least `min_digits` digits, each widened by one character on both sides (the context `\b`
/// reads), and calls `found` with each match placed in the whole text. Every match the
/// pattern finds in the whole text lies inside one such stretch (it is made of those bytes
/// only), and one with fewer digits than the detector needs is refused by it anyway, so the
/// result is the same; the patterns' walk (tens of nanoseconds a byte in the linear-time
/// engine) is spared the prose around the numbers.
fn for_number_stretches(
    text: &str,
    min_digits: usize,
    pattern: &Regex,
    mut found: impl FnMut(NumberMatch<'_>),
) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).copied().is_some_and(number_byte) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0usize;
        while let Some(&b) = bytes.get(i).filter(|&&b| number_byte(b)) {
            digits += usize::from(b.is_ascii_digit());
            i += 1;
        }
        if digits < min_digits {
            continue;
        }
        let mut from = start;
        if from > 0 {
            from -= 1;
            while !text.is_char_boundary(from) {
                from -= 1;
            }
        }
        let mut to = i;
        if to < bytes.len() {
            to += 1;
            while !text.is_char_boundary(to) {
                to += 1;
            }
        }
        let Some(stretch) = text.get(from..to) else {
            continue;
        };
        for m in pattern.find_iter(stretch) {
            found(NumberMatch {
                start: from + m.start(),
                end: from + m.end(),
                text: m.as_str(),
            });
        }
    }
}

/// Not part of a longer run of digits or letters (a card inside an order number is not a card).
fn isolated(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    !word(start.checked_sub(1).and_then(|i| bytes.get(i))) && !word(bytes.get(end))
}

/// The Luhn check (ISO/IEC 7812-1 annex B): doubling every second digit from the right.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 {
                    twice - 9
                } else {
                    twice
                }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum % 10 == 0
}

/// IBAN lengths by country, from SWIFT's IBAN Registry (release 99, 2024).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 13616: the registered length of its country, and mod 97 of the rearranged number is 1.
pub fn iban_valid(candidate: &str) -> bool {
    let compact: Vec<u8> = candidate.bytes().filter(|b| *b != b' ').collect();
    let Some(country) = compact.get(..2).and_then(|c| std::str::from_utf8(c).ok()) else {
        return false;
    };
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
        return false;
    };
    if compact.len() != len {
        return false;
    }
    let (head, rest) = compact.split_at(4.min(compact.len()));
    let mut remainder: u32 = 0;
    for &b in rest.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000 ("Social Security
/// Number Randomization", ssa.gov), nor the two numbers famous from advertising.
fn ssn_valid(ssn: &str) -> bool {
    let digits: String = ssn.chars().filter(char::is_ascii_digit).collect();
    let part = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    let (Some(area), Some(group), Some(serial)) = (part(0..3), part(3..5), part(5..9)) else {
        return false;
    };
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && digits != "078051120"
        && digits != "219099999"
}

/// IPv6 addresses: each run of hex digits, colons and dots with at least two colons that
/// `std` parses as an address ("12:30:45" and "::" alone do not count).
fn ipv6s(text: &str, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let in_run = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    let mut i = 0;
    while i < bytes.len() {
        if !bytes.get(i).copied().is_some_and(in_run) {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).copied().is_some_and(in_run) {
            i += 1;
        }
        let Some(run) = text.get(start..i) else {
            continue;
        };
        let run = run.trim_end_matches('.');
        let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let word_around = word(start.checked_sub(1).and_then(|p| bytes.get(p)))
            || word(bytes.get(start + run.len()));
        if run.matches(':').count() >= 2
            && run.len() > 2
            && !word_around
            && run.parse::<Ipv6Addr>().is_ok()
        {
            out.push((start, start + run.len()));
        }
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
