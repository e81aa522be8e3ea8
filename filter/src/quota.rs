//! Exact counters for rate limits and budgets, shared by every Envoy worker through a
//! compare-and-swap store (proxy-wasm shared data in Envoy, [`MemoryStore`] in tests).
//!
//! - **Counters.** One store entry per (kind, window, scope, id), e.g.
//!   `gw.quota.tokens.minute.key.search-backend`, holding the window it counts, the amount used
//!   and which budget thresholds were reported. Fixed windows: the UTC minute, day and month,
//!   computed from unix seconds. An entry whose window has passed counts as zero; the entry is
//!   reused, so the number of entries stays bounded by the configured ids.
//! - **Two phases.** [`reserve`] admits a request against all its counters (requests: 1,
//!   tokens: the estimate, cost: the estimated micro-dollars) or refuses it with the limit,
//!   what is used and when it resets; counters already taken are given back on a refusal.
//!   [`settle`] replaces the estimates with the real usage once the response is known.
//! - **Exact under concurrency.** Every update is read → compute → CAS write, retried on a
//!   conflict (at most [`MAX_ATTEMPTS`] times), so two workers can never both take the last
//!   unit. Envoy's shared data has no "create if absent": a write to a key that does not exist
//!   always succeeds, whatever CAS it carries. So a missing entry is created with the CAS
//!   [`CREATE_CAS`] (`u32::MAX`): if another worker created the entry meanwhile, the write fails
//!   with a CAS mismatch (its CAS is a different, small number) and the update is retried on the
//!   real entry. Envoy hands out CAS values from one process-wide counter starting at 1, so an
//!   entry holds `u32::MAX` only right after the 4 294 967 295th shared-data write of the
//!   process: the race is designed away except for that one moment.
//! - **Budget thresholds.** Cost counters report crossing 80, 90 and 100 % of their limit once
//!   per window: the update that moves the counter across a threshold marks it in the entry
//!   (in the same CAS write) and returns a [`Crossing`].
//!
//! Pure Rust: the store and the clock are passed in.

use std::fmt;
use std::sync::Mutex;

use crate::error::GatewayError;
use crate::pricing::format_dollars;

/// How many times an update is tried before giving up on a contended entry.
pub const MAX_ATTEMPTS: usize = 64;

/// The CAS used to create an entry that was absent (see the module documentation).
pub const CREATE_CAS: u32 = u32::MAX;

/// Budget thresholds reported, in percent of the limit.
pub const THRESHOLDS: [u8; 3] = [80, 90, 100];

/// A key-value store with compare-and-swap, as proxy-wasm shared data: `get` returns the value
/// and its CAS; `set` with `Some(cas)` fails with [`StoreError::CasMismatch`] when the entry
/// exists with another CAS, and succeeds whatever the CAS when the entry does not exist.
/// `get` returns `Ok(None)` only for an absent entry (a host failure is an error), and a present
/// entry always has a non-zero CAS (0 would mean "no check" to `set`).
pub trait SharedStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    CasMismatch,
    /// Any other host failure.
    Other,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Requests,
    /// Prompt + completion tokens.
    Tokens,
    /// Micro-dollars.
    Cost,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Cost => "cost",
        }
    }
}

/// A fixed UTC window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Window {
    Minute,
    Day,
    Month,
}

const DAY: u64 = 86_400;

impl Window {
    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The number of the window holding `now` (unix seconds): minutes, days or months since
    /// the epoch.
    pub fn index(self, now: u64) -> u64 {
        match self {
            Self::Minute => now / 60,
            Self::Day => now / DAY,
            Self::Month => {
                let (year, month, _) = civil_from_days(now / DAY);
                (year - 1970) * 12 + (month - 1)
            }
        }
    }

    /// Unix seconds at which window `index` starts.
    pub fn start(self, index: u64) -> u64 {
        match self {
            Self::Minute => index.saturating_mul(60),
            Self::Day => index.saturating_mul(DAY),
            Self::Month => {
                days_from_civil(1970 + index / 12, index % 12 + 1, 1).saturating_mul(DAY)
            }
        }
    }

    /// Unix seconds at which window `index` ends (the next one starts).
    pub fn end(self, index: u64) -> u64 {
        self.start(index.saturating_add(1))
    }
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (proleptic Gregorian; H.
/// Hinnant's `civil_from_days`, restricted to days on or after the epoch).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to a date on or after it (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// Whose counter it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Key,
    Team,
    Model,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::Model => "model",
        }
    }
}

/// A limit on one counter: `limit` units of `kind` per `window`, for one key, team or model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub scope: Scope,
    /// The key id, team id or model name.
    pub id: String,
    pub kind: Kind,
    pub window: Window,
    pub limit: u64,
}

impl Counter {
    pub fn new(scope: Scope, id: &str, kind: Kind, window: Window, limit: u64) -> Self {
        Self {
            scope,
            id: id.to_string(),
            kind,
            window,
            limit,
        }
    }

    /// The shared-data key of this counter. The limit is not part of it: changing a limit
    /// keeps what was counted.
    pub fn store_key(&self) -> String {
        format!(
            "gw.quota.{}.{}.{}.{}",
            self.kind.name(),
            self.window.name(),
            self.scope.name(),
            self.id
        )
    }

    /// Whether crossing 80/90/100 % is reported (budgets).
    fn reports_thresholds(&self) -> bool {
        self.kind == Kind::Cost
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Requests => "requests per",
            Kind::Tokens => "tokens per",
            Kind::Cost => "budget per",
        };
        write!(
            f,
            "{} '{}' on {what} {}",
            self.scope.name(),
            self.id,
            self.window.name()
        )
    }
}

/// One counter a request must be admitted by, and how much it takes from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub counter: Counter,
    pub amount: u64,
}

/// A counter taken by an admitted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub counter: Counter,
    /// The window it was counted in ([`Window::index`]).
    pub window_index: u64,
    pub amount: u64,
    /// The counter's value right after this request was counted.
    pub used: u64,
    /// Unix seconds at which the window ends.
    pub reset_at: u64,
}

impl Held {
    pub fn remaining(&self) -> u64 {
        self.counter.limit.saturating_sub(self.used)
    }
}

/// A counter that crossed a reporting threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub counter: Counter,
    /// 80, 90 or 100.
    pub percent: u8,
    /// The counter's value after the update that crossed.
    pub used: u64,
}

/// An admitted request's hold on its counters; pass it to [`settle`] when usage is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    pub held: Vec<Held>,
    /// Thresholds this reservation crossed (log and count them).
    pub crossings: Vec<Crossing>,
}

/// Why a request was refused: the first counter it did not fit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub counter: Counter,
    /// The counter's value when the request was refused.
    pub used: u64,
    pub requested: u64,
    /// Unix seconds at which the counter's window ends.
    pub reset_at: u64,
    /// Unix seconds when refused.
    pub now: u64,
    /// Thresholds crossed by counters taken before the refusal (given back since, but the
    /// crossing is marked in their window and will not be reported again).
    pub crossings: Vec<Crossing>,
}

/// Why [`reserve`] did not admit a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaError {
    /// Over a limit or budget: answer 429.
    Refused(Refusal),
    /// An entry stayed contended for [`MAX_ATTEMPTS`] tries.
    Contention { key: String },
    /// The store failed.
    Store { key: String },
}

/// Real usage of a request, for [`settle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actual {
    pub tokens: u64,
    pub cost_micros: u64,
}

/// What [`settle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    pub crossings: Vec<Crossing>,
    /// Counters that could not be updated (contention or store failure); count them in a stat.
    pub failed: usize,
}

/// A rough, cheap prompt estimate from the request body size: a token per 4 bytes, rounded up.
/// Settling with the real usage corrects it.
pub fn estimate_prompt_tokens(body_len: usize) -> u64 {
    (body_len as u64).div_ceil(4)
}

/// The stored value of a counter: the window it counts, the amount used in it and the
/// thresholds already reported (bit i for [`THRESHOLDS`]`[i]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    window: u64,
    used: u64,
    reported: u8,
}

const STATE_LEN: usize = 17;

impl State {
    fn decode(bytes: &[u8]) -> Option<Self> {
        let window = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
        let used = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let reported = *bytes.get(16)?;
        (bytes.len() == STATE_LEN).then_some(Self {
            window,
            used,
            reported,
        })
    }

    fn encode(&self) -> [u8; STATE_LEN] {
        let mut out = [0u8; STATE_LEN];
        for (o, b) in out.iter_mut().zip(
            self.window
                .to_le_bytes()
                .into_iter()
                .chain(self.used.to_le_bytes()),
        ) {
            *o = b;
        }
        out[16] = self.reported;
        out
    }

    /// The state that counts in window `window`: the stored one when it is that window or a
    /// later one (another worker's clock a moment ahead), else a fresh one.
    fn current(stored: Option<Self>, window: u64) -> Self {
        match stored {
            Some(s) if s.window >= window => s,
            _ => Self {
                window,
                ..Self::default()
            },
        }
    }

    /// Marks thresholds that `used` has reached and that were not reported in this window,
    /// returning them.
    fn mark_thresholds(&mut self, counter: &Counter) -> Vec<u8> {
        let mut crossed = Vec::new();
        if !counter.reports_thresholds() {
            return crossed;
        }
        for (bit, percent) in THRESHOLDS.iter().enumerate() {
            let mask = 1u8 << bit;
            let reached =
                u128::from(self.used) * 100 >= u128::from(*percent) * u128::from(counter.limit);
            if reached && self.reported & mask == 0 {
                self.reported |= mask;
                crossed.push(*percent);
            }
        }
        crossed
    }
}

/// What an update function decided.
enum Decision<R> {
    /// Write this state, then return R.
    Write(State, R),
    /// Leave the entry as it is and return R.
    Keep(R),
}

enum Failure {
    Contention,
    Store,
}

/// Read → decide → CAS write, retried on conflicts. `decide` sees the stored state (`None`
/// when the entry is absent or unreadable).
fn update<R>(
    store: &dyn SharedStore,
    key: &str,
    decide: impl Fn(Option<State>) -> Decision<R>,
) -> Result<R, Failure> {
    for _ in 0..MAX_ATTEMPTS {
        let (stored, cas) = match store.get(key) {
            Ok(Some((bytes, cas))) => (State::decode(&bytes), cas),
            Ok(None) => (None, CREATE_CAS),
            Err(_) => return Err(Failure::Store),
        };
        match decide(stored) {
            Decision::Keep(r) => return Ok(r),
            Decision::Write(state, r) => match store.set(key, &state.encode(), Some(cas)) {
                Ok(()) => return Ok(r),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Other) => return Err(Failure::Store),
            },
        }
    }
    Err(Failure::Contention)
}

fn crossings(
    counter: &Counter,
    percents: Vec<u8>,
    used: u64,
) -> impl Iterator<Item = Crossing> + '_ {
    percents.into_iter().map(move |percent| Crossing {
        counter: counter.clone(),
        percent,
        used,
    })
}

/// Admits a request against every counter of `charges` (in order), or refuses it at the
/// first one it does not fit in: a counter admits when `used < limit` and
/// `used + amount <= limit`. Counters taken before a refusal or a failure are given back.
pub fn reserve(
    store: &dyn SharedStore,
    now: u64,
    charges: &[Charge],
) -> Result<Reservation, QuotaError> {
    let mut reservation = Reservation::default();
    for charge in charges {
        let counter = &charge.counter;
        let key = counter.store_key();
        let window = counter.window.index(now);
        let result = update(store, &key, |stored| {
            let mut state = State::current(stored, window);
            let fits = state.used < counter.limit && charge.amount <= counter.limit - state.used;
            if !fits {
                return Decision::Keep(Err(state));
            }
            state.used += charge.amount;
            let crossed = state.mark_thresholds(counter);
            Decision::Write(state, Ok((state, crossed)))
        });
        match result {
            Ok(Ok((state, crossed))) => {
                reservation
                    .crossings
                    .extend(crossings(counter, crossed, state.used));
                reservation.held.push(Held {
                    counter: counter.clone(),
                    window_index: state.window,
                    amount: charge.amount,
                    used: state.used,
                    reset_at: counter.window.end(state.window),
                });
            }
            Ok(Err(state)) => {
                release(store, &reservation.held);
                return Err(QuotaError::Refused(Refusal {
                    counter: counter.clone(),
                    used: state.used,
                    requested: charge.amount,
                    reset_at: counter.window.end(state.window),
                    now,
                    crossings: reservation.crossings,
                }));
            }
            Err(failure) => {
                release(store, &reservation.held);
                return Err(match failure {
                    Failure::Contention => QuotaError::Contention { key },
                    Failure::Store => QuotaError::Store { key },
                });
            }
        }
    }
    Ok(reservation)
}

/// Gives back what `held` took, in windows that are still current (best effort).
fn release(store: &dyn SharedStore, held: &[Held]) {
    for h in held {
        let _ = update(store, &h.counter.store_key(), |stored| match stored {
            Some(mut s) if s.window == h.window_index => {
                s.used = s.used.saturating_sub(h.amount);
                Decision::Write(s, ())
            }
            _ => Decision::Keep(()),
        });
    }
}

/// Replaces a reservation's estimates with the real usage: a token or cost counter still in
/// the reserved window changes by `actual - reserved` (never below zero). When the window has
/// passed meanwhile, tokens are left alone (the reservation went with its minute) and the cost
/// is charged to the current window, so money spent is always counted. Request counters do
/// not change. Best effort: failures are counted, never raised.
pub fn settle(
    store: &dyn SharedStore,
    now: u64,
    reservation: &Reservation,
    actual: Actual,
) -> Settlement {
    let mut out = Settlement::default();
    for h in &reservation.held {
        let counter = &h.counter;
        let real = match counter.kind {
            Kind::Requests => continue,
            Kind::Tokens => actual.tokens,
            Kind::Cost => actual.cost_micros,
        };
        if real == h.amount {
            continue;
        }
        let current = counter.window.index(now);
        // The reserved window is still the current one (a clock behind it counts as in it).
        let same_window = h.window_index >= current;
        let window = current.max(h.window_index);
        let result = update(store, &counter.store_key(), |stored| {
            let mut state = match stored {
                Some(s) if same_window && s.window == h.window_index => {
                    let mut s = s;
                    s.used = s.used.saturating_add(real).saturating_sub(h.amount);
                    s
                }
                _ if counter.kind == Kind::Cost => {
                    let mut s = State::current(stored, window);
                    s.used = s.used.saturating_add(real);
                    s
                }
                _ => return Decision::Keep(None),
            };
            let crossed = state.mark_thresholds(counter);
            Decision::Write(state, Some((state.used, crossed)))
        });
        match result {
            Ok(Some((used, crossed))) => out.crossings.extend(crossings(counter, crossed, used)),
            Ok(None) => {}
            Err(_) => out.failed += 1,
        }
    }
    out
}

/// Rewrites one shared entry from its current bytes (read → compute → CAS write, retried a few
/// times when another worker wrote in between), for entries that are not counters (routing's
/// observations). Returns whether the write landed.
pub fn update_entry(
    store: &dyn SharedStore,
    key: &str,
    next: impl Fn(Option<&[u8]>) -> Vec<u8>,
) -> bool {
    for _ in 0..8 {
        let current = match store.get(key) {
            Ok(c) => c,
            Err(_) => return false,
        };
        let value = next(current.as_ref().map(|(v, _)| v.as_slice()));
        match store.set(key, &value, current.map(|(_, cas)| cas)) {
            Ok(()) => return true,
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Other) => return false,
        }
    }
    false
}

/// `6m0s`, `1h0m5s`, `17s`: durations the way OpenAI's `x-ratelimit-reset-*` headers write them.
pub fn duration_text(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The OpenAI header names for a kind: limit, remaining, reset.
fn header_names(kind: Kind) -> Option<[&'static str; 3]> {
    match kind {
        Kind::Requests => Some([
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ]),
        Kind::Tokens => Some([
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ]),
        Kind::Cost => None,
    }
}

fn limit_headers(
    out: &mut Vec<(&'static str, String)>,
    kind: Kind,
    limit: u64,
    remaining: u64,
    reset_in: u64,
) {
    if let Some([l, r, t]) = header_names(kind) {
        out.push((l, limit.to_string()));
        out.push((r, remaining.to_string()));
        out.push((t, duration_text(reset_in)));
    }
}

impl Reservation {
    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the response: per kind, the
    /// counter with the least remaining (ties: the one that resets last).
    pub fn headers(&self, now: u64) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for kind in [Kind::Requests, Kind::Tokens] {
            let tightest = self
                .held
                .iter()
                .filter(|h| h.counter.kind == kind)
                .min_by_key(|h| (h.remaining(), u64::MAX - h.reset_at));
            if let Some(h) = tightest {
                limit_headers(
                    &mut out,
                    kind,
                    h.counter.limit,
                    h.remaining(),
                    h.reset_at.saturating_sub(now),
                );
            }
        }
        out
    }
}

impl Refusal {
    /// Seconds until the counter's window ends, at least 1: the `retry-after` value.
    pub fn retry_after(&self) -> u64 {
        self.reset_at.saturating_sub(self.now).max(1)
    }

    /// The request alone is larger than the limit: waiting will not help.
    pub fn too_large(&self) -> bool {
        self.requested > self.counter.limit
    }

    /// `retry-after` and, for request and token limits, the `x-ratelimit-*` headers of the
    /// counter that refused.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("retry-after", self.retry_after().to_string())];
        limit_headers(
            &mut out,
            self.counter.kind,
            self.counter.limit,
            self.counter.limit.saturating_sub(self.used),
            self.reset_at.saturating_sub(self.now),
        );
        out
    }

    /// The message for the client (names the key id, team or model; never a key).
    pub fn message(&self) -> String {
        let c = &self.counter;
        let wait = duration_text(self.retry_after());
        match c.kind {
            Kind::Cost => format!(
                "Budget exhausted for {} '{}' for this {}: limit ${}, used ${}, this request needs up to ${}. It resets in {wait}.",
                c.scope.name(),
                c.id,
                c.window.name(),
                format_dollars(c.limit),
                format_dollars(self.used),
                format_dollars(self.requested),
            ),
            _ if self.too_large() => format!(
                "Request too large for {c}: limit {}, requested {}.",
                c.limit, self.requested
            ),
            _ => format!(
                "Rate limit reached for {c}: limit {}, used {}, requested {}. Please try again in {wait}.",
                c.limit, self.used, self.requested
            ),
        }
    }
}

impl From<&Refusal> for GatewayError {
    fn from(r: &Refusal) -> Self {
        GatewayError::Quota {
            kind: r.counter.kind.name(),
            message: r.message(),
        }
    }
}

/// An in-memory [`SharedStore`] with Envoy's semantics: one CAS counter for all entries
/// starting at 1 (0 is never a CAS), a CAS checked only on entries that exist. For tests and
/// native tools.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug)]
struct MemoryInner {
    entries: std::collections::HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::starting_at(1)
    }

    /// A store whose next CAS is `next_cas` (tests of the CAS wrap-around).
    pub fn starting_at(next_cas: u32) -> Self {
        Self {
            inner: Mutex::new(MemoryInner {
                entries: std::collections::HashMap::new(),
                next_cas: next_cas.max(1),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.lock().entries.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let next = inner.next_cas;
        if let Some((_, current)) = inner.entries.get(key) {
            if matches!(cas, Some(c) if c != 0 && c != *current) {
                return Err(StoreError::CasMismatch);
            }
        }
        inner
            .entries
            .insert(key.to_string(), (value.to_vec(), next));
        inner.next_cas = match next.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests;
