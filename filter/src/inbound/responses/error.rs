//! Errors on the Responses API. An HTTP error has the same body as on Chat Completions,
//! `{"error": {"message", "type", "param", "code"}}`; inside a stream a failure is an `error`
//! event (free-form `code`) and a `response.failed` event whose `response.error.code` is one of
//! the API's fixed codes.
//!
//! Reference: https://platform.openai.com/docs/guides/error-codes, the SDK's
//! `types/responses/response_error.py` (the code enum) and `response_error_event.py`.

use serde_json::{json, Value};

use crate::error::GatewayError;

/// Longest provider text quoted in an error message.
const MAX_QUOTED_CHARS: usize = 500;

/// An OpenAI-shaped error body and its status → the Responses API's error body: the same
/// `{"error": {...}}` shape, its four fields always present. A body that is not one (a proxy's
/// HTML page, empty) becomes one that quotes its start, typed by the status.
pub fn error_from_chat(status: u32, openai_error: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(openai_error).ok();
    let error = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| e.get("message").is_some_and(Value::is_string));
    match error {
        Some(error) => {
            let fallback = GatewayError::Upstream {
                status,
                message: String::new(),
            };
            let field = |key: &str| error.get(key).filter(|v| v.is_string()).cloned();
            json!({"error": {
                "message": field("message"),
                "type": field("type").unwrap_or_else(|| Value::from(fallback.error_type())),
                "param": field("param"),
                "code": field("code").unwrap_or_else(|| Value::from(fallback.code())),
            }})
            .to_string()
            .into_bytes()
        }
        None => {
            let text: String = String::from_utf8_lossy(openai_error)
                .chars()
                .take(MAX_QUOTED_CHARS)
                .collect();
            let message = if text.trim().is_empty() {
                format!("The provider answered HTTP {status} without an error message.")
            } else {
                format!("The provider answered HTTP {status}: {}", text.trim())
            };
            GatewayError::Upstream { status, message }.to_json()
        }
    }
}

/// A failure inside a stream: what the `error` event says, and the `response.error` object.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            param: None,
        }
    }

    /// The `error` object of an OpenAI stream's error event (`{"error": {...}}`).
    pub fn of_openai_error(error: &Value) -> Self {
        let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_string);
        Self {
            code: text("code")
                .or_else(|| text("type"))
                .unwrap_or_else(|| "upstream_error".to_string()),
            message: text("message")
                .unwrap_or_else(|| "The provider reported an error in the stream.".to_string()),
            param: text("param"),
        }
    }

    /// `response.error`: the message, and the one fixed code that fits (a rate limit, or a
    /// server error, which is every other failure of a provider or the gateway mid-stream).
    pub fn response_error(&self) -> Value {
        let code = if self.code.contains("rate_limit") {
            "rate_limit_exceeded"
        } else {
            "server_error"
        };
        json!({"code": code, "message": self.message})
    }
}
