//! `make bench`: added latency, throughput, CPU and memory of the gateway against plain Envoy
//! (the same Envoy and the same rendered envoy/envoy.yaml with the filters removed) and, when
//! asked, against other gateways, all in one run on this machine. The driver is
//! `src/bin/bench.rs`; README "Benchmarks" describes what is measured and shows a run.

pub mod cachemix;
pub mod load;
pub mod native;
pub mod peers;
pub mod procstat;
pub mod report;
pub mod rounds;
pub mod stages;
pub mod upstream;
pub mod workload;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::envoy::{render_config, Envoy, Options};
use load::{stream_run, Client, Target};
use report::{Measured, Scenario};

/// Settings from the environment (`make bench BENCH_DURATION=5 ...`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds of each wrk run.
    pub duration: Duration,
    /// Seconds of the warm-up before the runs of a scenario.
    pub warmup: Duration,
    /// The saturating concurrency.
    pub connections: u32,
    /// Cores given to the proxy under test (Envoy `--concurrency`, LiteLLM workers).
    pub proxy_cpus: usize,
    /// Timed streamed requests at concurrency 1 (at most; bounded by `duration` too).
    pub stream_requests: usize,
    pub peers: bool,
    /// Only these scenario ids (comma-separated), for development.
    pub only: Option<Vec<String>>,
    pub wasm_opt: bool,
    /// A git revision whose gateway is measured too (`BENCH_BASELINE`).
    pub baseline: Option<String>,
    /// Nice value of the whole benchmark (proxies, wrk, upstream), so that other work on the
    /// machine disturbs the figures less; applied when permitted (root).
    pub nice: i32,
    /// How many times the saturating JSON run is repeated, the scenarios alternating in order
    /// (`BENCH_ROUNDS`): one run cannot tell apart differences under about 10%.
    pub rounds: usize,
    /// Distinct questions of the repeated workload (scenario 6b, `BENCH_MIX_KEYS`).
    pub mix_keys: usize,
    /// The local tier's slots in that scenario (`BENCH_MIX_SLOTS`).
    pub mix_slots: usize,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    pub fn from_env() -> Self {
        let flag = |name: &str| {
            std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
        };
        Self {
            duration: Duration::from_secs(env_num("BENCH_DURATION", 10u64).clamp(1, 120)),
            warmup: Duration::from_secs(env_num("BENCH_WARMUP", 2u64).clamp(1, 60)),
            connections: env_num("BENCH_CONNECTIONS", 32u32).clamp(2, 1024),
            proxy_cpus: env_num("BENCH_PROXY_CPUS", 1usize).max(1),
            stream_requests: env_num("BENCH_STREAM_REQUESTS", 2000usize).clamp(10, 100_000),
            peers: flag("BENCH_PEERS"),
            only: std::env::var("BENCH_ONLY")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
            wasm_opt: std::env::var("BENCH_WASM_OPT").map_or(true, |v| v.trim() != "0"),
            baseline: std::env::var("BENCH_BASELINE")
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            nice: env_num("BENCH_NICE", -20i32).clamp(-20, 19),
            rounds: env_num("BENCH_ROUNDS", 1usize).clamp(1, 20),
            mix_keys: env_num("BENCH_MIX_KEYS", cachemix::DEFAULT_KEYS).clamp(1, 100_000),
            mix_slots: env_num("BENCH_MIX_SLOTS", cachemix::DEFAULT_SLOTS).clamp(1, 1 << 20),
        }
    }

    pub fn wants(&self, id: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| id.starts_with(o.as_str())))
    }

    pub fn to_json(&self) -> Value {
        json!({"duration_s": self.duration.as_secs(), "warmup_s": self.warmup.as_secs(),
            "connections": self.connections, "proxy_cpus": self.proxy_cpus,
            "stream_requests_max": self.stream_requests, "peers": self.peers, "wrk_threads": 1,
            "nice": self.nice, "baseline": self.baseline, "rounds": self.rounds,
            "cache_mix": {"keys": self.mix_keys, "slots": self.mix_slots,
                "zipf_s": cachemix::ZIPF_S, "seed": cachemix::SEED,
                "sequence_len": cachemix::SEQUENCE_LEN}})
    }
}

/// The request bodies, written to files for wrk.
pub struct Bodies {
    pub dir: PathBuf,
}

impl Bodies {
    pub fn write(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        for (model, name) in [("gpt-4o-mini", "openai"), ("claude-haiku-4-5", "anthropic")] {
            fs::write(
                dir.join(format!("{name}.json")),
                workload::chat_request(model, false),
            )?;
            fs::write(
                dir.join(format!("{name}-stream.json")),
                workload::chat_request(model, true),
            )?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, model: Model, stream: bool) -> PathBuf {
        self.dir.join(format!(
            "{}{}.json",
            model.file(),
            if stream { "-stream" } else { "" }
        ))
    }

    pub fn bytes(&self, model: Model, stream: bool) -> Vec<u8> {
        fs::read(self.path(model, stream)).unwrap_or_default()
    }
}

/// Which client model a scenario asks for (and so which wire format its upstream speaks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// `gpt-4o-mini`, an OpenAI-compatible provider.
    OpenAi,
    /// `claude-haiku-4-5`, the Anthropic Messages API.
    Anthropic,
}

impl Model {
    fn file(self) -> &'static str {
        match self {
            Model::OpenAi => "openai",
            Model::Anthropic => "anthropic",
        }
    }
}

/// The bench's plugin configuration: the two models on keyed providers (so the key injection
/// runs), with the shipped clusters.
pub fn plugin_config() -> Value {
    json!({
        "providers": {
            "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
            "anthropic": {"type": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"}
        },
        "models": {
            "gpt-4o-mini": {"provider": "openai"},
            "claude-haiku-4-5": {"provider": "anthropic"}
        }
    })
}

/// The environment variable holding the client's gateway key in the quota scenario.
pub const GATEWAY_KEY_ENV: &str = "BENCH_GATEWAY_KEY";
/// The client's gateway key in the quota scenario.
pub const GATEWAY_KEY: &str = "gk-bench-client-0123456789";

/// The bench configuration with quotas on (README "Keys, limits and budgets"): a gateway key in a
/// team, request and token limits on the key, the team and the model, and daily and monthly
/// budgets on the key and the team, all kept in shared data on this Envoy. The limits are far
/// above what the run sends, so every request is counted, reserved and settled, none refused.
pub fn quota_plugin_config() -> Value {
    let limits =
        json!({"requests_per_minute": 1_000_000_000u64, "tokens_per_minute": 1_000_000_000_000u64});
    let budgets = json!({"usd_per_day": 1_000_000, "usd_per_month": 10_000_000});
    let mut config = plugin_config();
    config["teams"] = json!({"bench": {"limits": limits, "budgets": budgets}});
    config["keys"] = json!({"bench-client": {"key_env": GATEWAY_KEY_ENV, "team": "bench",
        "limits": limits, "budgets": budgets}});
    config["model_limits"] = json!({"gpt-4o-mini": limits});
    config
}

/// The gateway's options with quotas on.
pub fn quota_options(gateway: &Options) -> Options {
    let mut options = gateway.clone();
    options.plugin_config = Some(quota_plugin_config());
    options
        .env
        .push((GATEWAY_KEY_ENV.into(), GATEWAY_KEY.into()));
    options
}

/// The gateway's options with the response cache on for the OpenAI-compatible model (README
/// "Caching"): after one warm-up request ([`warm`]) every request is a local exact hit.
pub fn cache_options(gateway: &Options) -> Options {
    let mut options = gateway.clone();
    let mut config = plugin_config();
    config["cache"] = json!({"models": {"gpt-4o-mini": {"ttl": 86400}}});
    options.plugin_config = Some(config);
    options
}

/// The gateway's options for the repeated workload (scenario 6b): the cache on for the
/// OpenAI-compatible model, the local tier with `slots` slots (so at most that many entries).
pub fn cache_mix_options(gateway: &Options, slots: usize) -> Options {
    let mut options = gateway.clone();
    let mut config = plugin_config();
    config["cache"] = json!({"local": {"slots": slots},
        "models": {"gpt-4o-mini": {"ttl": 86400}}});
    options.plugin_config = Some(config);
    options
}

/// The gateway's options with a mask guard on the OpenAI-compatible model (README "Guardrails
/// and data privacy"): e-mail addresses masked and restored, card numbers masked, on the
/// request and on the answer (streams through the sliding window). The bench's texts hold
/// neither, so this measures the guards reading every text, not the rewriting.
pub fn guard_options(gateway: &Options) -> Options {
    let mut options = gateway.clone();
    let mut config = plugin_config();
    config["guardrails"] = json!({"policies": {"pii": {"models": ["gpt-4o-mini"], "guards": [
        {"name": "mask-email", "kind": "email", "action": "mask", "restore": true},
        {"name": "mask-card", "kind": "payment_card", "action": "mask"}]}}});
    options.plugin_config = Some(config);
    options
}

/// Sends one request (the cache scenario stores its answer before the measured runs).
pub fn warm(proxy: &Proxy, bodies: &Bodies, model: Model) -> Result<(), String> {
    let t = Client::new(proxy.target())
        .send(&bodies.bytes(model, false))
        .map_err(|e| format!("warm-up request failed: {e}"))?;
    if t.status == 200 {
        Ok(())
    } else {
        Err(format!("warm-up request: status {}", t.status))
    }
}

/// Envoy options for the gateway: the shipped envoy/envoy.yaml (or `envoy_yaml`, a baseline
/// revision's), every provider cluster on the fake upstream (no DNS, nothing leaves the
/// machine), the bench plugin configuration and keys.
pub fn gateway_options(
    upstream: u16,
    workers: usize,
    scratch: &Path,
    envoy_yaml: Option<&Path>,
) -> Options {
    let shipped = Options {
        config_file: envoy_yaml.map(Path::to_path_buf),
        ..Options::default()
    };
    let clusters: Vec<String> = render_config(&shipped, scratch)["static_resources"]["clusters"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Options {
        plugin_config: Some(plugin_config()),
        upstreams: clusters.into_iter().map(|c| (c, upstream)).collect(),
        env: vec![
            ("OPENAI_API_KEY".into(), "sk-bench-openai".into()),
            ("ANTHROPIC_API_KEY".into(), "sk-bench-anthropic".into()),
        ],
        concurrency: workers as u32,
        ..shipped
    }
}

/// A baseline revision's gateway (`BENCH_BASELINE`), as tests/bench/baseline.sh built it from a
/// temporary worktree: its release .wasm and its envoy/envoy.yaml, kept per commit under
/// target/bench-baseline/.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The revision as given (`main`, a hash).
    pub rev: String,
    /// Its commit, 12 hex digits.
    pub commit: String,
    pub wasm: PathBuf,
    pub envoy_yaml: PathBuf,
}

impl Baseline {
    /// The build of `rev`; an error says what is missing.
    pub fn find(rev: &str) -> Result<Self, String> {
        let root = crate::envoy::repo_root();
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", "--short=12"])
            .arg(format!("{rev}^{{commit}}"))
            .current_dir(&root)
            .output()
            .map_err(|e| format!("git: {e}"))?;
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || commit.is_empty() {
            return Err(format!("'{rev}' is not a commit of this repository"));
        }
        let dir = root.join("target/bench-baseline").join(&commit);
        let baseline = Self {
            rev: rev.to_string(),
            wasm: dir.join("ai_gateway.wasm"),
            envoy_yaml: dir.join("envoy.yaml"),
            commit,
        };
        if !baseline.wasm.exists() || !baseline.envoy_yaml.exists() {
            return Err(format!(
                "{rev} is not built in {} (`BENCH_BASELINE={rev} make bench` builds it)",
                dir.display()
            ));
        }
        Ok(baseline)
    }

    /// How the report names it: `main abc1234`, or the short hash alone.
    pub fn name(&self) -> String {
        let short = self.commit.get(..7).unwrap_or(&self.commit);
        if self.commit.starts_with(&self.rev) {
            short.to_string()
        } else {
            format!("{} {short}", self.rev)
        }
    }
}

/// What a configuration derived from the gateway's keeps of the gateway's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// Plain Envoy: no wasm and no buffer filters.
    PlainEnvoy,
    /// The wasm floor: the minimal floor filter in the gateway filter's place, with the same
    /// buffer filter after it; no filters in the clusters.
    Floor,
    /// The floor filter downstream and, like the gateway's provider filter, as the per-attempt
    /// filter of every cluster (before the same buffer filter and the upstream codec).
    FloorUpstream,
}

impl Derived {
    fn file(self) -> &'static str {
        match self {
            Derived::PlainEnvoy => "plain-envoy.json",
            Derived::Floor => "floor-envoy.json",
            Derived::FloorUpstream => "floor-upstream-envoy.json",
        }
    }
}

/// The wasm floor filter (tests/floor-filter), as `make bench` builds it.
pub fn floor_wasm_path() -> PathBuf {
    crate::envoy::repo_root().join("target/wasm32-wasip1/release/floor_filter.wasm")
}

/// The floor filter's Wasm config: its own VM, no plugin configuration. The harness writes the
/// .wasm path named by `GATEWAY_WASM` into it when Envoy starts (see [`WasmOverride`]).
fn floor_filter_config() -> Value {
    json!({"name": "wasm_floor", "root_id": "floor",
        "vm_config": {"vm_id": "wasm_floor", "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": floor_wasm_path().display().to_string()}}}})
}

/// Points every wasm filter of `filters` at the floor filter; returns how many there were.
fn swap_in_floor(filters: &mut [Value]) -> usize {
    let mut swapped = 0;
    for f in filters
        .iter_mut()
        .filter(|f| f["name"] == "envoy.filters.http.wasm")
    {
        f["typed_config"]["config"] = floor_filter_config();
        swapped += 1;
    }
    swapped
}

/// Plain Envoy, the floor: the gateway's rendered configuration with the wasm filters (and the
/// buffer filters that only the gateway needs) removed downstream and in every cluster, the
/// access logs conditioned on the gateway's filter state removed, and one plain route (no
/// retries) to the `openai` cluster. Listener, request access log, stats and clusters stay as
/// shipped.
pub fn plain_envoy_options(gateway: &Options, scratch: &Path) -> Result<Options, String> {
    derived_envoy_options(gateway, scratch, Derived::PlainEnvoy)
}

/// A configuration derived from the gateway's as [`plain_envoy_options`] describes, keeping
/// what `derived` says of the gateway's filters (the floor filter in place of the gateway's).
pub fn derived_envoy_options(
    gateway: &Options,
    scratch: &Path,
    derived: Derived,
) -> Result<Options, String> {
    let mut config = render_config(gateway, scratch);
    let is_gateway_filter = |f: &Value| {
        matches!(
            f["name"].as_str(),
            Some("envoy.filters.http.wasm" | "envoy.filters.http.buffer")
        )
    };
    let (mut removed, mut swapped) = (0, 0);
    for listener in config["static_resources"]["listeners"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        for chain in listener["filter_chains"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                let hcm = &mut filter["typed_config"];
                if let Some(filters) = hcm["http_filters"].as_array_mut() {
                    if derived == Derived::PlainEnvoy {
                        let before = filters.len();
                        filters.retain(|f| !is_gateway_filter(f));
                        removed += before - filters.len();
                    } else {
                        swapped += swap_in_floor(filters);
                    }
                }
                // Access logs that only log on the gateway's filter state (the body log) go;
                // the request log stays.
                if let Some(logs) = hcm["access_log"].as_array_mut() {
                    logs.retain(|l| l.get("filter").is_none());
                }
                for vh in hcm["route_config"]["virtual_hosts"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    vh["routes"] = json!([{"name": "all", "match": {"prefix": "/"},
                        "route": {"cluster": "openai", "timeout": "600s"}}]);
                }
            }
        }
    }
    for cluster in config["static_resources"]["clusters"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        for (_, opts) in cluster["typed_extension_protocol_options"]
            .as_object_mut()
            .into_iter()
            .flatten()
        {
            if derived == Derived::FloorUpstream {
                if let Some(filters) = opts["http_filters"].as_array_mut() {
                    swapped += swap_in_floor(filters);
                }
            } else if let Some(o) = opts.as_object_mut() {
                o.remove("http_filters");
            }
        }
    }
    if removed == 0 && swapped == 0 {
        return Err("no gateway filter found in the rendered envoy/envoy.yaml".into());
    }
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    let gateway_left = match derived {
        Derived::PlainEnvoy => text.contains("envoy.filters.http.wasm"),
        Derived::Floor | Derived::FloorUpstream => {
            text.contains("\"root_id\": \"gateway\"") || text.contains("\"root_id\": \"provider\"")
        }
    };
    if gateway_left {
        return Err(format!(
            "a gateway filter is left in the derived configuration ({derived:?})"
        ));
    }
    let path = scratch.join(derived.file());
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Options {
        plugin_config: None,
        env: Vec::new(),
        config_file: Some(path),
        ..gateway.clone()
    })
}

/// While alive, the harness writes `wasm` into every wasm filter of the configurations it
/// renders (it reads `GATEWAY_WASM` each time): how the floor filter and a baseline's .wasm get
/// into an Envoy started by the shared harness. Restores the previous value when dropped, also
/// when the start panics.
pub struct WasmOverride {
    before: Option<std::ffi::OsString>,
}

impl WasmOverride {
    pub fn new(wasm: &Path) -> Self {
        let before = std::env::var_os("GATEWAY_WASM");
        // Set only while the driver's main thread starts an Envoy; nothing else runs then.
        std::env::set_var("GATEWAY_WASM", wasm);
        Self { before }
    }
}

impl Drop for WasmOverride {
    fn drop(&mut self) {
        match &self.before {
            Some(v) => std::env::set_var("GATEWAY_WASM", v),
            None => std::env::remove_var("GATEWAY_WASM"),
        }
    }
}

/// Envoy's pid (the harness does not expose it): the process whose command line names its config.
pub fn envoy_pid(envoy: &Envoy) -> Result<i32, String> {
    let config = envoy.dir.join("envoy.json");
    procstat::find_pid(&config.display().to_string())
        .ok_or_else(|| format!("no process runs {}", config.display()))
}

/// A proxy under test, ready to take requests.
pub struct Proxy {
    pub pid: i32,
    /// The CPUs it is pinned to (empty: not pinned).
    pub cpus: Vec<usize>,
    pub port: u16,
    /// Headers its requests need besides content-type (peers' provider selection).
    pub headers: Vec<(String, String)>,
    pub path: String,
    /// Checks an answer's headers (e.g. that the gateway, not a fallback, answered).
    pub expect_header: Option<(String, String)>,
    /// A header the answer must carry (e.g. the quota counters').
    pub expect_present: Option<String>,
}

impl Proxy {
    fn target(&self) -> Target {
        Target {
            port: self.port,
            path: self.path.clone(),
            headers: self.headers.clone(),
        }
    }
}

/// Sends one non-streamed request and checks the answer is what a client expects, so that no
/// figure is ever measured on errors.
fn preflight_json(proxy: &Proxy, bodies: &Bodies, model: Model) -> Result<(), String> {
    let t = Client::new(proxy.target())
        .send(&bodies.bytes(model, false))
        .map_err(|e| format!("request failed: {e}"))?;
    let text = String::from_utf8_lossy(&t.body).into_owned();
    if t.status != 200 {
        return Err(format!("status {}: {text}", t.status));
    }
    let v: Value =
        serde_json::from_slice(&t.body).map_err(|e| format!("answer is not JSON ({e}): {text}"))?;
    if v["choices"][0]["message"]["content"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(format!("answer is not an OpenAI chat completion: {text}"));
    }
    if let Some((name, value)) = &proxy.expect_header {
        let got = t.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if got != Some(value) {
            return Err(format!("header {name} is {got:?}, expected {value}"));
        }
    }
    if let Some(name) = &proxy.expect_present {
        if !t.headers.iter().any(|(k, _)| k == name) {
            return Err(format!("the answer has no {name} header"));
        }
    }
    Ok(())
}

/// The same for a streamed request: an OpenAI chat-completion stream ending in `[DONE]`.
fn preflight_stream(proxy: &Proxy, bodies: &Bodies, model: Model) -> Result<(), String> {
    let t = Client::new(proxy.target())
        .send(&bodies.bytes(model, true))
        .map_err(|e| format!("streamed request failed: {e}"))?;
    let text = String::from_utf8_lossy(&t.body).into_owned();
    if t.status != 200 {
        return Err(format!("status {}: {text}", t.status));
    }
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("data:"))
        .unwrap_or_default();
    if load::count_events(&t.body) < 10 || last.trim() != "data: [DONE]" {
        return Err(format!(
            "not an OpenAI chat-completion stream ending in [DONE]: {text}"
        ));
    }
    Ok(())
}

/// The proxy's CPU time during a run, and what other processes took from its cores.
struct Meter {
    user: f64,
    system: f64,
    all_user: f64,
    steal: f64,
}

impl Meter {
    fn start(proxy: &Proxy) -> Self {
        let (user, system) = procstat::cpu_times(proxy.pid);
        let (all_user, steal) = procstat::cpus_user_and_steal(&proxy.cpus);
        Self {
            user,
            system,
            all_user,
            steal,
        }
    }

    /// The proxy's CPU seconds, and the share of its cores taken by others (`None` when the
    /// proxy is not pinned): user time on those cores that was not the proxy's, plus the time
    /// the hypervisor stole.
    fn finish(&self, proxy: &Proxy, seconds: f64) -> (f64, Option<f64>) {
        let (user, system) = procstat::cpu_times(proxy.pid);
        let (all_user, steal) = procstat::cpus_user_and_steal(&proxy.cpus);
        let cpu_s = (user - self.user) + (system - self.system);
        let foreign =
            ((all_user - self.all_user) - (user - self.user)).max(0.0) + (steal - self.steal);
        let share = (!proxy.cpus.is_empty() && seconds > 0.0)
            .then(|| foreign / seconds / proxy.cpus.len() as f64);
        (cpu_s, share)
    }
}

/// One wrk run with the proxy's CPU time around it.
#[allow(clippy::too_many_arguments)]
fn measure(
    lua: &Path,
    proxy: &Proxy,
    body: &Path,
    connections: u32,
    duration: Duration,
    notes: &mut Vec<String>,
    label: &str,
    mix: Option<&mut cachemix::Mix>,
) -> Result<Measured, String> {
    let what = format!(
        "{} at c={connections}",
        if body.display().to_string().contains("stream") {
            "streams"
        } else {
            "JSON"
        }
    );
    let before = mix.as_ref().map(|m| m.lookups()).transpose()?;
    let meter = Meter::start(proxy);
    let wrk = match mix.as_deref() {
        None => load::wrk(lua, &proxy.target(), body, connections, duration)?,
        Some(m) => load::wrk_with_env(
            &m.lua,
            &proxy.target(),
            body,
            connections,
            duration,
            &m.env(),
        )?,
    };
    let (cpu_s, foreign_share) = meter.finish(proxy, wrk.duration_s);
    let hits = match (mix, before) {
        (Some(m), Some(before)) => Some(mix_figures(m, &wrk, before, notes)?),
        _ => None,
    };
    if !wrk.clean() {
        notes.push(format!(
            "{what}: {} socket errors/timeouts and {} non-2xx answers out of {} requests",
            wrk.errors, wrk.non_2xx, wrk.requests
        ));
    }
    eprintln!(
        "    {label:<48} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  proxy CPU {:.0} µs/req ({:.0}% of a core)",
        wrk.rps,
        wrk.p50_ms,
        wrk.p99_ms,
        cpu_s * 1e6 / wrk.requests.max(1) as f64,
        cpu_s / wrk.duration_s.max(1e-9) * 100.0
    );
    if let Some(h) = &hits {
        let pct = |x: Option<f64>| x.map_or("—".into(), |x| format!("{:.1}%", x * 100.0));
        eprintln!(
            "    {:<48} cache hit rate {} (ideal {}-entry cache: {})",
            "",
            pct(h.gateway.rate()),
            h.capacity,
            pct(h.ideal_rate())
        );
    }
    Ok(Measured {
        wrk,
        cpu_s,
        foreign_share,
        hits,
    })
}

/// After a run of the repeated workload: the lookups it made (once the requests wrk left in
/// flight are answered) and the ideal cache on the same stretch of the sequence.
fn mix_figures(
    mix: &mut cachemix::Mix,
    wrk: &load::WrkFigures,
    before: cachemix::Lookups,
    notes: &mut Vec<String>,
) -> Result<cachemix::HitFigures, String> {
    let sent = wrk
        .sent
        .ok_or("wrk-mix.lua did not say how many requests it sent")?;
    std::thread::sleep(Duration::from_millis(200));
    let h = mix.advance(sent, before, mix.lookups()?);
    // wrk counts one request more than it sends (it checks the script's first one), and those
    // in flight at its end may or may not be answered: a few, never many.
    let off = (h.gateway.all - wrk.requests as f64).abs();
    if off > f64::from(wrk.connections) + 2.0 {
        notes.push(format!(
            "the gateway counted {} cache lookups for {} answered requests",
            h.gateway.all, wrk.requests
        ));
    }
    Ok(h)
}

/// A scenario whose proxy is running.
pub struct Running {
    pub scenario: Scenario,
    pub proxy: Proxy,
    pub model: Model,
    /// What keeps the proxy alive (an `Envoy`, a `Peer`); dropping it stops the proxy.
    pub keep: Box<dyn std::any::Any>,
    streams_ok: bool,
    /// The repeated workload this scenario's JSON runs send (scenario 6b), instead of one body.
    pub mix: Option<cachemix::Mix>,
}

impl Running {
    pub fn new(
        scenario: Scenario,
        proxy: Proxy,
        model: Model,
        keep: Box<dyn std::any::Any>,
    ) -> Self {
        Self {
            scenario,
            proxy,
            model,
            keep,
            streams_ok: true,
            mix: None,
        }
    }
}

/// The measurements, in the order they run. Each one runs on every scenario before the next
/// starts, so that a change in the machine's load during the benchmark touches all alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Checks the answers, then a warm-up (connection pools, JIT tiers), not recorded.
    Prepare,
    JsonC1,
    JsonSaturating,
    StreamC1,
    StreamSaturating,
}

impl Phase {
    fn title(self, connections: u32) -> String {
        match self {
            Phase::Prepare => "Check and warm up".into(),
            Phase::JsonC1 => "JSON, concurrency 1".into(),
            Phase::JsonSaturating => format!("JSON, concurrency {connections}"),
            Phase::StreamC1 => "Streams one after the other (TTFB, TTLB)".into(),
            Phase::StreamSaturating => format!("Streams, concurrency {connections}"),
        }
    }
}

fn run_phase(
    settings: &Settings,
    lua: &Path,
    bodies: &Bodies,
    r: &mut Running,
    phase: Phase,
) -> Result<(), String> {
    let (proxy, model) = (&r.proxy, r.model);
    let json = bodies.path(model, false);
    let stream = bodies.path(model, true);
    let label = r.scenario.label.clone();
    let notes = &mut r.scenario.notes;
    let mut mix = r.mix.as_mut();
    let c = settings.connections;
    match phase {
        Phase::Prepare => {
            r.scenario.idle_rss_kib = procstat::rss_kib(proxy.pid);
            preflight_json(proxy, bodies, model)?;
            let stream_check = match &mix {
                // Its streams would be the one stream body, hits but for the first.
                Some(_) => Err("the repeated workload is measured with JSON requests".into()),
                None => preflight_stream(proxy, bodies, model),
            };
            if let Err(e) = stream_check {
                eprintln!("    {label}: streams not measured: {e}");
                notes.push(format!(
                    "streams not measured: {}",
                    e.lines().next().unwrap_or_default()
                ));
                r.streams_ok = false;
            }
            match mix.as_deref_mut() {
                None => {
                    load::wrk(lua, &proxy.target(), &json, c, settings.warmup)?;
                }
                // The warm-up also fills the cache, like the traffic before any measurement.
                Some(m) => {
                    let w = load::wrk_with_env(
                        &m.lua,
                        &proxy.target(),
                        &json,
                        c,
                        settings.warmup,
                        &m.env(),
                    )?;
                    let before = m.lookups()?;
                    m.advance(w.sent.unwrap_or(0), before, before);
                }
            }
        }
        Phase::JsonC1 => {
            r.scenario.json_c1 = Some(measure(
                lua,
                proxy,
                &json,
                1,
                settings.duration,
                notes,
                &label,
                mix,
            )?)
        }
        Phase::JsonSaturating => {
            let m = measure(lua, proxy, &json, c, settings.duration, notes, &label, mix)?;
            r.scenario.json_sat_rounds.push(m);
        }
        Phase::StreamC1 if r.streams_ok => {
            let meter = Meter::start(proxy);
            let started = std::time::Instant::now();
            let mut st = stream_run(
                &proxy.target(),
                &bodies.bytes(model, true),
                100,
                settings.stream_requests,
                settings.duration,
            )?;
            st.foreign_share = meter.finish(proxy, started.elapsed().as_secs_f64()).1;
            eprintln!(
                "    {label:<48} TTFB p50 {:.3} ms  TTLB p50 {:.3} ms  ({} streams, {} events each)",
                st.ttfb.p50_ms, st.ttlb.p50_ms, st.requests, st.events
            );
            r.scenario.stream = Some(st);
        }
        Phase::StreamSaturating if r.streams_ok => {
            r.scenario.stream_sat = Some(measure(
                lua,
                proxy,
                &stream,
                c,
                settings.duration,
                notes,
                &label,
                None,
            )?)
        }
        Phase::StreamC1 | Phase::StreamSaturating => {}
    }
    Ok(())
}

/// Runs every measurement on every running scenario, interleaved (see [`Phase`]), then stops
/// the proxies. A scenario that fails is recorded with the reason and no figures.
pub fn run_interleaved(
    settings: &Settings,
    lua: &Path,
    bodies: &Bodies,
    mut running: Vec<Running>,
) -> Vec<Scenario> {
    let mut done = Vec::new();
    for phase in [
        Phase::Prepare,
        Phase::JsonC1,
        Phase::JsonSaturating,
        Phase::StreamC1,
        Phase::StreamSaturating,
    ] {
        if running.is_empty() {
            break;
        }
        let rounds = if phase == Phase::JsonSaturating {
            settings.rounds
        } else {
            1
        };
        for round in 0..rounds {
            if rounds > 1 {
                eprintln!(
                    "  {} (round {} of {rounds})",
                    phase.title(settings.connections),
                    round + 1
                );
            } else {
                eprintln!("  {}", phase.title(settings.connections));
            }
            // Every other round in reverse order: a drift of the machine during a round then
            // favours no scenario.
            if round % 2 == 1 {
                running.reverse();
            }
            let mut still = Vec::new();
            for mut r in running {
                match run_phase(settings, lua, bodies, &mut r, phase) {
                    Ok(()) => still.push(r),
                    Err(e) => {
                        eprintln!("    {}: not measured: {e}", r.scenario.label);
                        mark_unavailable(&mut r.scenario, &e);
                        done.push(r.scenario);
                    }
                }
            }
            running = still;
            if round % 2 == 1 {
                running.reverse();
            }
        }
        if phase == Phase::JsonSaturating {
            for r in &mut running {
                r.scenario.json_sat = median_round(&r.scenario.json_sat_rounds);
            }
        }
    }
    for mut r in running {
        r.scenario.rss_kib = procstat::rss_kib(r.proxy.pid);
        done.push(r.scenario);
    }
    done
}

/// The round with the median throughput (the lower middle one for an even count), so that its
/// CPU and latency figures come from the same run as its req/s.
pub fn median_round(rounds: &[Measured]) -> Option<Measured> {
    let mut sorted: Vec<&Measured> = rounds.iter().collect();
    sorted.sort_by(|a, b| a.wrk.rps.total_cmp(&b.wrk.rps));
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .map(|m| (*m).clone())
}

/// Records a scenario that could not run, with the reason, instead of any figure.
pub fn mark_unavailable(s: &mut Scenario, why: &str) {
    s.unavailable = Some(format!(
        "not measured: {}",
        why.lines().next().unwrap_or_default()
    ));
    s.json_c1 = None;
    s.json_sat = None;
    s.json_sat_rounds.clear();
    s.stream = None;
    s.stream_sat = None;
}

/// The commit measured, `+changes` when the work tree differs from it (read-only git calls).
pub fn revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}+changes")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    }
}

/// `2026-11-21 15:04:05 UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = ai_gateway::quota::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
