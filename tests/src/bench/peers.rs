//! The other gateways, run in the same benchmark against the same fake upstream (installed by
//! tests/bench/peers.sh): the LiteLLM proxy (PyPI) and the Portkey gateway (npm). Each is one
//! process (plus whatever it forks), started on a free loopback port and killed when dropped.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::procstat;
use crate::http;

pub struct Peer {
    child: Child,
    pub pid: i32,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Children first (LiteLLM's workers), then the process itself.
        let mut pids = procstat::tree(self.pid);
        pids.reverse();
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn spawn(mut cmd: Command, log: &Path, port: u16) -> Result<Peer, String> {
    let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // The peer dies with the benchmark, even when the benchmark is killed.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("starting: {e}"))?;
    let pid = child.id() as i32;
    Ok(Peer {
        child,
        pid,
        port,
        log: log.to_path_buf(),
    })
}

/// Waits until `GET path` answers `ok_status`, or the peer exits, or `limit` passes.
fn wait_ready(peer: &mut Peer, path: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = peer.child.try_wait() {
            return Err(format!("exited with {status}; {}", tail(&peer.log)));
        }
        if let Ok(r) = http::request(peer.port, "GET", path, &[], b"") {
            if r.status < 500 {
                return Ok(());
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "not ready after {} s; {}",
        limit.as_secs(),
        tail(&peer.log)
    ))
}

/// The end of a log file, for error messages.
pub fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "log {}:\n{}",
        log.display(),
        lines[lines.len().saturating_sub(15)..].join("\n")
    )
}

/// The provider key the peers send to the fake upstream (which ignores it).
pub const UPSTREAM_KEY: &str = "sk-bench-upstream";

/// The LiteLLM proxy with both bench models pointed at the fake upstream; `workers` uvicorn
/// workers (one per proxy core).
pub fn litellm(root: &Path, dir: &Path, upstream: u16, workers: usize) -> Result<Peer, String> {
    let bin = root.join(".venv-peers/bin/litellm");
    if !bin.exists() {
        return Err(format!(
            "{} is missing (tests/bench/peers.sh could not install it)",
            bin.display()
        ));
    }
    let config = dir.join("litellm.yaml");
    fs::write(
        &config,
        format!(
            "# Rendered by `make bench`: both bench models on the fake upstream, default settings.\n\
             model_list:\n\
             \x20 - model_name: gpt-4o-mini\n\
             \x20   litellm_params: {{model: openai/gpt-4o-mini, api_base: \"http://127.0.0.1:{upstream}/v1\", api_key: {UPSTREAM_KEY}}}\n\
             \x20 - model_name: claude-haiku-4-5\n\
             \x20   litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: \"http://127.0.0.1:{upstream}\", api_key: {UPSTREAM_KEY}}}\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;
    let port = free_port()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--num_workers", &workers.max(1).to_string()])
        .current_dir(dir)
        // No download of the model price list at start (this machine reaches no such host), no
        // telemetry.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY");
    let mut peer = spawn(cmd, &dir.join("litellm.log"), port)?;
    wait_ready(&mut peer, "/health/liveliness", Duration::from_secs(180))?;
    Ok(peer)
}

pub fn portkey_script(root: &Path) -> PathBuf {
    root.join(".tools/portkey/node_modules/@portkey-ai/gateway/build/start-server.js")
}

/// The Portkey gateway (Node.js, one process); the provider and its host come in each request's
/// headers (`x-portkey-provider`, `x-portkey-custom-host`).
pub fn portkey(root: &Path, dir: &Path) -> Result<Peer, String> {
    let script = portkey_script(root);
    if !script.exists() {
        return Err(format!(
            "{} is missing (tests/bench/peers.sh could not install it)",
            script.display()
        ));
    }
    let port = free_port()?;
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .arg(format!("--port={port}"))
        // No web console and no log stream for it: the gateway alone.
        .arg("--headless")
        .current_dir(dir);
    let mut peer = spawn(cmd, &dir.join("portkey.log"), port)?;
    wait_ready(&mut peer, "/", Duration::from_secs(60))?;
    Ok(peer)
}
