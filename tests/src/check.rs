//! Small readers the integration tests share: a gateway key's hash as the configuration holds
//! it, and one sample of Envoy's Prometheus text.

/// Lower-case hex SHA-256 of a gateway key (the `sha256` of a key in the configuration).
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of the Prometheus sample `name{labels...}` (all its labels given, in any order).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let have: Vec<&str> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|s| !s.is_empty())
                .collect();
            let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            (metric == name
                && have.len() == wanted.len()
                && wanted.iter().all(|w| have.contains(&w.as_str())))
            .then(|| value.parse().ok())
            .flatten()
        })
}
