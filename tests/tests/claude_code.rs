//! The Claude Code CLI (pinned, installed by tests/scripts/claude-code.sh; skipped with a
//! message when npm cannot install it) runs `claude -p` through the real Envoy against the fake
//! providers: once for a model Anthropic serves (passed through), once for one OpenAI serves
//! (translated). It needs no internet beyond the gateway.

use std::process::Command;

use gateway_tests::envoy::repo_root;
use gateway_tests::fake_provider::FakeProvider;
use gateway_tests::messages_api::{start, KEY};

/// Where the pinned Claude Code CLI is (installed by tests/scripts/claude-code.sh).
fn claude_code() -> Option<std::path::PathBuf> {
    let status = Command::new("bash")
        .arg(repo_root().join("tests/scripts/claude-code.sh"))
        .output()
        .expect("running tests/scripts/claude-code.sh");
    let stdout = String::from_utf8_lossy(&status.stdout);
    if !status.status.success() {
        eprintln!(
            "Claude Code could not be installed; skipped:\n{stdout}\n{}",
            String::from_utf8_lossy(&status.stderr)
        );
        return None;
    }
    Some(std::path::PathBuf::from(stdout.trim()))
}

#[test]
fn claude_code_runs_through_the_gateway() {
    let Some(claude) = claude_code() else {
        return;
    };
    let fake = FakeProvider::start(0).unwrap();
    let gw = start(&fake);
    let home = gw.dir.join("claude-home");
    std::fs::create_dir_all(&home).unwrap();
    for model in ["claude-haiku-4-5", "gpt-4o-mini"] {
        let before = fake.received().len();
        let output = Command::new(&claude)
            .args(["-p", "say hello", "--max-turns", "3"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env(
                "ANTHROPIC_BASE_URL",
                format!("http://127.0.0.1:{}", gw.port),
            )
            .env("ANTHROPIC_API_KEY", KEY)
            .env("ANTHROPIC_MODEL", model)
            .env("ANTHROPIC_SMALL_FAST_MODEL", model)
            .env("ANTHROPIC_DEFAULT_HAIKU_MODEL", model)
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .output()
            .expect("running claude");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let sent = &fake.received()[before..];
        assert!(
            !sent.is_empty(),
            "{model}: Claude Code sent nothing through the gateway:\n{stdout}\n{stderr}"
        );
        // The demo answers text, or calls the first tool and then says what the tool said.
        assert!(
            stdout.contains("Hello from the demo provider!") || stdout.contains("Tool said:"),
            "{model}: {stdout}\n{stderr}\n{sent:?}"
        );
    }
    // Claude Code makes more requests than the two prompts (titles, retries): wait for a line
    // for every request the provider got, or the last run's line may not be written yet.
    let log = gw.access_log(fake.received().len());
    assert!(log
        .iter()
        .any(|l| l["operation"] == "messages" && l["provider"] == "openai"));
    assert!(log
        .iter()
        .any(|l| l["operation"] == "messages" && l["provider"] == "anthropic"));
}
