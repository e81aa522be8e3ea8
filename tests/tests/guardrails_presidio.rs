//! The Presidio adapter against the real Presidio analyzer engine (PyPI `presidio-analyzer`
//! with the small English spaCy model PyPI serves), installed by tests/scripts/presidio.sh into
//! .tools/presidio and served behind Presidio's `POST /analyze` contract by
//! tests/scripts/presidio_server.py; started here and stopped when the test ends. Blocks, and
//! masks (typed placeholders from Presidio's entity types, restored in the answer).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use gateway_tests::envoy::{repo_root, Envoy, Options};
use gateway_tests::fake_provider::FakeProvider;
use serde_json::json;

/// The analyzer service, killed on drop.
struct Presidio {
    child: Child,
    port: u16,
}

impl Drop for Presidio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_presidio() -> Presidio {
    let root = repo_root();
    let out = Command::new("bash")
        .arg(root.join("tests/scripts/presidio.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running tests/scripts/presidio.sh");
    assert!(out.status.success(), "installing Presidio failed");
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut cmd = Command::new(python);
    cmd.arg(root.join("tests/scripts/presidio_server.py"))
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // The service dies with the test process, even when it is killed.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("starting the Presidio server");
    let stdout = child.stdout.take().expect("its stdout");
    let mut line = String::new();
    // The engine loads its spaCy model first (a few seconds), then prints "ready".
    let _ = BufReader::new(stdout).read_line(&mut line);
    assert_eq!(line.trim(), "ready", "the Presidio server did not start");
    Presidio { child, port }
}

#[test]
fn presidio_flags_personal_data_and_lets_the_rest_through() {
    let presidio = start_presidio();
    let fake = FakeProvider::start(0).expect("fake provider");
    let gw = Envoy::start(Options {
        upstreams: vec![("provider_demo".into(), fake.port)],
        extra_clusters: vec![("presidio".into(), presidio.port)],
        plugin_config: Some(json!({
            "providers": {"demo": {"type": "openai", "cluster": "provider_demo"}},
            "models": {"chat": {"provider": "demo"}, "masked": {"provider": "demo"}},
            "guardrails": {"policies": {
                "pii": {"models": ["chat"], "guards": [
                    {"name": "presidio-pii", "kind": "presidio", "cluster": "presidio",
                     "entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"], "score_threshold": 0.4,
                     "phase": "request", "action": "block", "timeout_ms": 5000}]},
                "mask": {"models": ["masked"], "guards": [
                    {"name": "presidio-mask", "kind": "presidio", "cluster": "presidio",
                     "entities": ["EMAIL_ADDRESS"], "phase": "request", "action": "mask",
                     "restore": true, "timeout_ms": 5000}]}}}})),
        concurrency: 1,
        ..Default::default()
    });
    let ask = |content: &str| {
        json!({"model": "chat", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": content}]})
    };
    let r = gw.chat(&ask("What is the capital of France?"));
    assert_eq!(r.status, 200, "{}", r.text());
    for text in [
        "Please email the report to maria.garcia@example.org",
        "My colleague John Smith will join the call.",
    ] {
        let before = fake.received().len();
        let r = gw.chat(&ask(text));
        assert_eq!(r.status, 400, "{text}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "guardrail_blocked");
        assert_eq!(
            fake.received().len(),
            before,
            "nothing flagged reaches a provider"
        );
    }
    // Masked: Presidio's offsets are code points (Python str indices); the text before the
    // address holds two-byte characters, so byte offsets would cut the wrong span.
    let text = "Grüße aus Köln! Schreib an maria.garcia@example.org, danke.";
    let r = gw.chat(&json!({"model": "masked", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": text}]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = fake
        .received()
        .last()
        .expect("the provider was asked")
        .json();
    assert_eq!(
        sent["messages"][1]["content"],
        "Grüße aus Köln! Schreib an [EMAIL_ADDRESS_1], danke."
    );
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
    // The fake provider echoes the text: the client gets the address back.
    let answer = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(answer.ends_with(text), "{answer}");

    // Presidio stopped: the guard fails closed.
    drop(presidio);
    let r = gw.chat(&ask("What is the capital of Spain?"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "guardrail_unavailable");
}
