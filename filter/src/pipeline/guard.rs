//! The guardrail stage: a key's allowed client networks (at the request's headers), the
//! request's texts guarded before routing (block with a 400, mask into the forwarded body, or
//! only count), the answer's texts guarded and the request's placeholders restored (the whole
//! JSON answer, or a stream through the sliding window of `guard::stream`), and at the end the
//! decisions counted, named in the access log, and the body log masked. The detectors and
//! policies live in `crate::guard`; the webhook and Presidio callouts in `guard_webhook.rs`.

use serde_json::Value;

use super::{Effect, Flow, Host, Request};
use crate::error::GatewayError;
use crate::gateway::Prepared;
use crate::guard::network::client_ip;
use crate::guard::session::Verdict;
use crate::guard::stream::{GuardStream, Guarding, TOO_MANY_WINDOWS};
use crate::guard::texts::{answer_texts, request_texts, Step};
use crate::guard::{Action, Phase, Session};
use crate::metrics;
use crate::state;

/// Largest non-streamed answer held whole to be guarded; a larger one is refused (fail closed).
pub const MAX_GUARDED_ANSWER: usize = 8 * 1024 * 1024;

/// The guards' answer for a response body piece.
pub(super) enum Guarded {
    /// No guard looks at this answer.
    Unguarded,
    /// The answer is held until its end.
    Wait,
    /// The whole answer is held for the guard callouts' verdicts.
    Asking,
    /// These bytes go on instead.
    Bytes(Vec<u8>),
}

impl Request {
    /// The caller's key may be used only from its networks. A 403 (OpenAI shape) otherwise.
    pub(super) fn guard_client_network(&mut self, host: &dyn Host) -> Result<(), Flow> {
        let config = std::rc::Rc::clone(&self.config);
        let Some(key) = self.key.as_ref().and_then(|(id, _)| config.keys.key(id)) else {
            return Ok(());
        };
        let Some(networks) = &key.networks else {
            return Ok(());
        };
        let source = host.property(&["source", "address"]).unwrap_or_default();
        let allowed = client_ip(&source).is_some_and(|ip| networks.iter().any(|n| n.contains(ip)));
        if allowed {
            return Ok(());
        }
        log::info!(
            "key '{}' used from a network it is not allowed ({source})",
            key.id
        );
        Err(self.reply_error(&GatewayError::Auth {
            status: 403,
            code: "network_not_allowed",
            message: "This API key may not be used from your network address.".into(),
        }))
    }

    /// Whether the request body may be rewritten by a mask (its length then changes).
    pub(super) fn guard_may_rewrite_request(&self) -> bool {
        self.config.guardrails.as_ref().is_some_and(|r| {
            r.guards
                .iter()
                .any(|g| g.action == Action::Mask && g.phase.covers(Phase::Request))
        })
    }

    /// Guards the request's texts: the body to forward (masked, or as it came), or the flow of
    /// the refusal.
    pub(super) fn guard_request(
        &mut self,
        prepared: &Prepared,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Flow> {
        let config = std::rc::Rc::clone(&self.config);
        let Some(rails) = config.guardrails.as_ref() else {
            return Ok(body);
        };
        let key = self.key.as_ref().map(|(id, _)| id.as_str());
        let guards = rails.select(&prepared.model, key);
        if guards.is_empty() {
            return Ok(body);
        }
        let mut session = Session::new(guards);
        self.guard = Some(session);
        if prepared.stream && self.has_callouts(Phase::Response) {
            // A stream cannot wait for a service's verdict on its whole text: refused rather
            // than let through unread.
            return Err(self.reply_error(&GatewayError::InvalidParameter {
                param: "stream".into(),
                message: "A guardrail of this model reads whole answers through an external service: send `stream: false`.".into(),
            }));
        }
        session = self.guard.take().unwrap_or_default();
        if !session.covers(rails, Phase::Request) {
            self.guard = Some(session);
            return Ok(body);
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
            self.guard = Some(session);
            return Ok(body); // validated already; unreachable in practice
        };
        let mut blocked = None;
        let mut changed = false;
        request_texts(&mut value, &mut |text| match session.check(
            rails,
            &config.scrubber,
            Phase::Request,
            text,
        ) {
            Verdict::Clean => Step::Keep,
            Verdict::Rewritten(new) => {
                changed = true;
                Step::Replace(new)
            }
            Verdict::Blocked(g) => {
                blocked = Some(g);
                Step::Stop
            }
        });
        self.guard = Some(session);
        if let Some(g) = blocked {
            let guard = rails
                .guards
                .get(g)
                .map_or_else(String::new, |g| g.name.clone());
            return Err(self.reply_error(&GatewayError::Guardrail {
                guard,
                request: true,
            }));
        }
        if !changed {
            return Ok(body);
        }
        let masked = serde_json::to_vec(&value).map_err(|e| {
            self.reply_error(&GatewayError::Misconfigured(format!(
                "re-encoding the masked request failed: {e}"
            )))
        })?;
        // Envoy's copy (what the router sends when the provider filter keeps the body) too.
        self.emit(Effect::ReplaceRequestBody(masked.clone()));
        Ok(masked)
    }

    /// Whether the answer is guarded (a response guard, or placeholders to restore).
    pub(super) fn guards_answer(&self) -> bool {
        match (&self.guard, &self.config.guardrails) {
            (Some(session), Some(rails)) => {
                session.covers(rails, Phase::Response) || session.restores()
            }
            _ => false,
        }
    }

    /// Starts guarding a streamed answer.
    pub(super) fn guard_stream_start(&mut self) {
        if let (Some(session), Some(rails)) = (&self.guard, &self.config.guardrails) {
            self.guard_stream = Some(GuardStream::new(rails.window_for(&session.guards)));
        }
    }

    /// One piece of the answer through the guards.
    pub(super) fn guard_answer(
        &mut self,
        host: &dyn Host,
        size: usize,
        end: bool,
        streamed: bool,
    ) -> Guarded {
        if !self.guards_answer() {
            return Guarded::Unguarded;
        }
        let config = std::rc::Rc::clone(&self.config);
        let (Some(rails), Some(session)) = (config.guardrails.as_ref(), self.guard.as_mut()) else {
            return Guarded::Unguarded;
        };
        let mut g = Guarding {
            rails,
            scrubber: &config.scrubber,
            session,
        };
        if streamed {
            let Some(stream) = self.guard_stream.as_mut() else {
                return Guarded::Unguarded;
            };
            let chunk = host.response_body(size);
            let out = stream.feed(&mut g, &chunk, end);
            if let (Some(guard), None) = (stream.blocked, self.error_code) {
                self.error_code = Some(if guard == TOO_MANY_WINDOWS {
                    ("stream_too_many_choices", "provider")
                } else {
                    ("guardrail_blocked", "provider")
                });
            }
            return Guarded::Bytes(out);
        }
        if !end {
            return Guarded::Wait;
        }
        if size > MAX_GUARDED_ANSWER {
            let e = GatewayError::ProviderFailure {
                code: "response_too_large",
                message: format!("The answer is larger than the {MAX_GUARDED_ANSWER} bytes the gateway's guardrails read."),
            };
            self.error_code = Some((e.code(), e.fault()));
            return Guarded::Bytes(e.to_json());
        }
        let body = host.response_body(size);
        let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
            return Guarded::Bytes(body);
        };
        let mut blocked = None;
        let mut changed = false;
        let mut texts = Vec::new();
        answer_texts(&mut value, &mut |text| {
            texts.push(text.to_string());
            let masked = match g.session.check(g.rails, g.scrubber, Phase::Response, text) {
                Verdict::Blocked(guard) => {
                    blocked = Some(guard);
                    return Step::Stop;
                }
                Verdict::Rewritten(m) => Some(m),
                Verdict::Clean => None,
            };
            let base = masked.as_deref().unwrap_or(text);
            match g.session.restore(base).or(masked) {
                Some(new) => {
                    changed = true;
                    Step::Replace(new)
                }
                None => Step::Keep,
            }
        });
        if let Some(guard) = blocked {
            let guard = rails
                .guards
                .get(guard)
                .map_or_else(String::new, |g| g.name.clone());
            let e = GatewayError::Guardrail {
                guard,
                request: false,
            };
            // The status already went out with the headers, and cannot be held back: the
            // proxy-wasm host turns a paused headers callback (StopIteration) into
            // StopAllIterationAndWatermark (proxy-wasm-cpp-host, `convertVmCallResultTo
            // FilterHeadersStatus`), so no body callback runs until the headers go on (tried:
            // the request hangs), and header changes in the body phase are refused (the SDK
            // then panics). The client reads the error from the body.
            self.error_code = Some((e.code(), e.fault()));
            return Guarded::Bytes(e.to_json());
        }
        let out = if changed {
            serde_json::to_vec(&value).unwrap_or(body)
        } else {
            body
        };
        match self.ask_answer_callouts(host, texts, out) {
            Some(out) => Guarded::Bytes(out),
            None => Guarded::Asking,
        }
    }

    /// The decisions, counted and named in the access log (never the matched text); the body
    /// log masked with every guard's detector.
    pub(super) fn guard_log(&mut self) {
        let config = std::rc::Rc::clone(&self.config);
        let Some(rails) = config.guardrails.as_ref() else {
            return;
        };
        if let Some(session) = self.guard.as_mut() {
            let mut fired = Vec::new();
            for &(g, phase) in session.fired() {
                let Some(guard) = rails.guards.get(g) else {
                    continue;
                };
                fired.push(format!(
                    "{}:{}:{}",
                    guard.name,
                    guard.action.name(),
                    phase.name()
                ));
                self.effects.push(Effect::Count(
                    metrics::guardrail(&guard.name, guard.action.name(), phase.name()),
                    1,
                ));
            }
            for &(g, open, phase) in &session.failures {
                if let Some(guard) = rails.guards.get(g) {
                    let outcome = if open { "failed_open" } else { "failed_closed" };
                    fired.push(format!("{}:{outcome}:{}", guard.name, phase.name()));
                }
            }
            if !fired.is_empty() {
                self.effects.push(Effect::SetProperty(
                    state::GUARDRAILS,
                    fired.join(",").into_bytes(),
                ));
            }
        }
        if !rails.mask_body_logs {
            return;
        }
        let Some((request, response)) = self.body_log.as_mut() else {
            return;
        };
        let session = self.guard.get_or_insert_with(Session::default);
        if let Some(masked) = session.mask_for_log(rails, &config.scrubber, request) {
            *request = masked;
        }
        if let Some(response) = response.as_mut() {
            if let Some(masked) = session.mask_for_log(rails, &config.scrubber, response) {
                *response = masked;
            }
        }
    }
}
