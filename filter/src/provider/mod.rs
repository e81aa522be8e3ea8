//! Provider translators: one module per wire format behind one trait. The upstream filter
//! asks the translator of the cluster it runs in for the path, headers and body of every
//! attempt, so a retry that lands on another provider is translated afresh.
//!
//! Adding a provider family: a module here, a variant in [`ProviderKind`], a row in `NAMES`.

mod openai;

use crate::config::Provider;
use crate::error::GatewayError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI and every server that speaks its API (Groq, Mistral, vLLM, Ollama, ...).
    OpenAi,
}

impl ProviderKind {
    pub const NAMES: &'static [&'static str] = &["openai"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
        }
    }

    pub fn default_path_prefix(self) -> &'static str {
        match self {
            Self::OpenAi => "/v1",
        }
    }

    pub fn translator(self) -> &'static dyn Translator {
        match self {
            Self::OpenAi => &openai::OpenAiCompatible,
        }
    }
}

/// Headers that may carry a client's or another provider's credentials or protocol version.
/// Every attempt removes them all before setting its own provider's, because header changes of
/// one attempt carry into the next.
pub const PROVIDER_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "anthropic-version",
    "anthropic-beta",
    "openai-organization",
    "openai-project",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "cookie",
];

/// What is known of one attempt against one provider.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub provider: &'a Provider,
    /// The model name the client sent.
    pub client_model: &'a str,
    /// The model name this provider knows it by.
    pub upstream_model: &'a str,
    pub stream: bool,
    /// The client itself asked for `stream_options.include_usage`.
    pub client_asked_usage: bool,
}

/// Path and headers of one attempt, besides the removal of [`PROVIDER_HEADERS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
}

pub trait Translator: Sync {
    /// The path and headers (credentials included) for this attempt.
    fn request_head(&self, attempt: &Attempt) -> RequestHead;

    /// Whether [`Translator::request_body`] would leave the body as it is; lets the filter
    /// skip buffering and parsing the body.
    fn body_unchanged(&self, attempt: &Attempt) -> bool;

    /// The body for this attempt, from the client's (already validated) OpenAI body.
    fn request_body(&self, attempt: &Attempt, body: &[u8]) -> Result<Vec<u8>, GatewayError>;
}
