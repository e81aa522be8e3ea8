use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

// Unix times from GNU `date -u -d <date> +%s`, independent of the calendar code here.
const D2000_02_29: u64 = 951_782_400;
const D2000_03_01: u64 = 951_868_800;
const D2024_02_29: u64 = 1_709_164_800;
const D2024_03_01: u64 = 1_709_251_200;
const D2026_12_31_235959: u64 = 1_798_761_599;
const D2027_01_01: u64 = 1_798_761_600;
const D2100_03_01: u64 = 4_107_542_400;

const NOW: u64 = D2024_03_01 + 3600 + 30; // 2024-03-01T01:00:30Z

fn counter(kind: Kind, window: Window, limit: u64) -> Counter {
    Counter::new(Scope::Key, "app", kind, window, limit)
}

fn charge(kind: Kind, window: Window, limit: u64, amount: u64) -> Charge {
    Charge {
        counter: counter(kind, window, limit),
        amount,
    }
}

fn used(store: &dyn SharedStore, c: &Counter) -> u64 {
    store
        .get(&c.store_key())
        .unwrap()
        .and_then(|(b, _)| State::decode(&b))
        .map_or(0, |s| s.used)
}

fn refusal(r: Result<Reservation, QuotaError>) -> Refusal {
    match r {
        Err(QuotaError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn calendar_matches_gnu_date() {
    let day = |t: u64| t / DAY;
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(day(D2000_02_29)), (2000, 2, 29));
    assert_eq!(civil_from_days(day(D2000_03_01)), (2000, 3, 1));
    assert_eq!(civil_from_days(day(D2024_02_29)), (2024, 2, 29));
    assert_eq!(civil_from_days(day(D2026_12_31_235959)), (2026, 12, 31));
    assert_eq!(civil_from_days(day(D2100_03_01)), (2100, 3, 1));
    assert_eq!(civil_from_days(day(D2100_03_01) - 1), (2100, 2, 28));
    for (y, m, d, t) in [
        (2000, 2, 29, D2000_02_29),
        (2000, 3, 1, D2000_03_01),
        (2024, 2, 29, D2024_02_29),
        (2024, 3, 1, D2024_03_01),
        (2027, 1, 1, D2027_01_01),
        (2100, 3, 1, D2100_03_01),
    ] {
        assert_eq!(days_from_civil(y, m, d) * DAY, t, "{y}-{m}-{d}");
    }
    // every day over 130 years round-trips
    for days in 0..(130 * 366) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
}

#[test]
fn windows_start_and_end_on_utc_boundaries() {
    let m = Window::Minute.index(NOW);
    assert_eq!(Window::Minute.start(m), NOW - 30);
    assert_eq!(Window::Minute.end(m), NOW + 30);
    let d = Window::Day.index(NOW);
    assert_eq!(Window::Day.start(d), D2024_03_01);
    assert_eq!(Window::Day.end(d), D2024_03_01 + DAY);
    // February of a leap year: 29 days
    let feb = Window::Month.index(D2024_02_29 + 5);
    assert_eq!(Window::Month.start(feb), D2024_02_29 - 28 * DAY);
    assert_eq!(Window::Month.end(feb), D2024_03_01);
    assert_eq!(Window::Month.index(D2024_03_01), feb + 1);
    // December → January
    let dec = Window::Month.index(D2026_12_31_235959);
    assert_eq!(Window::Month.end(dec), D2027_01_01);
    assert_eq!(Window::Month.index(D2027_01_01), dec + 1);
    assert_eq!(Window::Month.index(0), 0);
    assert_eq!(Window::Month.start(0), 0);
}

#[test]
fn exactly_the_limit_is_admitted_then_429_with_headers() {
    let store = MemoryStore::new();
    let charges = [charge(Kind::Requests, Window::Minute, 3, 1)];
    for i in 0..3 {
        let r = reserve(&store, NOW, &charges).unwrap();
        assert_eq!(r.held[0].remaining(), 2 - i);
    }
    let r = refusal(reserve(&store, NOW + 5, &charges));
    assert_eq!((r.used, r.requested, r.counter.limit), (3, 1, 3));
    assert_eq!(r.retry_after(), 25);
    assert!(!r.too_large());
    assert_eq!(
        r.headers(),
        vec![
            ("retry-after", "25".to_string()),
            ("x-ratelimit-limit-requests", "3".to_string()),
            ("x-ratelimit-remaining-requests", "0".to_string()),
            ("x-ratelimit-reset-requests", "25s".to_string()),
        ]
    );
    let g: GatewayError = (&r).into();
    assert_eq!(
        (g.status(), g.error_type(), g.code()),
        (429, "requests", "rate_limit_exceeded")
    );
    assert!(g.to_string().contains("key 'app'"), "{g}");
    // the next minute starts afresh
    assert!(reserve(&store, NOW + 30, &charges).is_ok());
}

#[test]
fn a_request_larger_than_the_limit_is_too_large() {
    let store = MemoryStore::new();
    let r = refusal(reserve(
        &store,
        NOW,
        &[charge(Kind::Tokens, Window::Minute, 1000, 1001)],
    ));
    assert!(r.too_large());
    assert!(r.message().contains("too large"), "{}", r.message());
    assert_eq!(used(&store, &r.counter), 0);
}

#[test]
fn a_refusal_gives_back_the_counters_already_taken() {
    let store = MemoryStore::new();
    let team = Counter::new(Scope::Team, "t", Kind::Tokens, Window::Minute, 100);
    let key = counter(Kind::Tokens, Window::Minute, 1000);
    let charges = [
        Charge {
            counter: key.clone(),
            amount: 60,
        },
        Charge {
            counter: team.clone(),
            amount: 60,
        },
    ];
    reserve(&store, NOW, &charges).unwrap();
    let r = refusal(reserve(&store, NOW, &charges));
    assert_eq!(r.counter, team);
    assert_eq!(used(&store, &key), 60, "the key counter was given back");
    assert_eq!(used(&store, &team), 60);
}

#[test]
fn settling_returns_the_difference_and_never_goes_below_zero() {
    let store = MemoryStore::new();
    let tokens = counter(Kind::Tokens, Window::Minute, 10_000);
    let cost = counter(Kind::Cost, Window::Day, 1_000_000);
    let requests = counter(Kind::Requests, Window::Minute, 10);
    let charges = [
        Charge {
            counter: requests.clone(),
            amount: 1,
        },
        Charge {
            counter: tokens.clone(),
            amount: 1000,
        },
        Charge {
            counter: cost.clone(),
            amount: 5000,
        },
    ];
    let a = reserve(&store, NOW, &charges).unwrap();
    let b = reserve(&store, NOW, &charges).unwrap();
    assert_eq!(used(&store, &tokens), 2000);
    let s = settle(
        &store,
        NOW + 1,
        &a,
        Actual {
            tokens: 300,
            cost_micros: 1200,
        },
    );
    assert_eq!(s.failed, 0);
    assert_eq!(used(&store, &tokens), 1300);
    assert_eq!(used(&store, &cost), 6200);
    assert_eq!(used(&store, &requests), 2, "requests are not settled");
    // more than reserved: the excess is added
    settle(
        &store,
        NOW + 2,
        &b,
        Actual {
            tokens: 1500,
            cost_micros: 9000,
        },
    );
    assert_eq!(used(&store, &tokens), 1800);
    assert_eq!(used(&store, &cost), 10_200);
    // a refund larger than what is counted stops at zero
    let lone = Reservation {
        held: vec![Held {
            counter: tokens.clone(),
            window_index: Window::Minute.index(NOW),
            amount: 5000,
            used: 5000,
            reset_at: 0,
        }],
        crossings: vec![],
    };
    settle(&store, NOW, &lone, Actual::default());
    assert_eq!(used(&store, &tokens), 0);
}

#[test]
fn settling_after_the_window_passed() {
    let store = MemoryStore::new();
    let tokens = counter(Kind::Tokens, Window::Minute, 10_000);
    let cost = counter(Kind::Cost, Window::Day, 1_000_000);
    let r = reserve(
        &store,
        NOW,
        &[
            Charge {
                counter: tokens.clone(),
                amount: 1000,
            },
            Charge {
                counter: cost.clone(),
                amount: 5000,
            },
        ],
    )
    .unwrap();
    let tomorrow = NOW + DAY;
    // another request opens the new windows
    reserve(
        &store,
        tomorrow,
        &[
            Charge {
                counter: tokens.clone(),
                amount: 10,
            },
            Charge {
                counter: cost.clone(),
                amount: 100,
            },
        ],
    )
    .unwrap();
    settle(
        &store,
        tomorrow,
        &r,
        Actual {
            tokens: 800,
            cost_micros: 4000,
        },
    );
    assert_eq!(used(&store, &tokens), 10, "tokens went with their minute");
    assert_eq!(used(&store, &cost), 4100, "money spent is always counted");
    // the entry was never reopened: the cost creates the current window
    let store = MemoryStore::new();
    let r = reserve(
        &store,
        NOW,
        &[Charge {
            counter: cost.clone(),
            amount: 5000,
        }],
    )
    .unwrap();
    settle(
        &store,
        tomorrow,
        &r,
        Actual {
            tokens: 0,
            cost_micros: 700,
        },
    );
    let s = State::decode(&store.get(&cost.store_key()).unwrap().unwrap().0).unwrap();
    assert_eq!((s.window, s.used), (Window::Day.index(tomorrow), 700));
}

#[test]
fn a_worker_whose_clock_lags_does_not_reset_the_next_window() {
    let store = MemoryStore::new();
    let c = charge(Kind::Requests, Window::Minute, 2, 1);
    let next_minute = NOW + 30;
    reserve(&store, next_minute, std::slice::from_ref(&c)).unwrap();
    reserve(&store, next_minute, std::slice::from_ref(&c)).unwrap();
    // a worker still one second in the previous minute sees the newer window, full
    assert!(matches!(
        reserve(&store, next_minute - 1, std::slice::from_ref(&c)),
        Err(QuotaError::Refused(_))
    ));
}

#[test]
fn budget_thresholds_are_reported_once_per_window() {
    let store = MemoryStore::new();
    let c = counter(Kind::Cost, Window::Day, 1000);
    let take = |amount: u64, now: u64| {
        reserve(
            &store,
            now,
            &[Charge {
                counter: c.clone(),
                amount,
            }],
        )
    };
    let percents = |r: &Reservation| r.crossings.iter().map(|x| x.percent).collect::<Vec<_>>();
    assert!(take(790, NOW).unwrap().crossings.is_empty());
    let r = take(10, NOW).unwrap();
    assert_eq!(percents(&r), vec![80]);
    assert_eq!(r.crossings[0].used, 800);
    // settle back below 80 % and cross again: not reported twice
    settle(
        &store,
        NOW,
        &r,
        Actual {
            tokens: 0,
            cost_micros: 0,
        },
    );
    assert!(take(10, NOW).unwrap().crossings.is_empty());
    // one update can cross two thresholds
    assert_eq!(percents(&take(200, NOW).unwrap()), vec![90, 100]);
    // a settlement that crosses reports too
    let store2 = MemoryStore::new();
    let r = reserve(
        &store2,
        NOW,
        &[Charge {
            counter: c.clone(),
            amount: 100,
        }],
    )
    .unwrap();
    let s = settle(
        &store2,
        NOW,
        &r,
        Actual {
            tokens: 0,
            cost_micros: 950,
        },
    );
    assert_eq!(
        s.crossings.iter().map(|x| x.percent).collect::<Vec<_>>(),
        vec![80, 90]
    );
    // the next day reports again
    assert_eq!(percents(&take(900, NOW + DAY).unwrap()), vec![80, 90]);
    // rate limits do not report thresholds
    let rl = reserve(&store, NOW, &[charge(Kind::Requests, Window::Minute, 1, 1)]).unwrap();
    assert!(rl.crossings.is_empty());
}

#[test]
fn reservation_headers_show_the_tightest_counter_per_kind() {
    let store = MemoryStore::new();
    let team_tokens = Counter::new(Scope::Team, "t", Kind::Tokens, Window::Minute, 5000);
    let charges = [
        charge(Kind::Requests, Window::Minute, 60, 1),
        charge(Kind::Tokens, Window::Minute, 100_000, 1000),
        Charge {
            counter: team_tokens,
            amount: 1000,
        },
        charge(Kind::Cost, Window::Day, 10, 1),
    ];
    let r = reserve(&store, NOW, &charges).unwrap();
    let h: HashMap<&str, String> = r.headers(NOW).into_iter().collect();
    assert_eq!(h["x-ratelimit-limit-requests"], "60");
    assert_eq!(h["x-ratelimit-remaining-requests"], "59");
    assert_eq!(h["x-ratelimit-reset-requests"], "30s");
    assert_eq!(h["x-ratelimit-limit-tokens"], "5000");
    assert_eq!(h["x-ratelimit-remaining-tokens"], "4000");
    assert_eq!(h.len(), 6);
}

#[test]
fn duration_text_is_openai_style() {
    assert_eq!(duration_text(0), "0s");
    assert_eq!(duration_text(59), "59s");
    assert_eq!(duration_text(360), "6m0s");
    assert_eq!(duration_text(3605), "1h0m5s");
}

#[test]
fn budget_refusal_names_the_scope_and_money() {
    let store = MemoryStore::new();
    let c = Counter::new(Scope::Team, "search", Kind::Cost, Window::Month, 5_000_000);
    reserve(
        &store,
        NOW,
        &[Charge {
            counter: c.clone(),
            amount: 4_990_000,
        }],
    )
    .unwrap();
    let r = refusal(reserve(
        &store,
        NOW,
        &[Charge {
            counter: c.clone(),
            amount: 20_000,
        }],
    ));
    let m = r.message();
    assert!(
        m.contains("team 'search'") && m.contains("$5.000000") && m.contains("$4.990000"),
        "{m}"
    );
    assert_eq!(r.headers().len(), 1, "budgets send retry-after only");
    // the month ends 2024-04-01
    assert_eq!(r.reset_at, D2024_03_01 + 31 * DAY);
    // an exhausted budget refuses even a request that costs nothing
    let store = MemoryStore::new();
    let full = Charge {
        counter: c.clone(),
        amount: 5_000_000,
    };
    reserve(&store, NOW, std::slice::from_ref(&full)).unwrap();
    assert!(reserve(
        &store,
        NOW,
        &[Charge {
            counter: c,
            amount: 0
        }]
    )
    .is_err());
}

#[test]
fn memory_store_has_envoy_cas_semantics() {
    let s = MemoryStore::new();
    assert_eq!(s.get("k").unwrap(), None);
    // absent: any CAS is accepted (there is nothing to compare with)
    s.set("k", b"a", Some(12345)).unwrap();
    let (_, cas) = s.get("k").unwrap().unwrap();
    assert_eq!(cas, 1);
    assert_eq!(
        s.set("k", b"b", Some(cas + 1)),
        Err(StoreError::CasMismatch)
    );
    s.set("k", b"b", Some(cas)).unwrap();
    assert_eq!(s.set("k", b"c", Some(cas)), Err(StoreError::CasMismatch));
    // no CAS (or 0) overwrites
    s.set("k", b"d", None).unwrap();
    s.set("k", b"e", Some(0)).unwrap();
    // four writes succeeded; refused ones take no CAS
    assert_eq!(s.get("k").unwrap().unwrap(), (b"e".to_vec(), 4));
    // the counter skips 0 when it wraps
    let w = MemoryStore::starting_at(u32::MAX);
    w.set("x", b"1", None).unwrap();
    w.set("y", b"1", None).unwrap();
    assert_eq!(w.get("x").unwrap().unwrap().1, u32::MAX);
    assert_eq!(w.get("y").unwrap().unwrap().1, 1);
}

/// A store that runs `interfere` (another worker's update) right before chosen writes.
struct Interfering<'a> {
    inner: &'a MemoryStore,
    /// Writes (counted from 0) before which `interfere` runs.
    before_writes: Vec<usize>,
    writes: AtomicUsize,
    interfere: Box<dyn Fn(&MemoryStore) + 'a>,
}

impl SharedStore for Interfering<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if self.before_writes.contains(&n) {
            (self.interfere)(self.inner);
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn cas_conflicts_are_retried_and_nothing_is_lost() {
    let store = MemoryStore::new();
    let c = charge(Kind::Tokens, Window::Minute, 1000, 10);
    reserve(&store, NOW, std::slice::from_ref(&c)).unwrap();
    let other = c.clone();
    let s = Interfering {
        inner: &store,
        before_writes: vec![0, 1, 2],
        writes: AtomicUsize::new(0),
        interfere: Box::new(move |inner| {
            reserve(inner, NOW, std::slice::from_ref(&other)).unwrap();
        }),
    };
    reserve(&s, NOW, std::slice::from_ref(&c)).unwrap();
    // 1 before + 3 interfering + ours, 10 tokens each
    assert_eq!(used(&store, &c.counter), 50);
}

#[test]
fn creating_an_entry_does_not_overwrite_one_created_meanwhile() {
    // Our read finds no entry; before our write another worker creates it and counts 7.
    // With Envoy's semantics a write without a usable CAS would overwrite that; the creation
    // CAS makes it fail and the retry counts on top.
    let store = MemoryStore::new();
    let c = charge(Kind::Tokens, Window::Minute, 1000, 10);
    let other = Charge {
        counter: c.counter.clone(),
        amount: 7,
    };
    let s = Interfering {
        inner: &store,
        before_writes: vec![0],
        writes: AtomicUsize::new(0),
        interfere: Box::new(move |inner| {
            reserve(inner, NOW, std::slice::from_ref(&other)).unwrap();
        }),
    };
    let r = reserve(&s, NOW, std::slice::from_ref(&c)).unwrap();
    assert_eq!(r.held[0].used, 17);
    assert_eq!(used(&store, &c.counter), 17);
}

#[test]
fn endless_conflicts_end_in_contention_and_give_back() {
    let store = MemoryStore::new();
    let first = charge(Kind::Requests, Window::Minute, 10, 1);
    let second = Charge {
        counter: Counter::new(Scope::Team, "t", Kind::Requests, Window::Minute, 10),
        amount: 1,
    };
    let bump_key = second.counter.store_key();
    let s = Interfering {
        inner: &store,
        // every write after the first (which takes `first`) meets a conflict
        before_writes: (1..1000).collect(),
        writes: AtomicUsize::new(0),
        interfere: Box::new(move |inner| {
            if let Ok(Some((v, _))) = inner.get(&bump_key) {
                inner.set(&bump_key, &v, None).unwrap();
            } else {
                inner
                    .set(&bump_key, &State::default().encode(), None)
                    .unwrap();
            }
        }),
    };
    let e = reserve(&s, NOW, &[first.clone(), second]).unwrap_err();
    assert!(matches!(e, QuotaError::Contention { .. }), "{e:?}");
    // `first` was given back (its release wrote with a good CAS after the interference)
    assert_eq!(used(&store, &first.counter), 0);
}

struct Failing;

impl SharedStore for Failing {
    fn get(&self, _: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Err(StoreError::Other)
    }
    fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), StoreError> {
        Err(StoreError::Other)
    }
}

#[test]
fn store_failures_are_reported_not_panicked() {
    let e = reserve(
        &Failing,
        NOW,
        &[charge(Kind::Requests, Window::Minute, 1, 1)],
    );
    assert!(matches!(e, Err(QuotaError::Store { .. })));
    let r = Reservation {
        held: vec![Held {
            counter: counter(Kind::Tokens, Window::Minute, 10),
            window_index: 0,
            amount: 5,
            used: 5,
            reset_at: 60,
        }],
        crossings: vec![],
    };
    assert_eq!(settle(&Failing, NOW, &r, Actual::default()).failed, 1);
    // no charges: nothing to do, always admitted
    assert!(reserve(&Failing, NOW, &[]).unwrap().held.is_empty());
}

#[test]
fn unreadable_entries_count_as_fresh() {
    let store = MemoryStore::new();
    let c = charge(Kind::Requests, Window::Minute, 2, 1);
    store.set(&c.counter.store_key(), b"garbage", None).unwrap();
    reserve(&store, NOW, std::slice::from_ref(&c)).unwrap();
    assert_eq!(used(&store, &c.counter), 1);
}

/// Threads race for a limit through one store: exactly `limit` win, whatever the interleaving.
fn race(store: Arc<MemoryStore>, charges: Vec<Charge>, threads: usize, tries: usize) -> usize {
    let admitted = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, charges, admitted) = (store.clone(), charges.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..tries {
                    match reserve(store.as_ref(), NOW, &charges) {
                        Ok(_) => {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(QuotaError::Refused(_)) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    admitted.load(Ordering::SeqCst)
}

#[test]
fn concurrent_requests_get_exactly_the_limit() {
    for _ in 0..5 {
        let store = Arc::new(MemoryStore::new());
        let charges = vec![charge(Kind::Requests, Window::Minute, 100, 1)];
        assert_eq!(race(store.clone(), charges.clone(), 8, 40), 100);
        assert_eq!(used(store.as_ref(), &charges[0].counter), 100);
    }
}

#[test]
fn concurrent_budget_spending_stops_exactly_at_the_budget() {
    // $1 budget, each request reserves $0.03: 33 fit ($0.99), the 34th does not.
    let store = Arc::new(MemoryStore::new());
    let budget = Charge {
        counter: Counter::new(Scope::Team, "t", Kind::Cost, Window::Day, 1_000_000),
        amount: 30_000,
    };
    // plus a generous per-key rate limit that every admitted request also takes
    let rate = charge(Kind::Requests, Window::Minute, 1000, 1);
    let admitted = race(store.clone(), vec![rate.clone(), budget.clone()], 6, 20);
    assert_eq!(admitted, 33);
    assert_eq!(used(store.as_ref(), &budget.counter), 990_000);
    assert_eq!(
        used(store.as_ref(), &rate.counter),
        33,
        "refused requests gave their request back"
    );
}

#[test]
fn estimate_rounds_up() {
    assert_eq!(estimate_prompt_tokens(0), 0);
    assert_eq!(estimate_prompt_tokens(1), 1);
    assert_eq!(estimate_prompt_tokens(8), 2);
    assert_eq!(estimate_prompt_tokens(9), 3);
}

#[test]
fn store_keys_name_kind_window_scope_and_id() {
    assert_eq!(
        Counter::new(Scope::Team, "search", Kind::Cost, Window::Month, 1).store_key(),
        "gw.quota.cost.month.team.search"
    );
    assert_eq!(
        Counter::new(
            Scope::Model,
            "meta/llama-3",
            Kind::Tokens,
            Window::Minute,
            1
        )
        .to_string(),
        "model 'meta/llama-3' on tokens per minute"
    );
}
