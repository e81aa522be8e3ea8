//! Sealing of shared-tier entries with AES-256-GCM: the store holds only ciphertext, and an
//! entry opens only under the gateway's key and at the id it was written for (the id is the
//! exact key hash, bound as associated data), so an entry copied to another id, or any byte of
//! it changed, fails to open and is a miss.
//!
//! ```text
//! sealed = "GWS1" | nonce (12, random per entry) | ciphertext | tag (16)
//! associated data = "gw-cache-shared-1\n" | id (32)
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;

const MAGIC: &[u8; 4] = b"GWS1";
pub const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const AAD_PREFIX: &[u8] = b"gw-cache-shared-1\n";

/// The 256-bit key entries are sealed with. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// The key from its environment value: 32 bytes in standard base64 (`openssl rand -base64
    /// 32`). The error never repeats the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "is not base64 (make one with `openssl rand -base64 32`)".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "holds {} bytes; AES-256 needs 32 (`openssl rand -base64 32`)",
                b.len()
            )
        })?;
        Ok(Self(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

fn aad(id: &[u8; 32]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + id.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(id);
    aad
}

/// Seals `plain` for the entry `id` under a fresh `nonce` (never reuse one with the same key);
/// `None` only for a plaintext past AES-GCM's limit (64 GiB), far above any entry.
pub fn seal(
    key: &SealKey,
    id: &[u8; 32],
    nonce: [u8; NONCE_BYTES],
    plain: &[u8],
) -> Option<Vec<u8>> {
    let aad = aad(id);
    let sealed = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .ok()?;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_BYTES + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Some(out)
}

/// Opens an entry sealed for `id`; `None` for anything else (another key, another id, a changed
/// byte, another format).
pub fn open(key: &SealKey, id: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    let rest = sealed.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < NONCE_BYTES + TAG_BYTES {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    let aad = aad(id);
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(byte: u8) -> SealKey {
        SealKey([byte; 32])
    }

    /// The crate against the published vector: "The Galois/Counter Mode of Operation (GCM)",
    /// McGrew & Viega, Appendix B, Test Case 16 (AES-256, 96-bit IV, with associated data).
    #[test]
    fn aes_256_gcm_matches_the_gcm_specification_test_case_16() {
        let k: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let iv = hex("cafebabefacedbaddecaf888");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let out = SealKey(k)
            .cipher()
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(
            out,
            hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b")
        );
    }

    #[test]
    fn an_entry_opens_only_with_its_key_at_its_id() {
        let id = [3u8; 32];
        let plain = b"{\"choices\":[{\"message\":{\"content\":\"the answer\"}}]}";
        let sealed = seal(&key(1), &id, [9; NONCE_BYTES], plain).unwrap();
        assert_eq!(&sealed[..4], b"GWS1");
        assert_eq!(sealed.len(), 4 + NONCE_BYTES + plain.len() + TAG_BYTES);
        assert!(
            !sealed.windows(10).any(|w| w == b"the answer"),
            "no plain text in the sealed bytes"
        );
        assert_eq!(open(&key(1), &id, &sealed).as_deref(), Some(&plain[..]));
        assert_eq!(open(&key(2), &id, &sealed), None, "another key");
        assert_eq!(
            open(&key(1), &[4u8; 32], &sealed),
            None,
            "moved to another id"
        );
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 1;
            assert_eq!(open(&key(1), &id, &changed), None, "byte {i} changed");
        }
        for cut in 0..sealed.len() {
            assert_eq!(open(&key(1), &id, &sealed[..cut]), None, "cut at {cut}");
        }
        let other_nonce = seal(&key(1), &id, [8; NONCE_BYTES], plain).unwrap();
        assert_ne!(other_nonce, sealed, "the nonce changes the ciphertext");
    }

    #[test]
    fn keys_are_32_bytes_of_base64_and_never_shown() {
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(SealKey::parse(&text), Ok(key(7)));
        assert_eq!(SealKey::parse(&format!(" {text}\n")), Ok(key(7)));
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert!(SealKey::parse(&short).unwrap_err().contains("16 bytes"));
        assert!(SealKey::parse("not base64!")
            .unwrap_err()
            .contains("not base64"));
        assert_eq!(format!("{:?}", key(7)), "SealKey(..)");
    }
}
