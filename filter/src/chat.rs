//! Validation of an OpenAI `POST /v1/chat/completions` body before anything is forwarded.
//! A request that fails here never reaches a provider. The checks follow the OpenAI API
//! reference for the Chat Completions request object.

use serde_json::{Map, Value};

use crate::error::{invalid, parse_object, GatewayError};
use crate::routing::Facts;

/// What the gateway needs to know of a valid chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// The client asked for a usage chunk at the end of the stream.
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
    /// What content rules and cost estimates look at.
    pub facts: Facts,
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

pub fn parse_chat_request(body: &[u8]) -> Result<ChatRequest, GatewayError> {
    let req = parse_object(body)?;

    let model = match req.get("model") {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("model")),
        Some(Value::String(m)) if m.is_empty() => {
            return Err(invalid("model", "'model' must not be empty."))
        }
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    validate_messages(req.get("messages"))?;

    let stream = optional_bool(&req, "stream", "stream")?.unwrap_or(false);
    let include_usage = match req.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(opts)) => {
            if !stream {
                return Err(invalid(
                    "stream_options",
                    "'stream_options' is only allowed when 'stream' is true.",
                ));
            }
            optional_bool(opts, "include_usage", "stream_options.include_usage")?.unwrap_or(false)
        }
        Some(other) => return Err(wrong_type("stream_options", "an object", other)),
    };

    let max_tokens = optional_positive_int(&req, "max_completion_tokens")?
        .or(optional_positive_int(&req, "max_tokens")?);
    optional_positive_int(&req, "n")?;
    optional_number_in(&req, "temperature", 0.0, 2.0)?;
    optional_number_in(&req, "top_p", 0.0, 1.0)?;
    optional_number_in(&req, "presence_penalty", -2.0, 2.0)?;
    optional_number_in(&req, "frequency_penalty", -2.0, 2.0)?;
    validate_stop(req.get("stop"))?;
    optional_of(&req, "seed", "an integer", |v| v.is_i64() || v.is_u64())?;
    optional_of(&req, "user", "a string", Value::is_string)?;
    optional_of(&req, "tools", "an array", Value::is_array)?;
    optional_of(&req, "tool_choice", "a string or an object", |v| {
        v.is_string() || v.is_object()
    })?;
    optional_of(&req, "response_format", "an object", Value::is_object)?;
    optional_of(&req, "parallel_tool_calls", "a boolean", Value::is_boolean)?;
    if let Some(Value::Array(tools)) = req.get("tools") {
        for (i, tool) in tools.iter().enumerate() {
            if !tool.is_object() {
                return Err(wrong_type(&format!("tools[{i}]"), "an object", tool));
            }
        }
    }
    let facts = facts_of(&req, max_tokens);
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        max_tokens,
        facts,
    })
}

/// What the gateway needs to know of a valid embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    pub model: String,
    /// The client wants base64 vectors (the OpenAI SDKs' default).
    pub base64: bool,
}

/// Whether an (already validated) embeddings body asks for base64 vectors.
pub fn embeddings_base64(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Format<'a> {
        #[serde(borrow)]
        encoding_format: Option<&'a str>,
    }
    serde_json::from_slice::<Format>(body).is_ok_and(|f| f.encoding_format == Some("base64"))
}

/// Validates `POST /v1/embeddings` (OpenAI API reference, "Create embeddings").
pub fn parse_embeddings_request(body: &[u8]) -> Result<EmbeddingsRequest, GatewayError> {
    let req = parse_object(body)?;
    let model = match req.get("model") {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("model")),
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) => return Err(invalid("model", "'model' must not be empty.")),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    let is_tokens = |v: &Value| {
        v.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_u64))
    };
    match req.get("input") {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("input")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(invalid("input", "'input' must not be empty."))
        }
        Some(Value::String(_)) => {}
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(invalid("input", "'input' must not be an empty array."))
        }
        Some(Value::Array(items))
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| !s.is_empty()))
                || items.iter().all(Value::is_u64)
                || items.iter().all(is_tokens) => {}
        Some(other) => {
            return Err(wrong_type(
                "input",
                "a string, an array of strings, or token arrays",
                other,
            ))
        }
    }
    let base64 = match req.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format!("Invalid 'encoding_format': {other}; use 'float' or 'base64'."),
            ))
        }
    };
    optional_positive_int(&req, "dimensions")?;
    optional_of(&req, "user", "a string", Value::is_string)?;
    Ok(EmbeddingsRequest { model, base64 })
}

fn validate_messages(messages: Option<&Value>) -> Result<(), GatewayError> {
    let messages = match messages {
        None | Some(Value::Null) => return Err(GatewayError::MissingParameter("messages")),
        Some(Value::Array(m)) => m,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "'messages' must contain at least one message.",
        ));
    }
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let Value::Object(m) = message else {
            return Err(wrong_type(&param, "an object", message));
        };
        let role = match m.get("role") {
            Some(Value::String(r)) => r.as_str(),
            None => {
                return Err(invalid(
                    format!("{param}.role"),
                    format!("Missing required parameter: '{param}.role'."),
                ))
            }
            Some(other) => return Err(wrong_type(&format!("{param}.role"), "a string", other)),
        };
        if !ROLES.contains(&role) {
            return Err(invalid(
                format!("{param}.role"),
                format!(
                    "Invalid value: '{role}'. Supported values are: {}.",
                    ROLES.join(", ")
                ),
            ));
        }
        match m.get("content") {
            Some(Value::String(_)) | Some(Value::Array(_)) => {}
            // An assistant message may carry only tool calls.
            None | Some(Value::Null) if role == "assistant" => {}
            None | Some(Value::Null) => {
                return Err(invalid(
                    format!("{param}.content"),
                    format!("Missing required parameter: '{param}.content'."),
                ))
            }
            Some(other) => {
                return Err(wrong_type(
                    &format!("{param}.content"),
                    "a string or an array of content parts",
                    other,
                ))
            }
        }
        if role == "tool" && !m.get("tool_call_id").is_some_and(Value::is_string) {
            return Err(invalid(
                format!("{param}.tool_call_id"),
                format!("Missing required parameter: '{param}.tool_call_id'."),
            ));
        }
    }
    Ok(())
}

/// Estimated prompt tokens (about four characters a token, plus a few a message), whether images,
/// tools or code are present, the text (lowercase) and the user.
fn facts_of(req: &Map<String, Value>, max_tokens: Option<u64>) -> Facts {
    let mut text = String::new();
    let mut images = false;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for message in messages {
        match message.get("content") {
            Some(Value::String(s)) => push_text(&mut text, s),
            Some(Value::Array(parts)) => {
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("image_url") => images = true,
                        _ => push_text(
                            &mut text,
                            part.get("text").and_then(Value::as_str).unwrap_or_default(),
                        ),
                    }
                }
            }
            _ => {}
        }
    }
    let lower = text.to_lowercase();
    let code = lower.contains("```")
        || [
            "\ndef ",
            "\nfn ",
            "function ",
            "#include",
            "\nclass ",
            "\nimport ",
            "select * from",
        ]
        .iter()
        .any(|p| lower.contains(p));
    Facts {
        prompt_tokens: (text.chars().count() as u64).div_ceil(4) + 4 * messages.len() as u64,
        max_tokens,
        images,
        tools: req
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty()),
        code,
        text: lower,
        raw_text: text,
        user: req.get("user").and_then(Value::as_str).map(str::to_string),
    }
}

fn push_text(text: &mut String, s: &str) {
    if !s.is_empty() {
        text.push('\n');
        text.push_str(s);
    }
}

fn validate_stop(stop: Option<&Value>) -> Result<(), GatewayError> {
    match stop {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            if items.len() > 4 {
                Err(invalid("stop", "'stop' may hold at most 4 sequences."))
            } else {
                Ok(())
            }
        }
        Some(other) => Err(wrong_type("stop", "a string or an array of strings", other)),
    }
}

fn optional_bool(
    obj: &Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<Option<bool>, GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(param, "a boolean", other)),
    }
}

fn optional_positive_int(
    obj: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<u64>, GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ if v.is_i64() || v.is_u64() => Err(invalid(
                key,
                format!("Invalid '{key}': must be at least 1."),
            )),
            _ => Err(wrong_type(key, "an integer", v)),
        },
    }
}

fn optional_number_in(
    obj: &Map<String, Value>,
    key: &'static str,
    min: f64,
    max: f64,
) -> Result<(), GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(x) => Err(invalid(
                key,
                format!("Invalid '{key}': {x} is outside [{min}, {max}]."),
            )),
            None => Err(wrong_type(key, "a number", v)),
        },
    }
}

fn optional_of(
    obj: &Map<String, Value>,
    key: &'static str,
    expected: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<(), GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if ok(v) => Ok(()),
        Some(v) => Err(wrong_type(key, expected, v)),
    }
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> GatewayError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    invalid(
        param,
        format!("Invalid type for '{param}': expected {expected}, but got {got}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

    fn with(field: &str, value: &str) -> String {
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"{field}":{value}}}"#
        )
    }

    #[test]
    fn minimal_and_full_requests_pass() {
        let r = parse_chat_request(MINIMAL.as_bytes()).unwrap();
        assert_eq!(
            (r.model.as_str(), r.stream, r.include_usage, r.max_tokens),
            ("m", false, false, None)
        );
        assert_eq!(
            (r.facts.images, r.facts.tools, r.facts.code),
            (false, false, false)
        );
        assert_eq!(
            r.facts.prompt_tokens,
            1 + 4,
            "'hi' is one token, plus four for the message"
        );
        let full = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},
            "max_completion_tokens":50,"temperature":0.2,"top_p":1,"n":1,"stop":["x"],"seed":7,"user":"u",
            "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"auto",
            "response_format":{"type":"json_object"},
            "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"c1","content":"42"}]}"#;
        let r = parse_chat_request(full.as_bytes()).unwrap();
        assert!(r.facts.images && r.facts.tools && !r.facts.code);
        assert_eq!(r.facts.user.as_deref(), Some("u"));
        let code = parse_chat_request(br#"{"model":"m","messages":[{"role":"user","content":"Fix:\n```rust\nfn main() {}\n```"}]}"#).unwrap();
        assert!(code.facts.code && code.facts.text.contains("fix:"));
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(50));
    }

    /// Each bad request gets a 400 naming the parameter.
    #[test]
    fn bad_requests_name_the_parameter() {
        let cases: Vec<(String, &str, &str)> = vec![
            ("{".into(), "", "invalid_json"),
            ("[1,2]".into(), "", "invalid_json"),
            (
                r#"{"messages":[{"role":"user","content":"hi"}]}"#.into(),
                "model",
                "missing_required_parameter",
            ),
            (
                r#"{"model":5,"messages":[]}"#.into(),
                "model",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m"}"#.into(),
                "messages",
                "missing_required_parameter",
            ),
            (
                r#"{"model":"m","messages":"hi"}"#.into(),
                "messages",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[]}"#.into(),
                "messages",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[3]}"#.into(),
                "messages[0]",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[{"content":"x"}]}"#.into(),
                "messages[0].role",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#.into(),
                "messages[0].role",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}]}"#.into(),
                "messages[0].content",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":1}]}"#.into(),
                "messages[0].content",
                "invalid_parameter",
            ),
            (
                r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#.into(),
                "messages[0].tool_call_id",
                "invalid_parameter",
            ),
            (with("stream", "\"yes\""), "stream", "invalid_parameter"),
            (
                with("stream_options", "{\"include_usage\":true}"),
                "stream_options",
                "invalid_parameter",
            ),
            (with("max_tokens", "0"), "max_tokens", "invalid_parameter"),
            (with("max_tokens", "1.5"), "max_tokens", "invalid_parameter"),
            (with("temperature", "3"), "temperature", "invalid_parameter"),
            (
                with("temperature", "\"hot\""),
                "temperature",
                "invalid_parameter",
            ),
            (with("top_p", "-0.1"), "top_p", "invalid_parameter"),
            (with("stop", "[1]"), "stop", "invalid_parameter"),
            (
                with("stop", r#"["a","b","c","d","e"]"#),
                "stop",
                "invalid_parameter",
            ),
            (with("tools", "{}"), "tools", "invalid_parameter"),
            (with("tools", "[1]"), "tools[0]", "invalid_parameter"),
            (with("n", "-1"), "n", "invalid_parameter"),
        ];
        for (body, param, code) in cases {
            let e = parse_chat_request(body.as_bytes()).expect_err(&body);
            assert_eq!(e.status(), 400, "{body}");
            assert_eq!(e.code(), code, "{body}: {e}");
            assert_eq!(e.param().unwrap_or(""), param, "{body}: {e}");
        }
    }

    #[test]
    fn embeddings_requests() {
        let ok = parse_embeddings_request(
            br#"{"model":"e","input":["a","b"],"encoding_format":"base64"}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            EmbeddingsRequest {
                model: "e".into(),
                base64: true
            }
        );
        assert!(parse_embeddings_request(br#"{"model":"e","input":"a"}"#).is_ok());
        assert!(parse_embeddings_request(br#"{"model":"e","input":[[1,2],[3]]}"#).is_ok());
        let cases: &[(&[u8], &str)] = &[
            (br#"{"input":"a"}"#, "model"),
            (br#"{"model":"e"}"#, "input"),
            (br#"{"model":"e","input":""}"#, "input"),
            (br#"{"model":"e","input":[]}"#, "input"),
            (br#"{"model":"e","input":[1,"a"]}"#, "input"),
            (
                br#"{"model":"e","input":"a","encoding_format":"hex"}"#,
                "encoding_format",
            ),
            (br#"{"model":"e","input":"a","dimensions":0}"#, "dimensions"),
        ];
        for (body, param) in cases {
            let e = parse_embeddings_request(body).unwrap_err();
            assert_eq!(
                (e.status(), e.param()),
                (400, Some(*param)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
