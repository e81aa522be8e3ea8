//! The guard webhooks of the guardrail stage (`guard.rs`): a request's texts posted to each
//! webhook or Presidio guard before routing, the verdicts read as their answers come back,
//! and the failure modes applied when a service cannot answer.

use std::time::Duration;

use serde_json::Value;

use super::{Effect, Flow, Host, HttpCall, Request};
use crate::error::GatewayError;
use crate::gateway::Prepared;
use crate::guard::texts::{request_texts, Step};
use crate::guard::webhook::{self, Webhook};
use crate::guard::{Action, Guard, Kind, Phase};
use crate::metrics;

impl Request {
    /// Posts the request's (already masked) texts to each webhook guard of the request phase;
    /// true when some call is out. A call that cannot start is a failure of its guard at once
    /// (refused when its failure mode is `closed`).
    pub(super) fn ask_guard_webhooks(
        &mut self,
        host: &dyn Host,
        prepared: &Prepared,
        body: &[u8],
    ) -> Result<bool, Flow> {
        let config = std::rc::Rc::clone(&self.config);
        let (Some(rails), Some(session)) = (config.guardrails.as_ref(), self.guard.as_ref()) else {
            return Ok(false);
        };
        let webhooks: Vec<(usize, &Webhook)> = session
            .guards
            .iter()
            .filter_map(|&g| match rails.guards.get(g) {
                Some(Guard {
                    kind: Kind::Webhook(w),
                    phase,
                    ..
                }) if phase.covers(Phase::Request) => Some((g, w)),
                _ => None,
            })
            .collect();
        if webhooks.is_empty() {
            return Ok(false);
        }
        let mut texts = Vec::new();
        if let Ok(mut value) = serde_json::from_slice::<Value>(body) {
            request_texts(&mut value, &mut |t| {
                texts.push(t.to_string());
                Step::Keep
            });
        }
        let key = self.key.as_ref().map(|(id, _)| id.clone());
        for (g, webhook) in webhooks {
            let name = rails.guards.get(g).map_or("", |g| g.name.as_str());
            let call =
                webhook::request_body(webhook, name, &prepared.model, key.as_deref(), &texts);
            let started = host.call_http(HttpCall {
                cluster: &webhook.cluster,
                path: &webhook.path,
                body: &call,
                timeout: Duration::from_millis(webhook.timeout_ms),
            });
            match started {
                Ok(token) => {
                    if let Some(s) = self.guard.as_mut() {
                        s.webhooks_pending.push((token, g));
                    }
                }
                Err(reason) => {
                    self.webhook_failed(g, webhook.fail_open, &format!("unreachable ({reason})"))
                }
            }
        }
        let closed = self
            .guard
            .as_ref()
            .and_then(|s| s.failures.iter().find(|(_, open)| !open))
            .and_then(|&(g, _)| rails.guards.get(g));
        if let Some(guard) = closed {
            if let Some(s) = self.guard.as_mut() {
                s.webhooks_pending.clear(); // answers still to come are ignored
            }
            let e = GatewayError::GuardrailUnavailable {
                guard: guard.name.clone(),
            };
            return Err(self.reply_error(&e));
        }
        Ok(self
            .guard
            .as_ref()
            .is_some_and(|s| !s.webhooks_pending.is_empty()))
    }

    /// An HTTP callout's answer: the semantic cache's embeddings call's, a guard webhook's,
    /// or else the classifier's.
    pub fn on_http_call_answer(
        &mut self,
        host: &dyn Host,
        token: u32,
        status: &str,
        answer: &[u8],
    ) {
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
        let Some(guard) = config.guardrails.as_ref().and_then(|r| r.guards.get(g)) else {
            return;
        };
        let Kind::Webhook(hook) = &guard.kind else {
            return;
        };
        let fail_open = hook.fail_open;
        let refused = match webhook::verdict(hook, status, answer) {
            webhook::Verdict::Allow => false,
            webhook::Verdict::Block(reason) => {
                session.note(g, Phase::Request);
                log::info!(
                    "guardrail '{}' (webhook) flagged the request: {reason}",
                    guard.name
                );
                guard.action == Action::Block
            }
            webhook::Verdict::Failed(reason) => {
                self.webhook_failed(g, fail_open, &reason);
                !fail_open
            }
        };
        if refused {
            if let Some(s) = self.guard.as_mut() {
                s.webhooks_pending.clear();
            }
            self.guard_waiting = None;
            let e = if self
                .guard
                .as_ref()
                .is_some_and(|s| s.failures.iter().any(|(f, open)| *f == g && !open))
            {
                GatewayError::GuardrailUnavailable {
                    guard: guard.name.clone(),
                }
            } else {
                GatewayError::Guardrail {
                    guard: guard.name.clone(),
                    request: true,
                }
            };
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
        let Some((prepared, body)) = self.guard_waiting.take() else {
            return;
        };
        if self.route_request(host, prepared, body) == Flow::Continue {
            self.emit(Effect::ResumeRequest);
        }
    }

    /// A webhook guard that could not answer: counted, logged, and noted for the access log.
    fn webhook_failed(&mut self, g: usize, fail_open: bool, reason: &str) {
        let name = self
            .config
            .guardrails
            .as_ref()
            .and_then(|r| r.guards.get(g))
            .map_or_else(String::new, |g| g.name.clone());
        log::warn!(
            "guardrail webhook '{name}' failed ({reason}); failure mode {}",
            if fail_open {
                "open: the request goes on"
            } else {
                "closed: the request is refused"
            }
        );
        let outcome = if fail_open {
            "failed_open"
        } else {
            "failed_closed"
        };
        self.emit(Effect::Count(
            metrics::guardrail(&name, outcome, "request"),
            1,
        ));
        if let Some(s) = self.guard.as_mut() {
            s.failures.push((g, fail_open));
        }
    }
}
