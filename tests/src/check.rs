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

/// Runs one of the Python clients in `tests/sdk/` (the official SDKs, from the project's
/// `.venv`) with `args`, and reads the JSON it prints. Fails the test, with the client's output,
/// when it fails.
pub fn run_python_client<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> serde_json::Value {
    let root = crate::envoy::repo_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run `make test`",
        python.display()
    );
    let output = std::process::Command::new(&python)
        .arg(root.join("tests/sdk").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}"))
}
