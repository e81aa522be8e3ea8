//! AWS Signature Version 4 for request headers.
//! Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
//! (steps 1-4: canonical request, string to sign, signing key, signature) and
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html.
//! Tested against the published AWS SigV4 test suite cases (get-vanilla, post-vanilla,
//! get-vanilla-query-order-key-case, get-utf8).

use crate::provider::percent_encode;
use crate::sha256::{digest, hex, hmac};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What is signed.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path to sign, encoded once more here segment by segment. Non-S3 services sign each
    /// segment URI-encoded twice: pass the path as sent on the wire (already encoded once).
    pub path: &'a str,
    /// Query parameters, not yet encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Every header here is signed (`host` and `x-amz-date` must be among them).
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body.
    pub payload_hash: &'a str,
}

pub struct Key<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The `authorization` header value for `request`, signed at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn authorization(request: &Request, key: &Key, amz_date: &str) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{}/{}/aws4_request", key.region, key.service);
    let (canonical, signed_headers) = canonical_request(request);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&digest(canonical.as_bytes()))
    );
    let signing_key = signing_key(key.secret_access_key, date, key.region, key.service);
    let signature = hex(&hmac(&signing_key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        key.access_key_id
    )
}

/// The canonical request and the signed-headers list.
pub fn canonical_request(request: &Request) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .collect();
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        request.payload_hash
    );
    (canonical, signed_headers)
}

/// Each path segment URI-encoded (RFC 3986 unreserved characters kept); `/` when empty.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Header value with surrounding spaces trimmed and inner runs of spaces collapsed.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Hex SHA-256 of a payload.
pub fn payload_hash(payload: &[u8]) -> String {
    hex(&digest(payload))
}

/// `YYYYMMDDTHHMMSSZ` (ISO 8601 basic, UTC) for seconds since the Unix epoch.
pub fn amz_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS SigV4 test suite's credentials, scope and time (aws-sig-v4-test-suite, also
    /// vendored in aws-c-auth/tests/aws-signing-test-suite/v4).
    const SUITE: Key = Key {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
    };
    const SUITE_DATE: &str = "20150830T123600Z";
    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// The key derivation example of the AWS documentation ("Examples of how to derive a
    /// signing key for Signature Version 4": 20120215, us-east-1, iam).
    #[test]
    fn signing_key_of_the_documented_example() {
        assert_eq!(
            hex(&signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20120215",
                "us-east-1",
                "iam"
            )),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    fn suite(method: &str, path: &str, query: &[(&str, &str)]) -> String {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", SUITE_DATE),
        ];
        authorization(
            &Request {
                method,
                path,
                query,
                headers: &headers,
                payload_hash: EMPTY_HASH,
            },
            &SUITE,
            SUITE_DATE,
        )
    }

    fn signature(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap()
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        let auth = suite("GET", "/", &[]);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn aws_test_suite_post_vanilla() {
        assert_eq!(
            signature(&suite("POST", "/", &[])),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn aws_test_suite_query_order_and_utf8_path() {
        // get-vanilla-query-order-key-case: parameters are sorted before signing.
        assert_eq!(
            signature(&suite(
                "GET",
                "/",
                &[("Param2", "value2"), ("Param1", "value1")]
            )),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
        // get-utf8: the path `/ሴ` signs as `/%E1%88%B4`.
        assert_eq!(canonical_uri("/\u{1234}"), "/%E1%88%B4");
        assert_eq!(
            signature(&suite("GET", "/\u{1234}", &[])),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        );
    }

    #[test]
    fn the_suite_canonical_request_has_the_documented_shape() {
        let headers = [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", SUITE_DATE),
        ];
        let (canonical, signed) = canonical_request(&Request {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_HASH,
        });
        // get-vanilla.creq from the test suite.
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
    }

    #[test]
    fn non_s3_paths_are_encoded_once_more() {
        // Bedrock model ids hold ':'; the wire path has %3A, the canonical URI %253A.
        assert_eq!(
            canonical_uri("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
            "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse"
        );
        assert_eq!(canonical_value("  a   b c  "), "a b c");
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), SUITE_DATE);
        // 2024-02-29 (leap day) 23:59:59 and the second after.
        assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
        assert_eq!(amz_date(1_709_251_200), "20240301T000000Z");
        assert_eq!(amz_date(4_102_444_800), "21000101T000000Z");
    }
}
