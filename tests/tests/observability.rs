//! Stats and access-log fields, read back from the real Envoy after known requests.

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::{demo_answer, FakeProvider};
use serde_json::{json, Value};

/// The value of the Prometheus sample `name{labels...}` (labels in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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

fn gateway() -> (FakeProvider, Envoy) {
    let fake = FakeProvider::start(0).unwrap();
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"demo-4.1": {"provider": "demo", "model": "upstream-4.1"}}})),
        concurrency: 2,
        ..Default::default()
    });
    (fake, gw)
}

fn request(content: &str, stream: bool) -> Value {
    json!({"model": "demo-4.1", "stream": stream, "messages": [{"role": "user", "content": content}]})
}

#[test]
fn stats_count_requests_and_tokens_with_labels() {
    let (_fake, gw) = gateway();
    let requests = [
        request("one two three", false),
        request("four five", true),
        request("six", false),
    ];
    let (mut input, mut output) = (0, 0);
    for r in &requests {
        assert_eq!(gw.chat(r).status, 200);
        let (_, prompt, completion) = demo_answer(r);
        input += prompt;
        output += completion;
    }
    assert_eq!(
        gw.request("POST", "/v1/chat/completions", &[], b"{").status,
        400
    );

    let text = gw.prometheus();
    let labels = [("model", "demo-4.1"), ("provider", "demo")];
    let with = |extra: (&'static str, &'static str)| [labels[0], labels[1], extra];
    assert_eq!(
        sample(&text, "gw_requests", &with(("status_class", "2xx"))),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "gw_requests",
            &[
                ("model", "none"),
                ("provider", "none"),
                ("status_class", "4xx")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "gw_tokens", &with(("token_type", "input"))),
        Some(input as f64)
    );
    assert_eq!(
        sample(&text, "gw_tokens", &with(("token_type", "output"))),
        Some(output as f64)
    );
    // Histograms appear once Envoy merges them (every stats flush, 5 s by default).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut text = text;
    while sample(&text, "gw_request_duration_ms_count", &labels) != Some(3.0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
        text = gw.prometheus();
    }
    assert_eq!(
        sample(&text, "gw_request_duration_ms_count", &labels),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "gw_time_to_first_byte_ms_count", &labels),
        Some(3.0)
    );
}

#[test]
fn access_log_has_one_json_line_per_request_with_the_gateway_fields() {
    let (_fake, gw) = gateway();
    let chat = request("hello log", true);
    assert_eq!(gw.chat(&chat).status, 200);
    assert_eq!(
        gw.request(
            "POST",
            "/v1/chat/completions",
            &[],
            br#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#
        )
        .status,
        404
    );
    let lines = gw.access_log(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ok = &lines[0];
    let (_, prompt, completion) = demo_answer(&chat);
    assert_eq!(ok["model"], "demo-4.1");
    assert_eq!(ok["provider"], "demo");
    assert_eq!(ok["upstream_model"], "upstream-4.1");
    assert_eq!(ok["stream"], "true");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["prompt_tokens"], prompt.to_string());
    assert_eq!(ok["completion_tokens"], completion.to_string());
    assert_eq!(ok["total_tokens"], (prompt + completion).to_string());
    assert!(
        ok["duration_ms"]
            .as_str()
            .and_then(|d| d.parse::<u64>().ok())
            .is_some(),
        "{ok}"
    );
    assert!(
        ok["ttfb_ms"]
            .as_str()
            .and_then(|d| d.parse::<u64>().ok())
            .is_some(),
        "{ok}"
    );
    let refused = &lines[1];
    assert_eq!(refused["status"], 404);
    assert_eq!(refused["error"], "model_not_found");
    assert_eq!(
        refused["provider"],
        Value::Null,
        "a refused request names no provider"
    );
}
