//! Time spent inside each proxy-wasm callback, measured from inside the VM (feature
//! `callback-timing`, `make wasm-timing`; off in the release build, where [`time`] is the call
//! itself). Every 10,000 requests the averages per request go to Envoy's log: what the module's
//! own work and the host calls it makes cost, apart from what Envoy spends around the callbacks
//! (README "Benchmarks", where the time goes).

#[cfg(feature = "callback-timing")]
mod on {
    use std::cell::RefCell;

    use proxy_wasm::hostcalls;

    /// Per callback: nanoseconds and calls.
    type Totals = Vec<(&'static str, u64, u64)>;

    thread_local! {
        static TOTALS: RefCell<Totals> = const { RefCell::new(Vec::new()) };
        static REQUESTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    const REPORT_EVERY: u64 = 10_000;

    fn nanos() -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn time<R>(name: &'static str, f: impl FnOnce() -> R) -> R {
        let start = nanos();
        let result = f();
        let spent = nanos().saturating_sub(start);
        TOTALS.with(|t| {
            let mut t = t.borrow_mut();
            match t.iter_mut().find(|(n, _, _)| *n == name) {
                Some(entry) => {
                    entry.1 = entry.1.saturating_add(spent);
                    entry.2 = entry.2.saturating_add(1);
                }
                None => t.push((name, spent, 1)),
            }
        });
        result
    }

    pub fn request_done() {
        let n = REQUESTS.with(|r| {
            r.set(r.get().saturating_add(1));
            r.get()
        });
        if n % REPORT_EVERY != 0 {
            return;
        }
        TOTALS.with(|t| {
            let mut t = t.borrow_mut();
            t.sort_by_key(|(name, _, _)| *name);
            let total: u64 = t.iter().map(|(_, ns, _)| ns).sum();
            let parts: Vec<String> = t
                .iter()
                .map(|(name, ns, calls)| {
                    format!(
                        "{name} {:.2} µs ({:.1} calls)",
                        *ns as f64 / 1000.0 / n as f64,
                        *calls as f64 / n as f64
                    )
                })
                .collect();
            log::info!(
                "callback timing after {n} requests, per request: inside callbacks {:.2} µs; {}",
                total as f64 / 1000.0 / n as f64,
                parts.join("; ")
            );
        });
    }
}

#[cfg(feature = "callback-timing")]
pub use on::{request_done, time};

#[cfg(not(feature = "callback-timing"))]
#[inline(always)]
pub fn time<R>(_: &'static str, f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(not(feature = "callback-timing"))]
#[inline(always)]
pub fn request_done() {}
