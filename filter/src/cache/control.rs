//! The client's `Cache-Control` request header, as RFC 9111 section 5.2.1 defines its request
//! directives: `no-cache` (do not answer from a stored entry; the answer may still be stored),
//! `no-store` (neither read nor store) and `max-age=N` (accept only an entry at most N seconds
//! old). Other directives are ignored; a malformed `max-age` is ignored as well (RFC 9111 asks a
//! cache to treat an invalid value as stale, which only matters for reading: it reads nothing).

/// What the client allows for its request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    pub no_cache: bool,
    pub no_store: bool,
    pub max_age: Option<u64>,
}

impl Control {
    pub fn parse(header: Option<&str>) -> Self {
        let mut c = Self::default();
        for directive in header.unwrap_or_default().split(',') {
            let directive = directive.trim();
            let (name, value) = match directive.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-cache") {
                c.no_cache = true;
            } else if name.eq_ignore_ascii_case("no-store") {
                c.no_store = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                // An invalid value reads nothing: as stale as can be.
                c.max_age = Some(value.and_then(|v| v.parse().ok()).unwrap_or(0));
            }
        }
        c
    }

    /// May a stored entry answer this request?
    pub fn may_read(&self) -> bool {
        !self.no_cache && !self.no_store
    }

    /// May this request's answer be stored?
    pub fn may_store(&self) -> bool {
        !self.no_store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_per_rfc_9111() {
        assert_eq!(Control::parse(None), Control::default());
        let c = Control::parse(Some("no-cache"));
        assert!(!c.may_read() && c.may_store());
        let c = Control::parse(Some("No-Store, max-age=5"));
        assert!(!c.may_read() && !c.may_store());
        assert_eq!(Control::parse(Some("max-age=60")).max_age, Some(60));
        assert_eq!(Control::parse(Some("max-age=\"7\"")).max_age, Some(7));
        assert_eq!(Control::parse(Some("max-age=-1")).max_age, Some(0));
        assert_eq!(
            Control::parse(Some("private, max-stale")),
            Control::default()
        );
    }
}
