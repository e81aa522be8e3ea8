//! `make bench-native`: the gateway's per-request pure work timed natively (no Envoy, no wasm),
//! per stage and per provider wire format, for the 1.5 KB chat request of `make bench`. Prints a
//! markdown table of nanoseconds per request and writes it to bench/results/native.md.
//! The fixtures are built in `gateway_tests::bench::native`; the stages, their timing and the
//! table are in `gateway_tests::bench::stages`, shared with `make bench-v8`.
//! Settings: BENCH_NATIVE_MS (time spent measuring each stage of each format, 300).
//! `bench-native --dump DIR` builds and checks the fixtures, writes them to DIR for
//! `make bench-v8` (tests/v8-bench) and times nothing.
//!
//! Timing: each stage runs in batches long enough (≥ 2 ms) for the clock's resolution not to
//! matter; the median of the batches is reported, which a busy machine disturbs less than the
//! mean. Native code is faster than the same code in Envoy's V8: compare stages and formats with
//! each other, not with `make bench`'s CPU per request.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use gateway_tests::bench::native::{self, FORMATS};
use gateway_tests::bench::stages::{self, Fixture};
use gateway_tests::bench::{procstat, revision, utc};
use gateway_tests::envoy::repo_root;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        return match (arg.as_str(), args.next()) {
            ("--dump", Some(dir)) => dump(&PathBuf::from(dir)),
            _ => {
                eprintln!("usage: bench-native [--dump DIR]");
                ExitCode::FAILURE
            }
        };
    }
    let budget = stages::budget("BENCH_NATIVE_MS");
    let machine = procstat::machine();
    let cpus = procstat::online_cpus();
    // One core for the whole run (the last one), so the figures do not move with migrations.
    let pinned = cpus > 1 && procstat::pin_current_thread(&[cpus - 1]);
    let niced = procstat::set_nice(-20);
    let machine = heading(&machine);
    let stamp = utc(SystemTime::now());

    // Every format's fixture first: a format whose pipeline fails is reported, never timed.
    let fixtures: Vec<Result<Fixture, String>> =
        FORMATS.iter().map(|f| native::build(*f)).collect();
    let rows = stages::measure(&fixtures, budget);

    let mut md = String::new();
    let _ = writeln!(md, "### `make bench-native`, {stamp}\n");
    let _ = writeln!(
        md,
        "{machine}; {}{}. {}\n",
        if pinned {
            format!("pinned to CPU {}", cpus - 1)
        } else {
            "not pinned".into()
        },
        if niced { ", nice −20" } else { "" },
        stages::timing_note(budget, &fixtures, "native release build (not wasm)"),
    );
    let names = FORMATS.map(|f| f.name);
    md.push_str(&stages::table(&names, &fixtures, &rows));

    let results = repo_root().join("bench/results");
    let path = results.join("native.md");
    if let Err(e) = fs::create_dir_all(&results).and_then(|()| fs::write(&path, &md)) {
        eprintln!("writing {}: {e}", path.display());
    }
    println!("\n{md}");
    println!("Written: bench/results/native.md");
    ExitCode::SUCCESS
}

/// The machine (read before the process is pinned to one core), its load and the gateway's
/// revision, as the table's heading says them.
fn heading(machine: &procstat::Machine) -> String {
    format!(
        "Machine: {} × {} (`nproc` {}), Linux {}, load average {:.2} at the start; gateway at {}",
        machine.nproc,
        machine.cpu_model,
        machine.nproc,
        machine.kernel,
        procstat::load_average(),
        revision(&repo_root()),
    )
}

/// `--dump DIR`: every format's fixture, built and checked, written for `make bench-v8`.
fn dump(dir: &Path) -> ExitCode {
    let built: Result<Vec<Fixture>, String> = FORMATS
        .iter()
        .map(|f| native::build(*f).map_err(|e| format!("{}: {e}", f.name)))
        .collect();
    match built.and_then(|fixtures| {
        let machine = heading(&procstat::machine());
        native::dump(dir, &fixtures, &utc(SystemTime::now()), &machine)?;
        Ok(fixtures.len())
    }) {
        Ok(n) => {
            eprintln!("bench-native: {n} fixtures written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-native --dump: {e}");
            ExitCode::FAILURE
        }
    }
}
