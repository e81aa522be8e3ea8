//! Header maps as the proxy-wasm ABI hands them over, read without trusting their bytes.
//!
//! The proxy-wasm SDK (0.2.5) turns every header name and value into a `String` with
//! `from_utf8(..).unwrap()`: one client header with a byte that is not UTF-8 (HTTP allows
//! `obs-text`, 0x80–0xFF, and Envoy passes it on) panicked the VM, failing that request and
//! the ones after it until Envoy reloaded the VM. The gateway reads header maps itself
//! (`wasm/abi.rs`) and decodes them here: a value that is not UTF-8 is read with U+FFFD in
//! place of its bad bytes (it matches no key, no model, no known value), and a map whose
//! framing does not add up is an error, never a panic.
//!
//! The framing, from the Proxy-Wasm ABI v0.2.1 specification (github.com/proxy-wasm/spec,
//! `abi-versions/v0.2.1/README.md`, "Serialization"): the number of pairs (u32, little-endian),
//! then each pair's name length and value length (u32 each), then each pair's name and value,
//! each followed by a NUL byte; an empty map is no bytes or a single NUL.

/// The pairs of a serialized header map.
pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    if bytes.is_empty() || bytes == [0] {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0).ok_or("no pair count")?;
    let sizes_end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|&end| end <= bytes.len())
        .ok_or("more pairs than bytes")?;
    let mut pairs = Vec::with_capacity(count);
    let mut at = sizes_end;
    for pair in 0..count {
        let sizes = 4 + pair * 8;
        let name_len = read_u32(bytes, sizes).ok_or("no name length")?;
        let value_len = read_u32(bytes, sizes + 4).ok_or("no value length")?;
        let (name, next) = field(bytes, at, name_len).ok_or("a name past the end")?;
        let (value, next) = field(bytes, next, value_len).ok_or("a value past the end")?;
        pairs.push((text(name), text(value)));
        at = next;
    }
    Ok(pairs)
}

/// A header value as text: U+FFFD for each byte sequence that is not UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// `len` bytes at `at`, and where the next field starts (after the NUL that ends this one).
fn field(bytes: &[u8], at: usize, len: usize) -> Option<(&[u8], usize)> {
    let end = at.checked_add(len)?;
    let data = bytes.get(at..end)?;
    (bytes.get(end) == Some(&0)).then_some((data, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes pairs as the ABI specification describes, written out by hand here (not by
    /// the decoder's helpers) so the test checks the decoder against the specification.
    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (name, value) in pairs {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend((value.len() as u32).to_le_bytes());
        }
        for (name, value) in pairs {
            out.extend(*name);
            out.push(0);
            out.extend(*value);
            out.push(0);
        }
        out
    }

    #[test]
    fn pairs_are_read_in_order_with_empty_values() {
        let bytes = serialize(&[
            (b":path", b"/v1/chat/completions"),
            (b"x-empty", b""),
            (b"authorization", b"Bearer gw-1"),
        ]);
        assert_eq!(
            decode_pairs(&bytes).unwrap(),
            vec![
                (":path".to_string(), "/v1/chat/completions".to_string()),
                ("x-empty".to_string(), String::new()),
                ("authorization".to_string(), "Bearer gw-1".to_string()),
            ]
        );
        assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
        assert_eq!(
            decode_pairs(&[0]).unwrap(),
            vec![],
            "the specification's other empty map"
        );
        assert_eq!(decode_pairs(&serialize(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_value_that_is_not_utf8_is_read_with_replacement_characters() {
        // "café" in Latin-1 (0xE9), as an HTTP/1 client may send it (obs-text).
        let bytes = serialize(&[(b"x-note", b"caf\xe9"), (b"x-next", b"ok")]);
        let pairs = decode_pairs(&bytes).unwrap();
        assert_eq!(pairs[0], ("x-note".into(), "caf\u{fffd}".into()));
        assert_eq!(pairs[1], ("x-next".into(), "ok".into()));
        assert_eq!(text(b"\xff\xfe"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn framing_that_does_not_add_up_is_an_error() {
        let good = serialize(&[(b"a", b"1"), (b"bb", b"22")]);
        // Every truncation of a good map, and a count past the bytes.
        for cut in 1..good.len() {
            assert!(decode_pairs(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut many = good.clone();
        many[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_pairs(&many).is_err());
        // A length past the end, and a field without its NUL.
        let mut long = good.clone();
        long[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decode_pairs(&long).is_err());
        let mut unterminated = good;
        let first_nul = 4 + 2 * 8 + 1;
        unterminated[first_nul] = b'x';
        assert!(decode_pairs(&unterminated).is_err());
    }
}
