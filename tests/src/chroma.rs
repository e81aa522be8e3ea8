//! A real Chroma server for the cache's shared-tier tests: installed once by
//! tests/scripts/chroma.sh into .tools/chroma (pinned in tests/chroma-requirements.txt),
//! started with `chroma run` on a free port and a fresh data directory, stopped by its PID when
//! dropped (and when the test process dies). Also a TCP proxy the test can slow down, standing
//! between Envoy and Chroma.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::envoy::{repo_root, Envoy};
use crate::http;

pub struct Chroma {
    child: Option<Child>,
    pub port: u16,
    data: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `chroma` command, installed on first use.
fn chroma_bin() -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/scripts/chroma.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running tests/scripts/chroma.sh");
    assert!(out.status.success(), "installing Chroma failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Chroma {
    pub fn start() -> Self {
        let data = std::env::temp_dir().join(format!(
            "ai-gateway-chroma-{}-{}",
            std::process::id(),
            free_port()
        ));
        let mut chroma = Self {
            child: None,
            port: free_port(),
            data,
        };
        chroma.run();
        chroma
    }

    /// Starts the server (again) on its port; `fresh` data makes every collection new.
    fn run(&mut self) {
        let mut cmd = Command::new(chroma_bin());
        cmd.args(["run", "--path"])
            .arg(&self.data)
            .args(["--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("starting chroma run"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http::request(self.port, "GET", "/api/v2/heartbeat", &[], b"")
                .is_ok_and(|r| r.status == 200)
            {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("Chroma did not answer /api/v2/heartbeat within 60 s");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port with an empty data directory (a reset store).
    pub fn restart_empty(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
        self.run();
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        let r = http::request(
            self.port,
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("Chroma answers");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    /// The id of a collection of the default tenant and database (created when missing).
    pub fn collection_id(&self, name: &str) -> String {
        let v = self.post(
            "/api/v2/tenants/default_tenant/databases/default_database/collections",
            &json!({"name": name, "get_or_create": true}),
        );
        v["id"].as_str().expect("a collection id").to_string()
    }

    /// Every record of a collection as Chroma's own `get` returns it (ids and metadatas).
    pub fn records(&self, collection: &str) -> Value {
        let id = self.collection_id(collection);
        self.post(
            &format!(
                "/api/v2/tenants/default_tenant/databases/default_database/collections/{id}/get"
            ),
            &json!({"include": ["metadatas", "documents"], "limit": 1000}),
        )
    }

    /// Waits until `collection` holds at least `n` records and returns them. The gateway writes
    /// after the client's answer, each collection by its own callout, so a test waits for each
    /// collection it reads; past the deadline the message has `gw`'s shared-tier stats.
    pub fn wait_for_records(&self, collection: &str, n: usize, gw: &Envoy) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.records(collection);
            let have = records["ids"].as_array().map_or(0, Vec::len);
            if have >= n {
                return records;
            }
            if Instant::now() > deadline {
                let metrics = gw.prometheus();
                let stats: Vec<&str> = metrics
                    .lines()
                    .filter(|l| l.starts_with("gw_cache_shared"))
                    .collect();
                panic!(
                    "{collection} holds {have} records, not {n}; the gateway's calls: {stats:#?}"
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Chroma {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A TCP proxy to a local port that holds every byte toward the server for `delay_ms` when
/// set (0: forwards at once). Its threads end with their connections.
pub struct SlowProxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    pub fn start(to: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (delay, stopped) = (Arc::clone(&delay_ms), Arc::clone(&stop));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let delay = Arc::clone(&delay);
                thread::spawn(move || pump(client, server, Some(delay)));
                thread::spawn(move || pump(s2, c2, None));
            }
        });
        Self {
            port,
            delay_ms,
            stop,
        }
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(ms) = delay.as_ref().map(|d| d.load(Ordering::SeqCst)) {
            if ms > 0 {
                thread::sleep(Duration::from_millis(ms));
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
