//! Refusals of the `guardrails` section and how policies attach.
use super::*;
use serde_json::json;

/// The compiled section, every model and key name accepted.
pub fn rails(value: Value) -> Guardrails {
    compile(&value, &|_| true, &|_| true, &[]).unwrap()
}

fn refusal(value: Value) -> ConfigError {
    compile(&value, &|m| m == "gpt", &|k| k == "alice", &[]).unwrap_err()
}

#[test]
fn refusals_name_the_field() {
    let g = |guard: Value| json!({"policies": {"p": {"all": true, "guards": [guard]}}});
    let cases = [
        (
            g(json!({"name": "x", "kind": "email", "action": "mask", "color": 1})),
            "guardrails",
        ),
        (
            g(json!({"name": "x", "kind": "email", "action": "block", "restore": true})),
            "guardrails.policies.p.guards[0].restore",
        ),
        (
            g(json!({"name": "x", "kind": "regex", "action": "block"})),
            "guardrails.policies.p.guards[0].pattern",
        ),
        (
            g(json!({"name": "x", "kind": "regex", "action": "block", "pattern": "("})),
            "guardrails.policies.p.guards[0].pattern",
        ),
        (
            g(json!({"name": "x", "kind": "regex", "action": "block", "pattern": "a*"})),
            "guardrails.policies.p.guards[0].pattern",
        ),
        (
            g(json!({"name": "x", "kind": "keywords", "action": "block", "keywords": []})),
            "guardrails.policies.p.guards[0].keywords",
        ),
        (
            g(json!({"name": "x", "kind": "email", "action": "mask", "pattern": "a"})),
            "guardrails.policies.p.guards[0].pattern",
        ),
        (
            g(json!({"name": "x y", "kind": "email", "action": "mask"})),
            "guardrails.policies.p.guards[0].name",
        ),
        (
            g(json!({"name": "x", "kind": "email", "action": "mask", "label": "e-mail"})),
            "guardrails.policies.p.guards[0].label",
        ),
        (
            json!({"policies": {"p": {"guards": [{"name": "x", "kind": "email", "action": "mask"}]}}}),
            "guardrails.policies.p",
        ),
        (
            json!({"policies": {"p": {"models": ["nope"], "guards": [{"name": "x", "kind": "email", "action": "mask"}]}}}),
            "guardrails.policies.p.models",
        ),
        (
            json!({"policies": {"p": {"keys": ["bob"], "guards": [{"name": "x", "kind": "email", "action": "mask"}]}}}),
            "guardrails.policies.p.keys",
        ),
        (
            json!({"policies": {
            "a": {"all": true, "guards": [{"name": "x", "kind": "email", "action": "mask"}]},
            "b": {"all": true, "guards": [{"name": "x", "kind": "phone", "action": "mask"}]}}}),
            "guardrails.policies.b.guards[0].name",
        ),
        (
            json!({"stream_window_bytes": 1, "policies": {}}),
            "guardrails.stream_window_bytes",
        ),
        (
            g(json!({"name": "x", "kind": "webhook", "action": "block", "phase": "request"})),
            "guardrails.policies.p.guards[0].cluster",
        ),
        (
            g(json!({"name": "x", "kind": "webhook", "action": "block", "cluster": "c"})),
            "guardrails.policies.p.guards[0].phase",
        ),
        (
            g(
                json!({"name": "x", "kind": "presidio", "action": "mask", "cluster": "c", "phase": "request", "score_threshold": 2}),
            ),
            "guardrails.policies.p.guards[0].score_threshold",
        ),
        (
            g(
                json!({"name": "x", "kind": "webhook", "action": "block", "cluster": "c", "phase": "request", "timeout_ms": 0}),
            ),
            "guardrails.policies.p.guards[0].timeout_ms",
        ),
        (
            g(json!({"name": "x", "kind": "email", "action": "block", "cluster": "c"})),
            "guardrails.policies.p.guards[0].cluster",
        ),
    ];
    for (value, field) in cases {
        assert_eq!(refusal(value.clone()).field, field, "{value}");
    }
}

#[test]
fn policies_attach_to_models_keys_or_everything() {
    let r = compile(
        &json!({"policies": {
            "everyone": {"all": true, "guards": [{"name": "a", "kind": "secrets", "action": "block"}]},
            "gpt": {"models": ["gpt"], "guards": [{"name": "b", "kind": "email", "action": "mask"}]},
            "alice": {"keys": ["alice"], "guards": [{"name": "c", "kind": "keywords", "keywords": ["Project Falcon", "c++"], "action": "block"}]}
        }}),
        &|m| m == "gpt",
        &|k| k == "alice",
        &[],
    )
    .unwrap();
    let names = |sel: Vec<usize>| -> Vec<String> {
        sel.iter().map(|&g| r.guards[g].name.clone()).collect()
    };
    assert_eq!(names(r.select("other", None)), ["a"]);
    assert_eq!(names(r.select("gpt", None)).len(), 2);
    assert_eq!(names(r.select("other", Some("alice"))), ["c", "a"]);
    let kw = &r.guards[r.select("other", Some("alice"))[0]];
    assert_eq!(kw.label, "C");
    let sc = crate::scrub::Scrubber::default();
    assert_eq!(
        r.find(kw, "about project falcon and C++ code", &sc).len(),
        2
    );
    assert!(r.find(kw, "falconry and projects", &sc).is_empty());
    assert!(r.mask_body_logs);
}
