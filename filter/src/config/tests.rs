//! The configuration root: documents compiled whole, refusals naming the field.

use super::*;
use crate::pricing::{self, Price};
use crate::provider::{Credentials, Secret};

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-test".to_string()),
        // 32 bytes, base64: the shared cache tier's sealing key.
        "CACHE_KEY_32" => Some("BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=".to_string()),
        _ => None,
    }
}

fn compile(json: &str) -> Result<Config, ConfigError> {
    Config::from_json(json.as_bytes(), &env)
}

const GOOD: &str = r#"{
    "providers": {
        "demo": {"type": "openai", "cluster": "provider_demo"},
        "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"},
        "groq": {"type": "openai", "api_key_env": "GROQ_API_KEY", "path_prefix": "/openai/v1"}
    },
    "models": {
        "demo-chat": {"provider": "demo"},
        "fast": {"provider": "openai", "model": "gpt-4o-mini"},
        "llama": {"provider": "groq", "model": "llama-3.1-8b-instant"}
    }
}"#;

#[test]
fn good_config_compiles_with_resolved_references() {
    let c = compile(GOOD).unwrap();
    assert_eq!(c.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
    let fast = &c.models["fast"];
    assert_eq!(fast.route.targets[0].upstream_model, "gpt-4o-mini");
    let p = c.provider_of(fast).unwrap();
    assert_eq!(
        (p.id.as_str(), p.cluster.as_str(), p.path_prefix.as_str()),
        ("openai", "openai", "/v1")
    );
    assert_eq!(
        p.credentials,
        Credentials::ApiKeys(vec![Secret("sk-test".into())])
    );
    assert_eq!(
        c.models["demo-chat"].route.targets[0].upstream_model,
        "demo-chat"
    );
    assert_eq!(
        c.providers
            .iter()
            .find(|p| p.cluster == "provider_demo")
            .unwrap()
            .credentials,
        Credentials::None
    );
    let groq = c.providers.iter().find(|p| p.cluster == "groq").unwrap();
    assert!(
        !groq.enabled(),
        "a provider whose key variable is unset is switched off"
    );
    assert_eq!(groq.path_prefix, "/openai/v1");
}

#[test]
fn prices_come_from_the_table_or_the_configuration() {
    let c = compile(
        r#"{"providers": {"openai": {"type": "openai"}},
            "models": {"fast": {"provider": "openai", "model": "gpt-4o-mini-2024-07-18"},
                       "mine": {"provider": "openai", "price": {"input": 1.5, "output": 6, "cached_input": 0.15}},
                       "unknown": {"provider": "openai", "model": "my-finetune"}}}"#,
    )
    .unwrap();
    assert_eq!(
        c.models["fast"].route.targets[0].price,
        Some(pricing::builtin("gpt-4o-mini").unwrap().price)
    );
    assert_eq!(
        c.models["mine"].route.targets[0].price,
        Some(Price {
            input: 1_500_000,
            output: 6_000_000,
            cached_input: 150_000,
            cache_write: 1_500_000
        })
    );
    assert_eq!(c.models["unknown"].route.targets[0].price, None);
    let e = compile(r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p", "price": {"input": -1, "output": 1}}}}"#)
        .unwrap_err();
    assert_eq!(e.field, "models.m.price.input");
    let e = compile(r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p", "price": {"input": 1}}}}"#)
        .unwrap_err();
    assert!(e.message.contains("missing field `output`"), "{e}");
}

#[test]
fn several_keys_per_provider_all_or_nothing() {
    let json = r#"{"providers": {"p": {"type": "openai", "api_key_env": ["KEY_A", "KEY_B"]}},
                   "models": {"m": {"provider": "p"}}}"#;
    let both = Config::from_json(json.as_bytes(), &|n| Some(format!("v-{n}"))).unwrap();
    let p = &both.providers[0];
    assert_eq!(
        (p.api_key(0), p.api_key(1), p.api_key(7)),
        (Some("v-KEY_A"), Some("v-KEY_B"), Some("v-KEY_A"))
    );
    let half = Config::from_json(json.as_bytes(), &|n| (n == "KEY_A").then(|| "a".into())).unwrap();
    assert_eq!(
        half.providers[0].credentials,
        Credentials::Missing(vec!["KEY_B".into()])
    );
    let e = compile(r#"{"providers": {"p": {"type": "openai", "api_key_env": []}}, "models": {"m": {"provider": "p"}}}"#).unwrap_err();
    assert_eq!(e.field, "providers.p.api_key_env");
}

#[test]
fn every_provider_secret_is_scrubbed() {
    let json = r#"{"providers": {
            "a": {"type": "openai", "api_key_env": ["KEY_1", "KEY_2"]},
            "b": {"type": "bedrock", "region": "us-east-1"}},
        "models": {"m": {"provider": "a"}}}"#;
    let env = |name: &str| Some(format!("secret-value-of-{name}"));
    let c = Config::from_json(json.as_bytes(), &env).unwrap();
    for var in [
        "KEY_1",
        "KEY_2",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        let body = format!("provider said: bad secret-value-of-{var}!");
        assert_eq!(
            c.scrubber.scrub(body.as_bytes()).as_deref(),
            Some(&b"provider said: bad [REDACTED]!"[..]),
            "{var}"
        );
    }
}

#[test]
fn secrets_do_not_print() {
    let c = compile(GOOD).unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains("sk-test"), "{dump}");
}

/// Each refusal names the field that is wrong.
#[test]
fn bad_configs_are_refused_naming_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("not json", "(document)", ""),
        (
            r#"{"providers": {}, "models": {"m": {"provider": "p"}}}"#,
            "providers",
            "at least one",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {}}"#,
            "models",
            "at least one",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "extra": 1}"#,
            "(document)",
            "unknown field `extra`",
        ),
        (
            r#"{"providers": {"p": {"type": "nope"}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p.type",
            "unknown provider type 'nope'",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "colour": 1}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p.colour",
            "unknown field `colour`",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "api_key_env": "no-dash"}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p.api_key_env",
            "not an environment variable",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "path_prefix": "v1/"}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p.path_prefix",
            "must start with '/'",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "q"}}}"#,
            "models.m.provider",
            "no provider named 'q'",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {}}}"#,
            "models.m",
            "missing field `provider`",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": 3}}}"#,
            "models.m.provider",
            "must be a string",
        ),
        (
            r#"{"providers": {"a": {"type": "openai", "cluster": "c"}, "b": {"type": "openai", "cluster": "c"}}, "models": {"m": {"provider": "a"}}}"#,
            "providers.b.cluster",
            "already used",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "max_request_bytes": 0}"#,
            "max_request_bytes",
            "between",
        ),
        (
            r#"{"providers": {"a b": {"type": "openai"}}, "models": {"m": {"provider": "a b"}}}"#,
            "providers.a b",
            "may contain only",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"two words": {"provider": "p"}}}"#,
            "models.two words",
            "whitespace",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p", "strategy": "cost"}}}"#,
            "models.m.strategy",
            "routing settings need `targets`",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": []}}}"#,
            "models.m.targets",
            "at least one target",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "q", "model": "x"}]}}}"#,
            "models.m.targets[0].provider",
            "no provider named 'q'",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x"}], "strategy": "fastest"}}}"#,
            "models.m.strategy",
            "must be 'weighted'",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "my-own"}], "strategy": "cost"}}}"#,
            "models.m.targets[0].price",
            "needs a price",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x", "tier": "a"}], "rules": [{"when": {"images": true}, "tier": "b"}]}}}"#,
            "models.m.rules[0].tier",
            "no target has tier 'b'",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x"}], "speed": 1}}}"#,
            "models.m.speed",
            "unknown field",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "forward_headers": ["x-ok", "Cookie"]}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p.forward_headers[1]",
            "lower-case header name",
        ),
        (
            r#"{"providers": {"p": {"type": "anthropic", "forward_headers": ["proxy-authorization"]}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p.forward_headers[0]",
            "carries credentials",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "cluster": "pc"}}, "models": {"m": {"targets": [{"provider": "p", "model": "x", "tier": "a"}], "classifier": {"cluster": "pc", "path": "/c"}}}}"#,
            "models.m.classifier.cluster",
            "is provider 'p''s cluster",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "cluster": "pc"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "e", "kind": "email", "action": "mask"}, {"name": "w", "kind": "webhook", "cluster": "pc", "phase": "request", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[1].cluster",
            "is provider 'p''s cluster",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "cluster": "pc"}}, "models": {"m": {"provider": "p"}}, "cache": {"shared": {"cluster": "pc", "key_env": "CACHE_KEY_32"}}}"#,
            "cache.shared.cluster",
            "is provider 'p''s cluster",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "cluster": "pc"}}, "models": {"m": {"provider": "p"}, "e": {"provider": "p"}}, "cache": {"models": {"m": {"semantic": {"embeddings_model": "e", "cluster": "pc"}}}}}"#,
            "cache.models.m.semantic.cluster",
            "is provider 'p''s cluster",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "cluster": "pc"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "pii", "kind": "presidio", "cluster": "pc", "phase": "request", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].cluster",
            "cluster of its own",
        ),
        (
            r#"{"providers": {"p": {"type": "anthropic"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "mod", "kind": "openai_moderation", "provider": "p", "cluster": "mod", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].provider",
            "moderation endpoint is OpenAI's",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "mod", "kind": "openai_moderation", "cluster": "mod", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].provider",
            "required",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "mod", "kind": "openai_moderation", "provider": "p", "cluster": "mod", "action": "mask"}]}}}}"#,
            "guardrails.policies.x.guards[0].action",
            "blocks or monitors",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "mod", "kind": "openai_moderation", "provider": "p", "cluster": "mod", "action": "block", "categories": {"violence": 1.5}}]}}}}"#,
            "guardrails.policies.x.guards[0].categories.violence",
            "between 0 and 1",
        ),
        (
            r#"{"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "w", "kind": "webhook", "provider": "p", "cluster": "mod", "action": "block", "phase": "request"}]}}}}"#,
            "guardrails.policies.x.guards[0].provider",
            "only for",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "bedrock_guardrail", "provider": "p", "cluster": "g", "guardrail_id": "Bad Id", "guardrail_version": "1", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].guardrail_id",
            "identifier",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "bedrock_guardrail", "provider": "p", "cluster": "g", "guardrail_id": "abc1", "guardrail_version": "01", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].guardrail_version",
            "DRAFT",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "bedrock_guardrail", "provider": "p", "cluster": "g", "guardrail_id": "abc1", "guardrail_version": "DRAFT", "action": "mask", "restore": true, "phase": "request"}]}}}}"#,
            "guardrails.policies.x.guards[0].restore",
            "cannot be restored",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "bedrock_guardrail", "provider": "p", "cluster": "g", "guardrail_id": "abc1", "guardrail_version": "2", "action": "mask"}]}}}}"#,
            "guardrails.policies.x.guards[0].phase",
            "masks requests only",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "bedrock_guardrail", "provider": "p", "cluster": "bedrock", "guardrail_id": "abc1", "guardrail_version": "2", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].cluster",
            "cluster of its own",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "openai_moderation", "provider": "p", "cluster": "g", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].provider",
            "OpenAI's",
        ),
        (
            r#"{"providers": {"p": {"type": "bedrock", "cluster": "bedrock", "region": "us-east-1"}}, "models": {"m": {"provider": "p"}}, "guardrails": {"policies": {"x": {"all": true, "guards": [{"name": "g", "kind": "email", "guardrail_id": "abc1", "action": "block"}]}}}}"#,
            "guardrails.policies.x.guards[0].guardrail_id",
            "only for",
        ),
        (
            r#"{"providers": {"p": {"type": "openai", "forward_headers": "x-one"}}, "models": {"m": {"provider": "p"}}}"#,
            "providers.p",
            "invalid type",
        ),
    ];
    for (json, field, message) in cases {
        let e = compile(json).expect_err(json);
        assert_eq!(&e.field, field, "{json}: {e}");
        assert!(e.message.contains(message), "{json}: {e}");
        assert!(
            e.to_string().contains(field),
            "the display names the field: {e}"
        );
    }
}
