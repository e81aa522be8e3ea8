//! `make bench`'s driver: starts the fake upstream, then the proxies (plain Envoy; the gateway
//! for an OpenAI-compatible provider, translating to Anthropic, with quotas on, answering from
//! its cache, its cache under a repeated workload of distinct questions, and with mask guards
//! on; with
//! BENCH_PEERS=1 the LiteLLM proxy and the Portkey gateway), measures each with wrk and the
//! stream client, and writes the markdown table and the JSON under bench/results/.
//! Settings: see `Settings::from_env` (BENCH_DURATION, BENCH_CONNECTIONS, BENCH_PROXY_CPUS,
//! BENCH_STREAM_REQUESTS, BENCH_PEERS, BENCH_ONLY, BENCH_WASM_OPT, BENCH_NICE, BENCH_ROUNDS,
//! BENCH_MIX_KEYS, BENCH_MIX_SLOTS;
//! BENCH_KEEP=1 keeps the rendered configurations and the peers' logs). `bench --upstream` runs
//! only the fake upstream, for experiments by hand.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use gateway_tests::bench::cachemix::Mix;
use gateway_tests::bench::load::{self, Target, WrkFigures};
use gateway_tests::bench::report::{Kind, Report, Scenario};
use gateway_tests::bench::rounds::BASELINE_SUFFIX;
use gateway_tests::bench::{
    cache_mix_options, cache_options, derived_envoy_options, envoy_pid, floor_wasm_path,
    gateway_options, guard_options, mark_unavailable, peers, procstat, quota_options, revision,
    run_interleaved, upstream, utc, warm, Baseline, Bodies, Derived, Model, Proxy, Running,
    Settings, WasmOverride, GATEWAY_KEY,
};
use gateway_tests::envoy::{envoy_bin, render_config, repo_root, wasm_path, Envoy, Options};
use serde_json::json;

fn main() {
    // `bench --upstream`: only the fake upstream, for experiments by hand.
    if std::env::args().nth(1).as_deref() == Some("--upstream") {
        let up =
            upstream::Upstream::start().unwrap_or_else(|e| fail(&format!("fake upstream: {e}")));
        println!("fake upstream on 127.0.0.1:{}", up.port);
        loop {
            std::thread::park();
        }
    }
    let settings = Settings::from_env();
    let root = repo_root();
    let machine = procstat::machine();
    let started = SystemTime::now();
    let stamp = utc(started);
    let load_at_start = procstat::load_average();

    // The proxy under test gets the first cores; wrk, the fake upstream and this driver the
    // rest. Without a spare core nothing is pinned (and the figures say so).
    let cpus = procstat::online_cpus();
    let (proxy_cpus, load_cpus): (Vec<usize>, Vec<usize>) = if cpus > settings.proxy_cpus {
        (
            (0..settings.proxy_cpus).collect(),
            (settings.proxy_cpus..cpus).collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    procstat::pin_current_thread(&load_cpus);
    let niced = procstat::set_nice(settings.nice);

    let results = root.join("bench/results");
    let scratch = std::env::temp_dir().join(format!("ai-gateway-bench-{}", std::process::id()));
    if let Err(e) = fs::create_dir_all(&results).and_then(|()| fs::create_dir_all(&scratch)) {
        fail(&format!("creating {}: {e}", results.display()));
    }
    let lua = root.join("tests/bench/wrk.lua");
    let bodies = Bodies::write(&scratch.join("bodies"))
        .unwrap_or_else(|e| fail(&format!("writing request bodies: {e}")));
    let upstream =
        upstream::Upstream::start().unwrap_or_else(|e| fail(&format!("fake upstream: {e}")));

    eprintln!(
        "make bench: {} ({} CPUs), proxy on CPU {:?}, load on CPU {:?}; {} s per run, c=1 and c={}",
        machine.cpu_model,
        machine.nproc,
        proxy_cpus,
        load_cpus,
        settings.duration.as_secs(),
        settings.connections
    );

    let wasm = wasm_path();
    let wasm_bytes = fs::metadata(&wasm).ok().map(|m| m.len());
    let (wasm_opt_bytes, wasm_opt_note) = if settings.wasm_opt {
        wasm_opt(&wasm, &results)
    } else {
        (None, "not measured (BENCH_WASM_OPT=0)".into())
    };

    // The ceiling of this setting: wrk straight to the fake upstream, no proxy in between.
    let direct = direct_upstream(&settings, &lua, &bodies, upstream.port);

    let workers = settings.proxy_cpus;
    let gateway = gateway_options(upstream.port, workers, &scratch, None);
    let client_auth = vec![("authorization".to_string(), "Bearer client-key".to_string())];
    // For experiments by hand (BENCH_KEEP=1): the gateway's configuration as Envoy gets it.
    let _ = fs::write(
        scratch.join("gateway-envoy.json"),
        serde_json::to_string_pretty(&render_config(&gateway, &scratch)).unwrap_or_default(),
    );

    // 1. to 3.: plain Envoy, the wasm floor and the gateway, each on its own fresh Envoy,
    // measured interleaved.
    let mut running = Vec::new();
    let mut failed = Vec::new();
    for (id, label, derived, kind) in [
        (
            "envoy",
            "1. Plain Envoy (floor)",
            Derived::PlainEnvoy,
            Kind::Floor,
        ),
        (
            "floor",
            "1a. Wasm floor: a minimal filter reads the body and writes it back",
            Derived::Floor,
            Kind::WasmFloor,
        ),
        (
            "floor-upstream",
            "1b. Wasm floor, downstream and per attempt upstream",
            Derived::FloorUpstream,
            Kind::WasmFloor,
        ),
    ] {
        if !settings.wants(id) {
            continue;
        }
        let s = Scenario::new(id, label, kind);
        eprintln!("starting: {label}");
        match start_derived(&gateway, &scratch, derived, (&proxy_cpus, &load_cpus)).and_then(
            |envoy| {
                let proxy = Proxy {
                    pid: envoy_pid(&envoy)?,
                    cpus: proxy_cpus.clone(),
                    port: envoy.port,
                    headers: client_auth.clone(),
                    path: "/v1/chat/completions".into(),
                    expect_header: None,
                    expect_present: None,
                };
                Ok(Running::new(
                    s.clone(),
                    proxy,
                    Model::OpenAi,
                    Box::new(envoy),
                ))
            },
        ) {
            Ok(r) => running.push(r),
            Err(e) => failed.push(unavailable(s, &e)),
        }
    }
    // 2., 3. and 5.: the gateway, and with BENCH_BASELINE the baseline revision's gateway too.
    let baseline = settings.baseline.as_deref().map(Baseline::find);
    let quota_auth = vec![("authorization".to_string(), format!("Bearer {GATEWAY_KEY}"))];
    let mut builds: Vec<Option<&Baseline>> = vec![None];
    match &baseline {
        Some(Ok(b)) => builds.push(Some(b)),
        Some(Err(e)) => {
            for (id, label) in [
                ("gateway-openai", "2. Gateway, OpenAI-compatible provider"),
                (
                    "gateway-anthropic",
                    "3. Gateway, OpenAI → Anthropic translation",
                ),
                ("gateway-quotas", "5. Gateway, OpenAI-compatible, quotas on"),
            ] {
                let id = format!("{id}{BASELINE_SUFFIX}");
                if settings.wants(&id) {
                    let rev = settings.baseline.as_deref().unwrap_or_default();
                    let s = Scenario::new(&id, &format!("{label} (baseline {rev})"), Kind::Gateway);
                    failed.push(unavailable(s, e));
                }
            }
        }
        None => {}
    }
    let mix_label = format!(
        "6b. Gateway, OpenAI-compatible, cache on, repeated workload ({} questions, {} slots)",
        gateway_tests::bench::report::grouped(settings.mix_keys as f64),
        settings.mix_slots
    );
    for build in builds {
        let gateway = match build {
            None => gateway.clone(),
            Some(b) => gateway_options(upstream.port, workers, &scratch, Some(&b.envoy_yaml)),
        };
        for (id, label, model, provider, options, headers) in [
            (
                "gateway-openai",
                "2. Gateway, OpenAI-compatible provider",
                Model::OpenAi,
                "openai",
                gateway.clone(),
                client_auth.clone(),
            ),
            (
                "gateway-anthropic",
                "3. Gateway, OpenAI → Anthropic translation",
                Model::Anthropic,
                "anthropic",
                gateway.clone(),
                client_auth.clone(),
            ),
            (
                "gateway-quotas",
                "5. Gateway, OpenAI-compatible, quotas on (shared-data limits and budgets)",
                Model::OpenAi,
                "openai",
                quota_options(&gateway),
                quota_auth.clone(),
            ),
            (
                "gateway-cache",
                "6. Gateway, OpenAI-compatible, cache on: every request a local exact hit",
                Model::OpenAi,
                "cache",
                cache_options(&gateway),
                client_auth.clone(),
            ),
            (
                "gateway-cache-mix",
                &mix_label,
                Model::OpenAi,
                "openai",
                cache_mix_options(&gateway, settings.mix_slots),
                client_auth.clone(),
            ),
            (
                "gateway-guard",
                "7. Gateway, OpenAI-compatible, mask guards on (e-mail with restore, cards)",
                Model::OpenAi,
                "openai",
                guard_options(&gateway),
                client_auth.clone(),
            ),
        ] {
            // The baseline may predate these features (its configuration would refuse them).
            let new_feature = matches!(id, "gateway-cache" | "gateway-cache-mix" | "gateway-guard");
            if new_feature && build.is_some() {
                continue;
            }
            let (id, label) = match build {
                None => (id.to_string(), label.to_string()),
                Some(b) => (
                    format!("{id}{BASELINE_SUFFIX}"),
                    format!("{label} (baseline {})", b.name()),
                ),
            };
            if !settings.wants(&id) {
                continue;
            }
            let mut s = Scenario::new(&id, &label, Kind::Gateway);
            eprintln!("starting: {label}");
            let quotas = id.starts_with("gateway-quotas");
            let Some(envoy) = start_gateway(
                options,
                build,
                !quotas,
                (&proxy_cpus, &load_cpus),
                &mut s.notes,
            ) else {
                failed.push(unavailable(
                    s,
                    "Envoy did not start with this configuration (see the log above)",
                ));
                continue;
            };
            match envoy_pid(&envoy) {
                Ok(pid) => {
                    let cached = id == "gateway-cache";
                    let mixed = id == "gateway-cache-mix";
                    let proxy = Proxy {
                        pid,
                        cpus: proxy_cpus.clone(),
                        port: envoy.port,
                        headers,
                        path: "/v1/chat/completions".into(),
                        expect_header: Some(if cached {
                            ("x-gateway-cache".into(), "hit".into())
                        } else if mixed {
                            // The check's question is asked once: a miss, with the cache on.
                            ("x-gateway-cache".into(), "miss".into())
                        } else {
                            ("x-gateway-provider".into(), provider.into())
                        }),
                        // Quotas on: admitted answers carry their tightest counter's headers.
                        expect_present: quotas.then(|| "x-ratelimit-limit-requests".to_string()),
                    };
                    if cached {
                        if let Err(e) = warm(&proxy, &bodies, model) {
                            failed.push(unavailable(s, &e));
                            continue;
                        }
                    }
                    let mix = if mixed {
                        let written = Mix::write(
                            &scratch.join("mix"),
                            settings.mix_keys,
                            settings.mix_slots,
                            "gpt-4o-mini",
                        );
                        match written {
                            Ok(mut m) => {
                                m.admin_port = envoy.admin_port;
                                s.notes
                                    .push(format!("the repeated workload: {}", m.describe()));
                                Some(m)
                            }
                            Err(e) => {
                                failed.push(unavailable(s, &format!("writing the workload: {e}")));
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let mut r = Running::new(s, proxy, model, Box::new(envoy));
                    r.mix = mix;
                    running.push(r);
                }
                Err(e) => failed.push(unavailable(s, &e)),
            }
        }
    }
    let mut scenarios = run_interleaved(&settings, &lua, &bodies, running);
    scenarios.append(&mut failed);
    // Each baseline row right after the row it is the baseline of.
    let order = |id: &str| {
        let current = id.strip_suffix(BASELINE_SUFFIX);
        let position = [
            "envoy",
            "floor",
            "floor-upstream",
            "gateway-openai",
            "gateway-anthropic",
            "gateway-quotas",
            "gateway-cache",
            "gateway-cache-mix",
            "gateway-guard",
        ]
        .iter()
        .position(|x| *x == current.unwrap_or(id));
        (position, current.is_some())
    };
    scenarios.sort_by_key(|s| order(&s.id));

    // Peers, when asked: one at a time (each started fresh), against the same upstream.
    let mut peer_notes = Vec::new();
    if settings.peers {
        run_peers(
            &settings,
            &root,
            &scratch,
            &lua,
            &bodies,
            upstream.port,
            (&proxy_cpus, &load_cpus),
            &mut scenarios,
            &mut peer_notes,
        );
    }

    let preamble = preamble(
        &settings,
        niced,
        &machine,
        &proxy_cpus,
        &load_cpus,
        &bodies,
        load_at_start,
    );
    let report = Report {
        started_utc: stamp.clone(),
        machine: json!({"cpu_model": machine.cpu_model, "nproc": machine.nproc,
            "memory_gib": (machine.mem_gib * 10.0).round() / 10.0, "kernel": machine.kernel,
            "proxy_cpus": proxy_cpus, "load_cpus": load_cpus, "load_average_at_start": load_at_start,
            "envoy": envoy_version(), "wrk": tool_version("wrk", &["-v"]),
            "revision": revision(&root)}),
        settings: settings.to_json(),
        wasm_bytes,
        wasm_opt_bytes,
        wasm_opt_note,
        other_wasm: [
            Some((
                "`floor_filter.wasm`, the wasm floor's filter".to_string(),
                floor_wasm_path(),
            )),
            baseline.as_ref().and_then(|b| b.as_ref().ok()).map(|b| {
                (
                    format!("release `ai_gateway.wasm` of the baseline {}", b.name()),
                    b.wasm.clone(),
                )
            }),
        ]
        .into_iter()
        .flatten()
        .filter_map(|(what, path)| Some((what, fs::metadata(path).ok()?.len())))
        .collect(),
        scenarios,
        peers_requested: settings.peers,
        peer_notes,
        preamble,
        upstream_direct: direct,
    };
    let md = report.markdown();
    let json = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
    let name = format!(
        "bench-{}",
        stamp.replace([':', ' '], "-").replace("-UTC", "")
    );
    for (file, text) in [
        (format!("{name}.md"), &md),
        (format!("{name}.json"), &json),
        ("latest.md".to_string(), &md),
        ("latest.json".to_string(), &json),
    ] {
        if let Err(e) = fs::write(results.join(&file), text) {
            eprintln!("writing bench/results/{file}: {e}");
        }
    }
    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        eprintln!(
            "kept rendered configs and peer logs in {}",
            scratch.display()
        );
    } else {
        let _ = fs::remove_dir_all(&scratch);
    }
    eprintln!(
        "upstream served {} requests; took {} s\n",
        upstream.requests(),
        started.elapsed().map_or(0, |d| d.as_secs())
    );
    println!("{md}");
    println!("Written: bench/results/{name}.md and bench/results/{name}.json (also latest.md, latest.json)");
}

fn fail(msg: &str) -> ! {
    eprintln!("make bench: {msg}");
    std::process::exit(1);
}

/// Starts the gateway, this tree's or a baseline revision's (its .wasm and its envoy/envoy.yaml).
/// A baseline whose plugin configuration format differs may refuse the bench's: then, when
/// `fallback` allows, it is started again with its own envoy/envoy.yaml's plugin configuration,
/// and the scenario says so. `None` when Envoy did not start.
fn start_gateway(
    options: Options,
    baseline: Option<&Baseline>,
    fallback: bool,
    (proxy_cpus, load_cpus): (&[usize], &[usize]),
    notes: &mut Vec<String>,
) -> Option<Envoy> {
    let start = |options: Options| {
        // The harness panics when Envoy refuses the configuration; that is a result here.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _wasm = baseline.map(|b| WasmOverride::new(&b.wasm));
            procstat::with_cpus(proxy_cpus, load_cpus, || Envoy::start(options))
        }));
        procstat::pin_current_thread(load_cpus);
        started.ok()
    };
    let envoy = start(options.clone());
    if envoy.is_some() || baseline.is_none() || !fallback {
        return envoy;
    }
    eprintln!("    the baseline refused the bench's plugin configuration; trying its own");
    let envoy = start(Options {
        plugin_config: None,
        ..options
    })?;
    notes.push(
        "the baseline refused the bench's plugin configuration: measured with the one in its envoy/envoy.yaml".into(),
    );
    Some(envoy)
}

/// Starts Envoy on a configuration derived from the gateway's (plain Envoy, the wasm floor),
/// pinned like the gateway; for the floor, checks its filter runs in a VM of its own.
fn start_derived(
    gateway: &Options,
    scratch: &Path,
    derived: Derived,
    (proxy_cpus, load_cpus): (&[usize], &[usize]),
) -> Result<Envoy, String> {
    let options = derived_envoy_options(gateway, scratch, derived)?;
    let floor = derived != Derived::PlainEnvoy;
    let floor_wasm = floor_wasm_path();
    if floor && !floor_wasm.exists() {
        return Err(format!(
            "{} is missing (`make bench` builds it: make floor-wasm)",
            floor_wasm.display()
        ));
    }
    // The harness panics when Envoy refuses the configuration; that is a result here.
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _wasm = floor.then(|| WasmOverride::new(&floor_wasm));
        procstat::with_cpus(proxy_cpus, load_cpus, || Envoy::start(options))
    }));
    procstat::pin_current_thread(load_cpus);
    let envoy =
        started.map_err(|_| "Envoy did not start with this configuration (see the log above)")?;
    if floor {
        check_wasm_vm(&envoy, "wasm_floor")?;
    }
    Ok(envoy)
}

/// That the wasm filter of this plugin name is configured and a wasm VM runs (so that a floor
/// or baseline scenario never measures an Envoy without the filter it is meant to have).
fn check_wasm_vm(envoy: &Envoy, plugin: &str) -> Result<(), String> {
    let stats =
        gateway_tests::http::request(envoy.admin_port, "GET", "/stats?filter=^wasm", &[], b"")
            .map(|r| r.text())
            .map_err(|e| format!("reading Envoy's stats: {e}"))?;
    let active = stats
        .lines()
        .filter(|l| l.contains("runtime.v8.active:"))
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum::<u64>();
    let configured = stats
        .lines()
        .any(|l| l.starts_with(&format!("wasm.{plugin}.")));
    if active == 0 || !configured {
        return Err(format!(
            "the wasm filter {plugin} is not running (Envoy's wasm stats: {})",
            stats.lines().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// A scenario that could not start, with the reason instead of any figure.
fn unavailable(mut s: Scenario, why: &str) -> Scenario {
    eprintln!("    not measured: {why}");
    mark_unavailable(&mut s, why);
    s
}

#[allow(clippy::too_many_arguments)]
fn run_peers(
    settings: &Settings,
    root: &Path,
    scratch: &Path,
    lua: &Path,
    bodies: &Bodies,
    upstream: u16,
    (proxy_cpus, load_cpus): (&[usize], &[usize]),
    scenarios: &mut Vec<Scenario>,
    notes: &mut Vec<String>,
) {
    let litellm_version = version_file(&root.join(".venv-peers/.litellm-version"));
    let portkey_version = version_file(&root.join(".tools/portkey/.portkey-version"));
    for (model, fmt, fmt_label) in [
        (Model::OpenAi, "openai", "OpenAI-compatible"),
        (Model::Anthropic, "anthropic", "→ Anthropic"),
    ] {
        for peer in ["litellm", "portkey"] {
            let id = format!("{peer}-{fmt}");
            if !settings.wants(&id) {
                continue;
            }
            let (label, started) = if peer == "litellm" {
                (
                    format!("LiteLLM proxy {litellm_version}, {fmt_label}"),
                    procstat::with_cpus(proxy_cpus, load_cpus, || {
                        peers::litellm(root, scratch, upstream, settings.proxy_cpus)
                    }),
                )
            } else {
                (
                    format!("Portkey gateway {portkey_version}, {fmt_label}"),
                    procstat::with_cpus(proxy_cpus, load_cpus, || peers::portkey(root, scratch)),
                )
            };
            let s = Scenario::new(&id, &label, Kind::Peer);
            eprintln!("starting: {label}");
            let peer = match started {
                Ok(p) => p,
                Err(e) => {
                    notes.push(format!("{label}: not measured: {e}"));
                    scenarios.push(unavailable(s, &e));
                    continue;
                }
            };
            let headers = if peer_is_portkey(&id) {
                vec![
                    ("x-portkey-provider".into(), fmt.into()),
                    (
                        "x-portkey-custom-host".into(),
                        format!("http://127.0.0.1:{upstream}/v1"),
                    ),
                    (
                        "authorization".into(),
                        format!("Bearer {}", peers::UPSTREAM_KEY),
                    ),
                ]
            } else {
                vec![("authorization".into(), "Bearer client-key".into())]
            };
            let proxy = Proxy {
                pid: peer.pid,
                cpus: proxy_cpus.to_vec(),
                port: peer.port,
                headers,
                path: "/v1/chat/completions".into(),
                expect_header: None,
                expect_present: None,
            };
            let r = Running::new(s, proxy, model, Box::new(peer));
            scenarios.extend(run_interleaved(settings, lua, bodies, vec![r]));
        }
    }
}

fn peer_is_portkey(id: &str) -> bool {
    id.starts_with("portkey")
}

/// wrk straight to the fake upstream (JSON, c=1 and saturating): what the load side can do.
fn direct_upstream(
    settings: &Settings,
    lua: &Path,
    bodies: &Bodies,
    port: u16,
) -> Option<(WrkFigures, WrkFigures)> {
    eprintln!("0. Fake upstream alone (no proxy): the ceiling of this setting");
    let target = Target {
        port,
        path: "/v1/chat/completions".into(),
        headers: Vec::new(),
    };
    let body = bodies.path(Model::OpenAi, false);
    let run = |c: u32| {
        let r = load::wrk(lua, &target, &body, c, settings.duration);
        match &r {
            Ok(w) => eprintln!(
                "    JSON c={c:<13} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
                w.rps, w.p50_ms, w.p99_ms
            ),
            Err(e) => eprintln!("    not measured: {e}"),
        }
        r.ok()
    };
    Some((run(1)?, run(settings.connections)?))
}

fn version_file(path: &Path) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `wasm-opt -Oz` of the release .wasm, cached next to the results while the .wasm is unchanged.
fn wasm_opt(wasm: &Path, results: &Path) -> (Option<u64>, String) {
    let out: PathBuf = results.join("ai_gateway.wasm-opt-Oz.wasm");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&out), modified(wasm)), (Some(o), Some(w)) if o > w);
    if !fresh {
        eprintln!("wasm-opt -Oz of the release .wasm (size only; takes a few seconds)");
        let status = Command::new("wasm-opt")
            .args(["-Oz", "--all-features"])
            .arg(wasm)
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return (None, format!("not measured (wasm-opt failed: {s})")),
            Err(e) => return (None, format!("not measured (wasm-opt: {e})")),
        }
    }
    let version = tool_version("wasm-opt", &["--version"]);
    (
        fs::metadata(&out).ok().map(|m| m.len()),
        format!("{version}, -Oz --all-features"),
    )
}

fn tool_version(tool: &str, args: &[&str]) -> String {
    Command::new(tool)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn envoy_version() -> String {
    let v = tool_version(&envoy_bin().display().to_string(), &["--version"]);
    // "<path>  version: <hash>/1.40.0/Clean/RELEASE/BoringSSL" -> "1.40.0"
    v.split("version: ")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or(&v)
        .to_string()
}

fn preamble(
    settings: &Settings,
    niced: bool,
    machine: &procstat::Machine,
    proxy_cpus: &[usize],
    load_cpus: &[usize],
    bodies: &Bodies,
    load_at_start: f64,
) -> String {
    let canned = gateway_tests::bench::workload::Canned::new();
    let pinning = if proxy_cpus.is_empty() {
        "nothing pinned (no spare core): proxy, wrk and the fake upstream share the CPUs".into()
    } else {
        format!(
            "the proxy under test is pinned to CPU {proxy_cpus:?} (Envoy `--concurrency {}`, LiteLLM {} worker(s), Portkey one Node.js process); wrk (1 thread), the fake upstream and the driver to CPU {load_cpus:?}",
            settings.proxy_cpus, settings.proxy_cpus
        )
    };
    let pinning = if niced {
        format!(
            "{pinning}; everything runs at nice {} so that other work on the machine disturbs less",
            settings.nice
        )
    } else {
        pinning
    };
    format!(
        "Machine: {} × {} (`nproc` {}), {:.1} GiB memory, Linux {}, load average {load_at_start:.2} at the start; gateway at {}; Envoy {}, {}.\n\
         Setting: {pinning}. Each wrk run lasts {} s after a {} s warm-up; c=1 measures pure added latency, c={} saturates the proxy's core. \
         Request: a {}-byte chat completion (system prompt and three turns), `authorization` header from the client; \
         answers from a fake upstream with no delay: a {}-byte OpenAI / {}-byte Anthropic JSON, or {} SSE events each written on its own.\n",
        machine.nproc,
        machine.cpu_model,
        machine.nproc,
        machine.mem_gib,
        machine.kernel,
        revision(&repo_root()),
        envoy_version(),
        tool_version("wrk", &["-v"]).split(" Copyright").next().unwrap_or_default(),
        settings.duration.as_secs(),
        settings.warmup.as_secs(),
        settings.connections,
        bodies.bytes(Model::OpenAi, false).len(),
        canned.openai_json_body,
        canned.anthropic_json_body,
        gateway_tests::bench::workload::STREAM_EVENTS,
    )
}
