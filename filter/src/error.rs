//! Every error the gateway answers with, mapped in one place to an HTTP status
//! and the OpenAI error shape `{"error":{"message","type","param","code"}}`.

use std::fmt;

/// An error the gateway reports to the client instead of (or in place of) a provider answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// The body is not valid JSON (or not UTF-8).
    InvalidJson(String),
    /// A required parameter is absent.
    MissingParameter(&'static str),
    /// A parameter has the wrong JSON type or an out-of-range value.
    InvalidParameter { param: String, message: String },
    /// The request body is larger than `max_request_bytes`.
    BodyTooLarge { limit: usize },
    /// The model is not configured.
    ModelNotFound(String),
    /// The model is configured but its provider is switched off (no key in the environment).
    ModelUnavailable {
        model: String,
        provider: String,
        key_env: String,
    },
    /// No such endpoint.
    UnknownUrl { method: String, path: String },
    /// Known endpoint, wrong method.
    MethodNotAllowed { method: String, path: String },
    /// Envoy or a provider answered with something that is not an OpenAI error body.
    Upstream { status: u32, message: String },
    /// The provider refused the gateway's own credentials: an operator problem, reported as a
    /// 502 so the client does not take it for its own key. The provider's message is not
    /// repeated (it may quote part of the key).
    ProviderAuth { provider: String, status: u32 },
    /// The caller's gateway key is missing, unknown or revoked (401), or may not use the
    /// model (403). `code`: `missing_api_key`, `invalid_api_key`, `revoked_api_key`,
    /// `model_not_allowed`.
    Auth {
        status: u32,
        code: &'static str,
        message: String,
    },
    /// A limit or budget of the caller's key, team or model is reached (429). `kind`:
    /// `requests`, `tokens` or `cost`.
    Quota { kind: &'static str, message: String },
    /// The global rate limit service did not answer and its failure mode is `deny` (503).
    RateLimitServiceDown,
    /// The provider's answer broke a rule the gateway enforces after it started: larger than a
    /// cap (`response_too_large`, `stream_event_too_large`) or cut short
    /// (`upstream_stream_reset`). 502, the provider's fault.
    ProviderFailure { code: &'static str, message: String },
    /// A guardrail blocked the request (`request`) or the answer. 400: the same request would
    /// be blocked again, and SDKs retry 5xx answers on their own (each retry a provider call
    /// blocked once more). A blocked JSON answer keeps the provider's status (already sent).
    Guardrail { guard: String, request: bool },
    /// A webhook guard could not answer and its failure mode is `closed` (503).
    GuardrailUnavailable { guard: String },
    /// The Responses API's store does not hold what the request names: a
    /// `previous_response_id` (400 `previous_response_not_found`) or a response asked for by id
    /// (404 `not_found`). The client's: the id is unknown, expired, deleted or another key's.
    StoreMiss {
        status: u32,
        code: &'static str,
        param: Option<&'static str>,
        message: String,
    },
    /// The gateway's own configuration does not fit the request (e.g. Envoy routed to a
    /// cluster the plugin does not know). An operator problem, never the caller's.
    Misconfigured(String),
}

impl GatewayError {
    pub fn status(&self) -> u32 {
        match self {
            Self::InvalidJson(_) | Self::MissingParameter(_) | Self::InvalidParameter { .. } => 400,
            Self::BodyTooLarge { .. } => 413,
            Self::ModelNotFound(_) | Self::ModelUnavailable { .. } | Self::UnknownUrl { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Upstream { status, .. } => *status,
            Self::ProviderAuth { .. } | Self::ProviderFailure { .. } => 502,
            Self::Auth { status, .. } => *status,
            Self::Quota { .. } => 429,
            Self::RateLimitServiceDown => 503,
            Self::Misconfigured(_) => 500,
            Self::Guardrail { .. } => 400,
            Self::GuardrailUnavailable { .. } => 503,
            Self::StoreMiss { status, .. } => *status,
        }
    }

    /// The OpenAI error `type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidJson(_)
            | Self::MissingParameter(_)
            | Self::InvalidParameter { .. }
            | Self::BodyTooLarge { .. }
            | Self::ModelNotFound(_)
            | Self::ModelUnavailable { .. }
            | Self::UnknownUrl { .. }
            | Self::MethodNotAllowed { .. } => "invalid_request_error",
            Self::Upstream { status, .. } => upstream_error_type(*status),
            Self::ProviderAuth { .. } | Self::ProviderFailure { .. } => "upstream_error",
            Self::Auth { .. } => "invalid_request_error",
            // OpenAI's own types for rate limits and exhausted credit.
            Self::Quota { kind: "cost", .. } => "insufficient_quota",
            Self::Quota { kind: "tokens", .. } => "tokens",
            Self::Quota { .. } => "requests",
            Self::RateLimitServiceDown => "server_error",
            Self::Misconfigured(_) => "server_error",
            Self::Guardrail { .. } => "invalid_request_error",
            Self::GuardrailUnavailable { .. } => "server_error",
            Self::StoreMiss { .. } => "invalid_request_error",
        }
    }

    /// The OpenAI error `code`: a stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::MissingParameter(_) => "missing_required_parameter",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::BodyTooLarge { .. } => "request_too_large",
            Self::ModelNotFound(_) | Self::ModelUnavailable { .. } => "model_not_found",
            Self::UnknownUrl { .. } => "unknown_url",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Upstream { status, .. } => upstream_code(*status),
            Self::ProviderAuth { .. } => "provider_auth_failed",
            Self::ProviderFailure { code, .. } => code,
            Self::Auth { code, .. } => code,
            Self::Quota { kind: "cost", .. } => "insufficient_quota",
            Self::Quota { .. } => "rate_limit_exceeded",
            Self::RateLimitServiceDown => "rate_limit_service_unavailable",
            Self::Misconfigured(_) => "gateway_misconfigured",
            Self::Guardrail { .. } => "guardrail_blocked",
            Self::GuardrailUnavailable { .. } => "guardrail_unavailable",
            Self::StoreMiss { code, .. } => code,
        }
    }

    /// Whose fault the error is, for logs and stats: `client` (the request or its key),
    /// `gateway` (its configuration or its own services) or `provider`.
    pub fn fault(&self) -> &'static str {
        match self {
            Self::InvalidJson(_)
            | Self::MissingParameter(_)
            | Self::InvalidParameter { .. }
            | Self::BodyTooLarge { .. }
            | Self::ModelNotFound(_)
            | Self::UnknownUrl { .. }
            | Self::MethodNotAllowed { .. }
            | Self::Auth { .. }
            | Self::Quota { .. }
            | Self::StoreMiss { .. }
            | Self::Guardrail { request: true, .. } => "client",
            Self::ModelUnavailable { .. }
            | Self::ProviderAuth { .. }
            | Self::RateLimitServiceDown
            | Self::GuardrailUnavailable { .. }
            | Self::Misconfigured(_) => "gateway",
            Self::Upstream { .. }
            | Self::ProviderFailure { .. }
            | Self::Guardrail { request: false, .. } => "provider",
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            Self::MissingParameter(p) => Some(p),
            Self::InvalidParameter { param, .. } => Some(param),
            Self::ModelNotFound(_) | Self::ModelUnavailable { .. } => Some("model"),
            Self::StoreMiss { param, .. } => *param,
            _ => None,
        }
    }

    /// The response body in the OpenAI error shape.
    pub fn to_json(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.error_type(),
                "param": self.param(),
                "code": self.code(),
            }
        });
        body.to_string().into_bytes()
    }
}

/// A 400 for a parameter: its name and why.
pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> GatewayError {
    GatewayError::InvalidParameter {
        param: param.into(),
        message: message.into(),
    }
}

/// The client's body as a JSON object (it was validated, but every translator parses it anew).
pub fn parse_object(
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, GatewayError> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(not_an_object()),
        Err(e) => Err(GatewayError::InvalidJson(e.to_string())),
    }
}

/// The client's body read in place ([`crate::json`]), as an object: what the request checks walk.
pub fn read_object(body: &[u8]) -> Result<crate::json::Object<'_>, GatewayError> {
    match crate::json::Json::from_slice(body) {
        Ok(crate::json::Json::Object(object)) => Ok(object),
        Ok(_) => Err(not_an_object()),
        Err(e) => Err(GatewayError::InvalidJson(e.to_string())),
    }
}

fn not_an_object() -> GatewayError {
    GatewayError::InvalidJson("the body must be a JSON object".into())
}

fn upstream_error_type(status: u32) -> &'static str {
    match status {
        401 | 403 => "authentication_error",
        404 => "invalid_request_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "upstream_error",
    }
}

fn upstream_code(status: u32) -> &'static str {
    match status {
        408 | 504 => "upstream_timeout",
        413 => "request_too_large",
        429 => "rate_limit_exceeded",
        502 | 503 => "upstream_unavailable",
        400..=499 => "upstream_rejected",
        _ => "upstream_error",
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson(detail) => {
                write!(f, "We could not parse the JSON body of your request: {detail}")
            }
            Self::MissingParameter(p) => write!(f, "Missing required parameter: '{p}'."),
            Self::InvalidParameter { message, .. } => f.write_str(message),
            Self::BodyTooLarge { limit } => {
                write!(f, "Request body is larger than the gateway's limit of {limit} bytes.")
            }
            Self::ModelNotFound(model) => write!(
                f,
                "The model '{model}' does not exist on this gateway. GET /v1/models lists the available models."
            ),
            Self::ModelUnavailable { model, provider, key_env } => write!(
                f,
                "The model '{model}' is served by provider '{provider}', which is switched off: its API key variable {key_env} is not set in the gateway's environment."
            ),
            Self::UnknownUrl { method, path } => write!(f, "Invalid URL ({method} {path})."),
            Self::MethodNotAllowed { method, path } => {
                write!(f, "Method {method} is not allowed on {path}.")
            }
            Self::Upstream { message, .. } => f.write_str(message),
            Self::Auth { message, .. }
            | Self::Quota { message, .. }
            | Self::ProviderFailure { message, .. }
            | Self::StoreMiss { message, .. } => f.write_str(message),
            Self::RateLimitServiceDown => f.write_str(
                "The gateway's rate limit service is unavailable and it is set to refuse requests meanwhile. Retry shortly.",
            ),
            Self::ProviderAuth { provider, status } => write!(
                f,
                "Provider '{provider}' refused the gateway's credentials (HTTP {status}). This is not your key: the gateway operator must check the provider key."
            ),
            Self::Misconfigured(detail) => write!(f, "The gateway is misconfigured: {detail}"),
            Self::Guardrail { guard, request: true } => write!(
                f,
                "The request was blocked by the gateway's guardrail '{guard}'; nothing was sent to the model."
            ),
            Self::GuardrailUnavailable { guard } => write!(
                f,
                "The gateway's guardrail '{guard}' could not check the request; it was not sent to the model. Retry later."
            ),
            Self::Guardrail { guard, request: false } => write!(
                f,
                "The model's answer was blocked by the gateway's guardrail '{guard}'."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(e: &GatewayError) -> Value {
        serde_json::from_slice(&e.to_json()).unwrap()
    }

    #[test]
    fn every_error_has_the_openai_shape() {
        let cases = [
            GatewayError::InvalidJson("x".into()),
            GatewayError::MissingParameter("model"),
            GatewayError::BodyTooLarge { limit: 10 },
            GatewayError::ModelNotFound("m".into()),
            GatewayError::UnknownUrl {
                method: "GET".into(),
                path: "/x".into(),
            },
            GatewayError::Upstream {
                status: 503,
                message: "no healthy upstream".into(),
            },
            GatewayError::Misconfigured("x".into()),
            GatewayError::ProviderFailure {
                code: "response_too_large",
                message: "x".into(),
            },
        ];
        for e in cases {
            let v = parsed(&e);
            let err = &v["error"];
            assert!(
                err["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{v}"
            );
            assert!(err["type"].is_string(), "{v}");
            assert!(err["code"].is_string(), "{v}");
            assert!(err.get("param").is_some(), "{v}");
        }
    }

    #[test]
    fn statuses_follow_the_kind() {
        assert_eq!(GatewayError::InvalidJson(String::new()).status(), 400);
        assert_eq!(GatewayError::BodyTooLarge { limit: 1 }.status(), 413);
        assert_eq!(GatewayError::ModelNotFound("m".into()).status(), 404);
        let rate = GatewayError::Upstream {
            status: 429,
            message: "slow down".into(),
        };
        assert_eq!(
            (rate.status(), rate.error_type()),
            (429, "rate_limit_error")
        );
    }

    #[test]
    fn faults_are_told_apart() {
        assert_eq!(GatewayError::MissingParameter("model").fault(), "client");
        assert_eq!(GatewayError::Misconfigured("x".into()).fault(), "gateway");
        let provider_auth = GatewayError::ProviderAuth {
            provider: "p".into(),
            status: 401,
        };
        assert_eq!(
            provider_auth.fault(),
            "gateway",
            "the operator's key, not the caller's"
        );
        let cut = GatewayError::ProviderFailure {
            code: "upstream_stream_reset",
            message: "x".into(),
        };
        assert_eq!(cut.fault(), "provider");
    }

    #[test]
    fn model_errors_name_the_param_and_model() {
        let v = parsed(&GatewayError::ModelNotFound("gpt-9".into()));
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
    }
}
