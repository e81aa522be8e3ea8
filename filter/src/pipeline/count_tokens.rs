//! `POST /v1/messages/count_tokens`: Anthropic counts when the model's first target is an
//! Anthropic provider (the request then goes on, to Anthropic targets only); otherwise the
//! gateway answers at once with its own estimate, the one limits reserve with.

use std::rc::Rc;

use super::{Flow, Request};
use crate::error::GatewayError;
use crate::gateway::{Plan, Prepared};
use crate::provider::ProviderKind;

impl Request {
    /// `count_tokens` answered here with the gateway's own estimate (the same one limits
    /// reserve), for a model the key may use.
    pub(super) fn reply_token_count(&mut self, prepared: &Prepared) -> Flow {
        let config = Rc::clone(&self.config);
        if let Some(key) = self.key.as_ref().and_then(|(id, _)| config.keys.key(id)) {
            if let Err(e) = config.keys.authorize(key, &prepared.model) {
                return self.reply_error(&e.into());
            }
        }
        let body = serde_json::json!({"input_tokens": prepared.facts.prompt_tokens});
        self.reply_json(body.to_string().into_bytes())
    }

    /// Whether Anthropic counts this request's tokens: the model's first target is an Anthropic
    /// provider that is switched on (else the gateway estimates them).
    pub(super) fn counts_at_anthropic(&self, model: &str) -> bool {
        // A guarded request's own body never passes the guards: it is counted here.
        self.guard.is_none()
            && self
                .anthropic_targets(model)
                .first()
                .is_some_and(|&i| i == 0)
    }

    /// Indices of the model's targets at an Anthropic provider that is switched on.
    fn anthropic_targets(&self, model: &str) -> Vec<usize> {
        let config = &self.config;
        let Some(model) = config.models.get(model) else {
            return Vec::new();
        };
        (0..model.route.targets.len())
            .filter(|&i| {
                model
                    .route
                    .targets
                    .get(i)
                    .and_then(|t| config.providers.get(t.provider))
                    .is_some_and(|p| p.enabled() && p.kind == ProviderKind::Anthropic)
            })
            .collect()
    }

    /// The plan's chain cut to its Anthropic targets (only they count tokens).
    pub(super) fn keep_anthropic_targets(&self, plan: &mut Plan) -> Result<(), GatewayError> {
        let anthropic = self.anthropic_targets(&plan.model);
        plan.chain.retain(|i| anthropic.contains(i));
        let first = plan
            .chain
            .first()
            .and_then(|&i| self.config.models.get(&plan.model)?.route.targets.get(i))
            .and_then(|t| self.config.providers.get(t.provider))
            .ok_or_else(|| {
                GatewayError::Misconfigured("count_tokens found no Anthropic target".into())
            })?;
        plan.provider.clone_from(&first.id);
        plan.cluster.clone_from(&first.cluster);
        plan.route = format!("chain{}", plan.chain.len());
        Ok(())
    }
}
