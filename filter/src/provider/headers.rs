//! Which request headers reach a provider: an allow-list. Everything the client or Envoy put on
//! the request is removed unless it frames the request, is a client choice that means
//! something to this kind of provider, or the provider's configuration names it in
//! `forward_headers`. The translator's own headers (credentials, versions) are set after the
//! removal. Decided afresh on every attempt, because header changes of one attempt carry into
//! the next (the previous attempt's credentials must go too).

use super::{Provider, ProviderKind};

/// The `user-agent` every provider sees: the gateway, not the client's SDK.
pub const USER_AGENT: &str = concat!("ai-gateway/", env!("CARGO_PKG_VERSION"));

/// Kept on every attempt. `content-length`/`transfer-encoding` frame the body (the buffer filter
/// after this one sets the length); `x-request-id` stays because Envoy's header map is shared
/// with the downstream side, whose access log prints it.
const ALWAYS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "x-request-id",
];

/// Client headers with a documented meaning for one kind of provider.
/// - Anthropic: `anthropic-beta` turns on beta features
///   (https://docs.anthropic.com/en/api/beta-headers).
///
/// Not forwarded by default: OpenAI's `OpenAI-Organization`/`OpenAI-Project` bill the request to
/// another organization or project the gateway's key can reach
/// (https://platform.openai.com/docs/api-reference/authentication); an operator who wants that
/// lists them in `forward_headers`.
fn client_chosen(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Anthropic => &["anthropic-beta"],
        _ => &[],
    }
}

/// Names `forward_headers` may never hold: credentials and cookies of the client (the gateway
/// sets the provider's own).
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
];

/// Whether the header `name` stays on a request to a provider of `kind` with these extra names.
pub fn is_forwarded(name: &str, kind: ProviderKind, forward_headers: &[String]) -> bool {
    name.starts_with(':')
        || ALWAYS.iter().any(|h| h.eq_ignore_ascii_case(name))
        || client_chosen(kind)
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        || forward_headers.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The headers of `present` to remove before the translator sets its own.
pub fn removals<'a>(
    present: impl IntoIterator<Item = &'a str>,
    provider: &Provider,
) -> Vec<&'a str> {
    present
        .into_iter()
        .filter(|name| !is_forwarded(name, provider.kind, &provider.forward_headers))
        .collect()
}

/// Checks one `forward_headers` entry: a lower-case header name that carries no credential.
pub fn check_forward_header(name: &str) -> Result<(), String> {
    // RFC 9110 token characters, upper case excluded (Envoy keeps header names lower case).
    let token =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "'{name}' is not a lower-case header name (letters a-z, digits, '-')"
        ));
    }
    if NEVER_FORWARDED.contains(&name) {
        return Err(format!(
            "'{name}' carries credentials and is never forwarded to a provider"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn provider(kind: &str, forward: &str) -> Provider {
        let json = format!(
            r#"{{"providers": {{"p": {{"type": "{kind}", "forward_headers": {forward}}}}},
                "models": {{"m": {{"provider": "p"}}}}}}"#
        );
        let c = Config::from_json(json.as_bytes(), &|_| None).unwrap();
        c.providers.into_iter().next().unwrap()
    }

    /// What a client, Envoy's connection manager and router put on a request (names as Envoy
    /// holds them), plus what an earlier attempt to another provider left.
    const PRESENT: &[&str] = &[
        ":method",
        ":path",
        ":authority",
        ":scheme",
        "content-type",
        "content-length",
        "accept",
        "accept-encoding",
        "user-agent",
        "proxy-authorization",
        "cookie",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-real-ip",
        "traceparent",
        "te",
        "x-custom",
        "x-request-id",
        "x-envoy-expected-rq-timeout-ms",
        "x-envoy-attempt-count",
        "anthropic-beta",
        "openai-organization",
        "x-api-key",
        "anthropic-version",
        "authorization",
    ];

    fn kept(p: &Provider) -> Vec<&'static str> {
        let removed = removals(PRESENT.iter().copied(), p);
        PRESENT
            .iter()
            .copied()
            .filter(|h| !removed.contains(h))
            .collect()
    }

    #[test]
    fn only_framing_and_pseudo_headers_reach_an_openai_provider() {
        assert_eq!(
            kept(&provider("openai", "[]")),
            [
                ":method",
                ":path",
                ":authority",
                ":scheme",
                "content-type",
                "content-length",
                "x-request-id"
            ]
        );
    }

    #[test]
    fn anthropic_gets_the_clients_beta_header_and_no_stale_credentials() {
        let k = kept(&provider("anthropic", "[]"));
        assert!(k.contains(&"anthropic-beta"), "{k:?}");
        for stale in ["x-api-key", "anthropic-version", "authorization"] {
            assert!(!k.contains(&stale), "{stale} must be set afresh: {k:?}");
        }
        assert!(!kept(&provider("gemini", "[]")).contains(&"anthropic-beta"));
    }

    #[test]
    fn configured_names_are_added_to_the_list() {
        let k = kept(&provider(
            "openai",
            r#"["x-custom", "openai-organization"]"#,
        ));
        assert!(k.contains(&"x-custom") && k.contains(&"openai-organization"));
        assert!(!k.contains(&"x-forwarded-for"));
        assert!(is_forwarded(
            "X-Custom",
            ProviderKind::Azure,
            &["x-custom".into()]
        ));
    }

    #[test]
    fn forward_headers_entries_are_checked() {
        assert_eq!(check_forward_header("x-trace-id"), Ok(()));
        for bad in ["X-Custom", "", "a b", "x:y"] {
            assert!(check_forward_header(bad).is_err(), "{bad}");
        }
        for secret in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-key",
        ] {
            let e = check_forward_header(secret).unwrap_err();
            assert!(e.contains("credentials"), "{e}");
        }
    }
}
