//! The configuration compiler (`Config::from_json`) on random bytes and on generated documents
//! built from the README's configuration reference (providers, models and routes, keys, teams,
//! model limits, the rate limit service), with values sometimes of the wrong type or range and
//! names sometimes dangling. Checked: no panic; a refusal names a field under a known section;
//! an accepted document is compiled with every reference resolved and every bound kept.

use ai_gateway::config::Config;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::common::{json, number, runner, set, text};

const KEYS: &[&str] = &[
    "type", "provider", "model", "targets", "strategy", "weight", "tier", "price", "input",
    "output", "limits", "budgets", "cluster", "when", "rules",
];

const PROVIDER_IDS: &[&str] = &["openai", "anthropic", "gemini", "bedrock", "cohere", "az"];
const MODEL_IDS: &[&str] = &["fast", "smart", "gpt-4o", "claude-sonnet-4-5"];
const TIERS: &[&str] = &["small", "big", "none"];
const ENV_SET: &[&str] = &[
    "KEY_A",
    "KEY_B",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "GW_KEY",
];

/// The top-level sections a refusal may name (or the document itself).
const SECTIONS: &[&str] = &[
    "(document)",
    "providers",
    "models",
    "max_request_bytes",
    "body_log_max_bytes",
    "keys",
    "teams",
    "model_limits",
    "rate_limit_service",
];

/// Usually `good`, sometimes any JSON value.
fn mostly<S>(good: S) -> BoxedStrategy<Value>
where
    S: Strategy<Value = Value> + 'static,
{
    prop_oneof![40 => good.boxed(), 1 => json(KEYS)].boxed()
}

/// An object of the fields given, each present or not.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>, f64)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = fields
        .into_iter()
        .map(|(name, value, p)| {
            prop::option::weighted(p, value)
                .prop_map(move |v| v.map(|v| (name, v)))
                .boxed()
        })
        .collect();
    parts
        .prop_map(|fields| {
            Value::Object(
                fields
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<Map<_, _>>(),
            )
        })
        .boxed()
}

fn name(names: &'static [&'static str]) -> BoxedStrategy<Value> {
    mostly(
        prop_oneof![8 => prop::sample::select(names).prop_map(Value::from), 1 => text().prop_map(Value::from)],
    )
}

fn boolean() -> BoxedStrategy<Value> {
    mostly(any::<bool>().prop_map(Value::from))
}

fn env_name() -> BoxedStrategy<Value> {
    mostly(prop_oneof![
        40 => prop::sample::select(ENV_SET).prop_map(Value::from),
        1 => Just(Value::from("UNSET_VAR")),
        1 => Just(Value::from("not a name")),
    ])
}

fn price() -> BoxedStrategy<Value> {
    let usd = || mostly(prop_oneof![4 => (0.0..100.0f64).prop_map(Value::from), 1 => number()]);
    object(vec![
        ("input", usd(), 0.95),
        ("output", usd(), 0.95),
        ("cached_input", usd(), 0.3),
        ("cache_write", usd(), 0.3),
    ])
}

/// A provider of one kind with the settings of that kind, and rarely one of another kind.
fn provider() -> BoxedStrategy<Value> {
    let kinds = &[
        "openai",
        "azure",
        "anthropic",
        "gemini",
        "bedrock",
        "cohere",
        "groq",
    ][..];
    prop_oneof![30 => prop::sample::select(kinds), 1 => Just("nope")]
        .prop_flat_map(|kind| {
            let bedrock = kind == "bedrock";
            let own = |field: bool| if field { 0.5 } else { 0.02 };
            object(vec![
                ("type", mostly(Just(Value::from(kind))), 0.99),
                ("cluster", name(&["c1", "c2", ""]), 0.05),
                (
                    "path_prefix",
                    name(&["/v1", "/openai/v1", "v1", "/v1/"]),
                    0.1,
                ),
                (
                    "api_key_env",
                    mostly(prop_oneof![
                        3 => env_name(),
                        1 => prop::collection::vec(env_name(), 1..3).prop_map(Value::Array),
                    ]),
                    own(!bedrock),
                ),
                (
                    "stream_usage",
                    boolean(),
                    own(matches!(kind, "openai" | "azure" | "groq")),
                ),
                ("api_version", name(&["2024-10-21"]), own(kind == "azure")),
                (
                    "default_max_tokens",
                    mostly(count()),
                    own(kind == "anthropic"),
                ),
                (
                    "region",
                    mostly(prop_oneof![
                        20 => prop::sample::select(&["us-east-1", "eu-west-3"][..]).prop_map(Value::from),
                        1 => Just(Value::from("mars")),
                    ]),
                    if bedrock { 0.98 } else { 0.02 },
                ),
                ("aws_access_key_id_env", env_name(), own(bedrock)),
                ("aws_secret_access_key_env", env_name(), own(bedrock)),
                ("aws_session_token_env", env_name(), own(bedrock)),
            ])
        })
        .boxed()
}

/// A count or size: usually valid, sometimes any number.
fn count() -> BoxedStrategy<Value> {
    prop_oneof![8 => (1u64..100_000).prop_map(Value::from), 1 => number()].boxed()
}

fn target(providers: &[String]) -> BoxedStrategy<Value> {
    object(vec![
        ("provider", provider_ref(providers), 0.99),
        (
            "model",
            name(&["gpt-4o-mini", "gemini-2.5-flash", "claude-haiku-4-5"]),
            0.9,
        ),
        ("weight", mostly(count()), 0.4),
        ("quality", mostly(count()), 0.3),
        ("tier", name(TIERS), 0.4),
        ("price", price(), 0.2),
    ])
}

fn rule() -> BoxedStrategy<Value> {
    let when = object(vec![
        ("min_tokens", mostly(number()), 0.3),
        ("max_tokens", mostly(number()), 0.2),
        ("images", boolean(), 0.2),
        ("tools", boolean(), 0.2),
        ("code", boolean(), 0.2),
        (
            "keywords",
            mostly(
                prop::collection::vec(text().prop_map(Value::from), 0..3).prop_map(Value::Array),
            ),
            0.3,
        ),
        (
            "regex",
            name(&["(?i)refactor", "a+b", "(", "[z-a]", "\\p{Greek}+"]),
            0.3,
        ),
    ]);
    object(vec![("when", when, 0.95), ("tier", name(TIERS), 0.95)])
}

fn model(providers: &[String]) -> BoxedStrategy<Value> {
    let plain = object(vec![
        ("provider", provider_ref(providers), 0.99),
        ("model", name(&["gpt-4o-mini", "gpt-4o", ""]), 0.5),
        ("price", price(), 0.2),
        ("log_bodies", boolean(), 0.1),
    ]);
    let classifier = object(vec![
        ("cluster", name(&["classifier"]), 0.95),
        ("path", name(&["/v2/modelRouter/modelSelect"]), 0.95),
        ("timeout_ms", mostly(count()), 0.5),
        ("default_tier", name(TIERS), 0.5),
    ]);
    let routed = object(vec![
        (
            "targets",
            mostly(prop::collection::vec(target(providers), 1..4).prop_map(Value::Array)),
            0.97,
        ),
        (
            "strategy",
            name(&["weighted", "cost", "latency", "fastest"]),
            0.6,
        ),
        ("min_quality", mostly(number()), 0.1),
        (
            "latency_metric",
            name(&["total", "first_token", "p99"]),
            0.1,
        ),
        (
            "exploration",
            mostly(prop_oneof![(0.0..1.0f64).prop_map(Value::from), number()]),
            0.1,
        ),
        ("sticky", name(&["user", "session"]), 0.1),
        (
            "rules",
            mostly(prop::collection::vec(rule(), 0..3).prop_map(Value::Array)),
            0.3,
        ),
        ("default_tier", name(TIERS), 0.3),
        ("fallback", boolean(), 0.1),
        ("classifier", classifier, 0.1),
        ("log_bodies", boolean(), 0.1),
    ]);
    prop_oneof![3 => plain, 2 => routed, 1 => json(KEYS)].boxed()
}

fn limits() -> BoxedStrategy<Value> {
    object(vec![
        ("requests_per_minute", mostly(count()), 0.6),
        ("tokens_per_minute", mostly(count()), 0.6),
    ])
}

fn budgets() -> BoxedStrategy<Value> {
    object(vec![
        (
            "usd_per_day",
            mostly(prop_oneof![(0.0..100.0f64).prop_map(Value::from), number()]),
            0.6,
        ),
        (
            "usd_per_month",
            mostly(prop_oneof![
                (0.0..1000.0f64).prop_map(Value::from),
                number()
            ]),
            0.6,
        ),
    ])
}

fn key() -> BoxedStrategy<Value> {
    let sha = prop_oneof![
        4 => "[0-9a-f]{64}".prop_map(Value::from),
        1 => "[0-9a-fA-Z]{0,70}".prop_map(Value::from),
    ];
    object(vec![
        ("sha256", mostly(sha), 0.7),
        ("key_env", env_name(), 0.3),
        ("team", name(&["search", "ghost"]), 0.3),
        (
            "models",
            mostly(prop::collection::vec(name(MODEL_IDS), 0..3).prop_map(Value::Array)),
            0.3,
        ),
        ("limits", limits(), 0.3),
        ("budgets", budgets(), 0.3),
        ("revoked", boolean(), 0.1),
        ("log_bodies", boolean(), 0.1),
    ])
}

/// A provider id: one of the document's, rarely any.
fn provider_ref(providers: &[String]) -> BoxedStrategy<Value> {
    if providers.is_empty() {
        return name(PROVIDER_IDS);
    }
    prop_oneof![
        30 => prop::sample::select(providers.to_vec()).prop_map(Value::from),
        1 => name(PROVIDER_IDS),
    ]
    .boxed()
}

/// A map from `names` (rarely a name no section accepts) to values.
fn map_of(
    names: &'static [&'static str],
    value: BoxedStrategy<Value>,
    max: usize,
) -> BoxedStrategy<Value> {
    let key = prop_oneof![100 => prop::sample::select(names), 1 => Just("bad name")];
    mostly(
        prop::collection::vec((key, value), 1..max).prop_map(|entries| {
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        }),
    )
}

fn document() -> BoxedStrategy<Value> {
    let rls = object(vec![
        ("cluster", name(&["ratelimit", ""]), 0.95),
        ("domain", name(&["ai-gateway", ""]), 0.95),
        ("timeout_ms", mostly(count()), 0.4),
        ("failure_mode", name(&["deny", "allow", "maybe"]), 0.4),
        (
            "units",
            mostly(
                prop::collection::vec(name(&["requests", "tokens", "cost", "bytes"]), 0..4)
                    .prop_map(Value::Array),
            ),
            0.4,
        ),
        (
            "cost_unit_usd",
            mostly(prop_oneof![(0.0..1.0f64).prop_map(Value::from), number()]),
            0.3,
        ),
    ]);
    let all_models: &'static [&'static str] = MODEL_IDS;
    let providers = map_of(PROVIDER_IDS, provider(), 4);
    (providers, prop::option::weighted(0.995, Just(())))
        .prop_flat_map(move |(providers, present)| {
            let ids: Vec<String> = providers
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let rest = object(vec![
                ("models", map_of(all_models, model(&ids), 4), 0.995),
                ("max_request_bytes", mostly(count()), 0.2),
                ("body_log_max_bytes", mostly(count()), 0.2),
                ("keys", map_of(&["app", "alice"], key(), 3), 0.3),
                (
                    "teams",
                    map_of(
                        &["search", "ads"],
                        object(vec![("limits", limits(), 0.5), ("budgets", budgets(), 0.5)]),
                        2,
                    ),
                    0.2,
                ),
                ("model_limits", map_of(all_models, limits(), 2), 0.2),
                ("rate_limit_service", rls.clone(), 0.2),
                ("unknown_section", json(KEYS), 0.02),
            ]);
            rest.prop_map(move |mut doc| {
                if present.is_some() {
                    set(&mut doc, &["providers"], providers.clone());
                }
                doc
            })
        })
        .boxed()
}

fn env(name: &str) -> Option<String> {
    // A SHA-256 in hex for gateway keys read from the environment, a secret otherwise.
    ENV_SET.contains(&name).then(|| "0".repeat(64))
}

fn check(doc: &[u8]) -> Result<(), TestCaseError> {
    match Config::from_json(doc, &env) {
        Ok(config) => {
            prop_assert!(!config.providers.is_empty());
            prop_assert!(!config.models.is_empty());
            prop_assert!((1..=64 * 1024 * 1024).contains(&config.max_request_bytes));
            prop_assert!(config.body_log_max_bytes <= 1024 * 1024);
            let parsed: Value = serde_json::from_slice(doc)
                .map_err(|e| TestCaseError::fail(format!("accepted a non-JSON document: {e}")))?;
            for (id, model) in &config.models {
                prop_assert!(
                    parsed["models"].get(id).is_some(),
                    "model {} not in the document",
                    id
                );
                prop_assert!(
                    !model.route.targets.is_empty(),
                    "model {} without targets",
                    id
                );
                for t in &model.route.targets {
                    prop_assert!(
                        t.provider < config.providers.len(),
                        "dangling provider in {}",
                        id
                    );
                }
            }
            for p in &config.providers {
                prop_assert!(parsed["providers"].get(&p.id).is_some());
            }
        }
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            let section = e.field.split(['.', '[']).next().unwrap_or_default();
            prop_assert!(SECTIONS.contains(&section), "refusal names `{}`", e.field);
            // The message may quote a value of the document, not much more.
            prop_assert!(e.to_string().len() <= 2 * doc.len() + 1024);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(runner(192))]

    #[test]
    fn generated_documents(doc in document()) {
        check(doc.to_string().as_bytes())?;
    }

    #[test]
    fn random_bytes(doc in prop::collection::vec(any::<u8>(), 0..300)) {
        check(&doc)?;
    }
}

/// A minimal valid document still compiles (so the generated ones can too).
#[test]
fn the_generators_can_produce_a_valid_document() {
    let doc = json!({"providers": {"openai": {"type": "openai", "api_key_env": "KEY_A"}},
                     "models": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}}});
    assert!(Config::from_json(doc.to_string().as_bytes(), &env).is_ok());
}
