//! Plugin configuration through the real Envoy: bad documents stop Envoy with a message naming
//! the field; provider keys switch providers on; `/v1/models` reflects what is on.

use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::FakeProvider;
use serde_json::json;

#[test]
fn a_bad_plugin_configuration_stops_envoy_naming_the_field() {
    let cases = [
        (
            json!({"providers": {"p": {"type": "openai"}}, "models": {"m": {"provider": "q"}}}),
            "`models.m.provider`",
        ),
        (
            json!({"providers": {"p": {"type": "openai", "colour": "red"}}, "models": {"m": {"provider": "p"}}}),
            "unknown field `colour`",
        ),
        (
            json!({"providers": {"p": {"type": "klingon"}}, "models": {"m": {"provider": "p"}}}),
            "`providers.p.type`",
        ),
    ];
    for (config, expected) in cases {
        let (status, log) = Envoy::start_expecting_exit(Options {
            plugin_config: Some(config.clone()),
            ..Default::default()
        });
        assert_ne!(status, Some(0), "Envoy accepted {config}");
        let line = log
            .lines()
            .find(|l| l.contains("invalid plugin configuration"))
            .unwrap_or_else(|| panic!("no refusal line for {config}:\n{log}"));
        assert!(line.contains(expected), "{config}: {line}");
    }
}

#[test]
fn the_shipped_config_serves_the_demo_and_switches_openai_on_with_its_key() {
    let demo = FakeProvider::start(0).unwrap();
    let openai = FakeProvider::start(0).unwrap();
    let upstreams = vec![
        ("provider_demo".to_string(), demo.port),
        ("openai".to_string(), openai.port),
    ];

    // No key: only the demo model is listed, and an OpenAI model says which variable is missing.
    let off = Envoy::start(Options {
        upstreams: upstreams.clone(),
        ..Default::default()
    });
    let models = off.request("GET", "/v1/models", &[], b"").json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["demo-chat"]);
    let r =
        off.chat(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("OPENAI_API_KEY"));
    drop(off);

    // With the key in Envoy's environment: listed, and forwarded with that key.
    let key = "sk-test-openai-0123456789";
    let on = Envoy::start(Options {
        upstreams,
        env: vec![("OPENAI_API_KEY".into(), key.into())],
        ..Default::default()
    });
    let models = on.request("GET", "/v1/models", &[], b"").json();
    let listed: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"gpt-4o-mini") && listed.contains(&"demo-chat"),
        "{listed:?}"
    );
    let one = on.request("GET", "/v1/models/gpt-4o-mini", &[], b"").json();
    assert_eq!(
        one,
        json!({"id": "gpt-4o-mini", "object": "model", "created": one["created"], "owned_by": "openai"})
    );
    let r =
        on.chat(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let received = openai.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    assert!(demo.received().is_empty());
    assert!(
        !on.log().contains(key),
        "the provider key appeared in Envoy's log"
    );
}

/// The one place Envoy and the plugin must agree: every provider's cluster exists and the chain
/// routes' cluster matcher lists it; the chain routes exist with their retry counts.
#[test]
fn the_shipped_envoy_config_agrees_with_its_plugin_configuration() {
    let config = gateway_tests::envoy::load_config(
        &gateway_tests::envoy::repo_root().join("envoy/envoy.yaml"),
    );
    let clusters: Vec<&str> = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let hcm = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let wasm = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the gateway filter");
    let plugin: serde_json::Value = serde_json::from_str(
        wasm["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    for n in 1..=4u64 {
        let route = routes
            .iter()
            .find(|r| r["name"] == format!("chain{n}"))
            .unwrap_or_else(|| panic!("no route chain{n}"));
        assert_eq!(
            route["route"]["retry_policy"]["num_retries"],
            (n - 1).max(1),
            "chain{n}"
        );
        assert_eq!(
            route["route"]["retry_policy"]["refresh_cluster_on_retry"], true,
            "chain{n}"
        );
    }
    let chain1 = routes.iter().find(|r| r["name"] == "chain1").unwrap();
    let matcher = &chain1["route"]["inline_cluster_specifier_plugin"]["extension"]["typed_config"]
        ["cluster_matcher"]["matcher_tree"];
    assert_eq!(matcher["input"]["typed_config"]["key"], "wasm.gw_target");
    let map = matcher["exact_match_map"]["map"].as_object().unwrap();
    for (target, action) in map {
        let cluster = action["action"]["typed_config"]["cluster"]
            .as_str()
            .unwrap();
        assert_eq!(target, cluster, "the matcher maps a cluster name to itself");
        assert!(
            clusters.contains(&cluster),
            "the matcher names a missing cluster {cluster}"
        );
    }
    for (id, provider) in plugin["providers"].as_object().unwrap() {
        let cluster = provider["cluster"].as_str().unwrap_or(id);
        assert!(
            clusters.contains(&cluster),
            "provider {id}: no cluster {cluster}"
        );
        assert!(
            map.contains_key(cluster),
            "provider {id}: cluster {cluster} missing from the chain routes' matcher"
        );
    }
}
