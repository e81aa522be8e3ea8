//! Starts the real Envoy with the real .wasm and the shipped `envoy/envoy.yaml`, changed only
//! where a test must: ports (0, read back from the admin API), the .wasm path, the access-log
//! file, provider cluster endpoints (pointed at fake providers) and the plugin configuration.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::http::{self, Response};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn required_file(var: &str, default: PathBuf) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    assert!(
        path.exists(),
        "{} not found ({var}). Run `make test`: it installs Envoy and builds the .wasm first.",
        path.display()
    );
    path
}

pub fn envoy_bin() -> PathBuf {
    required_file("ENVOY_BIN", repo_root().join(".venv/bin/envoy"))
}

pub fn wasm_path() -> PathBuf {
    required_file(
        "GATEWAY_WASM",
        repo_root().join("target/wasm32-wasip1/release/ai_gateway.wasm"),
    )
}

/// How a test wants its Envoy.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the plugin configuration (both filters); `None` keeps the shipped one.
    pub plugin_config: Option<Json>,
    /// Cluster name -> local port of the fake provider that stands in for it. A cluster named
    /// twice gets one endpoint per port.
    pub upstreams: Vec<(String, u16)>,
    /// Plain-HTTP clusters to add (e.g. a classifier the plugin calls out to).
    pub extra_clusters: Vec<(String, u16)>,
    /// HTTP/2 clusters to add (a gRPC rate limit service).
    pub grpc_clusters: Vec<(String, u16)>,
    /// Plain-HTTP clusters to add that point at this Envoy's own listener (the semantic
    /// cache's embeddings calls). The listener then gets a free port picked before the start
    /// instead of port 0.
    pub loopback_clusters: Vec<String>,
    /// Replaces every route's `per_try_timeout` (e.g. "1s").
    pub per_try_timeout: Option<String>,
    /// Replaces the `connect_timeout` of the clusters pointed at local upstreams (load tests:
    /// a worker busy with big bodies handles a connection's completion late).
    pub connect_timeout: Option<String>,
    /// Environment of the Envoy process (provider keys), besides a cleaned-up base. Each name
    /// is also added to the VMs' `host_env_keys`, as a user would.
    pub env: Vec<(String, String)>,
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
    /// Another Envoy config file than the shipped one.
    pub config_file: Option<PathBuf>,
}

pub struct Envoy {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
    pub admin_port: u16,
}

impl Options {
    /// The shipped configuration with every provider cluster pointed at one fake provider (it
    /// answers each wire format by path) and test credentials for every provider in Envoy's
    /// environment: OpenAI, Anthropic, Gemini, Cohere and Azure keys, and the AWS keys the fake
    /// Bedrock checks signatures with.
    pub fn every_provider_family(fake_port: u16) -> Self {
        use crate::fake::bedrock::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
        let clusters = [
            "provider_demo",
            "openai",
            "anthropic",
            "gemini",
            "bedrock",
            "cohere",
            "azure",
        ];
        let env = [
            ("OPENAI_API_KEY", "test-openai-key"),
            ("ANTHROPIC_API_KEY", "test-anthropic-key"),
            ("GEMINI_API_KEY", "test-gemini-key"),
            ("COHERE_API_KEY", "test-cohere-key"),
            ("AZURE_OPENAI_API_KEY", "test-azure-key"),
            ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY),
        ];
        Self {
            upstreams: clusters
                .iter()
                .map(|c| (c.to_string(), fake_port))
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            concurrency: 1,
            ..Default::default()
        }
    }
}

/// Provider keys of the developer's shell must never reach a test Envoy.
const SCRUBBED_ENV: &[&str] = &["OPENAI_API_KEY"];

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

impl Envoy {
    pub fn start(options: Options) -> Self {
        let (dir, config_path) = prepare(&options);
        let child = spawn(&options, &dir, &config_path);
        let mut envoy = Self {
            child,
            dir,
            port: 0,
            admin_port: 0,
        };
        if let Err(e) = envoy.wait_ready() {
            let log = envoy.log();
            panic!("Envoy did not become ready: {e}\n--- envoy log ---\n{log}");
        }
        envoy
    }

    /// Starts Envoy with a configuration it must refuse; returns its log once it has exited.
    pub fn start_expecting_exit(options: Options) -> (Option<i32>, String) {
        let (dir, config_path) = prepare(&options);
        let mut child = spawn(&options, &dir, &config_path);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Envoy kept running with a configuration it should refuse:\n{}",
                    read(&dir.join("envoy.log"))
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        let log = read(&dir.join("envoy.log"));
        let _ = fs::remove_dir_all(&dir);
        (status, log)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let admin_file = self.dir.join("admin.txt");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Envoy exited with {status}"));
            }
            if self.admin_port == 0 {
                self.admin_port = read(&admin_file)
                    .trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
            }
            if self.admin_port != 0 {
                let ready = http::request(self.admin_port, "GET", "/ready", &[], b"")
                    .map(|r| r.status == 200);
                if ready.unwrap_or(false) {
                    self.port = self.listener_port()?;
                    return Ok(());
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err("timed out after 60 s".into())
    }

    fn listener_port(&self) -> Result<u16, String> {
        let r = http::request(self.admin_port, "GET", "/listeners?format=json", &[], b"")
            .map_err(|e| e.to_string())?;
        let v = r.json();
        v["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("no listener port in {v}"))
    }

    /// Envoy's resident memory in KiB (`VmRSS` of /proc), 0 when unreadable.
    pub fn rss_kib(&self) -> u64 {
        read(Path::new(&format!("/proc/{}/status", self.child.id())))
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        read(&self.dir.join("envoy.log"))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http::request(self.port, method, path, headers, body).unwrap_or_else(|e| {
            panic!(
                "{method} {path} failed: {e}\n--- envoy log ---\n{}",
                self.log()
            )
        })
    }

    pub fn chat(&self, body: &Json) -> Response {
        self.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer client-secret-key"),
            ],
            body.to_string().as_bytes(),
        )
    }

    /// The admin API's Prometheus page.
    pub fn prometheus(&self) -> String {
        http::request(self.admin_port, "GET", "/stats/prometheus", &[], b"")
            .map(|r| r.text())
            .unwrap_or_default()
    }

    /// The access-log lines once there are at least `count` (the file is flushed every 100 ms).
    pub fn access_log(&self, count: usize) -> Vec<Json> {
        self.json_lines("access.log", count)
    }

    /// The body-log lines (models with `log_bodies`) once there are at least `count`.
    pub fn body_log(&self, count: usize) -> Vec<Json> {
        self.json_lines("body.log", count)
    }

    fn json_lines(&self, file: &str, count: usize) -> Vec<Json> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<Json> = read(&self.dir.join(file))
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- envoy log ({}) ---\n{}", self.dir.display(), self.log());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh temporary directory holding the rendered Envoy config.
fn prepare(options: &Options) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "ai-gateway-test-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let config_path = dir.join("envoy.json");
    let config = render_config(options, &dir);
    fs::write(
        &config_path,
        serde_json::to_vec_pretty(&config).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("writing {}: {e}", config_path.display()));
    (dir, config_path)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn spawn(options: &Options, dir: &Path, config_path: &Path) -> Child {
    let log = fs::File::create(dir.join("envoy.log"))
        .unwrap_or_else(|e| panic!("creating envoy.log: {e}"));
    let log_err = log.try_clone().unwrap_or_else(|e| panic!("envoy.log: {e}"));
    let mut cmd = Command::new(envoy_bin());
    cmd.arg("-c")
        .arg(config_path)
        .args(["--concurrency", &options.concurrency.max(1).to_string()])
        .args([
            "--disable-hot-restart",
            "--file-flush-interval-msec",
            "100",
            "-l",
            "info",
        ])
        .arg("--admin-address-path")
        .arg(dir.join("admin.txt"))
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    for key in SCRUBBED_ENV {
        cmd.env_remove(key);
    }
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    // Envoy dies with the test thread that started it, even when the test binary is killed.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", envoy_bin().display()))
}

/// An Envoy YAML config as JSON, its anchors and aliases resolved.
pub fn load_config(path: &Path) -> Json {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut yaml: Yaml =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    // serde_yaml keeps `<<` merge keys and resolves aliases; apply_merge finishes the job.
    let _ = yaml.apply_merge();
    serde_json::to_value(&yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Points the named clusters of a config at 127.0.0.1:port (see [`point_at_local`]).
pub fn point_clusters_at(config: &mut Json, clusters: &[String], port: u16) {
    if let Some(all) = config["static_resources"]["clusters"].as_array_mut() {
        for cluster in all {
            let name = cluster["name"].as_str().unwrap_or_default().to_string();
            if clusters.contains(&name) {
                point_at_local(cluster, &name, &[port]);
            }
        }
    }
}

/// The shipped config with the test's changes.
pub fn render_config(options: &Options, dir: &Path) -> Json {
    let path = options
        .config_file
        .clone()
        .unwrap_or_else(|| repo_root().join("envoy/envoy.yaml"));
    let mut config = load_config(&path);

    config["admin"]["address"]["socket_address"]["port_value"] = 0.into();
    // A loopback cluster must know the listener's port before Envoy starts.
    let listener_port = if options.loopback_clusters.is_empty() {
        0
    } else {
        free_port()
    };
    if let Some(listeners) = config["static_resources"]["listeners"].as_array_mut() {
        for l in listeners {
            l["address"]["socket_address"]["port_value"] = listener_port.into();
        }
    }
    let wasm = wasm_path();
    let access_log = dir.join("access.log");
    let body_log = dir.join("body.log");
    let plugin_config = options.plugin_config.as_ref().map(Json::to_string);
    let is_type =
        |value: &Json, suffix: &str| value["@type"].as_str().is_some_and(|t| t.ends_with(suffix));
    walk(&mut config, &mut |key, value| match key {
        "code" if value["local"]["filename"].is_string() => {
            value["local"]["filename"] = wasm.display().to_string().into();
        }
        "environment_variables" => {
            if let Some(keys) = value["host_env_keys"].as_array_mut() {
                for (name, _) in &options.env {
                    if !keys.iter().any(|k| k == name.as_str()) {
                        keys.push(name.clone().into());
                    }
                }
            }
        }
        "configuration" if is_type(value, "StringValue") => {
            if let Some(pc) = &plugin_config {
                value["value"] = pc.clone().into();
            }
        }
        "typed_config" if is_type(value, "FileAccessLog") => {
            // The shipped config writes the access log to stdout and the body log to stderr.
            let file = if value["path"] == "/dev/stderr" {
                &body_log
            } else {
                &access_log
            };
            value["path"] = file.display().to_string().into();
        }
        _ => {}
    });
    if let Some(all) = config["static_resources"]["clusters"].as_array_mut() {
        for cluster in all.iter_mut() {
            let name = cluster["name"].as_str().unwrap_or_default().to_string();
            let ports: Vec<u16> = options
                .upstreams
                .iter()
                .filter(|(c, _)| *c == name)
                .map(|(_, p)| *p)
                .collect();
            if !ports.is_empty() {
                point_at_local(cluster, &name, &ports);
                if let Some(timeout) = &options.connect_timeout {
                    cluster["connect_timeout"] = timeout.clone().into();
                }
            }
        }
        let loopback: Vec<(String, u16)> = options
            .loopback_clusters
            .iter()
            .map(|name| (name.clone(), listener_port))
            .collect();
        let plain = options
            .extra_clusters
            .iter()
            .chain(&loopback)
            .map(|c| (c, false));
        for ((name, port), grpc) in plain.chain(options.grpc_clusters.iter().map(|c| (c, true))) {
            let mut cluster = serde_json::json!({"name": name, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}});
            if grpc {
                cluster["typed_extension_protocol_options"] = serde_json::json!({
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}}}});
            }
            all.push(cluster);
        }
    }
    if let Some(timeout) = &options.per_try_timeout {
        walk(&mut config, &mut |key, value| {
            if key == "retry_policy" && value.get("per_try_timeout").is_some() {
                value["per_try_timeout"] = timeout.clone().into();
            }
        });
    }
    config
}

/// A port free now on 127.0.0.1 (the kernel's pick, released at once for Envoy to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Makes a cluster a plain-HTTP static one on 127.0.0.1:port, keeping its filters and its
/// endpoint hostname (the Host header providers see, and what SigV4 signs).
pub fn point_at_local(cluster: &mut Json, name: &str, ports: &[u16]) {
    let hostname = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ["hostname"]
        .as_str()
        .unwrap_or("localhost")
        .to_string();
    let obj = cluster.as_object_mut().expect("a cluster is an object");
    obj.remove("transport_socket");
    obj.remove("dns_lookup_family");
    obj.insert("type".into(), "STATIC".into());
    // Several endpoints stand for several API keys of one provider: endpoint i uses key i.
    let endpoints: Vec<Json> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            serde_json::json!({"endpoint": {"hostname": hostname,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
                "metadata": {"filter_metadata": {"ai_gateway": {"key_index": i.to_string()}}}})
        })
        .collect();
    obj.insert(
        "load_assignment".into(),
        serde_json::json!({"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]}),
    );
    if let Some(opts) = obj.get_mut("typed_extension_protocol_options") {
        for (_, o) in opts.as_object_mut().into_iter().flatten() {
            if let Some(o) = o.as_object_mut() {
                o.remove("auto_config");
                o.insert(
                    "explicit_http_config".into(),
                    serde_json::json!({"http_protocol_options": {}}),
                );
            }
        }
    }
}

fn walk(value: &mut Json, f: &mut impl FnMut(&str, &mut Json)) {
    match value {
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                f(k, v);
                walk(v, f);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| walk(v, f)),
        _ => {}
    }
}
