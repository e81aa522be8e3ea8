//! Provider translators: one module per wire format behind one trait. The upstream filter asks
//! the translator of the cluster it runs in for the path, headers and body of every attempt, and
//! for a response translator, so a retry that lands on another provider is translated afresh.
//!
//! Adding a wire format: a module here, a variant in [`ProviderKind`] and in
//! [`ProviderSettings`] (its settings type lives in its module; [`config`] compiles the
//! `providers.<id>` section). Adding an OpenAI-compatible provider: a row in
//! [`openai::COMPATIBLE`].

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod cache_marks;
pub mod cohere;
pub mod config;
pub mod gemini;
pub mod headers;
pub mod openai;
pub mod openai_format;
pub mod responses;

use crate::error::GatewayError;

pub use config::{Credentials, Provider, ProviderSettings, Secret};
pub use openai::CompatRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI and every server speaking its API; the row holds its defaults and quirks.
    OpenAiCompatible(&'static CompatRow),
    /// Azure OpenAI: the OpenAI body, a deployment path, `api-version`, `api-key`.
    Azure,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini API (generativelanguage).
    Gemini,
    /// AWS Bedrock Converse / ConverseStream, SigV4-signed.
    Bedrock,
    /// Cohere chat v2.
    Cohere,
}

const NATIVE: &[(&str, ProviderKind)] = &[
    ("azure", ProviderKind::Azure),
    ("anthropic", ProviderKind::Anthropic),
    ("gemini", ProviderKind::Gemini),
    ("bedrock", ProviderKind::Bedrock),
    ("cohere", ProviderKind::Cohere),
];

impl ProviderKind {
    pub fn names() -> Vec<&'static str> {
        NATIVE
            .iter()
            .map(|(n, _)| *n)
            .chain(openai::COMPATIBLE.iter().map(|r| r.name))
            .collect()
    }

    pub fn parse(name: &str) -> Option<Self> {
        NATIVE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .or_else(|| {
                openai::COMPATIBLE
                    .iter()
                    .find(|r| r.name == name)
                    .map(Self::OpenAiCompatible)
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAiCompatible(row) => row.name,
            other => NATIVE
                .iter()
                .find(|(_, k)| *k == other)
                .map_or("unknown", |(n, _)| n),
        }
    }

    pub fn is_openai_family(self) -> bool {
        matches!(self, Self::OpenAiCompatible(_) | Self::Azure)
    }

    pub fn default_path_prefix(self) -> &'static str {
        match self {
            Self::OpenAiCompatible(row) => row.path_prefix,
            Self::Azure => "/openai",
            Self::Anthropic => "/v1",
            Self::Gemini => "/v1beta",
            Self::Bedrock => "",
            Self::Cohere => "/v2",
        }
    }

    /// Whether this kind of provider serves the operation at all.
    pub fn supports(self, operation: Operation) -> bool {
        match (self, operation) {
            (_, Operation::Chat) => true,
            (Self::OpenAiCompatible(row), Operation::Embeddings) => row.embeddings,
            (Self::Anthropic, Operation::Embeddings) => false,
            (Self::Azure | Self::Gemini | Self::Bedrock | Self::Cohere, Operation::Embeddings) => {
                true
            }
        }
    }

    pub fn translator(self) -> &'static dyn Translator {
        match self {
            Self::OpenAiCompatible(_) => &openai::OpenAiCompatible,
            Self::Azure => &azure::Azure,
            Self::Anthropic => &anthropic::Anthropic,
            Self::Gemini => &gemini::Gemini,
            Self::Bedrock => &bedrock::Bedrock,
            Self::Cohere => &cohere::Cohere,
        }
    }
}

/// What the client asked the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Embeddings,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "chat" => Some(Self::Chat),
            "embeddings" => Some(Self::Embeddings),
            _ => None,
        }
    }
}

/// What is known of one attempt against one provider.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub provider: &'a Provider,
    pub operation: Operation,
    /// The model name the client sent.
    pub client_model: &'a str,
    /// The model name this provider knows it by.
    pub upstream_model: &'a str,
    pub stream: bool,
    /// The client itself asked for `stream_options.include_usage`.
    pub client_asked_usage: bool,
    /// An embeddings request asked for base64 vectors (`encoding_format`, the SDKs' default).
    pub embeddings_base64: bool,
    /// Seconds since the Unix epoch (SigV4 dates, `created` fields).
    pub now_unix: u64,
    /// Which of the provider's API keys this attempt uses (its Envoy endpoint says).
    pub key_index: usize,
}

impl Attempt<'_> {
    /// The provider key of this attempt.
    pub fn api_key(&self) -> Option<&str> {
        self.provider.api_key(self.key_index)
    }
}

/// What one attempt sends: set after the headers [`headers::removals`] names are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Path and query.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    /// The provider's body; `None` when the client's body goes unchanged.
    pub body: Option<Vec<u8>>,
}

pub trait Translator: Sync {
    /// Path, headers (credentials included) and body for this attempt, from the client's
    /// validated OpenAI body. An `Err` is answered to the client (e.g. a 400 for a parameter
    /// this provider cannot honour without changing the request's meaning).
    fn request(&self, attempt: &Attempt, body: &[u8]) -> Result<UpstreamRequest, GatewayError>;

    /// Translates the provider's answer back to the OpenAI format; `None` when the provider
    /// answers in it already.
    fn response(&self, attempt: &Attempt) -> Option<Box<dyn ResponseTranslator>>;
}

/// Translates one response, created per attempt.
pub trait ResponseTranslator {
    /// Sees the provider's status and content type before any body byte.
    fn start(&mut self, status: u32, content_type: Option<&str>) -> ResponseShape;

    /// Translates the next piece of the body (the whole body at once when `start` asked for
    /// it); `end` marks the last piece. Returns the OpenAI bytes to send in its place, possibly
    /// empty while an event is incomplete. Never fails: a provider error becomes an OpenAI error
    /// body or stream event.
    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseShape {
    /// The content type the client sees.
    pub content_type: &'static str,
    /// The whole body is needed before translating (JSON answers, errors); streams are
    /// translated piece by piece.
    pub buffer_whole: bool,
}

impl ResponseShape {
    pub const JSON: Self = Self {
        content_type: "application/json",
        buffer_whole: true,
    };
    pub const SSE: Self = Self {
        content_type: "text/event-stream",
        buffer_whole: false,
    };
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for path segments and query
/// values: model ids like `anthropic.claude-3-haiku-20240307-v1:0`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
