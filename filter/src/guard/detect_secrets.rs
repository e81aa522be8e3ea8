//! Secret detectors: the documented key shapes of the providers the gateway serves (and of a
//! few services whose keys end up in prompts), AWS access key ids, PEM private key blocks, JWTs
//! and bearer tokens. The gateway's own provider credentials, whatever their shape (Cohere's
//! and Mistral's keys have no prefix to recognise), are found by value with the same
//! [`Scrubber`](crate::scrub::Scrubber) that keeps them out of provider answers.

use regex_lite::Regex;

use super::detect::Span;

/// One alternative per shape; each documented by its issuer:
/// - OpenAI: `sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-` then URL-safe characters
///   (platform.openai.com, "API keys": project and service-account keys);
/// - Anthropic: `sk-ant-api03-…`, `sk-ant-admin01-…` (docs.anthropic.com, "Admin API");
/// - Google AI / Gemini: `AIza` + 35 characters (cloud.google.com, "API keys");
/// - Groq: `gsk_` (console.groq.com/keys); xAI: `xai-`; Hugging Face tokens: `hf_`;
///   GitHub tokens: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`;
/// - AWS access key ids: `AKIA` (long-term) or `ASIA` (temporary) + 16 upper-case letters or
///   digits (IAM User Guide, "Understanding unique ID prefixes");
/// - PEM private keys: RFC 7468's `-----BEGIN … PRIVATE KEY-----` to its `-----END` line, or
///   the header alone when the block is cut;
/// - JWTs: three base64url parts, the first two JSON objects (`eyJ` is `{"`, RFC 7519);
/// - bearer tokens: `Bearer` + an RFC 6750 `b64token` of 16 characters or more.
const SECRETS: &str = concat!(
    r"\bsk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{20,}",
    r"|\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    r"|\bAIza[0-9A-Za-z_-]{35}",
    r"|\bgsk_[A-Za-z0-9]{20,}",
    r"|\bxai-[A-Za-z0-9]{20,}",
    r"|\bhf_[A-Za-z0-9]{30,}",
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    r"|-----BEGIN [A-Z0-9 ]{0,20}PRIVATE KEY-----(?s:.{0,8192}?)-----END [A-Z0-9 ]{0,20}PRIVATE KEY-----",
    r"|-----BEGIN [A-Z0-9 ]{0,20}PRIVATE KEY-----",
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"|\b[Bb]earer[ \t]+[A-Za-z0-9._~+/-]{16,}=*",
);

/// The longest secret a stream holds back for: a key or token (a private key block is caught
/// by its header line within the window; see README).
pub const LONGEST_SECRET: usize = 256;

#[derive(Debug, Clone)]
pub struct SecretPatterns {
    shapes: Regex,
}

impl SecretPatterns {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            shapes: Regex::new(SECRETS).map_err(|e| e.to_string())?,
        })
    }

    pub fn secrets(&self, text: &str, scrubber: &crate::scrub::Scrubber, out: &mut Vec<Span>) {
        self.shapes_in(text, out);
        out.extend(scrubber.spans(text.as_bytes()));
    }

    /// The shapes' matches. Every match begins with one of [`PREFIXES`], so the pattern (a
    /// large alternation: hundreds of nanoseconds a byte in the linear-time engine) starts
    /// walking only at the first prefix found, and again after each match; prose holding no
    /// prefix costs a few substring searches. The matches are those of a walk over the whole
    /// text (the search at a position still reads the character before it for `\b`).
    fn shapes_in(&self, text: &str, out: &mut Vec<Span>) {
        let mut from = 0;
        while let Some(start) = next_prefix(text, from) {
            let Some(m) = self.shapes.find_at(text, start) else {
                return;
            };
            out.push((m.start(), m.end()));
            from = m.end().max(start.saturating_add(1));
        }
    }
}

/// How each alternative of [`SECRETS`] begins.
const PREFIXES: &[&str] = &[
    "sk-",
    "AIza",
    "gsk_",
    "xai-",
    "hf_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "AKIA",
    "ASIA",
    "-----BEGIN ",
    "eyJ",
    "Bearer",
    "bearer",
];

/// Where the first of [`PREFIXES`] at or after `from` begins.
fn next_prefix(text: &str, from: usize) -> Option<usize> {
    let rest = text.as_bytes().get(from..)?;
    PREFIXES
        .iter()
        .filter_map(|p| memchr::memmem::find(rest, p.as_bytes()))
        .min()
        .map(|at| from.saturating_add(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrub::Scrubber;

    fn found(text: &str) -> Vec<&str> {
        let mut spans = Vec::new();
        let scrubber = Scrubber::new(["cohere-style-key-without-prefix-0123456789"]);
        SecretPatterns::new()
            .unwrap()
            .secrets(text, &scrubber, &mut spans);
        spans.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn provider_key_shapes_are_found() {
        // Shapes from each issuer's documentation; the characters are made up.
        for key in [
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "sk-svcacct-Zz0Yy1Xx2Ww3Vv4Uu5Tt6Ss7",
            "sk-ant-api03-Qwerty0123456789_Asdfgh-Zxcvbn0123456789AA",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
            "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",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            assert_eq!(
                found(&format!("my key is {key}, keep it")),
                vec![key],
                "{key}"
            );
        }
    }

    #[test]
    fn jwt_bearer_and_private_key_blocks_are_found() {
        // RFC 7519 section 3.1's example JWT.
        let jwt = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(found(&format!("token {jwt}.")), vec![jwt]);
        assert_eq!(
            found("curl -H 'Authorization: Bearer abcDEF123456789.xyz-_~+/=' x"),
            vec!["Bearer abcDEF123456789.xyz-_~+/="]
        );
        let block = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(&format!("here:\n{block}\nthanks")), vec![block]);
        assert_eq!(
            found("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r"),
            vec!["-----BEGIN OPENSSH PRIVATE KEY-----"]
        );
    }

    #[test]
    fn the_gateways_own_keys_are_found_by_value() {
        assert_eq!(
            found("use cohere-style-key-without-prefix-0123456789 please"),
            vec!["cohere-style-key-without-prefix-0123456789"]
        );
    }

    #[test]
    fn look_alikes_are_not_secrets() {
        for text in [
            "sk-short",
            "the task-list is long",
            "AKIA1234",
            "ask-questions-about-anything-you-like", // "sk-" inside a word
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
            "eyJhbGciOi alone is not a token",
            "Bearer token",
            "a bearer of good news",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Walking from the prefixes finds exactly what a walk over the whole text finds.
        #[test]
        fn the_prefix_walk_finds_what_the_whole_text_holds(
            tokens in proptest::collection::vec(proptest::sample::select(vec![
                "sk-", "sk-ant-api03-", "AKIA", "eyJ", "Bearer ", "-----BEGIN RSA PRIVATE KEY-----",
                "-----END RSA PRIVATE KEY-----", "abcdefghij", "ABCDEFGH", "0123456789", "_", "-",
                ".", " ", "ta", "é",
            ]), 0..30)
        ) {
            let text = tokens.concat();
            let patterns = SecretPatterns::new().unwrap();
            let mut walked = Vec::new();
            patterns.shapes_in(&text, &mut walked);
            let whole: Vec<Span> = patterns
                .shapes
                .find_iter(&text)
                .map(|m| (m.start(), m.end()))
                .collect();
            proptest::prop_assert_eq!(walked, whole);
        }
    }
}
