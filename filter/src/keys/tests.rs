use super::config::parse_sha256;
use super::*;
use crate::config_error::ConfigError;
use serde_json::json;

// Published SHA-256 values (FIPS 180-4 examples / widely quoted), independent of crate::sha256.
const ABC: &str = "abc";
const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const FOX: &str = "The quick brown fox jumps over the lazy dog";
const FOX_SHA256: &str = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592";
const ENV_KEY: &str = "sk-gw-alice-0123456789abcdef";

fn env(name: &str) -> Option<String> {
    match name {
        "GATEWAY_KEY_ALICE" => Some(format!("  {ENV_KEY}\n")),
        "EMPTY" => Some("   ".into()),
        _ => None,
    }
}

fn is_model(m: &str) -> bool {
    ["gpt-4o-mini", "gpt-4o", "demo-chat"].contains(&m)
}

fn good() -> Value {
    json!({
        "teams": {
            "search": {
                "limits": {"requests_per_minute": 600, "tokens_per_minute": 200000},
                "budgets": {"usd_per_day": 50, "usd_per_month": 1000.5}
            },
            "idle": {}
        },
        "keys": {
            "search-backend": {
                "sha256": ABC_SHA256,
                "team": "search",
                "models": ["gpt-4o-mini"],
                "limits": {"requests_per_minute": 60, "tokens_per_minute": 50000},
                "budgets": {"usd_per_day": 5, "usd_per_month": 100}
            },
            "alice": {"key_env": "GATEWAY_KEY_ALICE"},
            "old-app": {"sha256": FOX_SHA256.to_uppercase(), "revoked": true}
        },
        "model_limits": {"gpt-4o": {"requests_per_minute": 500, "tokens_per_minute": 30000}}
    })
}

fn compile_doc(doc: &Value) -> Result<Keys, ConfigError> {
    compile(
        Sections {
            keys: doc.get("keys"),
            teams: doc.get("teams"),
            model_limits: doc.get("model_limits"),
        },
        &is_model,
        &env,
    )
}

fn refused(doc: Value) -> ConfigError {
    compile_doc(&doc).expect_err("must be refused")
}

#[test]
fn good_config_compiles_with_references_resolved() {
    let keys = compile_doc(&good()).unwrap();
    assert!(keys.required());
    assert_eq!(keys.len(), 3);
    let k = keys.key("search-backend").unwrap();
    assert_eq!(k.team.as_deref(), Some("search"));
    assert!(k.allows("gpt-4o-mini") && !k.allows("gpt-4o"));
    assert_eq!(k.limits.requests_per_minute, Some(60));
    assert_eq!(k.budgets.micros_per_day, Some(5_000_000));
    assert_eq!(k.budgets.micros_per_month, Some(100_000_000));
    let team = keys.team("search").unwrap();
    assert_eq!(team.budgets.micros_per_month, Some(1_000_500_000));
    assert_eq!(keys.team("idle").unwrap().limits, Limits::default());
    assert!(keys.key("alice").unwrap().allows("anything"));
    assert_eq!(keys.model_limits("gpt-4o").tokens_per_minute, Some(30000));
    assert_eq!(keys.model_limits("demo-chat"), Limits::default());
}

#[test]
fn without_a_keys_section_the_gateway_is_open() {
    let keys = compile(Sections::default(), &is_model, &env).unwrap();
    assert!(!keys.required());
    assert!(keys.is_empty());
    // model limits still apply to anonymous traffic
    let doc = json!({"model_limits": {"gpt-4o": {"requests_per_minute": 5}}});
    let keys = compile_doc(&doc).unwrap();
    assert!(!keys.required());
    let charges = keys.charges(None, "gpt-4o", &Estimate::default());
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].counter.scope, Scope::Model);
}

#[test]
fn authenticates_bearer_and_x_api_key_by_hash() {
    let keys = compile_doc(&good()).unwrap();
    let bearer = format!("Bearer {ABC}");
    assert_eq!(
        keys.authenticate(Some(&bearer), None).unwrap().id,
        "search-backend"
    );
    assert_eq!(
        keys.authenticate(Some("bearer   abc  "), None).unwrap().id,
        "search-backend"
    );
    assert_eq!(
        keys.authenticate(None, Some(ABC)).unwrap().id,
        "search-backend"
    );
    // a key from the environment (trimmed)
    let alice = format!("Bearer {ENV_KEY}");
    assert_eq!(keys.authenticate(Some(&alice), None).unwrap().id, "alice");
    // Authorization wins over x-api-key
    assert_eq!(
        keys.authenticate(Some(&alice), Some(ABC)).unwrap().id,
        "alice"
    );
    // another scheme counts as no key; x-api-key is then used
    assert_eq!(
        keys.authenticate(Some("Basic YWJjOmRlZg=="), Some(ABC))
            .unwrap()
            .id,
        "search-backend"
    );
}

#[test]
fn missing_unknown_and_revoked_keys_are_refused() {
    let keys = compile_doc(&good()).unwrap();
    assert_eq!(
        keys.authenticate(None, None).unwrap_err(),
        AuthError::Missing
    );
    assert_eq!(
        keys.authenticate(Some("Bearer "), Some("  ")).unwrap_err(),
        AuthError::Missing
    );
    assert_eq!(
        keys.authenticate(Some("Basic abc"), None).unwrap_err(),
        AuthError::Missing
    );
    assert_eq!(
        keys.authenticate(Some("Bearer abd"), None).unwrap_err(),
        AuthError::Unknown
    );
    // a configured hash presented as the key is not the key
    let hash_as_key = format!("Bearer {ABC_SHA256}");
    assert_eq!(
        keys.authenticate(Some(&hash_as_key), None).unwrap_err(),
        AuthError::Unknown
    );
    assert_eq!(
        keys.authenticate(None, Some(FOX)).unwrap_err(),
        AuthError::Revoked {
            key_id: "old-app".into()
        }
    );
}

#[test]
fn models_outside_the_allow_list_get_403() {
    let keys = compile_doc(&good()).unwrap();
    let key = keys.authenticate(None, Some(ABC)).unwrap();
    assert!(keys.authorize(key, "gpt-4o-mini").is_ok());
    let e = keys.authorize(key, "gpt-4o").unwrap_err();
    assert_eq!(e.status(), 403);
    assert_eq!(e.code(), "model_not_allowed");
    assert_eq!(e.key_id(), Some("search-backend"));
}

#[test]
fn errors_map_to_openai_shaped_401_and_403_without_the_key() {
    let keys = compile_doc(&good()).unwrap();
    let cases = [
        (keys.authenticate(None, None).unwrap_err(), 401),
        (
            keys.authenticate(None, Some("sk-wrong-secret"))
                .unwrap_err(),
            401,
        ),
        (keys.authenticate(None, Some(FOX)).unwrap_err(), 401),
        (
            keys.authorize(keys.key("search-backend").unwrap(), "gpt-4o")
                .unwrap_err(),
            403,
        ),
    ];
    for (e, status) in cases {
        let g: GatewayError = e.clone().into();
        assert_eq!(g.status(), status, "{e:?}");
        let body: Value = serde_json::from_slice(&g.to_json()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["code"], e.code(), "{body}");
        let text = body.to_string();
        for secret in [ABC_SHA256, FOX, "sk-wrong-secret", FOX_SHA256] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

#[test]
fn debug_output_never_shows_a_key_or_its_hash() {
    let keys = compile_doc(&good()).unwrap();
    let text = format!("{keys:?}");
    assert!(text.contains("search-backend"));
    let abc_hash_bytes = format!("{:?}", parse_sha256(ABC_SHA256).unwrap());
    for secret in [
        ABC_SHA256,
        FOX_SHA256,
        ENV_KEY,
        abc_hash_bytes.as_str(),
        "186, 120, 22",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn constant_time_find_finds_every_position_and_nothing_else() {
    let hashes: Vec<[u8; 32]> = (0u8..5).map(|i| [i; 32]).collect();
    for (i, h) in hashes.iter().enumerate() {
        assert_eq!(constant_time_find(h, hashes.iter()), Some(i));
    }
    let mut near = [4u8; 32];
    near[31] = 5;
    assert_eq!(constant_time_find(&near, hashes.iter()), None);
    assert_eq!(constant_time_find(&[9; 32], hashes.iter()), None);
    assert_eq!(constant_time_find(&[0; 32], std::iter::empty()), None);
}

#[test]
fn charges_cover_key_team_model_and_budgets_in_order() {
    let keys = compile_doc(&good()).unwrap();
    let key = keys.key("search-backend").unwrap();
    let est = Estimate {
        tokens: 1200,
        cost_micros: Some(3456),
    };
    let got: Vec<(Scope, &str, Kind, Window, u64, u64)> = keys
        .charges(Some(key), "gpt-4o", &est)
        .iter()
        .map(|c| {
            (
                c.counter.scope,
                match c.counter.scope {
                    Scope::Key => "search-backend",
                    Scope::Team => "search",
                    Scope::Model => "gpt-4o",
                },
                c.counter.kind,
                c.counter.window,
                c.counter.limit,
                c.amount,
            )
        })
        .collect();
    use Kind::*;
    use Scope::*;
    use Window::*;
    let want = vec![
        (Key, "search-backend", Requests, Minute, 60, 1),
        (Key, "search-backend", Tokens, Minute, 50000, 1200),
        (Team, "search", Requests, Minute, 600, 1),
        (Team, "search", Tokens, Minute, 200000, 1200),
        (Model, "gpt-4o", Requests, Minute, 500, 1),
        (Model, "gpt-4o", Tokens, Minute, 30000, 1200),
        (Key, "search-backend", Cost, Day, 5_000_000, 3456),
        (Key, "search-backend", Cost, Month, 100_000_000, 3456),
        (Team, "search", Cost, Day, 50_000_000, 3456),
        (Team, "search", Cost, Month, 1_000_500_000, 3456),
    ];
    assert_eq!(got, want);
    let ids: Vec<String> = keys
        .charges(Some(key), "gpt-4o", &est)
        .iter()
        .map(|c| c.counter.id.clone())
        .collect();
    assert_eq!(ids[2], "search");
    assert_eq!(ids[4], "gpt-4o");
    // a key without limits, team or budgets on an unlimited model: nothing to count
    let alice = keys.key("alice").unwrap();
    assert!(keys.charges(Some(alice), "demo-chat", &est).is_empty());
}

#[test]
fn refusals_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"keys": {}}), "keys"),
        (json!({"keys": []}), "keys"),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "colour": 1}}}),
            "keys.a",
        ),
        (json!({"keys": {"a": {}}}), "keys.a"),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "key_env": "GATEWAY_KEY_ALICE"}}}),
            "keys.a",
        ),
        (json!({"keys": {"a": {"sha256": "abc"}}}), "keys.a.sha256"),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256.replace('b', "g")}}}),
            "keys.a.sha256",
        ),
        (
            json!({"keys": {"a": {"key_env": "NOT_SET"}}}),
            "keys.a.key_env",
        ),
        (
            json!({"keys": {"a": {"key_env": "EMPTY"}}}),
            "keys.a.key_env",
        ),
        (
            json!({"keys": {"a": {"key_env": "1BAD"}}}),
            "keys.a.key_env",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "team": "nope"}}}),
            "keys.a.team",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "models": ["gpt-4o", "gpt-9"]}}}),
            "keys.a.models[1]",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "models": []}}}),
            "keys.a.models",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "limits": {"requests_per_minute": 0}}}}),
            "keys.a.limits.requests_per_minute",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "limits": {"rpm": 5}}}}),
            "keys.a",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "budgets": {"usd_per_day": -1}}}}),
            "keys.a.budgets.usd_per_day",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "budgets": {"usd_per_month": 0.0000001}}}}),
            "keys.a.budgets.usd_per_month",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256, "budgets": {"usd_per_month": 1e12}}}}),
            "keys.a.budgets.usd_per_month",
        ),
        (json!({"keys": {"a b": {"sha256": ABC_SHA256}}}), "keys.a b"),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256}, "b": {"sha256": ABC_SHA256.to_uppercase()}}}),
            "keys.b",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256}}, "teams": {"t.x": {}}}),
            "teams.t.x",
        ),
        (
            json!({"keys": {"a": {"sha256": ABC_SHA256}}, "teams": {"t": {"limits": {"tokens_per_minute": 0}}}}),
            "teams.t.limits.tokens_per_minute",
        ),
        (json!({"teams": {"t": {}}}), "teams"),
        (
            json!({"model_limits": {"gpt-9": {"requests_per_minute": 1}}}),
            "model_limits.gpt-9",
        ),
        (
            json!({"model_limits": {"gpt-4o": {"budgets": {}}}}),
            "model_limits.gpt-4o",
        ),
    ];
    for (doc, field) in cases {
        let e = refused(doc.clone());
        assert_eq!(e.field, field, "{doc}: {e}");
        assert!(!e.message.is_empty());
    }
    let long = "k".repeat(MAX_ID_LEN + 1);
    let e = refused(json!({"keys": {long.clone(): {"sha256": ABC_SHA256}}}));
    assert_eq!(e.field, format!("keys.{long}"));
}

#[test]
fn presented_key_prefers_bearer_then_x_api_key() {
    assert_eq!(presented_key(Some("Bearer k1"), Some("k2")), Some("k1"));
    assert_eq!(presented_key(Some("BEARER\tk1"), None), None);
    assert_eq!(presented_key(Some("Token k1"), Some("k2")), Some("k2"));
    assert_eq!(presented_key(Some("Bearer"), Some(" k2 ")), Some("k2"));
    assert_eq!(presented_key(None, None), None);
}
