//! The per-request pure work that `make bench-native` and `make bench-v8` time, stage by stage:
//! a fixture (one wire format's requests and provider answers), each stage's call into
//! `ai_gateway`, the batch timing and the markdown table. Every call into the filter crate is in
//! this file, so an API change is adapted here alone.
//!
//! It depends on `ai_gateway`, `serde`, `serde_json` and std only: `tests/v8-bench` compiles this
//! same file (`#[path]`) for wasm32-wasip1 and times it in Node's V8. The fixtures are built and
//! checked natively from the test fakes (`super::native`), which also writes them to files for
//! that run ([`Saved`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ai_gateway::config::Config;
use ai_gateway::gateway::{self, Prepared};
use ai_gateway::provider::{Attempt, Operation, ResponseTranslator, UpstreamRequest};
use ai_gateway::response::StreamObserver;
use ai_gateway::routing::{Inputs, Observed};
use ai_gateway::usage::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One piece of the per-request work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Prepare,
    Route,
    TranslateRequest,
    TranslateJson,
    TranslateStream,
    UsageJson,
    UsageStream,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Prepare,
        Stage::Route,
        Stage::TranslateRequest,
        Stage::TranslateJson,
        Stage::TranslateStream,
        Stage::UsageJson,
        Stage::UsageStream,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Stage::Prepare => "parse + validate the request (`gateway::prepare`)",
            Stage::Route => {
                "route (`gateway::plan`, with the clone of the prepared request it consumes)"
            }
            Stage::TranslateRequest => {
                "translate the request for the provider (`Translator::request`)"
            }
            Stage::TranslateJson => "translate the JSON answer (`ResponseTranslator`)",
            Stage::TranslateStream => {
                "translate the SSE answer, chunk by chunk (`ResponseTranslator`)"
            }
            Stage::UsageJson => "read usage from the JSON answer (`Usage::from_openai_body`)",
            Stage::UsageStream => {
                "read usage from the stream, strip its usage chunk (`StreamObserver`)"
            }
        }
    }

    /// Part of a non-streamed request's work.
    pub fn json_path(self) -> bool {
        !matches!(self, Stage::TranslateStream | Stage::UsageStream)
    }

    /// Part of a streamed request's work.
    pub fn stream_path(self) -> bool {
        !matches!(self, Stage::TranslateJson | Stage::UsageJson)
    }
}

/// A provider's answer: its content type and the body as the network delivers it (one piece
/// for JSON; one piece per event or frame for a stream).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    pub content_type: String,
    pub pieces: Vec<Vec<u8>>,
}

impl Answer {
    pub fn bytes(&self) -> usize {
        self.pieces.iter().map(Vec::len).sum()
    }
}

/// A fixture as written to a file by `bench-native --dump` and read back by `tests/v8-bench`:
/// what [`Fixture::new`] and [`Fixture::set_answer`] take (the plugin configuration is written
/// beside it).
#[derive(Debug, Serialize, Deserialize)]
pub struct Saved {
    pub name: String,
    pub now_unix: u64,
    pub body: Vec<u8>,
    pub stream_body: Vec<u8>,
    pub provider_json: Answer,
    pub provider_sse: Answer,
}

/// The fixtures of one `bench-native --dump` (`fixtures.json`), with the environment values the
/// plugin configuration (`config.json`) reads and the heading's facts.
#[derive(Debug, Serialize, Deserialize)]
pub struct Dump {
    /// When they were built (UTC).
    pub stamp: String,
    /// The machine and the gateway's revision, as the heading of the table says them.
    pub machine: String,
    pub env: BTreeMap<String, Option<String>>,
    pub fixtures: Vec<Saved>,
}

/// Everything one format's stages need, built and checked once.
pub struct Fixture {
    /// The wire format's name (a column of the table).
    pub name: String,
    config: Config,
    /// The client's request, non-streamed and streamed.
    pub body: Vec<u8>,
    stream_body: Vec<u8>,
    prepared: Prepared,
    stream_prepared: Prepared,
    provider_index: usize,
    upstream_model: String,
    now_unix: u64,
    /// The provider's answers, in its wire format.
    pub provider_json: Answer,
    pub provider_sse: Answer,
    /// The same answers in the OpenAI format (translated, or as they came for OpenAI).
    openai_json: Vec<u8>,
    openai_sse: Vec<Vec<u8>>,
}

impl Fixture {
    /// The request side: both requests prepared, their model's first target found. The answers
    /// are given next with [`Fixture::set_answer`], then [`Fixture::check`]ed.
    pub fn new(
        name: &str,
        config: Config,
        body: Vec<u8>,
        stream_body: Vec<u8>,
        now_unix: u64,
    ) -> Result<Self, String> {
        let prepare = |body: &[u8]| {
            gateway::prepare(&config, Operation::Chat, body).map_err(|e| format!("prepare: {e}"))
        };
        let (prepared, stream_prepared) = (prepare(&body)?, prepare(&stream_body)?);
        let model = config
            .models
            .get(&prepared.model)
            .ok_or_else(|| format!("model {} is not configured", prepared.model))?;
        let target = model
            .first_target()
            .ok_or_else(|| format!("model {} has no target", prepared.model))?;
        Ok(Self {
            name: name.to_string(),
            provider_index: target.provider,
            upstream_model: target.upstream_model.clone(),
            config,
            body,
            stream_body,
            prepared,
            stream_prepared,
            now_unix,
            provider_json: Answer::default(),
            provider_sse: Answer::default(),
            openai_json: Vec::new(),
            openai_sse: Vec::new(),
        })
    }

    /// A fixture read from its file, answers included, checked.
    pub fn from_saved(saved: Saved, config: &Config) -> Result<Self, String> {
        let mut fixture = Self::new(
            &saved.name,
            config.clone(),
            saved.body,
            saved.stream_body,
            saved.now_unix,
        )?;
        fixture.set_answer(false, saved.provider_json);
        fixture.set_answer(true, saved.provider_sse);
        fixture.check()?;
        Ok(fixture)
    }

    /// What [`Fixture::from_saved`] needs to build this fixture again.
    pub fn saved(&self) -> Saved {
        Saved {
            name: self.name.clone(),
            now_unix: self.now_unix,
            body: self.body.clone(),
            stream_body: self.stream_body.clone(),
            provider_json: self.provider_json.clone(),
            provider_sse: self.provider_sse.clone(),
        }
    }

    /// Sets the provider's answer to the (streamed or not) request, and its OpenAI form as the
    /// gateway translates it.
    pub fn set_answer(&mut self, stream: bool, answer: Answer) {
        let openai = match self.response_translator(stream) {
            Some(mut t) => translate(t.as_mut(), &answer),
            None => answer.pieces.clone(),
        };
        if stream {
            (self.provider_sse, self.openai_sse) = (answer, openai);
        } else {
            self.provider_json = answer;
            self.openai_json = openai.concat();
        }
    }

    /// The translated answers are what an OpenAI client expects, with usage, and every stage
    /// that applies does some work.
    pub fn check(&self) -> Result<(), String> {
        let v: Value = serde_json::from_slice(&self.openai_json).map_err(|e| {
            format!(
                "translated JSON answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.openai_json)
            )
        })?;
        if v["choices"][0]["message"]["content"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return Err(format!("translated JSON answer has no content: {v}"));
        }
        if Usage::from_openai_body(&self.openai_json).is_none_or(|u| u.completion == 0) {
            return Err(format!("no usage read from the JSON answer: {v}"));
        }
        let observer = self.observe_stream();
        if !observer.saw_done || observer.usage.is_none_or(|u| u.completion == 0) {
            return Err(format!(
                "translated stream lacks [DONE] or usage: {}",
                String::from_utf8_lossy(&self.openai_sse.concat())
            ));
        }
        match Stage::ALL
            .into_iter()
            .find(|s| self.applies(*s) && self.run(*s) == 0)
        {
            Some(stage) => Err(format!("no work done by stage: {}", stage.title())),
            None => Ok(()),
        }
    }

    /// The provider the request is routed to.
    pub fn routed_provider(&self) -> Result<String, String> {
        gateway::plan(&self.config, self.prepared.clone(), &self.inputs())
            .map(|plan| plan.provider)
            .map_err(|e| format!("plan: {e}"))
    }

    /// The client's request body.
    pub fn request_body(&self, stream: bool) -> &[u8] {
        if stream {
            &self.stream_body
        } else {
            &self.body
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            providers: &self.config.providers,
            facts: &self.prepared.facts,
            observed: &|_| Observed::default(),
            random: 0x5eed,
            now_unix: self.now_unix,
            pinned: None,
            classified: None,
        }
    }

    fn attempt(&self, stream: bool) -> Option<Attempt<'_>> {
        let prepared = if stream {
            &self.stream_prepared
        } else {
            &self.prepared
        };
        Some(Attempt {
            provider: self.config.providers.get(self.provider_index)?,
            operation: Operation::Chat,
            client_model: &prepared.model,
            upstream_model: &self.upstream_model,
            stream,
            client_asked_usage: prepared.client_asked_usage,
            embeddings_base64: false,
            now_unix: self.now_unix,
            key_index: 0,
        })
    }

    /// The request as the gateway sends it to the provider.
    pub fn translate_request(&self, stream: bool) -> Result<UpstreamRequest, String> {
        let attempt = self.attempt(stream).ok_or("no provider")?;
        attempt
            .provider
            .kind
            .translator()
            .request(&attempt, self.request_body(stream))
            .map_err(|e| e.to_string())
    }

    fn response_translator(&self, stream: bool) -> Option<Box<dyn ResponseTranslator>> {
        let attempt = self.attempt(stream)?;
        attempt.provider.kind.translator().response(&attempt)
    }

    /// Whether the stage has work for this format (an OpenAI-compatible answer is not
    /// translated).
    pub fn applies(&self, stage: Stage) -> bool {
        match stage {
            Stage::TranslateJson | Stage::TranslateStream => {
                self.response_translator(false).is_some()
            }
            _ => true,
        }
    }

    fn observe_stream(&self) -> StreamObserver {
        // The client did not ask for usage: the gateway asked for it and strips its chunk.
        let mut observer = StreamObserver::new(true);
        let last = self.openai_sse.len().saturating_sub(1);
        for (i, chunk) in self.openai_sse.iter().enumerate() {
            observer.on_chunk(chunk, i == last);
        }
        observer
    }

    /// Does the stage's work once; returns a size of its result, for the caller to keep the
    /// work from being optimised away.
    pub fn run(&self, stage: Stage) -> usize {
        match stage {
            Stage::Prepare => gateway::prepare(&self.config, Operation::Chat, &self.body)
                .map_or(0, |p| p.model.len()),
            Stage::Route => gateway::plan(&self.config, self.prepared.clone(), &self.inputs())
                .map_or(0, |p| p.chain.len()),
            Stage::TranslateRequest => self
                .translate_request(false)
                .map_or(0, |r| r.body.map_or(r.path.len(), |b| b.len())),
            Stage::TranslateJson | Stage::TranslateStream => {
                let stream = stage == Stage::TranslateStream;
                let answer = if stream {
                    &self.provider_sse
                } else {
                    &self.provider_json
                };
                self.response_translator(stream)
                    .map_or(0, |mut t| translate(t.as_mut(), answer).len())
            }
            Stage::UsageJson => {
                Usage::from_openai_body(&self.openai_json).map_or(0, |u| u.total as usize)
            }
            Stage::UsageStream => self.observe_stream().usage.map_or(0, |u| u.total as usize),
        }
    }
}

/// Feeds an answer through a response translator as the upstream filter does: its status and
/// content type, then each piece (the whole body at once when it asks to buffer).
fn translate(t: &mut dyn ResponseTranslator, answer: &Answer) -> Vec<Vec<u8>> {
    let shape = t.start(200, Some(&answer.content_type));
    if shape.buffer_whole {
        return vec![t.body(&answer.pieces.concat(), true)];
    }
    let last = answer.pieces.len().saturating_sub(1);
    answer
        .pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| t.body(piece, i == last))
        .collect()
}

/// Nanoseconds per call: the median and the fastest batch.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median_ns: f64,
    pub min_ns: f64,
}

/// The time spent measuring each cell: the milliseconds in the environment variable `var`, 300
/// when unset, kept within 10 ms and 60 s.
pub fn budget(var: &str) -> Duration {
    Duration::from_millis(
        std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(300u64)
            .clamp(10, 60_000),
    )
}

/// The size of the client's request the stages were timed with (the first fixture's).
fn request_bytes(fixtures: &[Result<Fixture, String>]) -> usize {
    fixtures.iter().flatten().next().map_or(0, |f| f.body.len())
}

/// How the stages were timed, as both tables' headings say it; `build` names what ran.
pub fn timing_note(budget: Duration, fixtures: &[Result<Fixture, String>], build: &str) -> String {
    format!(
        "Median nanoseconds per request of each stage (batches of ≥ 2 ms for {} ms per cell; the fastest batch in parentheses), \
         {build}. Request: the {}-byte chat completion of `make bench`; answers from the test fakes of each format.",
        budget.as_millis(),
        request_bytes(fixtures),
    )
}

/// Times `work` in batches of at least 2 ms (the first ones, doubling, warm up and calibrate)
/// for `budget`: the median batch, which a busy machine disturbs less than the mean.
pub fn time(budget: Duration, mut work: impl FnMut() -> usize) -> Timing {
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

/// Each stage's timing per fixture (`None`: not measured), stage by stage, each logged to
/// stderr as it is done.
pub type Rows = Vec<(Stage, Vec<Option<Timing>>)>;

pub fn measure(fixtures: &[Result<Fixture, String>], budget: Duration) -> Rows {
    let mut rows = Vec::new();
    for stage in Stage::ALL {
        let mut row = Vec::new();
        for fixture in fixtures {
            let timing = match fixture {
                Ok(f) if f.applies(stage) => {
                    Some(time(budget, || black_box(f).run(black_box(stage))))
                }
                _ => None,
            };
            if let (Ok(f), Some(t)) = (fixture, timing) {
                eprintln!(
                    "  {:<18} {:<78} {:>12}",
                    f.name,
                    stage.title(),
                    ns(t.median_ns)
                );
            }
            row.push(timing);
        }
        rows.push((stage, row));
    }
    rows
}

/// The table of `rows` (a column per format, named by `names`), the sums per request, the
/// answers' sizes and the formats not measured.
pub fn table(names: &[&str], fixtures: &[Result<Fixture, String>], rows: &Rows) -> String {
    let mut md = String::from("| Stage |");
    for name in names {
        let _ = write!(md, " {name} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"--:|".repeat(names.len()));
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
                f.name,
                f.provider_json.bytes(),
                f.provider_sse.bytes(),
                f.provider_sse.pieces.len()
            )
        })
        .collect();
    md.push_str(&sizes.join("; "));
    md.push_str(".\n");
    for (fixture, name) in fixtures.iter().zip(names) {
        if let Err(e) = fixture {
            let _ = writeln!(md, "\n- {name}: not measured: {e}");
        }
    }
    md
}

/// `1,234 ns`.
pub fn ns(x: f64) -> String {
    format!("{} ns", grouped(x))
}

/// `12345.6` as `12,346`.
pub fn grouped(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
