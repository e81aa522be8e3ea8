//! `POST /v1/responses` body → Chat Completions body: the top-level parameters (tools,
//! `tool_choice`, `text.format`, `reasoning`, sampling, streaming) and the refusals of what
//! needs a response store or OpenAI's own tools. The `input` items are `input.rs`'s.
//!
//! Reference: https://platform.openai.com/docs/api-reference/responses/create and the
//! openai-python SDK's `types/responses/response_create_params.py`.

use crate::chat::wrong_type;
use serde_json::{json, Map, Value};

use super::input::messages_of;
use super::openai_only::set_aside;
use super::tools::{tool_choice_of, tools_of};
use super::Context;
use crate::chat::{check_name, MAX_OUTPUT_TOKENS};
use crate::error::{invalid, parse_object, GatewayError};

type Object = Map<String, Value>;

/// The client's body → an OpenAI Chat Completions body and what the answer must echo, or the
/// 400 to answer (the parameter named, the client's fault).
pub fn to_chat(body: &[u8]) -> Result<(Vec<u8>, Context), GatewayError> {
    let mut req = parse_object(body)?;
    // What only OpenAI's own Responses API can take is kept out of the chat form; the request
    // can then go only to a provider that serves that API (the client's body goes there).
    let untranslatable = set_aside(&mut req);
    refuse_stateful(&req)?;
    let model = match get(&req, "model") {
        None => return Err(GatewayError::MissingParameter("model")),
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(other) => return Err(wrong_type("model", "a non-empty string", other)),
    };
    let instructions = match get(&req, "instructions") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => return Err(wrong_type("instructions", "a string", other)),
    };
    let mut messages = Vec::new();
    if let Some(text) = instructions {
        messages.push(json!({"role": "system", "content": text}));
    }
    match get(&req, "input") {
        None => return Err(GatewayError::MissingParameter("input")),
        Some(input) => messages.extend(messages_of(input)?),
    }
    if messages.is_empty() {
        return Err(invalid(
            "input",
            "'input' must contain at least one message.",
        ));
    }

    let mut chat = Object::new();
    chat.insert("model".into(), Value::from(model.as_str()));
    chat.insert("messages".into(), Value::Array(messages));
    let tools = tools_of(&req)?;
    let has_tools = !tools.is_empty();
    if has_tools {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = get(&req, "tool_choice") {
        chat.insert("tool_choice".into(), tool_choice_of(choice, has_tools)?);
    }
    let text = get(&req, "text");
    if let Some(text) = text {
        text_options(text, &mut chat)?;
    }
    let reasoning = get(&req, "reasoning");
    if let Some(effort) = reasoning_effort(reasoning)? {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(max) = get(&req, "max_output_tokens") {
        match max.as_i64() {
            Some(n) if (1..=MAX_OUTPUT_TOKENS).contains(&n) => {
                chat.insert("max_completion_tokens".into(), max.clone());
            }
            _ => {
                return Err(invalid(
                    "max_output_tokens",
                    format!("Invalid 'max_output_tokens': expected an integer from 1 to {MAX_OUTPUT_TOKENS}, but got {max}."),
                ))
            }
        }
    }
    copy_number(&req, &mut chat, "temperature", 0.0, 2.0)?;
    copy_number(&req, &mut chat, "top_p", 0.0, 1.0)?;
    let stream = bool_of(&req, "stream")?.unwrap_or(false);
    if stream {
        chat.insert("stream".into(), Value::Bool(true));
        // Usage is reported in `response.completed` whether or not the client asked.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let parallel = bool_of(&req, "parallel_tool_calls")?;
    if let Some(parallel) = parallel {
        chat.insert("parallel_tool_calls".into(), Value::Bool(parallel));
    }
    // Accepted, treated as false: the gateway keeps nothing (the chat body leaves `store` out).
    bool_of(&req, "store")?;
    for key in [
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
    ] {
        if let Some(value) = get(&req, key) {
            if !value.is_string() {
                return Err(wrong_type(key, "a string", value));
            }
            chat.insert(key.into(), value.clone());
        }
    }
    if let Some(metadata) = get(&req, "metadata") {
        if !metadata.is_object() {
            return Err(wrong_type("metadata", "an object", metadata));
        }
        chat.insert("metadata".into(), metadata.clone());
    }

    let echo = echo_of(&req, instructions, text, reasoning, parallel);
    let ctx = Context {
        model,
        stream,
        echo,
        fallback_created: 0,
        fallback_id: String::new(),
        untranslatable,
        minted_id: None,
    };
    Ok((Value::Object(chat).to_string().into_bytes(), ctx))
}

/// What the gateway cannot do without storing responses, or a reusable prompt (kept at OpenAI).
fn refuse_stateful(req: &Object) -> Result<(), GatewayError> {
    if get(req, "previous_response_id").is_some() {
        return Err(invalid(
            "previous_response_id",
            "'previous_response_id' is not supported: this gateway has no response store configured (it is stateless, as with store: false). Send the whole conversation in 'input' instead.",
        ));
    }
    if get(req, "conversation").is_some() {
        return Err(invalid(
            "conversation",
            "'conversation' is not supported: this gateway has no conversation store configured (it is stateless). Send the whole conversation in 'input' instead.",
        ));
    }
    if bool_of(req, "background")? == Some(true) {
        return Err(invalid(
            "background",
            "'background: true' is not supported: background responses need a response store, and this gateway has none configured. Leave 'background' unset or false.",
        ));
    }
    if get(req, "prompt").is_some() {
        return Err(invalid(
            "prompt",
            "'prompt' (a reusable prompt stored at OpenAI) is not supported by this gateway. Send 'instructions' and 'input' instead.",
        ));
    }
    match get(req, "truncation") {
        None => Ok(()),
        // `auto` was set aside for a provider of the Responses API (`openai_only`).
        Some(Value::String(s)) if s == "disabled" => Ok(()),
        Some(other) => Err(invalid(
            "truncation",
            format!(
                "Invalid value for 'truncation': expected 'auto' or 'disabled', but got {other}."
            ),
        )),
    }
}

/// `text.format` → `response_format` (`json_schema`'s flat `{name, schema, strict,
/// description}` nests under `json_schema`), `text.verbosity` → `verbosity`.
fn text_options(text: &Value, chat: &mut Object) -> Result<(), GatewayError> {
    let Some(text) = text.as_object() else {
        return Err(wrong_type("text", "an object", text));
    };
    if let Some(verbosity) = get(text, "verbosity") {
        match verbosity.as_str() {
            Some("low" | "medium" | "high") => {
                chat.insert("verbosity".into(), verbosity.clone());
            }
            _ => {
                return Err(invalid(
                    "text.verbosity",
                    format!("Invalid value for 'text.verbosity': expected 'low', 'medium' or 'high', but got {verbosity}."),
                ))
            }
        }
    }
    let Some(format) = get(text, "format") else {
        return Ok(());
    };
    let Some(format) = format.as_object() else {
        return Err(wrong_type("text.format", "an object", format));
    };
    let response_format = match get(format, "type").and_then(Value::as_str) {
        Some("text") => json!({"type": "text"}),
        Some("json_object") => json!({"type": "json_object"}),
        Some("json_schema") => {
            let name = match get(format, "name") {
                Some(Value::String(n)) => {
                    check_name(n, "text.format.name")?;
                    n.clone()
                }
                None => return Err(invalid("text.format.name", "Missing required parameter: 'text.format.name'.")),
                Some(other) => return Err(wrong_type("text.format.name", "a non-empty string", other)),
            };
            let schema = match get(format, "schema") {
                Some(schema @ Value::Object(_)) => schema.clone(),
                None => return Err(invalid("text.format.schema", "Missing required parameter: 'text.format.schema'.")),
                Some(other) => return Err(wrong_type("text.format.schema", "an object", other)),
            };
            let mut json_schema = Object::new();
            json_schema.insert("name".into(), Value::from(name));
            json_schema.insert("schema".into(), schema);
            for (key, is_ok, expected) in [
                ("description", Value::is_string as fn(&Value) -> bool, "a string"),
                ("strict", Value::is_boolean, "a boolean"),
            ] {
                if let Some(value) = get(format, key) {
                    if !is_ok(value) {
                        return Err(wrong_type(&format!("text.format.{key}"), expected, value));
                    }
                    json_schema.insert(key.into(), value.clone());
                }
            }
            json!({"type": "json_schema", "json_schema": json_schema})
        }
        _ => {
            return Err(invalid(
                "text.format.type",
                "Invalid value for 'text.format.type': expected 'text', 'json_object' or 'json_schema'.",
            ))
        }
    };
    chat.insert("response_format".into(), response_format);
    Ok(())
}

/// `reasoning.effort` (the one part a chat request can carry; `summary` asks for reasoning
/// summaries, which chat answers do not have).
fn reasoning_effort(reasoning: Option<&Value>) -> Result<Option<&Value>, GatewayError> {
    let Some(reasoning) = reasoning else {
        return Ok(None);
    };
    let Some(reasoning) = reasoning.as_object() else {
        return Err(wrong_type("reasoning", "an object", reasoning));
    };
    match get(reasoning, "effort") {
        None => Ok(None),
        Some(effort @ Value::String(e)) if EFFORTS.contains(&e.as_str()) => Ok(Some(effort)),
        Some(other) => Err(invalid(
            "reasoning.effort",
            format!(
                "Invalid value for 'reasoning.effort': expected one of {}, but got {other}.",
                EFFORTS.join(", ")
            ),
        )),
    }
}

/// The efforts a chat request's `reasoning_effort` takes (the gateway's chat checks, from the
/// API reference), so that no effort is refused under the chat name.
const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];

/// The response object's fields that repeat the request, with the API's defaults.
fn echo_of(
    req: &Object,
    instructions: Option<&str>,
    text: Option<&Value>,
    reasoning: Option<&Value>,
    parallel: Option<bool>,
) -> Object {
    let given = |key: &str| get(req, key).cloned().unwrap_or(Value::Null);
    let reasoning = reasoning.and_then(Value::as_object);
    let of_reasoning = |key: &str| {
        reasoning
            .and_then(|r| get(r, key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut echo = Object::new();
    for (key, value) in [
        ("background", Value::Bool(false)),
        (
            "instructions",
            instructions.map_or(Value::Null, Value::from),
        ),
        ("max_output_tokens", given("max_output_tokens")),
        ("max_tool_calls", given("max_tool_calls")),
        (
            "metadata",
            get(req, "metadata").cloned().unwrap_or_else(|| json!({})),
        ),
        ("parallel_tool_calls", Value::Bool(parallel.unwrap_or(true))),
        ("previous_response_id", Value::Null),
        ("prompt_cache_key", given("prompt_cache_key")),
        (
            "reasoning",
            json!({"effort": of_reasoning("effort"), "summary": of_reasoning("summary")}),
        ),
        ("safety_identifier", given("safety_identifier")),
        ("service_tier", given("service_tier")),
        ("store", Value::Bool(false)),
        ("temperature", given("temperature")),
        (
            "text",
            text.cloned()
                .unwrap_or_else(|| json!({"format": {"type": "text"}})),
        ),
        (
            "tool_choice",
            get(req, "tool_choice")
                .cloned()
                .unwrap_or_else(|| Value::from("auto")),
        ),
        (
            "tools",
            get(req, "tools").cloned().unwrap_or_else(|| json!([])),
        ),
        ("top_logprobs", given("top_logprobs")),
        ("top_p", given("top_p")),
        ("truncation", Value::from("disabled")),
        ("user", given("user")),
    ] {
        echo.insert(key.to_string(), value);
    }
    echo
}

fn copy_number(
    req: &Object,
    chat: &mut Object,
    key: &str,
    min: f64,
    max: f64,
) -> Result<(), GatewayError> {
    if let Some(value) = get(req, key) {
        match value.as_f64() {
            Some(n) if (min..=max).contains(&n) => {
                chat.insert(key.into(), value.clone());
            }
            _ => {
                return Err(invalid(
                    key,
                    format!(
                        "Invalid '{key}': expected a number from {min} to {max}, but got {value}."
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn bool_of(req: &Object, key: &str) -> Result<Option<bool>, GatewayError> {
    match get(req, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(key, "a boolean", other)),
    }
}

/// A field; `null` counts as absent (SDKs send `null` for "unset").
pub(super) fn get<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}
