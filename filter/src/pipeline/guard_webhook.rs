//! The guard callouts of the guardrail stage (`guard.rs`): a request's texts posted to each
//! webhook, Presidio or moderation guard of the request phase before routing, a non-streamed
//! answer's texts to each guard of the response phase before it goes on, the verdicts read as
//! their answers come back (replacements applied, blocks answered), and the failure modes
//! applied when a service cannot answer.

use std::time::Duration;

use serde_json::Value;

use super::phase::Callback;
use super::{Effect, Flow, Host, HttpCall, Request};
use crate::error::GatewayError;
use crate::gateway::Prepared;
use crate::guard::texts::{request_texts, Step};
use crate::guard::webhook::{self, Protocol, Webhook};
use crate::guard::{Action, Guard, Kind, Phase};
use crate::metrics;

impl Request {
    /// Posts the request's (already masked) texts to each callout guard of the request phase;
    /// true when some call is out. A call that cannot start is a failure of its guard at once
    /// (refused when its failure mode is `closed`).
    pub(super) fn ask_guard_webhooks(
        &mut self,
        host: &dyn Host,
        prepared: &Prepared,
        body: &[u8],
    ) -> Result<bool, Flow> {
        if !self.has_callouts(Phase::Request) {
            return Ok(false);
        }
        let mut texts = Vec::new();
        if let Ok(mut value) = serde_json::from_slice::<Value>(body) {
            request_texts(&mut value, &mut |t| {
                texts.push(t.to_string());
                Step::Keep
            });
        }
        self.start_callouts(host, Phase::Request, &prepared.model, texts);
        if let Some(guard) = self.failed_closed() {
            if let Some(s) = self.guard.as_mut() {
                s.webhooks_pending.clear(); // answers still to come are ignored
            }
            return Err(self.reply_error(&GatewayError::GuardrailUnavailable { guard }));
        }
        Ok(self
            .guard
            .as_ref()
            .is_some_and(|s| !s.webhooks_pending.is_empty()))
    }

    /// Posts a non-streamed answer's texts (as the provider wrote them: placeholders, not the
    /// restored values) to each callout guard of the response phase. `out` is what the client
    /// gets otherwise; `None` when the answer waits for verdicts (`on_http_call_answer`).
    pub(super) fn ask_answer_callouts(
        &mut self,
        host: &dyn Host,
        texts: Vec<String>,
        out: Vec<u8>,
    ) -> Option<Vec<u8>> {
        if !self.has_callouts(Phase::Response) {
            return Some(out);
        }
        let model = self
            .plan
            .as_ref()
            .map_or_else(String::new, |p| p.model.clone());
        self.start_callouts(host, Phase::Response, &model, texts);
        if let Some(guard) = self.failed_closed() {
            if let Some(s) = self.guard.as_mut() {
                s.webhooks_pending.clear();
            }
            return Some(self.refuse_answer(GatewayError::GuardrailUnavailable { guard }));
        }
        let session = self.guard.as_mut()?;
        if session.webhooks_pending.is_empty() {
            return Some(out);
        }
        session.answer_waiting = Some(out);
        None
    }

    /// Whether a callout guard of this request looks at `phase`.
    pub(super) fn has_callouts(&self, phase: Phase) -> bool {
        let (Some(rails), Some(session)) = (&self.config.guardrails, &self.guard) else {
            return false;
        };
        session.guards.iter().any(|&g| {
            rails
                .guards
                .get(g)
                .is_some_and(|g| matches!(g.kind, Kind::Webhook(_)) && g.phase.covers(phase))
        })
    }

    /// Starts every callout of `phase` with `texts`; a call that cannot start is noted failed.
    fn start_callouts(&mut self, host: &dyn Host, phase: Phase, model: &str, texts: Vec<String>) {
        let config = std::rc::Rc::clone(&self.config);
        let (Some(rails), Some(session)) = (config.guardrails.as_ref(), self.guard.as_ref()) else {
            return;
        };
        let hooks: Vec<(usize, &Webhook)> = session
            .guards
            .iter()
            .filter_map(|&g| match rails.guards.get(g) {
                Some(Guard {
                    kind: Kind::Webhook(w),
                    phase: p,
                    ..
                }) if p.covers(phase) => Some((g, w)),
                _ => None,
            })
            .collect();
        let key = self.key.as_ref().map(|(id, _)| id.clone());
        for (g, hook) in hooks {
            if texts.is_empty() && !matches!(hook.protocol, Protocol::Generic) {
                continue; // nothing to analyse (the services refuse an empty input)
            }
            let name = rails.guards.get(g).map_or("", |g| g.name.as_str());
            let call =
                webhook::request_body(hook, name, phase.name(), model, key.as_deref(), &texts);
            let started = self.callout_headers(host, hook, &call).and_then(|headers| {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                host.call_http(HttpCall {
                    cluster: &hook.cluster,
                    path: &hook.path,
                    headers: &headers,
                    body: &call,
                    timeout: Duration::from_millis(hook.timeout_ms),
                })
            });
            match started {
                Ok(token) => {
                    if let Some(s) = self.guard.as_mut() {
                        s.webhooks_pending.push((token, g));
                    }
                }
                Err(reason) => {
                    let reason = format!("unreachable ({reason})");
                    self.webhook_failed(g, hook.fail_open, &reason, phase);
                }
            }
        }
        if let Some(s) = self.guard.as_mut() {
            s.sent_texts = texts;
        }
    }

    /// The headers a service's call with `body` needs: the moderation endpoint its provider's
    /// key, Bedrock's a SigV4 signature with its provider's credentials (and its host).
    fn callout_headers(
        &self,
        host: &dyn Host,
        hook: &Webhook,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, String> {
        match &hook.protocol {
            Protocol::BedrockGuardrail(g) => {
                let provider = self
                    .config
                    .providers
                    .get(g.provider)
                    .ok_or("no Bedrock provider")?;
                let now = super::unix_seconds(host.now());
                crate::provider::bedrock::signed_post(provider, &hook.path, body, now)
                    .map_err(|e| e.to_string())
            }
            Protocol::OpenAiModeration(m) => {
                let provider = self.config.providers.get(m.provider);
                match provider.and_then(|p| p.api_key(0)) {
                    Some(key) => Ok(vec![("authorization", format!("Bearer {key}"))]),
                    None => Err(format!(
                        "provider '{}' has no API key (set {})",
                        provider.map_or("", |p| p.id.as_str()),
                        provider.map(|p| p.missing_vars()).unwrap_or_default()
                    )),
                }
            }
            Protocol::Generic | Protocol::Presidio { .. } => Ok(Vec::new()),
        }
    }

    /// The first guard that failed closed, by name.
    fn failed_closed(&self) -> Option<String> {
        let rails = self.config.guardrails.as_ref()?;
        let session = self.guard.as_ref()?;
        let &(g, _, _) = session.failures.iter().find(|(_, open, _)| !open)?;
        rails.guards.get(g).map(|g| g.name.clone())
    }

    /// An HTTP callout's answer: the cache's shared tier's, the semantic cache's embeddings
    /// call's, a guard webhook's, or else the classifier's.
    pub fn on_http_call_answer(
        &mut self,
        host: &dyn Host,
        token: u32,
        status: &str,
        answer: &[u8],
    ) {
        self.enter(Callback::CalloutAnswer);
        if self.on_shared_cache_answer(host, token, status, answer) {
            return;
        }
        if self.cache.owns_call(token) {
            return self.on_embeddings_answer(host, status, answer);
        }
        let pending = self
            .guard
            .as_ref()
            .and_then(|s| s.webhooks_pending.iter().position(|(t, _)| *t == token));
        let Some(pos) = pending else {
            return self.on_classifier_answer(host, status, answer);
        };
        let config = std::rc::Rc::clone(&self.config);
        let Some(session) = self.guard.as_mut() else {
            return;
        };
        let (_, g) = session.webhooks_pending.remove(pos);
        let phase = if session.answer_waiting.is_some() {
            Phase::Response
        } else {
            Phase::Request
        };
        let Some(guard) = config.guardrails.as_ref().and_then(|r| r.guards.get(g)) else {
            return;
        };
        let Kind::Webhook(hook) = &guard.kind else {
            return;
        };
        let fail_open = hook.fail_open;
        let refused = match webhook::verdict(hook, status, answer, &session.sent_texts) {
            webhook::Verdict::Allow => None,
            webhook::Verdict::Block(reason) => {
                session.note(g, phase);
                log::info!(
                    "guardrail '{}' flagged the {}: {reason}",
                    guard.name,
                    phase.name()
                );
                // The service asked for a block: only a monitor lets it on.
                (guard.action != Action::Monitor).then_some(false)
            }
            webhook::Verdict::Mask(replacements, reason) => {
                session.note(g, phase);
                log::info!(
                    "guardrail '{}' flagged the {}: {reason}",
                    guard.name,
                    phase.name()
                );
                if guard.action == Action::Mask && phase == Phase::Request {
                    session
                        .replacements
                        .extend(replacements.into_iter().map(|r| (g, r)));
                }
                // An answer cannot take a service's spans (its restored texts differ from the
                // ones sent): a mask there refuses rather than let the data through.
                let unusable = phase == Phase::Response && guard.action == Action::Mask;
                (guard.action == Action::Block || unusable).then_some(false)
            }
            webhook::Verdict::Failed(reason) => {
                self.webhook_failed(g, fail_open, &reason, phase);
                (!fail_open).then_some(true)
            }
        };
        if let Some(unavailable) = refused {
            if let Some(s) = self.guard.as_mut() {
                s.webhooks_pending.clear();
            }
            let name = guard.name.clone();
            let e = if unavailable {
                GatewayError::GuardrailUnavailable { guard: name }
            } else {
                GatewayError::Guardrail {
                    guard: name,
                    request: phase == Phase::Request,
                }
            };
            if phase == Phase::Response {
                let out = self.refuse_answer(e);
                return self.answer_goes_on(host, out);
            }
            self.guard_waiting = None;
            self.reply_error(&e);
            return;
        }
        if self
            .guard
            .as_ref()
            .is_some_and(|s| !s.webhooks_pending.is_empty())
        {
            return; // more verdicts to come
        }
        if phase == Phase::Response {
            let out = self
                .guard
                .as_mut()
                .and_then(|s| s.answer_waiting.take())
                .unwrap_or_default();
            return self.answer_goes_on(host, out);
        }
        let Some((prepared, body)) = self.guard_waiting.take() else {
            return;
        };
        let Ok(body) = self.apply_guard_replacements(body) else {
            return; // refused (the reply went out)
        };
        if self.route_request(host, prepared, body) == Flow::Continue {
            self.emit(Effect::ResumeRequest);
        }
    }

    /// A refused answer: the error object the client reads in its place (the status went out
    /// with the headers already: see `guard_answer`).
    fn refuse_answer(&mut self, e: GatewayError) -> Vec<u8> {
        if let Some(s) = self.guard.as_mut() {
            s.answer_waiting = None;
        }
        self.error_code = Some((e.code(), e.fault()));
        e.to_json()
    }

    /// The held answer goes on as `out` (every verdict is in).
    fn answer_goes_on(&mut self, host: &dyn Host, out: Vec<u8>) {
        let size = out.len();
        self.answer_body(host, size, true, Some(out));
        self.emit(Effect::ResumeResponse);
    }

    /// The external guards' replacements applied to the request body (every verdict is in):
    /// the body to route, also handed to Envoy (its buffered copy is what the router sends
    /// when the provider filter keeps the body).
    fn apply_guard_replacements(&mut self, body: Vec<u8>) -> Result<Vec<u8>, Flow> {
        let config = std::rc::Rc::clone(&self.config);
        let (Some(rails), Some(session)) = (config.guardrails.as_ref(), self.guard.as_mut()) else {
            return Ok(body);
        };
        session.sent_texts = Vec::new();
        if session.replacements.is_empty() {
            return Ok(body);
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
            return Ok(body); // validated already; unreachable in practice
        };
        let mut index = 0usize;
        request_texts(&mut value, &mut |text| {
            let step = match session.apply_replacements(rails, index, text) {
                Some(new) => Step::Replace(new),
                None => Step::Keep,
            };
            index = index.saturating_add(1);
            step
        });
        session.replacements = Vec::new();
        let masked = serde_json::to_vec(&value).map_err(|e| {
            self.reply_error(&GatewayError::Misconfigured(format!(
                "re-encoding the masked request failed: {e}"
            )))
        })?;
        self.emit(Effect::ReplaceRequestBody(masked.clone()));
        Ok(masked)
    }

    /// A callout guard that could not answer: counted, logged, and noted for the access log.
    fn webhook_failed(&mut self, g: usize, fail_open: bool, reason: &str, phase: Phase) {
        let name = self
            .config
            .guardrails
            .as_ref()
            .and_then(|r| r.guards.get(g))
            .map_or_else(String::new, |g| g.name.clone());
        log::warn!(
            "guardrail '{name}' could not answer on the {} ({reason}); failure mode {}",
            phase.name(),
            if fail_open {
                "open: it goes on"
            } else {
                "closed: it is refused"
            }
        );
        let outcome = if fail_open {
            "failed_open"
        } else {
            "failed_closed"
        };
        self.emit(Effect::Count(
            metrics::guardrail(&name, outcome, phase.name()),
            1,
        ));
        if let Some(s) = self.guard.as_mut() {
            s.failures.push((g, fail_open, phase));
        }
    }
}
