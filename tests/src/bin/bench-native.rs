//! `make bench-native`: the gateway's per-request pure work timed natively (no Envoy, no wasm),
//! per stage and per provider wire format, for the 1.5 KB chat request of `make bench`. Prints a
//! markdown table of nanoseconds per request and writes it to bench/results/native.md.
//! The stages and fixtures are in `gateway_tests::bench::native`; this file only times them.
//! Settings: BENCH_NATIVE_MS (time spent measuring each stage of each format, 300).
//!
//! Timing: each stage runs in batches long enough (≥ 2 ms) for the clock's resolution not to
//! matter; the median of the batches is reported, which a busy machine disturbs less than the
//! mean. Native code is faster than the same code in Envoy's V8: compare stages and formats with
//! each other, not with `make bench`'s CPU per request.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use gateway_tests::bench::native::{Fixture, Stage, FORMATS};
use gateway_tests::bench::{procstat, revision, utc};
use gateway_tests::envoy::repo_root;

/// Nanoseconds per call: the median and the fastest batch.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median_ns: f64,
    min_ns: f64,
}

fn time(budget: Duration, mut work: impl FnMut() -> usize) -> Timing {
    // Warm-up and calibration: double the batch until one takes at least 2 ms.
    let mut batch: u32 = 1;
    loop {
        let started = Instant::now();
        for _ in 0..batch {
            black_box(work());
        }
        if started.elapsed() >= Duration::from_millis(2) || batch >= 1 << 24 {
            break;
        }
        batch = batch.saturating_mul(2);
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < 5 || (started.elapsed() < budget && samples.len() < 1000) {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(work());
        }
        samples.push(t.elapsed().as_nanos() as f64 / f64::from(batch));
    }
    samples.sort_by(f64::total_cmp);
    Timing {
        median_ns: samples.get(samples.len() / 2).copied().unwrap_or(0.0),
        min_ns: samples.first().copied().unwrap_or(0.0),
    }
}

fn ns(x: f64) -> String {
    format!("{} ns", gateway_tests::bench::report::grouped(x))
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_NATIVE_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(300u64)
            .clamp(10, 60_000),
    );
    let machine = procstat::machine();
    let cpus = procstat::online_cpus();
    // One core for the whole run (the last one), so the figures do not move with migrations.
    let pinned = cpus > 1 && procstat::pin_current_thread(&[cpus - 1]);
    let niced = procstat::set_nice(-20);
    let load = procstat::load_average();
    let stamp = utc(SystemTime::now());

    // Every format's fixture first: a format whose pipeline fails is reported, never timed.
    let fixtures: Vec<Result<Fixture, String>> = FORMATS.iter().map(|f| Fixture::new(*f)).collect();
    let mut rows: Vec<(Stage, Vec<Option<Timing>>)> = Vec::new();
    for stage in Stage::ALL {
        let mut row = Vec::new();
        for fixture in &fixtures {
            let timing = match fixture {
                Ok(f) if f.applies(stage) => {
                    Some(time(budget, || black_box(f).run(black_box(stage))))
                }
                _ => None,
            };
            if let (Ok(f), Some(t)) = (fixture, timing) {
                eprintln!(
                    "  {:<18} {:<78} {:>12}",
                    f.format.name,
                    stage.title(),
                    ns(t.median_ns)
                );
            }
            row.push(timing);
        }
        rows.push((stage, row));
    }

    let mut md = String::new();
    let _ = writeln!(md, "### `make bench-native`, {stamp}\n");
    let _ = writeln!(
        md,
        "Machine: {} × {} (`nproc` {}), Linux {}, load average {load:.2} at the start; gateway at {}; {}{}. \
         Median nanoseconds per request of each stage (batches of ≥ 2 ms for {} ms per cell; the fastest batch in parentheses), \
         native release build (not wasm). Request: the {}-byte chat completion of `make bench`; answers from the test fakes of each format.\n",
        machine.nproc,
        machine.cpu_model,
        machine.nproc,
        machine.kernel,
        revision(&repo_root()),
        if pinned { format!("pinned to CPU {}", cpus - 1) } else { "not pinned".into() },
        if niced { ", nice −20" } else { "" },
        budget.as_millis(),
        fixtures
            .iter()
            .flatten()
            .next()
            .map_or(0, |f| f.body.len()),
    );
    md.push_str("| Stage |");
    for f in FORMATS {
        let _ = write!(md, " {} |", f.name);
    }
    md.push_str("\n|---|");
    md.push_str(&"--:|".repeat(FORMATS.len()));
    md.push('\n');
    for (i, (stage, row)) in rows.iter().enumerate() {
        let _ = write!(md, "| {}. {} |", i + 1, stage.title());
        for (fixture, timing) in fixtures.iter().zip(row) {
            let cell = match (fixture, timing) {
                (Ok(_), Some(t)) => format!("{} ({})", ns(t.median_ns), ns(t.min_ns)),
                (Ok(_), None) => "— (answer already OpenAI)".into(),
                (Err(_), _) => "not measured".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    for (title, on_path) in [
        (
            "**per non-streamed request** (1–4, 6)",
            Stage::json_path as fn(Stage) -> bool,
        ),
        ("**per streamed request** (1–3, 5, 7)", Stage::stream_path),
    ] {
        let _ = write!(md, "| {title} |");
        for (col, fixture) in fixtures.iter().enumerate() {
            let sum: f64 = rows
                .iter()
                .filter(|(stage, _)| on_path(*stage))
                .filter_map(|(_, row)| row.get(col).copied().flatten())
                .map(|t| t.median_ns)
                .sum();
            let cell = if fixture.is_ok() {
                format!("**{}**", ns(sum))
            } else {
                "not measured".into()
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md.push_str("\nAnswers timed (the provider's wire format): ");
    let sizes: Vec<String> = fixtures
        .iter()
        .flatten()
        .map(|f| {
            format!(
                "{}: JSON {} bytes, stream {} bytes in {} pieces",
                f.format.name,
                f.provider_json.bytes(),
                f.provider_sse.bytes(),
                f.provider_sse.pieces.len()
            )
        })
        .collect();
    md.push_str(&sizes.join("; "));
    md.push_str(".\n");
    for (fixture, format) in fixtures.iter().zip(FORMATS) {
        if let Err(e) = fixture {
            let _ = writeln!(md, "\n- {}: not measured: {e}", format.name);
        }
    }

    let results = repo_root().join("bench/results");
    let path = results.join("native.md");
    if let Err(e) = fs::create_dir_all(&results).and_then(|()| fs::write(&path, &md)) {
        eprintln!("writing {}: {e}", path.display());
    }
    println!("\n{md}");
    println!("Written: bench/results/native.md");
}
