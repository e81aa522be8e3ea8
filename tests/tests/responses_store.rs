//! The Responses API's response store (`responses.store`) through the real Envoy, driven by the
//! official OpenAI Python SDK (tests/sdk/responses_store_client.py): for a model OpenAI serves
//! (passed through) and one Anthropic serves (translated), a response is kept and retrieved, a
//! follow-up by `previous_response_id` gets the whole conversation (expanded by the gateway: the
//! provider never sees the id, and OpenAI is sent `store: false`), its input items are listed,
//! a deleted one is gone, `store=False` is not kept, and another gateway key finds none of them
//! (404 for the id, 400 `previous_response_not_found`, never the content). Shapes: OpenAI's
//! Responses reference (create, retrieve, delete, input items), as cited in
//! filter/src/inbound/responses/store.rs.

use gateway_tests::check::{run_python_client, sha256_hex};
use gateway_tests::envoy::{Envoy, Options};
use gateway_tests::fake_provider::FakeProvider;
use gateway_tests::messages_api::{plugin, KEY};
use serde_json::{json, Value};

const OTHER_KEY: &str = "gw-other-store-41c2";

#[test]
fn the_official_sdk_keeps_continues_and_deletes_responses_per_key() {
    let fake = FakeProvider::start(0).unwrap();
    let mut config = plugin();
    config["keys"]["other"] = json!({"sha256": sha256_hex(OTHER_KEY)});
    config["responses"] = json!({"store": {"ttl": 600, "max_entry_bytes": 65536}});
    let gw = Envoy::start(Options {
        plugin_config: Some(config),
        ..Options::every_provider_family(fake.port)
    });
    let models = ["gpt-4o-mini", "claude-haiku-4-5"];
    let base = format!("http://127.0.0.1:{}/v1", gw.port);
    let seen = run_python_client(
        "responses_store_client.py",
        &[base, KEY.into(), OTHER_KEY.into(), models.join(",")],
    );
    for model in models {
        let s = &seen[model];
        let first_id = s["first"]["id"].as_str().unwrap_or_default();
        assert!(first_id.starts_with("resp_"), "{model}: {s}");
        assert_eq!(s["retrieved"]["id"], first_id, "{model}: {s}");
        assert_eq!(s["retrieved"]["text"], s["first"]["text"], "{model}: {s}");
        assert_eq!(s["retrieved"]["status"], "completed");
        // The follow-up's input items: the first turn, its answer, the new turn.
        let items = s["second_items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{model}: {s}");
        assert_eq!(
            items[0]["content"][0]["text"],
            format!("Remember the number 7, {model}"),
            "{s}"
        );
        assert_eq!(items[1]["role"], "assistant", "{model}: {s}");
        assert_eq!(items[2]["content"][0]["text"], "Which number?", "{s}");
        assert_eq!(
            s["streamed"]["retrieved"], s["streamed"]["text"],
            "{model}: {s}"
        );
        for (case, status, code) in [
            ("unstored", 404, "not_found"),
            ("other_retrieve", 404, "not_found"),
            ("other_delete", 404, "not_found"),
            ("other_previous", 400, "previous_response_not_found"),
            ("unknown_previous", 400, "previous_response_not_found"),
            ("after_delete", 404, "not_found"),
        ] {
            assert_eq!(
                (&s[case]["status"], &s[case]["code"]),
                (&json!(status), &json!(code)),
                "{model} {case}: {s}"
            );
        }
        assert_eq!(s["deleted"]["raised"], Value::Null, "{model}: {s}");
        // Deleting the first turn leaves the follow-up (it holds its own conversation).
        assert_eq!(s["still_there"], s["second"]["text"], "{model}: {s}");
    }
    // The provider got the whole conversation, expanded by the gateway: OpenAI its Responses
    // input with the earlier answer's items, `store: false` and no `previous_response_id`;
    // Anthropic the translated messages.
    let received = fake.received();
    let to_openai = received
        .iter()
        .map(|r| (r.path.clone(), r.json()))
        .find(|(path, body)| {
            path == "/v1/responses" && body["input"].to_string().contains("Which number?")
        })
        .expect("the follow-up reached OpenAI");
    let body = &to_openai.1;
    assert_eq!(body["store"], false, "{body}");
    assert!(body.get("previous_response_id").is_none(), "{body}");
    let input = body["input"].as_array().unwrap();
    assert_eq!(input.len(), 3, "{body}");
    assert_eq!(input[1]["type"], "message", "{body}");
    assert_eq!(input[1]["role"], "assistant", "{body}");
    let to_anthropic = received
        .iter()
        .map(|r| (r.path.clone(), r.json()))
        .find(|(path, body)| {
            path == "/v1/messages" && body["messages"].to_string().contains("Which number?")
        })
        .expect("the follow-up reached Anthropic");
    let messages = to_anthropic.1["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{messages:?}");
    assert!(
        messages[1].to_string().contains("Remember the number 7"),
        "the earlier answer (the fake echoes the prompt) went back: {messages:?}"
    );
    // Stats say what the store did.
    let stats = gw.prometheus();
    for outcome in ["stored", "found", "not_found"] {
        assert!(
            stats.lines().any(|l| !l.starts_with('#')
                && l.contains("responses")
                && l.contains(&format!("outcome=\"{outcome}\""))),
            "no store stat with outcome {outcome}:\n{stats}"
        );
    }
}
