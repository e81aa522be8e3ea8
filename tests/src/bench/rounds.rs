//! The rounds table of `make bench` (`BENCH_ROUNDS` > 1): the saturating JSON run repeated, the
//! scenarios alternating, and each comparison taken **within** a round (scenario ÷ plain Envoy,
//! this tree ÷ its baseline) before the median over rounds. A drift of the machine between
//! rounds then cancels out, and the min–max of the paired figures says whether a difference is
//! larger than the run-to-run noise.

use super::report::{grouped, Measured, Scenario};

/// The id suffix of a baseline revision's scenario (`gateway-openai-baseline`): `BENCH_ONLY`
/// prefixes select a scenario and its baseline alike.
pub const BASELINE_SUFFIX: &str = "-baseline";

/// Median, min and max of a non-empty list (the mean of the two middle values for an even count).
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// Per round, `f(a's round, b's round)`, for the rounds both scenarios ran.
fn paired(a: &Scenario, b: &Scenario, f: impl Fn(&Measured, &Measured) -> f64) -> Vec<f64> {
    a.json_sat_rounds
        .iter()
        .zip(&b.json_sat_rounds)
        .map(|(x, y)| f(x, y))
        .collect()
}

fn share(x: &Measured, y: &Measured) -> f64 {
    if y.wrk.rps > 0.0 {
        x.wrk.rps / y.wrk.rps
    } else {
        f64::NAN
    }
}

fn added_cpu(x: &Measured, y: &Measured) -> f64 {
    x.cpu_us_per_request() - y.cpu_us_per_request()
}

fn percent(s: Option<(f64, f64, f64)>) -> String {
    s.map_or("—".into(), |(m, lo, hi)| {
        format!("{:.1}% ({:.1}–{:.1})", m * 100.0, lo * 100.0, hi * 100.0)
    })
}

fn micros(s: Option<(f64, f64, f64)>) -> String {
    s.map_or("—".into(), |(m, lo, hi)| {
        format!("{m:+.1} µs ({lo:+.1} to {hi:+.1})")
    })
}

/// The markdown section, empty when the run had one round.
pub fn table(scenarios: &[Scenario], connections: u64) -> String {
    let rounds = scenarios
        .iter()
        .map(|s| s.json_sat_rounds.len())
        .max()
        .unwrap_or(0);
    if rounds < 2 {
        return String::new();
    }
    let envoy = scenarios
        .iter()
        .find(|s| s.id == "envoy" && s.unavailable.is_none());
    let mut md = format!(
        "\n**Rounds: the saturating JSON run {rounds} times, alternating** (c={connections}; median, min–max; \
         ratios and CPU differences paired within each round)\n\n\
         | Scenario | req/s per round | req/s median (min–max) | vs Envoy, paired | CPU/req median | added CPU vs Envoy, paired | vs its baseline, paired (req/s) | CPU vs its baseline, paired |\n\
         |---|---|--:|--:|--:|--:|--:|--:|\n"
    );
    for s in scenarios
        .iter()
        .filter(|s| s.unavailable.is_none() && !s.json_sat_rounds.is_empty())
    {
        let per_round: Vec<String> = s
            .json_sat_rounds
            .iter()
            .map(|m| grouped(m.wrk.rps))
            .collect();
        let rps: Vec<f64> = s.json_sat_rounds.iter().map(|m| m.wrk.rps).collect();
        let cpu: Vec<f64> = s
            .json_sat_rounds
            .iter()
            .map(Measured::cpu_us_per_request)
            .collect();
        let (vs_envoy, cpu_vs_envoy) = match envoy.filter(|e| e.id != s.id) {
            Some(e) => (
                percent(spread(&paired(s, e, share))),
                micros(spread(&paired(s, e, added_cpu))),
            ),
            None => ("—".into(), "—".into()),
        };
        let baseline = scenarios
            .iter()
            .find(|b| b.unavailable.is_none() && b.id == format!("{}{BASELINE_SUFFIX}", s.id));
        let (vs_base, cpu_vs_base) = match baseline {
            Some(b) => (
                percent(spread(&paired(s, b, share))),
                micros(spread(&paired(s, b, added_cpu))),
            ),
            None => ("—".into(), "—".into()),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.label,
            per_round.join(", "),
            spread(&rps).map_or("—".into(), |(m, lo, hi)| format!(
                "{} ({}–{})",
                grouped(m),
                grouped(lo),
                grouped(hi)
            )),
            vs_envoy,
            spread(&cpu).map_or("—".into(), |(m, _, _)| format!("{m:.0} µs")),
            cpu_vs_envoy,
            vs_base,
            cpu_vs_base,
        ));
    }
    md.push_str(
        "\nA paired difference whose min–max range includes zero (100% for a ratio) is not resolved by \
         this run.\n",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::WrkFigures;

    fn measured(rps: f64, requests: u64, cpu_s: f64) -> Measured {
        Measured {
            wrk: WrkFigures {
                rps,
                requests,
                ..WrkFigures::default()
            },
            cpu_s,
            foreign_share: None,
            hits: None,
        }
    }

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[f64::NAN]), None);
    }

    #[test]
    fn comparisons_are_paired_within_rounds() {
        // The machine slows down by half in round 2; the gateway stays at 50% of Envoy in both
        // rounds, which only a paired ratio shows (unpaired medians would give 1500/3000 too,
        // but min–max of the raw figures would suggest a 2x spread).
        let mut envoy = Scenario::new("envoy", "Envoy", super::super::report::Kind::Floor);
        envoy.json_sat_rounds = vec![measured(4000.0, 40_000, 2.0), measured(2000.0, 20_000, 2.0)];
        let mut gw = Scenario::new(
            "gateway-openai",
            "Gateway",
            super::super::report::Kind::Gateway,
        );
        gw.json_sat_rounds = vec![measured(2000.0, 20_000, 3.0), measured(1000.0, 10_000, 3.0)];
        let ratio = spread(&paired(&gw, &envoy, share));
        assert_eq!(ratio, Some((0.5, 0.5, 0.5)));
        // CPU per request: Envoy 50 then 100 µs, gateway 150 then 300 µs: +100 and +200.
        let cpu = spread(&paired(&gw, &envoy, added_cpu));
        assert_eq!(cpu, Some((150.0, 100.0, 200.0)));
        let md = table(&[envoy, gw], 32);
        assert!(md.contains("50.0% (50.0–50.0)"), "{md}");
        assert!(md.contains("2,000, 1,000"), "{md}");
    }

    #[test]
    fn one_round_adds_no_section() {
        let mut envoy = Scenario::new("envoy", "Envoy", super::super::report::Kind::Floor);
        envoy.json_sat_rounds = vec![measured(4000.0, 40_000, 2.0)];
        assert_eq!(table(&[envoy], 32), "");
    }
}
