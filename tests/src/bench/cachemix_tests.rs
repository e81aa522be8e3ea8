//! Tests of the repeated workload's pure pieces (`cachemix.rs`).

use super::*;

#[test]
fn splitmix64_gives_the_reference_numbers() {
    // Rosetta Code, "Pseudo-random numbers/Splitmix64": seed 1234567 gives these five.
    let mut rng = SplitMix64::new(1_234_567);
    let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
    assert_eq!(
        got,
        [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821
        ]
    );
}

#[test]
fn the_sequence_is_the_same_for_a_seed_and_differs_between_seeds() {
    let a = sequence(1000, 1.0, 7, 5000);
    assert_eq!(a, sequence(1000, 1.0, 7, 5000));
    assert_ne!(a, sequence(1000, 1.0, 8, 5000));
    assert!(a.iter().all(|k| *k < 1000));
}

#[test]
fn zipf_draws_follow_the_law() {
    // Zipf s=1 over 1000: P(rank k) = 1/(k·H_1000), H_1000 = 7.485470860550345 (the
    // 1000th harmonic number); the top ten together H_10/H_1000, H_10 = 7381/2520.
    const H_1000: f64 = 7.485_470_860_550_345;
    let n = 400_000;
    let seq = sequence(1000, 1.0, SEED, n);
    let mut count = vec![0usize; 1000];
    for k in &seq {
        count[*k as usize] += 1;
    }
    let share = |c: usize| c as f64 / n as f64;
    assert!((share(count[0]) - 1.0 / H_1000).abs() < 0.003, "{count:?}");
    assert!((share(count[1]) - 0.5 / H_1000).abs() < 0.002, "{count:?}");
    assert!((share(count[9]) - 0.1 / H_1000).abs() < 0.001, "{count:?}");
    let top10: usize = count[..10].iter().sum();
    assert!((share(top10) - 7381.0 / 2520.0 / H_1000).abs() < 0.004);
    // The tail is drawn too: rank 1000 has p ≈ 1.3e-4, about 53 of 400,000.
    assert!((20..100).contains(&count[999]), "{}", count[999]);
}

#[test]
fn zipf_s0_is_uniform() {
    let seq = sequence(4, 0.0, 1, 40_000);
    for k in 0..4 {
        let c = seq.iter().filter(|x| **x == k).count();
        assert!((9_500..10_500).contains(&c), "rank {k}: {c}");
    }
}

#[test]
fn ideal_cache_matches_the_textbook_optimal_replacement() {
    // Silberschatz, Galvin and Gagne, "Operating System Concepts", optimal page
    // replacement: this reference string with 3 frames takes 9 page faults (11 hits).
    let refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
    assert_eq!(ideal_hits(&refs, 0, 3), 11);
    // Large enough for every key: only first requests miss (6 distinct keys).
    assert_eq!(ideal_hits(&refs, 0, 6), 14);
    assert_eq!(ideal_hits(&refs, 0, 100), 14);
    assert_eq!(ideal_hits(&refs, 0, 0), 0);
    // One frame: a hit only when the same key comes twice in a row (none here).
    assert_eq!(ideal_hits(&refs, 0, 1), 0);
}

#[test]
fn lru_matches_the_textbook_lru_replacement() {
    // The same book, LRU page replacement: this string with 3 frames takes 12 page faults.
    let refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
    assert_eq!(lru_hits(&refs, 0, 3), 8);
    assert_eq!(lru_hits(&refs, 0, 6), 14);
    assert_eq!(lru_hits(&refs, 0, 0), 0);
    // Counted from position 17 (7, 0, 1): 7 was evicted, 0 and 1 are still there.
    assert_eq!(lru_hits(&refs, 17, 3), 2);
    // Never more than the ideal cache of the same size.
    let seq = sequence(100, 1.0, 3, 5000);
    for capacity in [1, 10, 50] {
        assert!(lru_hits(&seq, 0, capacity) <= ideal_hits(&seq, 0, capacity));
    }
}

#[test]
fn ideal_hits_count_only_the_measured_stretch() {
    // The first three fill the cache; of the last three, 1 and 2 hit and 4 misses.
    let refs = [1, 2, 3, 1, 2, 4];
    assert_eq!(ideal_hits(&refs, 3, 3), 2);
    assert_eq!(ideal_hits(&refs, 0, 3), 2);
    assert_eq!(ideal_hits(&refs, 4, 3), 1);
}

const STATS_BEFORE: &str = "# TYPE gw_cache_lookups counter\n\
    gw_cache_lookups{model=\"gpt-4o-mini\",layer=\"exact\",outcome=\"hit\"} 10\n\
    gw_cache_lookups{model=\"gpt-4o-mini\",layer=\"exact\",outcome=\"miss\"} 30\n\
    gw_cache_lookups{model=\"other\",layer=\"exact\",outcome=\"hit\"} 500\n";
const STATS_AFTER: &str = "# TYPE gw_cache_lookups counter\n\
    gw_cache_lookups{model=\"gpt-4o-mini\",layer=\"exact\",outcome=\"hit\"} 85\n\
    gw_cache_lookups{model=\"gpt-4o-mini\",layer=\"exact\",outcome=\"miss\"} 50\n\
    gw_cache_lookups{model=\"gpt-4o-mini\",layer=\"exact\",outcome=\"bypass\"} 5\n\
    gw_cache_lookups{model=\"gpt-4o-mini\",layer=\"semantic\",outcome=\"hit\"} 7\n\
    gw_cache_lookups{model=\"other\",layer=\"exact\",outcome=\"hit\"} 900\n";

#[test]
fn the_hit_rate_is_hits_over_all_lookups_of_the_run() {
    let before = Lookups::from_prometheus(STATS_BEFORE, "gpt-4o-mini");
    assert_eq!(
        before,
        Lookups {
            hits: 10.0,
            all: 40.0
        }
    );
    let run = before.since(Lookups::from_prometheus(STATS_AFTER, "gpt-4o-mini"));
    // 75 hits out of 75 + 20 misses + 5 bypasses; the semantic layer and the other
    // model are not counted.
    assert_eq!(
        run,
        Lookups {
            hits: 75.0,
            all: 100.0
        }
    );
    assert_eq!(run.rate(), Some(0.75));
    assert_eq!(Lookups::default().rate(), None);
}

#[test]
fn the_report_shows_every_hit_rate_per_run() {
    use crate::bench::load::WrkFigures;
    use crate::bench::report::Kind;
    let run = |requests: u64, hits: HitFigures| Measured {
        wrk: WrkFigures {
            requests,
            rps: 1000.0,
            ..WrkFigures::default()
        },
        cpu_s: 0.1,
        foreign_share: None,
        hits: Some(hits),
    };
    let mut s = Scenario::new("gateway-cache-mix", "6b. mix", Kind::Gateway);
    s.json_c1 = Some(run(
        200,
        HitFigures {
            from: 100,
            to: 300,
            gateway: Lookups {
                hits: 130.0,
                all: 200.0,
            },
            ideal_hits: 170,
            capacity: 256,
            lru_hits: 150,
            unbounded_hits: 190,
        },
    ));
    let md = hit_table(
        &[s, Scenario::new("envoy", "1. Plain Envoy", Kind::Floor)],
        32,
    );
    // 130/200, 170/200, 150/200, 190/200; 0.1 s of CPU for 200 requests.
    assert!(
        md.contains("| JSON c=1 | 200 (100–300) | 200 | 65.0% | 256 entries | 85.0% | 75.0% | 95.0% | 1,000 | 500 µs |"),
        "{md}"
    );
    assert_eq!(md.matches("**Cache hit rate").count(), 1, "{md}");
    assert_eq!(hit_table(&[], 32), "");
}

#[test]
fn a_run_goes_on_where_the_last_stopped() {
    let dir = std::env::temp_dir().join(format!("cachemix-test-{}", std::process::id()));
    let mut mix = Mix::write(&dir, 20, 4, "gpt-4o-mini").expect("writes");
    let bodies = fs::read_to_string(&mix.bodies).expect("bodies");
    assert_eq!(bodies.lines().count(), 20);
    assert!(bodies.lines().all(|l| l.contains("About order NW-5")));
    let none = Lookups::default();
    let first = mix.advance(100, none, none);
    let second = mix.advance(50, none, none);
    assert_eq!(
        (first.from, first.to, second.from, second.to),
        (0, 100, 100, 150)
    );
    assert!(mix
        .env()
        .contains(&("BENCH_SEQ_OFFSET".into(), "150".into())));
    // Each run's ideal cache knows every request sent so far, and counts its own.
    let keys = sequence(20, ZIPF_S, SEED, 150);
    assert_eq!(first.ideal_hits, ideal_hits(&keys[..100], 0, 4));
    assert_eq!(second.ideal_hits, ideal_hits(&keys, 100, 4));
    assert!(second.ideal_hits > 0 && second.ideal_hits <= 50);
    let _ = fs::remove_dir_all(&dir);
}
