//! The `models.<name>` section: a model is either one target (`provider`, `model`, `price`) or
//! a route (`targets`, `strategy`, `rules`, `classifier`, ...), compiled into a [`Model`] whose
//! provider names are resolved to indexes into the compiled providers.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Classifier, Condition, LatencyMetric, Pattern, Route, Rule, Strategy, Target};
use crate::config_error::{err, ConfigError};
use crate::pricing;
use crate::provider::Provider;

#[derive(Debug, Clone)]
pub struct Model {
    /// The name clients use.
    pub id: String,
    /// Its targets and how one is picked; a plain model is a route of one target.
    pub route: Route,
    /// Request and response bodies of this model go to the body log.
    pub log_bodies: bool,
}

impl Model {
    /// The first configured target (the only one of a plain model).
    pub fn first_target(&self) -> Option<&Target> {
        self.route.targets.first()
    }
}

/// Keys of the short form of a model entry: one target.
const PLAIN_KEYS: &[&str] = &["provider", "model", "price", "log_bodies"];

/// Compiles `models.<id>`, resolving provider names to indexes into `providers`.
pub fn compile_model(id: &str, value: Value, providers: &[Provider]) -> Result<Model, ConfigError> {
    let at = format!("models.{id}");
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            &at,
            "model names must be non-empty and hold no whitespace",
        ));
    }
    let Value::Object(entry) = value else {
        return Err(err(&at, "must be an object"));
    };
    let log_bodies = match entry.get("log_bodies") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err(format!("{at}.log_bodies"), "must be true or false")),
    };
    let route = if let Some(targets) = entry.get("targets") {
        for key in entry.keys() {
            let known = ["targets", "strategy", "log_bodies"].contains(&key.as_str())
                || ROUTE_KEYS.contains(&key.as_str());
            if !known {
                return Err(err(
                    format!("{at}.{key}"),
                    "unknown field of a routed model (targets, strategy, rules, ...)",
                ));
            }
        }
        let targets = targets
            .as_array()
            .ok_or_else(|| err(format!("{at}.targets"), "must be an array"))?;
        compile_route(&at, targets, entry.get("strategy"), &entry, providers)?
    } else {
        if let Some(key) = entry.keys().find(|k| !PLAIN_KEYS.contains(&k.as_str())) {
            let hint = if ROUTE_KEYS.contains(&key.as_str()) || key == "strategy" {
                " (routing settings need `targets`)"
            } else {
                ""
            };
            return Err(err(format!("{at}.{key}"), format!("unknown field{hint}")));
        }
        let provider_name = match entry.get("provider") {
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(err(format!("{at}.provider"), "must be a string")),
            None => return Err(err(&at, "missing field `provider` (or `targets`)")),
        };
        let provider = providers
            .iter()
            .position(|p| p.id == provider_name)
            .ok_or_else(|| {
                err(
                    format!("{at}.provider"),
                    format!("no provider named '{provider_name}'"),
                )
            })?;
        let upstream_model = match entry.get("model") {
            None => id.to_string(),
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => return Err(err(format!("{at}.model"), "must be a non-empty string")),
        };
        let price = match entry.get("price") {
            Some(v) => Some(pricing::compile_price(v, &format!("{at}.price"))?),
            None => pricing::builtin(&upstream_model)
                .or_else(|| pricing::builtin(id))
                .map(|r| r.price),
        };
        Route {
            targets: vec![Target {
                provider,
                upstream_model,
                weight: 1,
                quality: 0,
                tier: None,
                price,
            }],
            strategy: Strategy::Weighted,
            sticky_user: false,
            rules: Vec::new(),
            default_tier: None,
            fallback: true,
            classifier: None,
        }
    };
    Ok(Model {
        id: id.to_string(),
        route,
        log_bodies,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    provider: String,
    model: Option<String>,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    quality: u32,
    tier: Option<String>,
    price: Option<Value>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    min_tokens: Option<u64>,
    max_tokens: Option<u64>,
    images: Option<bool>,
    tools: Option<bool>,
    code: Option<bool>,
    #[serde(default)]
    keywords: Vec<String>,
    regex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    when: RawCondition,
    tier: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClassifier {
    cluster: String,
    path: String,
    #[serde(default = "default_classifier_timeout")]
    timeout_ms: u64,
    default_tier: Option<String>,
}

fn default_classifier_timeout() -> u64 {
    300
}

/// The routing part of a model entry with `targets`.
fn compile_route(
    at: &str,
    targets: &[Value],
    strategy: Option<&Value>,
    extra: &Map<String, Value>,
    providers: &[Provider],
) -> Result<Route, ConfigError> {
    if targets.is_empty() {
        return Err(err(
            format!("{at}.targets"),
            "at least one target is required",
        ));
    }
    let mut compiled = Vec::with_capacity(targets.len());
    for (n, raw) in targets.iter().enumerate() {
        let here = format!("{at}.targets[{n}]");
        let raw: RawTarget =
            serde_json::from_value(raw.clone()).map_err(|e| err(&here, e.to_string()))?;
        let provider = providers
            .iter()
            .position(|p| p.id == raw.provider)
            .ok_or_else(|| {
                err(
                    format!("{here}.provider"),
                    format!("no provider named '{}'", raw.provider),
                )
            })?;
        let upstream_model = raw
            .model
            .ok_or_else(|| err(format!("{here}.model"), "missing field `model`"))?;
        let price = match &raw.price {
            Some(p) => Some(pricing::compile_price(p, &format!("{here}.price"))?),
            None => pricing::builtin(&upstream_model).map(|r| r.price),
        };
        compiled.push(Target {
            provider,
            upstream_model,
            weight: raw.weight,
            quality: raw.quality,
            tier: raw.tier,
            price,
        });
    }
    let number = |key: &str| extra.get(key).and_then(Value::as_u64);
    let strategy = match strategy.map(|s| s.as_str()) {
        None | Some(Some("weighted")) => Strategy::Weighted,
        Some(Some("cost")) => Strategy::Cost {
            min_quality: u32::try_from(number("min_quality").unwrap_or(0)).unwrap_or(u32::MAX),
        },
        Some(Some("latency")) => {
            let metric = match extra.get("latency_metric").and_then(Value::as_str) {
                None | Some("total") => LatencyMetric::Total,
                Some("first_token") => LatencyMetric::FirstToken,
                Some(other) => {
                    return Err(err(
                        format!("{at}.latency_metric"),
                        format!("'{other}' is not 'total' or 'first_token'"),
                    ))
                }
            };
            let exploration = extra
                .get("exploration")
                .and_then(Value::as_f64)
                .unwrap_or(0.05);
            if !(0.0..=1.0).contains(&exploration) {
                return Err(err(
                    format!("{at}.exploration"),
                    "must be a share between 0 and 1",
                ));
            }
            Strategy::Latency {
                metric,
                exploration_permille: (exploration * 1000.0).round() as u32,
            }
        }
        _ => {
            return Err(err(
                format!("{at}.strategy"),
                "must be 'weighted', 'cost' or 'latency'",
            ))
        }
    };
    if strategy == Strategy::Weighted && compiled.iter().all(|t| t.weight == 0) {
        return Err(err(
            format!("{at}.targets"),
            "weighted routing needs a target with a weight above 0",
        ));
    }
    if let Strategy::Cost { .. } = strategy {
        if let Some(n) = compiled.iter().position(|t| t.price.is_none()) {
            return Err(err(format!("{at}.targets[{n}].price"), "the cost strategy needs a price for every target (none is built in for this model)"));
        }
    }
    let sticky_user = match extra.get("sticky").map(Value::as_str) {
        None => false,
        Some(Some("user")) => true,
        _ => return Err(err(format!("{at}.sticky"), "only 'user' is supported")),
    };
    let tiers: Vec<&String> = compiled.iter().filter_map(|t| t.tier.as_ref()).collect();
    let mut rules = Vec::new();
    for (n, raw) in extra
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let here = format!("{at}.rules[{n}]");
        let raw: RawRule =
            serde_json::from_value(raw.clone()).map_err(|e| err(&here, e.to_string()))?;
        if !tiers.contains(&&raw.tier) {
            return Err(err(
                format!("{here}.tier"),
                format!("no target has tier '{}'", raw.tier),
            ));
        }
        let c = raw.when;
        let regex = match &c.regex {
            None => None,
            Some(source) => Some(Pattern(
                regex_lite::RegexBuilder::new(source)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| err(format!("{here}.when.regex"), e.to_string()))?,
            )),
        };
        rules.push(Rule {
            when: Condition {
                min_tokens: c.min_tokens,
                max_tokens: c.max_tokens,
                images: c.images,
                tools: c.tools,
                code: c.code,
                keywords: c.keywords.iter().map(|k| k.to_lowercase()).collect(),
                regex,
            },
            tier: raw.tier,
        });
    }
    let classifier = match extra.get("classifier") {
        None => None,
        Some(v) => {
            let raw: RawClassifier = serde_json::from_value(v.clone())
                .map_err(|e| err(format!("{at}.classifier"), e.to_string()))?;
            if let Some(t) = &raw.default_tier {
                if !tiers.contains(&t) {
                    return Err(err(
                        format!("{at}.classifier.default_tier"),
                        format!("no target has tier '{t}'"),
                    ));
                }
            }
            Some(Classifier {
                cluster: raw.cluster,
                path: raw.path,
                timeout_ms: raw.timeout_ms,
                default_tier: raw.default_tier,
            })
        }
    };
    let default_tier = match extra.get("default_tier") {
        None => None,
        Some(Value::String(t)) if tiers.contains(&t) => Some(t.clone()),
        Some(_) => {
            return Err(err(
                format!("{at}.default_tier"),
                "must name a tier some target has",
            ))
        }
    };
    let fallback = match extra.get("fallback") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err(format!("{at}.fallback"), "must be true or false")),
    };
    Ok(Route {
        targets: compiled,
        strategy,
        sticky_user,
        rules,
        default_tier,
        fallback,
        classifier,
    })
}

/// The keys of a model entry that belong to routing (besides `targets` and `strategy`).
const ROUTE_KEYS: &[&str] = &[
    "min_quality",
    "latency_metric",
    "exploration",
    "sticky",
    "rules",
    "default_tier",
    "classifier",
    "fallback",
];
