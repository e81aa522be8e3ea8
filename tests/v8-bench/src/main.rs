//! `make bench-v8`: the stages of `make bench-native` (`tests/src/bench/stages.rs`, compiled in
//! by path) timed inside V8, the engine Envoy runs the gateway in: built for wasm32-wasip1 and
//! run by Node.js (`tests/bench/v8.mjs`). Pure work only: no Envoy, no host calls.
//!
//! `v8-bench FIXTURES RESULTS`: reads the fixtures that `bench-native --dump` wrote to FIXTURES
//! (`config.json`, `fixtures.json`), checks each (a fixture that fails, or a stage that does no
//! work, stops the run), times every stage per format, prints the table and writes it to
//! RESULTS/v8.md. Settings: BENCH_V8_MS (time spent measuring each stage of each format, 300);
//! NODE_VERSION and V8_VERSION, set by the runner, name the engine in the heading.

// The fixture builder's half of it (`saved`, `routed_provider`) is used by bench-native only.
#[allow(dead_code)]
#[path = "../../src/bench/stages.rs"]
mod stages;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use ai_gateway::config::Config;
use stages::{Dump, Fixture};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("v8-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [fixtures_dir, results_dir] = args.as_slice() else {
        return Err("usage: v8-bench FIXTURES RESULTS".into());
    };
    let read = |name: &str| {
        let path = Path::new(fixtures_dir).join(name);
        fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let dump: Dump = serde_json::from_slice(&read("fixtures.json")?)
        .map_err(|e| format!("fixtures.json: {e}"))?;
    let env = &dump.env;
    let config = Config::from_json(&read("config.json")?, &|name| {
        env.get(name).cloned().flatten()
    })
    .map_err(|e| format!("plugin configuration: {e}"))?;
    let names: Vec<String> = dump.fixtures.iter().map(|s| s.name.clone()).collect();
    let mut fixtures = Vec::new();
    for saved in dump.fixtures {
        let name = saved.name.clone();
        let fixture = Fixture::from_saved(saved, &config).map_err(|e| format!("{name}: {e}"))?;
        fixtures.push(Ok(fixture));
    }
    if fixtures.is_empty() {
        return Err("no fixtures".into());
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "unknown".into());
    let budget = stages::budget("BENCH_V8_MS");

    let rows = stages::measure(&fixtures, budget);

    let mut md = String::new();
    let _ = writeln!(md, "### `make bench-v8`, {}\n", dump.stamp);
    let _ = writeln!(
        md,
        "{}; Node {} (V8 {}, `--no-liftoff` as in Envoy), not pinned. {}\n",
        dump.machine,
        var("NODE_VERSION"),
        var("V8_VERSION"),
        stages::timing_note(
            budget,
            &fixtures,
            "wasm32-wasip1 release build run in V8 (no Envoy, no host calls)"
        ),
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    md.push_str(&stages::table(&names, &fixtures, &rows));

    let path = Path::new(results_dir).join("v8.md");
    fs::write(&path, &md).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("\n{md}");
    println!("Written: bench/results/v8.md");
    Ok(())
}
