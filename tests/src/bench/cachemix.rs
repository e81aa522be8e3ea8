//! Scenario 6b of `make bench`: the gateway with the exact cache (local tier) on, under a
//! repeated workload. Requests are drawn from a fixed set of distinct chat questions with a
//! Zipf popularity (seeded, so every run sends the same sequence); wrk walks that sequence
//! (`tests/bench/wrk-mix.lua`), each run going on where the previous one stopped. Around each
//! measured run the driver reads the gateway's `gw_cache_lookups` from Envoy's
//! `/stats/prometheus` (the hit rate the gateway reached) and computes, on the same stretch of
//! the sequence, the hit rate of an ideal cache with as many entries as the local tier has
//! slots (Belady's MIN: on a miss with the cache full, drop the entry needed again latest), of
//! a least-recently-used one of that size, and of an unbounded one.
//! README "Benchmarks" says how to read the two.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::load::round;
use super::report::{grouped, Measured, Scenario};
use crate::check::sample;

/// The distinct questions (`BENCH_MIX_KEYS` overrides).
pub const DEFAULT_KEYS: usize = 1000;
/// The local tier's slots, so the most entries it holds at once (`BENCH_MIX_SLOTS` overrides):
/// a quarter of the questions, so what the cache keeps matters.
pub const DEFAULT_SLOTS: usize = 256;
/// The Zipf exponent: the k-th most asked question is asked in proportion to 1/k^s.
pub const ZIPF_S: f64 = 1.0;
/// The sequence's seed.
pub const SEED: u64 = 0x6b63_6163_6865; // "kcache" in ASCII
/// The sequence's length; wrk goes round it (the ideal cache is computed on the same cycle).
pub const SEQUENCE_LEN: usize = 1 << 18;

/// SplitMix64 (Steele, Lea and Flood 2014; Vigna's reference `splitmix64.c`): a small
/// seeded generator, the same numbers on every machine.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf's law over ranks 0..n (rank k drawn with probability ∝ 1/(k+1)^s), by inverse CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect();
        Self { cumulative }
    }

    pub fn sample(&self, rng: &mut SplitMix64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = rng.next_f64() * total;
        self.cumulative
            .partition_point(|c| *c <= u)
            .min(self.cumulative.len() - 1)
    }
}

/// `len` question numbers drawn from Zipf(s) over `keys` questions with `seed`.
pub fn sequence(keys: usize, s: f64, seed: u64, len: usize) -> Vec<u32> {
    let zipf = Zipf::new(keys, s);
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| zipf.sample(&mut rng) as u32).collect()
}

/// Hits of an ideal cache of `capacity` entries over `keys`, counting only the hits at
/// positions from `counted_from` (the earlier requests only fill it). Like the gateway it
/// stores every miss; on a miss with the cache full, the entry whose next use is latest goes
/// (Belady's MIN, the optimal replacement: it knows the future).
pub fn ideal_hits(keys: &[u32], counted_from: usize, capacity: usize) -> u64 {
    let mut next_use = vec![usize::MAX; keys.len()];
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate().rev() {
        if let Some(next) = seen.insert(*k, i) {
            next_use[i] = next;
        }
    }
    // Cached keys with their next use, and the same ordered by next use.
    let mut cached: HashMap<u32, usize> = HashMap::new();
    let mut by_next: BTreeSet<(usize, u32)> = BTreeSet::new();
    let mut hits = 0u64;
    for (i, (k, next)) in keys.iter().zip(&next_use).enumerate() {
        if let Some(old) = cached.get_mut(k) {
            by_next.remove(&(*old, *k));
            *old = *next;
            by_next.insert((*next, *k));
            if i >= counted_from {
                hits += 1;
            }
            continue;
        }
        if capacity == 0 {
            continue;
        }
        if cached.len() >= capacity {
            if let Some((_, victim)) = by_next.pop_last() {
                cached.remove(&victim);
            }
        }
        cached.insert(*k, *next);
        by_next.insert((*next, *k));
    }
    hits
}

/// Hits of a least-recently-used cache of `capacity` entries over `keys` (the usual online
/// policy: no knowledge of the future), counting only the hits at positions from
/// `counted_from`.
pub fn lru_hits(keys: &[u32], counted_from: usize, capacity: usize) -> u64 {
    let mut last_use: HashMap<u32, usize> = HashMap::new();
    let mut by_use: BTreeSet<(usize, u32)> = BTreeSet::new();
    let mut hits = 0u64;
    for (i, k) in keys.iter().enumerate() {
        if let Some(last) = last_use.get_mut(k) {
            by_use.remove(&(*last, *k));
            *last = i;
            by_use.insert((i, *k));
            if i >= counted_from {
                hits += 1;
            }
            continue;
        }
        if capacity == 0 {
            continue;
        }
        if last_use.len() >= capacity {
            if let Some((_, victim)) = by_use.pop_first() {
                last_use.remove(&victim);
            }
        }
        last_use.insert(*k, i);
        by_use.insert((i, *k));
    }
    hits
}

/// The exact layer's lookups of one model in Envoy's Prometheus text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lookups {
    pub hits: f64,
    /// Every outcome: hit, miss, bypass, error.
    pub all: f64,
}

impl Lookups {
    pub fn from_prometheus(text: &str, model: &str) -> Self {
        let count = |outcome: &str| {
            sample(
                text,
                "gw_cache_lookups",
                &[("model", model), ("layer", "exact"), ("outcome", outcome)],
            )
            .unwrap_or(0.0)
        };
        Self {
            hits: count("hit"),
            all: ["hit", "miss", "bypass", "error"]
                .iter()
                .map(|o| count(o))
                .sum(),
        }
    }

    /// What happened between `self` (before a run) and `after`.
    pub fn since(self, after: Self) -> Self {
        Self {
            hits: (after.hits - self.hits).max(0.0),
            all: (after.all - self.all).max(0.0),
        }
    }

    pub fn rate(self) -> Option<f64> {
        (self.all > 0.0).then(|| self.hits / self.all)
    }
}

/// One measured run of the repeated workload: what the gateway's cache did, and what an ideal
/// cache of its size would have done on the same requests.
#[derive(Debug, Clone, Default)]
pub struct HitFigures {
    /// The stretch of the sequence wrk went through (positions since Envoy started).
    pub from: u64,
    pub to: u64,
    pub gateway: Lookups,
    pub ideal_hits: u64,
    pub capacity: usize,
    /// Hits of a least-recently-used cache of `capacity` entries.
    pub lru_hits: u64,
    /// Hits of a cache that keeps every question (only first requests miss).
    pub unbounded_hits: u64,
}

impl HitFigures {
    pub fn ideal_rate(&self) -> Option<f64> {
        self.share(self.ideal_hits)
    }

    pub fn lru_rate(&self) -> Option<f64> {
        self.share(self.lru_hits)
    }

    pub fn unbounded_rate(&self) -> Option<f64> {
        self.share(self.unbounded_hits)
    }

    fn share(&self, hits: u64) -> Option<f64> {
        let n = self.to.saturating_sub(self.from);
        (n > 0).then(|| hits as f64 / n as f64)
    }

    pub fn to_json(&self) -> Value {
        json!({"sequence_from": self.from, "sequence_to": self.to,
            "gateway_lookups": self.gateway.all, "gateway_hits": self.gateway.hits,
            "gateway_hit_rate": self.gateway.rate().map(|x| round(x, 4)),
            "ideal_capacity": self.capacity, "ideal_hits": self.ideal_hits,
            "ideal_hit_rate": self.ideal_rate().map(|x| round(x, 4)),
            "lru_hits": self.lru_hits,
            "lru_hit_rate": self.lru_rate().map(|x| round(x, 4)),
            "unbounded_hits": self.unbounded_hits,
            "unbounded_hit_rate": self.unbounded_rate().map(|x| round(x, 4))})
    }
}

/// The repeated workload of one running gateway, and where wrk is in its sequence.
pub struct Mix {
    pub keys: usize,
    pub slots: usize,
    pub lua: PathBuf,
    pub bodies: PathBuf,
    pub sequence_file: PathBuf,
    sequence: Vec<u32>,
    /// Requests taken from the sequence since Envoy started.
    pub position: u64,
    pub admin_port: u16,
    pub model: String,
}

impl Mix {
    /// Writes the bodies (one JSON a line) and the sequence (one body number a line) for wrk.
    pub fn write(dir: &Path, keys: usize, slots: usize, model: &str) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let bodies = dir.join("mix-bodies.txt");
        let mut text = String::new();
        for k in 0..keys {
            text.push_str(&String::from_utf8_lossy(&question_body(model, k)));
            text.push('\n');
        }
        fs::write(&bodies, text)?;
        let sequence = sequence(keys, ZIPF_S, SEED, SEQUENCE_LEN);
        let sequence_file = dir.join("mix-sequence.txt");
        let lines: Vec<String> = sequence.iter().map(u32::to_string).collect();
        fs::write(&sequence_file, lines.join("\n") + "\n")?;
        Ok(Self {
            keys,
            slots,
            lua: crate::envoy::repo_root().join("tests/bench/wrk-mix.lua"),
            bodies,
            sequence_file,
            sequence,
            position: 0,
            admin_port: 0,
            model: model.to_string(),
        })
    }

    /// The environment of wrk-mix.lua for the next run.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("BENCH_BODIES".into(), self.bodies.display().to_string()),
            (
                "BENCH_SEQUENCE".into(),
                self.sequence_file.display().to_string(),
            ),
            ("BENCH_SEQ_OFFSET".into(), self.position.to_string()),
        ]
    }

    pub fn lookups(&self) -> Result<Lookups, String> {
        let text = crate::http::request(self.admin_port, "GET", "/stats/prometheus", &[], b"")
            .map(|r| r.text())
            .map_err(|e| format!("reading Envoy's stats: {e}"))?;
        Ok(Lookups::from_prometheus(&text, &self.model))
    }

    /// Moves on by the `sent` requests of a run and gives that run's figures.
    pub fn advance(&mut self, sent: u64, before: Lookups, after: Lookups) -> HitFigures {
        let from = self.position;
        self.position += sent;
        let len = self.sequence.len().max(1);
        let keys: Vec<u32> = (0..self.position)
            .map(|p| self.sequence.get(p as usize % len).copied().unwrap_or(0))
            .collect();
        HitFigures {
            from,
            to: self.position,
            gateway: before.since(after),
            ideal_hits: ideal_hits(&keys, from as usize, self.slots),
            capacity: self.slots,
            lru_hits: lru_hits(&keys, from as usize, self.slots),
            unbounded_hits: ideal_hits(&keys, from as usize, usize::MAX),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} distinct questions, Zipf s={ZIPF_S} (seed {SEED:#x}), a {}-slot local tier",
            grouped(self.keys as f64),
            self.slots
        )
    }
}

/// The report's section on the repeated workload: per measured run, the gateway's hit rate and
/// the ideal cache's on the same requests. Empty when no scenario ran it.
pub fn hit_table(scenarios: &[Scenario], conns: u64) -> String {
    let pct = |x: Option<f64>| x.map_or("—".into(), |x| format!("{:.1}%", x * 100.0));
    let mut md = String::new();
    for s in scenarios.iter().filter(|s| s.unavailable.is_none()) {
        let runs: Vec<(String, &Measured)> = s
            .json_c1
            .iter()
            .map(|m| ("JSON c=1".to_string(), m))
            .chain(s.json_sat_rounds.iter().enumerate().map(|(i, m)| {
                let round = if s.json_sat_rounds.len() > 1 {
                    format!(", round {}", i + 1)
                } else {
                    String::new()
                };
                (format!("JSON c={conns}{round}"), m)
            }))
            .filter(|(_, m)| m.hits.is_some())
            .collect();
        if runs.is_empty() {
            continue;
        }
        md.push_str(&format!(
            "\n**Cache hit rate, {}** (the gateway's `gw_cache_lookups` of the exact layer, read before and after each run; the ideal cache has as many entries as the local tier has slots, stores every miss and, when full, drops the entry needed again latest; an LRU cache of as many entries drops the one used longest ago; an unbounded cache misses only a question's first request)\n\n",
            s.label
        ));
        md.push_str("| Run | requests (sequence positions) | gateway lookups | gateway hit rate | cache size | ideal hit rate | LRU hit rate | unbounded cache hit rate | req/s | proxy CPU/req |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (run, m) in runs {
            let Some(h) = &m.hits else { continue };
            md.push_str(&format!(
                "| {run} | {} ({}–{}) | {} | {} | {} entries | {} | {} | {} | {} | {:.0} µs |\n",
                grouped(m.wrk.requests as f64),
                grouped(h.from as f64),
                grouped(h.to as f64),
                grouped(h.gateway.all),
                pct(h.gateway.rate()),
                h.capacity,
                pct(h.ideal_rate()),
                pct(h.lru_rate()),
                pct(h.unbounded_rate()),
                grouped(m.wrk.rps),
                m.cpu_us_per_request(),
            ));
        }
    }
    md
}

/// The bench's chat request with question number `k` as the last turn.
pub fn question_body(model: &str, k: usize) -> Vec<u8> {
    const ASKS: [&str; 10] = [
        "Where is my parcel? The tracking page has not changed for four days.",
        "Can I cancel one book of the order and keep the rest?",
        "How long does a refund take once you have the book back?",
        "Is there an express option for a replacement copy?",
        "The cover of the hardback arrived bent. What can I do?",
        "Can you send the invoice to my company address instead?",
        "I was charged twice for the same order. Can you check?",
        "Can I change the delivery address before the parcel ships?",
        "Do you gift-wrap books, and can I add a card with a message?",
        "The e-book download link has expired. Can you send a new one?",
    ];
    let mut body: Value =
        serde_json::from_slice(&super::workload::chat_request(model, false)).unwrap_or_default();
    let ask = ASKS.get(k % ASKS.len()).copied().unwrap_or_default();
    body["messages"][3]["content"] = format!("About order NW-{}: {ask}", 50_000 + k).into();
    body.to_string().into_bytes()
}

#[cfg(test)]
#[path = "cachemix_tests.rs"]
mod tests;
