//! The benchmark's results: one record per scenario, the comparisons between them (added
//! latency and throughput versus plain Envoy, ratios to the peers, the recorded targets), and
//! their rendering as a markdown table and as JSON.

use serde_json::{json, Value};

use super::cachemix::HitFigures;
use super::load::{round, StreamFigures, WrkFigures};
pub use super::stages::grouped;

/// One wrk run with the proxy's CPU time during it.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub wrk: WrkFigures,
    /// CPU seconds the proxy (and its children) used during the run.
    pub cpu_s: f64,
    /// Share of the proxy's cores that other processes or the hypervisor took during the run
    /// (`None` when the proxy is not pinned). Near 0 on a quiet machine.
    pub foreign_share: Option<f64>,
    /// The repeated workload's cache hits (scenario 6b only).
    pub hits: Option<HitFigures>,
}

impl Measured {
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.wrk.requests == 0 {
            0.0
        } else {
            self.cpu_s * 1e6 / self.wrk.requests as f64
        }
    }

    /// Share of one core the proxy used.
    pub fn cpu_utilization(&self) -> f64 {
        if self.wrk.duration_s > 0.0 {
            self.cpu_s / self.wrk.duration_s
        } else {
            0.0
        }
    }

    fn to_json(&self) -> Value {
        let mut v = self.wrk.to_json();
        v["proxy_cpu_s"] = round(self.cpu_s, 3).into();
        v["proxy_cpu_us_per_request"] = round(self.cpu_us_per_request(), 2).into();
        v["proxy_cpu_cores_used"] = round(self.cpu_utilization(), 3).into();
        v["foreign_share_of_proxy_cpus"] = self.foreign_share.map(|x| round(x, 3)).into();
        if let Some(h) = &self.hits {
            v["cache"] = h.to_json();
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain Envoy, which every other scenario is compared with.
    Floor,
    /// Plain Envoy with a minimal wasm filter that reads and rewrites the request body.
    WasmFloor,
    Gateway,
    Peer,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub label: String,
    pub kind: Kind,
    /// Why the scenario has no figures (it could not run); never replaced by made-up numbers.
    pub unavailable: Option<String>,
    pub json_c1: Option<Measured>,
    /// The saturating JSON median round (`json_sat_rounds` holds every round, in run order).
    pub json_sat: Option<Measured>,
    pub json_sat_rounds: Vec<Measured>,
    pub stream: Option<StreamFigures>,
    pub stream_sat: Option<Measured>,
    pub idle_rss_kib: u64,
    pub rss_kib: u64,
    /// Anything odd seen while measuring (errors, non-2xx answers).
    pub notes: Vec<String>,
}

impl Scenario {
    pub fn new(id: &str, label: &str, kind: Kind) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            kind,
            unavailable: None,
            json_c1: None,
            json_sat: None,
            json_sat_rounds: Vec::new(),
            stream: None,
            stream_sat: None,
            idle_rss_kib: 0,
            rss_kib: 0,
            notes: Vec::new(),
        }
    }

    fn to_json(&self) -> Value {
        let m = |x: &Option<Measured>| x.as_ref().map_or(Value::Null, Measured::to_json);
        json!({"id": self.id, "label": self.label,
            "kind": format!("{:?}", self.kind).to_lowercase(),
            "unavailable": self.unavailable,
            "json_c1": m(&self.json_c1), "json_saturating": m(&self.json_sat),
            "json_saturating_rounds": self.json_sat_rounds.iter().map(Measured::to_json).collect::<Vec<_>>(),
            "stream_c1": self.stream.as_ref().map_or(Value::Null, StreamFigures::to_json),
            "stream_saturating": m(&self.stream_sat),
            "rss_idle_kib": self.idle_rss_kib, "rss_after_kib": self.rss_kib,
            "notes": self.notes})
    }
}

/// Everything one run of `make bench` produced.
pub struct Report {
    pub started_utc: String,
    pub machine: Value,
    pub settings: Value,
    pub wasm_bytes: Option<u64>,
    pub wasm_opt_bytes: Option<u64>,
    pub wasm_opt_note: String,
    /// Other .wasm files measured (the floor filter, a baseline's gateway) and their sizes.
    pub other_wasm: Vec<(String, u64)>,
    pub scenarios: Vec<Scenario>,
    pub peers_requested: bool,
    pub peer_notes: Vec<String>,
    /// The markdown description of the setting (machine, pinning, sizes of the messages).
    pub preamble: String,
    /// wrk straight to the fake upstream (c=1, saturating): the ceiling of the setting.
    pub upstream_direct: Option<(WrkFigures, WrkFigures)>,
}

// The targets of the request-pipeline work (issue "One request pipeline"): 60% of plain Envoy's
// throughput (75% after that), 10× Portkey's, 0.1 ms added at c=1 and to a stream's first byte.
const TARGET_ADDED_P50_MS: f64 = 0.1;
const TARGET_THROUGHPUT_SHARE: f64 = 0.60;
const TARGET_VS_LITELLM: f64 = 10.0;
const TARGET_VS_PORTKEY: f64 = 10.0;
const TARGET_TTFB_MS: f64 = 0.1;
const TARGET_WASM_BYTES: u64 = 1_000_000;

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.3} ms")
    }
}

fn signed_ms(x: f64) -> String {
    format!("{}{:.3} ms", if x >= 0.0 { "+" } else { "−" }, x.abs())
}

fn rps(x: f64) -> String {
    grouped(x)
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "—".into()
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

fn bytes(n: u64) -> String {
    format!("{} bytes ({:.0} KiB)", rps(n as f64), n as f64 / 1024.0)
}

/// One comparison against a target.
struct Target {
    goal: String,
    measured: String,
    met: Option<bool>,
}

impl Report {
    fn find(&self, id: &str) -> Option<&Scenario> {
        self.scenarios
            .iter()
            .find(|s| s.id == id && s.unavailable.is_none())
    }

    fn floor(&self) -> Option<&Scenario> {
        self.find("envoy")
    }

    fn added_p50(&self, s: &Scenario) -> Option<f64> {
        Some(s.json_c1.as_ref()?.wrk.p50_ms - self.floor()?.json_c1.as_ref()?.wrk.p50_ms)
    }

    fn throughput_share(&self, s: &Scenario) -> Option<f64> {
        let floor = self.floor()?.json_sat.as_ref()?.wrk.rps;
        (floor > 0.0).then(|| s.json_sat.as_ref().map(|m| m.wrk.rps / floor))?
    }

    fn added_ttfb(&self, s: &Scenario) -> Option<f64> {
        Some(s.stream.as_ref()?.ttfb.p50_ms - self.floor()?.stream.as_ref()?.ttfb.p50_ms)
    }

    /// The proxy's CPU per request at saturation, minus plain Envoy's.
    fn added_cpu(&self, s: &Scenario) -> Option<f64> {
        let cpu = |s: &Scenario| s.json_sat.as_ref().map(Measured::cpu_us_per_request);
        Some(cpu(s)? - cpu(self.floor()?)?)
    }

    /// The CPU a scenario adds over plain Envoy as a multiple of what a wasm floor scenario adds.
    fn floor_multiple(&self, s: &Scenario, floor_id: &str) -> Option<f64> {
        let floor = self.added_cpu(self.find(floor_id)?)?;
        (floor > 0.0).then(|| self.added_cpu(s).map(|a| a / floor))?
    }

    /// Gateway throughput divided by a peer's, for the same scenario.
    fn ratio(&self, ours: &str, peer: &str, stream: bool) -> Option<f64> {
        let pick = |s: &Scenario| {
            if stream {
                s.stream_sat.as_ref().map(|m| m.wrk.rps)
            } else {
                s.json_sat.as_ref().map(|m| m.wrk.rps)
            }
        };
        let theirs = pick(self.find(peer)?)?;
        (theirs > 0.0).then(|| pick(self.find(ours)?).map(|r| r / theirs))?
    }

    fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for (id, name) in [
            ("gateway-openai", "OpenAI-compatible"),
            ("gateway-anthropic", "OpenAI→Anthropic"),
        ] {
            let added = self.find(id).and_then(|s| self.added_p50(s));
            out.push(Target {
                goal: format!(
                    "Added p50 latency over plain Envoy at c=1, {name} ≤ {TARGET_ADDED_P50_MS} ms"
                ),
                measured: added.map_or("not measured".into(), signed_ms),
                met: added.map(|a| a <= TARGET_ADDED_P50_MS),
            });
        }
        for (id, name) in [
            ("gateway-openai", "OpenAI-compatible"),
            ("gateway-anthropic", "OpenAI→Anthropic"),
        ] {
            let share = self.find(id).and_then(|s| self.throughput_share(s));
            out.push(Target {
                goal: format!(
                    "Throughput ≥ {:.0}% of plain Envoy ({name})",
                    TARGET_THROUGHPUT_SHARE * 100.0
                ),
                measured: share.map_or("not measured".into(), |s| format!("{:.0}%", s * 100.0)),
                met: share.map(|s| s >= TARGET_THROUGHPUT_SHARE),
            });
        }
        for (peer, name, goal) in [
            ("litellm", "LiteLLM", TARGET_VS_LITELLM),
            ("portkey", "Portkey", TARGET_VS_PORTKEY),
        ] {
            for (fmt, label) in [("openai", "OpenAI-compatible"), ("anthropic", "→Anthropic")] {
                let r = self.ratio(&format!("gateway-{fmt}"), &format!("{peer}-{fmt}"), false);
                let why = if self.peers_requested {
                    format!("not measured ({name} did not run)")
                } else {
                    "not measured (run with BENCH_PEERS=1)".into()
                };
                out.push(Target {
                    goal: format!("≥ {goal:.0}× {name}'s throughput ({label})"),
                    measured: r.map_or(why, |r| format!("{r:.1}×")),
                    met: r.map(|r| r >= goal),
                });
            }
        }
        for (id, name) in [
            ("gateway-openai", "OpenAI-compatible"),
            ("gateway-anthropic", "OpenAI→Anthropic"),
        ] {
            let t = self.find(id).and_then(|s| self.added_ttfb(s));
            out.push(Target {
                goal: format!(
                    "Streaming first byte within {TARGET_TTFB_MS} ms of plain Envoy ({name}, p50)"
                ),
                measured: t.map_or("not measured".into(), signed_ms),
                met: t.map(|t| t <= TARGET_TTFB_MS),
            });
        }
        out.push(Target {
            goal: "Release .wasm ≤ 1 MB".into(),
            measured: self.wasm_bytes.map_or("not measured".into(), bytes),
            met: self.wasm_bytes.map(|b| b <= TARGET_WASM_BYTES),
        });
        out
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        md.push_str(&format!("### `make bench`, {}\n\n", self.started_utc));
        md.push_str(&self.preamble);
        let conns = self.settings["connections"].as_u64().unwrap_or(0);
        if let Some((c1, sat)) = &self.upstream_direct {
            md.push_str(&format!(
                "Ceiling (wrk straight to the fake upstream, no proxy): p50 {} at c=1, {} req/s at c={conns}.\n",
                ms(c1.p50_ms),
                rps(sat.rps)
            ));
        }
        md.push('\n');

        md.push_str("**Non-streamed chat completion**\n\n");
        md.push_str(&format!(
            "| Scenario | p50 c=1 | p90 c=1 | p99 c=1 | added p50 vs Envoy | req/s c=1 | req/s c={conns} | vs Envoy | p50 c={conns} | p99 c={conns} | proxy CPU/req | proxy RSS after |\n"
        ));
        md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for s in &self.scenarios {
            if let Some(why) = &s.unavailable {
                md.push_str(&format!("| {} | {why} |||||||||||\n", s.label));
                continue;
            }
            let (Some(c1), Some(sat)) = (&s.json_c1, &s.json_sat) else {
                continue;
            };
            let added = match s.kind {
                Kind::Floor => "—".into(),
                _ => self.added_p50(s).map_or("—".into(), signed_ms),
            };
            let share = self
                .throughput_share(s)
                .map_or("—".into(), |x| format!("{:.0}%", x * 100.0));
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} µs | {} |\n",
                s.label,
                ms(c1.wrk.p50_ms),
                ms(c1.wrk.p90_ms),
                ms(c1.wrk.p99_ms),
                added,
                rps(c1.wrk.rps),
                rps(sat.wrk.rps),
                share,
                ms(sat.wrk.p50_ms),
                ms(sat.wrk.p99_ms),
                sat.cpu_us_per_request(),
                mib(s.rss_kib),
            ));
        }

        self.floor_table(&mut md, conns);
        md.push_str(&super::rounds::table(&self.scenarios, conns));
        md.push_str(&super::cachemix::hit_table(&self.scenarios, conns));

        md.push_str(&format!(
            "\n**4. Streaming, {} events per answer** (time to first / last body byte, one request after the other; throughput at c={conns})\n\n",
            super::workload::STREAM_EVENTS
        ));
        md.push_str(&format!(
            "| Scenario | TTFB p50 | TTFB p99 | added TTFB p50 vs Envoy | TTLB p50 | TTLB p99 | added TTLB p50 vs Envoy | events received | streams/s c={conns} | proxy CPU/stream |\n"
        ));
        md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        let floor_stream = self.floor().and_then(|f| f.stream.clone());
        for s in &self.scenarios {
            let (Some(st), Some(sat)) = (&s.stream, &s.stream_sat) else {
                if s.unavailable.is_none() {
                    let why = s
                        .notes
                        .iter()
                        .find(|n| n.starts_with("streams not measured"))
                        .map_or("not measured", String::as_str);
                    md.push_str(&format!("| {} | {why} |||||||||\n", s.label));
                }
                continue;
            };
            let (added_fb, added_lb) = match (&floor_stream, s.kind) {
                (Some(f), Kind::WasmFloor | Kind::Gateway | Kind::Peer) => (
                    signed_ms(st.ttfb.p50_ms - f.ttfb.p50_ms),
                    signed_ms(st.ttlb.p50_ms - f.ttlb.p50_ms),
                ),
                _ => ("—".into(), "—".into()),
            };
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} µs |\n",
                s.label,
                ms(st.ttfb.p50_ms),
                ms(st.ttfb.p99_ms),
                added_fb,
                ms(st.ttlb.p50_ms),
                ms(st.ttlb.p99_ms),
                added_lb,
                st.events,
                rps(sat.wrk.rps),
                sat.cpu_us_per_request(),
            ));
        }

        let peers: Vec<&Scenario> = self
            .scenarios
            .iter()
            .filter(|s| s.kind == Kind::Peer && s.unavailable.is_none())
            .collect();
        if !peers.is_empty() {
            md.push_str(&format!(
                "\n**Gateway versus peers** (gateway throughput ÷ peer throughput at c={conns}; gateway p50 at c=1 vs peer's)\n\n"
            ));
            md.push_str("| Peer scenario | throughput ratio (JSON) | throughput ratio (streams) | p50 c=1, gateway vs peer |\n|---|--:|--:|--:|\n");
            for p in peers {
                let fmt = if p.id.ends_with("anthropic") {
                    "anthropic"
                } else {
                    "openai"
                };
                let ours = format!("gateway-{fmt}");
                let json_r = self
                    .ratio(&ours, &p.id, false)
                    .map_or("—".into(), |r| format!("{r:.1}×"));
                let stream_r = self
                    .ratio(&ours, &p.id, true)
                    .map_or("—".into(), |r| format!("{r:.1}×"));
                let lat = match (
                    self.find(&ours).and_then(|s| s.json_c1.as_ref()),
                    p.json_c1.as_ref(),
                ) {
                    (Some(a), Some(b)) => format!("{} vs {}", ms(a.wrk.p50_ms), ms(b.wrk.p50_ms)),
                    _ => "—".into(),
                };
                md.push_str(&format!(
                    "| {} | {json_r} | {stream_r} | {lat} |\n",
                    p.label
                ));
            }
        }
        for n in &self.peer_notes {
            md.push_str(&format!("\n- {n}"));
        }
        if !self.peer_notes.is_empty() {
            md.push('\n');
        }

        let foreign: Vec<f64> = self
            .scenarios
            .iter()
            .flat_map(|s| {
                [&s.json_c1, &s.json_sat, &s.stream_sat]
                    .map(|m| m.as_ref().and_then(|m| m.foreign_share))
                    .into_iter()
                    .chain([s.stream.as_ref().and_then(|st| st.foreign_share)])
            })
            .flatten()
            .collect();
        let disturbed: Vec<String> = self
            .scenarios
            .iter()
            .flat_map(|s| {
                [
                    ("JSON c=1", s.json_c1.as_ref().and_then(|m| m.foreign_share)),
                    (
                        "JSON saturating",
                        s.json_sat.as_ref().and_then(|m| m.foreign_share),
                    ),
                    (
                        "streams c=1",
                        s.stream.as_ref().and_then(|m| m.foreign_share),
                    ),
                    (
                        "streams saturating",
                        s.stream_sat.as_ref().and_then(|m| m.foreign_share),
                    ),
                ]
                .into_iter()
                .filter_map(move |(run, share)| {
                    share
                        .filter(|x| *x > 0.15)
                        .map(|x| format!("{} {run} ({:.0}%)", s.label, x * 100.0))
                })
            })
            .collect();
        if let Some(max) = foreign.iter().copied().reduce(f64::max) {
            let mean = foreign.iter().sum::<f64>() / foreign.len() as f64;
            md.push_str(&format!(
                "\nOther processes and the hypervisor took {:.1}% of the proxy's core on average during the runs (at most {:.1}%){}\n",
                mean * 100.0,
                max * 100.0,
                if disturbed.is_empty() && mean > 0.03 {
                    ": **the machine was not quiet; the figures are pessimistic**.".into()
                } else if !disturbed.is_empty() {
                    format!(
                        ": **the machine was not quiet; the affected figures are pessimistic** (most disturbed: {}).",
                        disturbed.join(", ")
                    )
                } else {
                    ".".into()
                }
            ));
        }

        md.push_str("\n**Size**\n\n| Artifact | Size |\n|---|--:|\n");
        md.push_str(&format!(
            "| release `ai_gateway.wasm` (what `make wasm` builds and Envoy loads here) | {} |\n",
            self.wasm_bytes.map_or("—".into(), bytes)
        ));
        md.push_str(&format!(
            "| the same after `wasm-opt -Oz` (not part of the build; for reference) | {} |\n",
            self.wasm_opt_bytes
                .map_or(self.wasm_opt_note.clone(), bytes)
        ));
        for (what, size) in &self.other_wasm {
            md.push_str(&format!("| {what} | {} |\n", bytes(*size)));
        }

        md.push_str(
            "\n**Targets** (recorded, not asserted)\n\n| Goal | Measured | |\n|---|--:|---|\n",
        );
        for t in self.targets() {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "—",
            };
            md.push_str(&format!("| {} | {} | {verdict} |\n", t.goal, t.measured));
        }
        let notes: Vec<String> = self
            .scenarios
            .iter()
            .flat_map(|s| s.notes.iter().map(move |n| format!("{}: {n}", s.label)))
            .collect();
        if !notes.is_empty() {
            md.push_str("\nNotes:\n");
            for n in notes {
                md.push_str(&format!("- {n}\n"));
            }
        }
        md
    }

    /// The wasm floor comparison: what the gateway's filters cost beyond what any wasm filter
    /// that reads and rewrites the body costs. Only when plain Envoy and a floor were measured.
    fn floor_table(&self, md: &mut String, conns: u64) {
        const FLOORS: [&str; 2] = ["floor", "floor-upstream"];
        if FLOORS.iter().all(|id| self.find(id).is_none()) || self.floor().is_none() {
            return;
        }
        md.push_str(&format!(
            "\n**Against the wasm floor** (proxy CPU per request at c={conns}; the CPU a scenario adds over plain Envoy, and that as a multiple of what the floor filter adds: downstream only (1a), downstream and upstream (1b))\n\n"
        ));
        md.push_str("| Scenario | proxy CPU/req | added over plain Envoy | × floor 1a | × floor 1b |\n|---|--:|--:|--:|--:|\n");
        for s in self.scenarios.iter().filter(|s| {
            s.unavailable.is_none() && matches!(s.kind, Kind::WasmFloor | Kind::Gateway)
        }) {
            let (Some(sat), Some(added)) = (&s.json_sat, self.added_cpu(s)) else {
                continue;
            };
            let [down, up] = FLOORS.map(|f| match s.kind {
                Kind::WasmFloor => "—".to_string(),
                _ => self
                    .floor_multiple(s, f)
                    .map_or("—".into(), |x| format!("{x:.1}×")),
            });
            md.push_str(&format!(
                "| {} | {:.0} µs | {}{:.0} µs | {down} | {up} |\n",
                s.label,
                sat.cpu_us_per_request(),
                if added >= 0.0 { "+" } else { "−" },
                added.abs(),
            ));
        }
    }

    pub fn to_json(&self) -> Value {
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|t| json!({"goal": t.goal, "measured": t.measured, "met": t.met}))
            .collect();
        let mut comparisons = Vec::new();
        for s in self.scenarios.iter().filter(|s| s.kind != Kind::Floor) {
            comparisons.push(json!({"id": s.id,
                "added_p50_ms_c1": self.added_p50(s).map(|x| round(x, 4)),
                "throughput_share_of_envoy": self.throughput_share(s).map(|x| round(x, 3)),
                "added_ttfb_p50_ms": self.added_ttfb(s).map(|x| round(x, 4)),
                "added_cpu_us_per_request": self.added_cpu(s).map(|x| round(x, 2)),
                "added_cpu_vs_floor": self.floor_multiple(s, "floor").map(|x| round(x, 2)),
                "added_cpu_vs_floor_upstream": self.floor_multiple(s, "floor-upstream").map(|x| round(x, 2))}));
        }
        let mut ratios = Vec::new();
        for peer in ["litellm", "portkey"] {
            for fmt in ["openai", "anthropic"] {
                let (ours, theirs) = (format!("gateway-{fmt}"), format!("{peer}-{fmt}"));
                ratios.push(json!({"gateway": ours, "peer": theirs,
                    "throughput_ratio": self.ratio(&ours, &theirs, false).map(|x| round(x, 2)),
                    "stream_throughput_ratio": self.ratio(&ours, &theirs, true).map(|x| round(x, 2))}));
            }
        }
        json!({
            "schema": 1,
            "started_utc": self.started_utc,
            "machine": self.machine,
            "settings": self.settings,
            "upstream_direct": self.upstream_direct.as_ref().map(|(a, b)| json!({"c1": a.to_json(), "saturating": b.to_json()})),
            "wasm": {"release_bytes": self.wasm_bytes, "wasm_opt_oz_bytes": self.wasm_opt_bytes,
                "wasm_opt_note": self.wasm_opt_note,
                "other": self.other_wasm.iter().map(|(what, size)| json!({"what": what, "bytes": size})).collect::<Vec<_>>()},
            "scenarios": self.scenarios.iter().map(Scenario::to_json).collect::<Vec<_>>(),
            "vs_plain_envoy": comparisons,
            "vs_peers": ratios,
            "peer_notes": self.peer_notes,
            "targets": targets,
        })
    }
}
