//! Guardrails: named policies of guards that block, mask or only count personal data and
//! secrets in what a request carries to a provider and what the answer carries back.
//!
//! - `detect`, `detect_secrets`: the built-in detectors (byte spans of a text);
//! - `config`: the `guardrails` section, compiled into [`Guardrails`];
//! - `session`: one request's decisions and the placeholders it masked (and may restore);
//! - `texts`: every text of a request or an answer body, each rewritten in place;
//! - `stream`: the sliding window over a streamed answer;
//! - `network`: the per-key allowed client networks;
//! - `webhook`: the generic webhook guard's contract (an HTTP callout of the pipeline).
//!
//! Everything here is free of the host; the pipeline stage `pipeline/guard.rs` calls it.

pub mod bedrock;
pub mod config;
pub mod detect;
pub mod detect_secrets;
pub mod moderation;
pub mod network;
pub mod replace;
pub mod session;
pub mod stream;
pub mod texts;
pub mod webhook;

use regex_lite::Regex;

use crate::scrub::Scrubber;
use detect::{PiiPatterns, Span};
use detect_secrets::SecretPatterns;

pub use config::compile;
pub use session::Session;

/// Where a guard looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
    Both,
}

impl Phase {
    pub fn covers(self, phase: Phase) -> bool {
        self == Phase::Both || self == phase
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Both => "both",
        }
    }
}

/// What a guard does with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The request (or answer) is refused; nothing blocked reaches a provider (or the client).
    Block,
    /// The match is replaced by a typed placeholder (`[EMAIL_1]`).
    Mask,
    /// Forwarded unchanged, counted and logged.
    Monitor,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Mask => "mask",
            Self::Monitor => "monitor",
        }
    }
}

/// What a guard looks for.
#[derive(Debug, Clone)]
pub enum Kind {
    Email,
    Phone,
    PaymentCard,
    Iban,
    UsSsn,
    IpAddress,
    Secrets,
    /// A configured regular expression (linear-time engine) and its longest match.
    Regex(Regex, usize),
    /// Configured words or phrases, whole words, any case.
    Keywords(Regex, usize),
    /// An external service asked over HTTP (request phase).
    Webhook(webhook::Webhook),
}

impl Kind {
    /// The placeholder's type (`[EMAIL_1]`); custom guards use their label.
    fn default_label(&self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::PaymentCard => "CARD",
            Self::Iban => "IBAN",
            Self::UsSsn => "SSN",
            Self::IpAddress => "IP_ADDRESS",
            Self::Secrets => "SECRET",
            Self::Regex(..) => "CUSTOM",
            Self::Keywords(..) => "KEYWORD",
            Self::Webhook(_) => "WEBHOOK",
        }
    }

    /// The longest match, in bytes: a stream never holds back more than this per guard.
    fn longest(&self) -> usize {
        match self {
            Self::Email => detect::LONGEST_EMAIL,
            Self::Phone => detect::LONGEST_PHONE,
            Self::PaymentCard => detect::LONGEST_CARD,
            Self::Iban => detect::LONGEST_IBAN,
            Self::UsSsn => detect::LONGEST_SSN,
            Self::IpAddress => detect::LONGEST_IP,
            Self::Secrets => detect_secrets::LONGEST_SECRET,
            Self::Regex(_, longest) | Self::Keywords(_, longest) => *longest,
            Self::Webhook(_) => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Guard {
    /// Unique across policies: named in errors, stats and the access log.
    pub name: String,
    pub kind: Kind,
    pub phase: Phase,
    pub action: Action,
    /// Masked values are put back into the answer before the client sees it.
    pub restore: bool,
    /// The placeholder's type.
    pub label: String,
}

/// A named set of guards and what it is attached to.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    /// Indices into [`Guardrails::guards`].
    pub guards: Vec<usize>,
    pub all: bool,
    pub models: Vec<String>,
    pub keys: Vec<String>,
}

/// The compiled `guardrails` section.
#[derive(Debug, Clone)]
pub struct Guardrails {
    pub guards: Vec<Guard>,
    pub policies: Vec<Policy>,
    /// Most bytes of a streamed answer held back per choice (and tool call).
    pub stream_window: usize,
    /// Body logs are masked with every guard's detector (the default when any policy is on).
    pub mask_body_logs: bool,
    pii: PiiPatterns,
    secrets: SecretPatterns,
}

impl Guardrails {
    /// The guards that apply to a request for `model` by `key` (each once).
    pub fn select(&self, model: &str, key: Option<&str>) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for p in &self.policies {
            let attached = p.all
                || p.models.iter().any(|m| m == model)
                || key.is_some_and(|k| p.keys.iter().any(|pk| pk == k));
            if attached {
                for &g in &p.guards {
                    if !out.contains(&g) {
                        out.push(g);
                    }
                }
            }
        }
        out
    }

    /// Where guard `guard` matches in `text`, sorted by start.
    pub fn find(&self, guard: &Guard, text: &str, scrubber: &Scrubber) -> Vec<Span> {
        let mut spans = Vec::new();
        match &guard.kind {
            Kind::Email => self.pii.emails(text, &mut spans),
            Kind::Phone => self.pii.phones(text, &mut spans),
            Kind::PaymentCard => self.pii.cards(text, &mut spans),
            Kind::Iban => self.pii.ibans(text, &mut spans),
            Kind::UsSsn => self.pii.ssns(text, &mut spans),
            Kind::IpAddress => self.pii.ips(text, &mut spans),
            Kind::Secrets => self.secrets.secrets(text, scrubber, &mut spans),
            Kind::Regex(re, _) | Kind::Keywords(re, _) => {
                spans.extend(re.find_iter(text).map(|m| (m.start(), m.end())));
            }
            Kind::Webhook(_) => {} // asked by the pipeline, not matched here
        }
        spans.retain(|(s, e)| s < e);
        spans.sort_unstable();
        spans
    }

    /// Every guard's callout cluster, with the path of its `cluster` field (for the
    /// configuration root to check against the providers' clusters).
    pub fn callout_clusters(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for p in &self.policies {
            for (i, &g) in p.guards.iter().enumerate() {
                if let Some(Kind::Webhook(hook)) = self.guards.get(g).map(|g| &g.kind) {
                    let field = format!("guardrails.policies.{}.guards[{i}].cluster", p.name);
                    out.push((field, hook.cluster.as_str()));
                }
            }
        }
        out
    }

    /// The window a stream needs for these guards: the longest match of any, within the
    /// configured cap.
    pub fn window_for(&self, guards: &[usize]) -> usize {
        guards
            .iter()
            .filter_map(|&g| self.guards.get(g))
            .map(|g| g.kind.longest())
            .max()
            .unwrap_or(0)
            .clamp(
                session::LONGEST_PLACEHOLDER,
                self.stream_window.max(session::LONGEST_PLACEHOLDER),
            )
    }
}
