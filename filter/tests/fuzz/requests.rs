//! The request parsers: `parse_chat_request`, `parse_embeddings_request` and
//! `gateway::prepare`, on random bytes and on generated requests built from the OpenAI API
//! reference ("Create chat completion", "Create embeddings"), mostly valid with random fields
//! swapped for values of the wrong type or range. Checked: no panic; what an accepted request
//! says matches the body; estimates and errors bounded by the body.

use std::sync::OnceLock;

use ai_gateway::chat::{embeddings_base64, parse_chat_request, parse_embeddings_request};
use ai_gateway::config::Config;
use ai_gateway::error::GatewayError;
use ai_gateway::gateway::prepare;
use ai_gateway::provider::Operation;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::common::{json, number, runner, text};

const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "stream",
    "stream_options",
    "include_usage",
    "input",
    "tools",
    "function",
    "name",
];

/// Largest request of the test configuration: small, so generated bodies cross it.
const MAX_REQUEST_BYTES: usize = 1500;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let doc = json!({
            "providers": {
                "openai": {"type": "openai", "api_key_env": "KEY"},
                "anthropic": {"type": "anthropic", "api_key_env": "KEY"},
                "off": {"type": "openai", "api_key_env": "UNSET"}
            },
            "models": {
                "fast": {"provider": "openai", "model": "gpt-4o-mini"},
                "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                "dark": {"provider": "off"}
            },
            "max_request_bytes": MAX_REQUEST_BYTES
        });
        let env = |name: &str| (name == "KEY").then(|| "secret".to_string());
        match Config::from_json(doc.to_string().as_bytes(), &env) {
            Ok(c) => c,
            Err(e) => panic!("test config: {e}"),
        }
    })
}

/// Usually `good`, rarely anything at all: one bad field is enough to refuse a request, so a
/// request must have many good ones to reach the checks after them.
fn mostly<S>(good: S, _keys: &'static [&'static str]) -> BoxedStrategy<Value>
where
    S: Strategy<Value = Value> + 'static,
{
    prop_oneof![30 => good.boxed(), 1 => json(KEYS)].boxed()
}

/// A count: usually valid (at least 1), sometimes any number.
fn count() -> BoxedStrategy<Value> {
    prop_oneof![8 => (1u64..5000).prop_map(Value::from), 1 => number()].boxed()
}

fn model() -> BoxedStrategy<Value> {
    mostly(
        prop_oneof![
            30 => prop::sample::select(&["fast", "claude", "dark", "unknown"][..]).prop_map(Value::from),
            2 => text().prop_map(Value::from),
            1 => Just(Value::from("")),
        ],
        KEYS,
    )
}

fn content() -> BoxedStrategy<Value> {
    let part = prop_oneof![
        text().prop_map(|t| json!({"type": "text", "text": t})),
        text().prop_map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
    ];
    mostly(
        prop_oneof![
            20 => text().prop_map(Value::from),
            10 => prop::collection::vec(part, 0..3).prop_map(Value::Array),
            1 => Just(Value::Null),
        ],
        KEYS,
    )
}

fn message() -> BoxedStrategy<Value> {
    let role = prop_oneof![
        40 => prop::sample::select(&["system", "developer", "user", "assistant", "tool", "function"][..]),
        1 => Just("robot"),
    ];
    mostly(
        (
            role,
            prop::option::weighted(0.98, content()),
            prop::option::weighted(0.8, text()),
        )
            .prop_map(|(role, content, tool_call_id)| {
                let mut m = json!({"role": role});
                if let Some(c) = content {
                    m["content"] = c;
                }
                if let Some(id) = tool_call_id {
                    m["tool_call_id"] = json!(id);
                }
                m
            }),
        KEYS,
    )
}

/// Optional fields of a chat request: each present or not, usually with a valid value.
fn chat_fields() -> BoxedStrategy<Vec<(&'static str, Value)>> {
    let float =
        |lo: f64, hi: f64| mostly(prop_oneof![(lo..hi).prop_map(Value::from), number()], KEYS);
    let field = |name: &'static str, value: BoxedStrategy<Value>| {
        prop::option::weighted(0.3, value).prop_map(move |v| v.map(|v| (name, v)))
    };
    let stop = mostly(
        prop_oneof![
            text().prop_map(Value::from),
            prop::collection::vec(text().prop_map(Value::from), 0..6).prop_map(Value::Array),
        ],
        KEYS,
    );
    let tools = mostly(
        prop::collection::vec(
            mostly(
                text().prop_map(|n| json!({"type": "function", "function": {"name": n}})),
                KEYS,
            ),
            0..3,
        )
        .prop_map(Value::Array),
        KEYS,
    );
    (
        (
            field("stream", mostly(any::<bool>().prop_map(Value::from), KEYS)),
            field(
                "stream_options",
                mostly(
                    any::<bool>().prop_map(|b| json!({"include_usage": b})),
                    KEYS,
                ),
            ),
            field("max_tokens", mostly(count(), KEYS)),
            field("max_completion_tokens", mostly(count(), KEYS)),
            field("n", mostly(count(), KEYS)),
            field("temperature", float(0.0, 2.0)),
            field("top_p", float(0.0, 1.0)),
        ),
        (
            field("presence_penalty", float(-2.0, 2.0)),
            field("frequency_penalty", float(-2.0, 2.0)),
            field("stop", stop),
            field("seed", mostly(number(), KEYS)),
            field("user", mostly(text().prop_map(Value::from), KEYS)),
            field("tools", tools),
            field("tool_choice", mostly(Just(json!("auto")), KEYS)),
        ),
        field(
            "response_format",
            mostly(Just(json!({"type": "json_object"})), KEYS),
        ),
        field(
            "parallel_tool_calls",
            mostly(any::<bool>().prop_map(Value::from), KEYS),
        ),
    )
        .prop_map(|((a, b, c, d, e, f, g), (h, i, j, k, l, m, n), o, p)| {
            [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p]
                .into_iter()
                .flatten()
                .collect()
        })
        .boxed()
}

fn chat_body() -> BoxedStrategy<Vec<u8>> {
    let object = (
        prop::option::weighted(0.95, model()),
        prop::option::weighted(
            0.95,
            mostly(
                prop_oneof![30 => prop::collection::vec(message(), 1..5), 1 => Just(Vec::new())]
                    .prop_map(Value::Array),
                KEYS,
            ),
        ),
        chat_fields(),
    )
        .prop_map(|(model, messages, fields)| {
            let mut body = Map::new();
            if let Some(m) = model {
                body.insert("model".into(), m);
            }
            if let Some(m) = messages {
                body.insert("messages".into(), m);
            }
            for (k, v) in fields {
                body.insert(k.into(), v);
            }
            Value::Object(body).to_string().into_bytes()
        });
    prop_oneof![8 => object, 1 => prop::collection::vec(any::<u8>(), 0..200)].boxed()
}

fn embeddings_body() -> BoxedStrategy<Vec<u8>> {
    let input = mostly(
        prop_oneof![
            text().prop_map(Value::from),
            prop::collection::vec(text().prop_map(Value::from), 0..3).prop_map(Value::Array),
            prop::collection::vec(number(), 0..3).prop_map(Value::Array),
            prop::collection::vec(
                prop::collection::vec(number(), 0..3).prop_map(Value::Array),
                0..3
            )
            .prop_map(Value::Array),
        ],
        KEYS,
    );
    let format = mostly(
        prop::sample::select(&["float", "base64", "binary"][..]).prop_map(Value::from),
        KEYS,
    );
    let object = (
        prop::option::weighted(0.95, model()),
        prop::option::weighted(0.95, input),
        prop::option::of(format),
        prop::option::weighted(0.2, mostly(number(), KEYS)),
        prop::option::weighted(0.2, mostly(text().prop_map(Value::from), KEYS)),
    )
        .prop_map(|(model, input, format, dimensions, user)| {
            let mut body = Map::new();
            for (k, v) in [
                ("model", model),
                ("input", input),
                ("encoding_format", format),
                ("dimensions", dimensions),
                ("user", user),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            }
            Value::Object(body).to_string().into_bytes()
        });
    prop_oneof![8 => object, 1 => prop::collection::vec(any::<u8>(), 0..200)].boxed()
}

/// An error answer stays in proportion to the body: its message may quote a value of the
/// body (escaped, at most 6 bytes a byte) besides a fixed text.
fn check_error(error: &GatewayError, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        (400..600).contains(&error.status()),
        "status {}",
        error.status()
    );
    let answer = error.to_json();
    prop_assert!(
        answer.len() <= 6 * body.len() + 1024,
        "{} bytes",
        answer.len()
    );
    let v: Value = serde_json::from_slice(&answer)
        .map_err(|e| TestCaseError::fail(format!("error not JSON: {e}")))?;
    prop_assert!(v["error"]["message"].is_string());
    Ok(())
}

proptest! {
    #![proptest_config(runner(256))]

    #[test]
    fn chat_requests(body in chat_body()) {
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match parse_chat_request(&body) {
            Ok(req) => {
                prop_assert_eq!(Some(req.model.as_str()), parsed["model"].as_str());
                prop_assert_eq!(req.stream, parsed["stream"] == json!(true));
                prop_assert!(!req.include_usage || req.stream);
                let messages = parsed["messages"].as_array().map_or(0, Vec::len);
                prop_assert!(messages >= 1);
                prop_assert!(req.facts.prompt_tokens <= body.len() as u64);
                // Lowercasing may lengthen text (U+0130 -> "i̇"); both copies together stay
                // within 3 bytes a body byte.
                prop_assert!(req.facts.text.len() + req.facts.raw_text.len() <= 3 * body.len());
                let asked = parsed["max_completion_tokens"].as_u64().or(parsed["max_tokens"].as_u64());
                prop_assert_eq!(req.max_tokens, asked);
            }
            Err(e) => check_error(&e, &body)?,
        }
    }

    #[test]
    fn embeddings_requests(body in embeddings_body()) {
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match parse_embeddings_request(&body) {
            Ok(req) => {
                prop_assert_eq!(Some(req.model.as_str()), parsed["model"].as_str());
                prop_assert_eq!(req.base64, parsed["encoding_format"] == json!("base64"));
                prop_assert_eq!(embeddings_base64(&body), req.base64);
            }
            Err(e) => check_error(&e, &body)?,
        }
    }

    #[test]
    fn prepared_requests(
        (operation, body) in prop_oneof![
            chat_body().prop_map(|b| (Operation::Chat, b)),
            embeddings_body().prop_map(|b| (Operation::Embeddings, b)),
        ],
    ) {
        let config = config();
        match prepare(config, operation, &body) {
            Ok(prepared) => {
                prop_assert!(body.len() <= MAX_REQUEST_BYTES);
                prop_assert!(config.models.contains_key(&prepared.model));
                prop_assert_eq!(prepared.operation, operation);
            }
            Err(GatewayError::BodyTooLarge { limit }) => {
                prop_assert_eq!(limit, MAX_REQUEST_BYTES);
                prop_assert!(body.len() > MAX_REQUEST_BYTES);
            }
            Err(e) => {
                prop_assert!(body.len() <= MAX_REQUEST_BYTES);
                check_error(&e, &body)?;
            }
        }
    }
}
