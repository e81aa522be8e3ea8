//! The Codex CLI (pinned, installed by tests/scripts/codex.sh; skipped with a message when npm
//! cannot install it) runs `codex exec` through the real Envoy against the fake providers, over
//! the Responses API (`wire_api = "responses"`): once for a model OpenAI serves (its requests
//! pass through to OpenAI's `/v1/responses` as Codex sent them, its hosted web search tool
//! included), once for one Anthropic serves (the chat form, translated; Codex's hosted web
//! search switched off there, as README says). It needs no internet beyond the gateway. Codex's
//! sub-agent tools are switched off for both.

use std::process::Command;

use gateway_tests::envoy::repo_root;
use gateway_tests::fake_provider::FakeProvider;
use gateway_tests::messages_api::{start, KEY};

/// Where the pinned Codex launcher is (installed by tests/scripts/codex.sh).
fn codex() -> Option<std::path::PathBuf> {
    let status = Command::new("bash")
        .arg(repo_root().join("tests/scripts/codex.sh"))
        .output()
        .expect("running tests/scripts/codex.sh");
    let stdout = String::from_utf8_lossy(&status.stdout);
    if !status.status.success() {
        eprintln!(
            "Codex could not be installed; skipped:\n{stdout}\n{}",
            String::from_utf8_lossy(&status.stderr)
        );
        return None;
    }
    Some(std::path::PathBuf::from(stdout.trim()))
}

#[test]
fn codex_runs_through_the_gateway() {
    let Some(codex) = codex() else {
        return;
    };
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let home = gw.dir.join("codex-home");
    let work = gw.dir.join("codex-work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let provider = format!(
        "model_providers.gateway={{name=\"gateway\", base_url=\"http://127.0.0.1:{}/v1\", env_key=\"GATEWAY_KEY\", wire_api=\"responses\"}}",
        gw.port
    );
    for model in ["gpt-4o-mini", "claude-haiku-4-5"] {
        let before = fake.received().len();
        let output = Command::new("node")
            .arg(&codex)
            .args([
                "exec",
                "--skip-git-repo-check",
                "-c",
                "model_provider=gateway",
            ])
            .args(["-c", &provider, "-c", &format!("model={model}")])
            .args(
                if model.starts_with("gpt") {
                    ["--disable", "multi_agent", "", ""]
                } else {
                    ["-c", "web_search=disabled", "--disable", "multi_agent"]
                }
                .iter()
                .filter(|a| !a.is_empty()),
            )
            .arg("say hello")
            .current_dir(&work)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("CODEX_HOME", &home)
            .env("GATEWAY_KEY", KEY)
            .output()
            .expect("running codex");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let sent = &fake.received()[before..];
        // Codex always offers tools: the demo calls the first one, Codex runs it (its arguments
        // are the demo's, so it reports a failure) and sends the output back, and the demo
        // answers with what the tool said, which Codex prints.
        assert!(
            sent.len() >= 2,
            "{model}: no tool round trip through the gateway:\n{stdout}\n{stderr}\n{sent:?}"
        );
        assert!(
            stdout.contains("Tool said:"),
            "{model}: {stdout}\n{stderr}\n{sent:?}"
        );
        assert!(output.status.success(), "{model}: {stdout}\n{stderr}");
        if model.starts_with("gpt") {
            // Passed through: Codex's own body (its hosted tool and `include` kept), no store.
            for request in sent {
                assert_eq!(request.path, "/v1/responses", "{model}");
                let body = request.json();
                assert_eq!(body["store"], false, "{body}");
                assert!(body["include"].is_array(), "{body}");
            }
            let tools = sent[0].json()["tools"].to_string();
            assert!(tools.contains("\"web_search\""), "{tools}");
        } else {
            assert!(sent.iter().all(|r| r.path == "/v1/messages"), "{sent:?}");
        }
    }
    // A line for every request the provider got (Codex makes two or more per run): with fewer,
    // the first run's lines alone satisfy the wait and the last run's may not be written yet.
    let log = gw.access_log(fake.received().len());
    for provider in ["openai", "anthropic"] {
        assert!(
            log.iter()
                .any(|l| l["operation"] == "responses" && l["provider"] == provider),
            "{provider}: {log:?}"
        );
    }
}
