//! The per-attempt filter in every provider cluster (root_id `provider`). Envoy creates it
//! afresh for each attempt, retries included, so each attempt is translated for the provider
//! of the cluster it runs in. Header changes of one attempt carry into the next: every attempt
//! sets or removes every provider header.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::host;
use crate::config::Config;
use crate::error::GatewayError;
use crate::provider::{Attempt, PROVIDER_HEADERS};
use crate::state;

pub struct ProviderFilter {
    config: Rc<Config>,
    /// Set when the body must be rewritten: (provider index, client model).
    rewrite: Option<(usize, String)>,
}

impl ProviderFilter {
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            config,
            rewrite: None,
        }
    }

    /// Rebuilds the attempt from the configuration and the filter state.
    fn attempt<'c>(
        config: &'c Config,
        provider: usize,
        client_model: &'c str,
    ) -> Result<Attempt<'c>, GatewayError> {
        let provider_cfg = config
            .providers
            .get(provider)
            .ok_or_else(|| GatewayError::Misconfigured("provider index out of range".into()))?;
        let model = config.models.get(client_model).ok_or_else(|| {
            GatewayError::Misconfigured(format!(
                "model '{client_model}' is not in the plugin configuration"
            ))
        })?;
        if model.provider != provider {
            return Err(GatewayError::Misconfigured(format!(
                "model '{client_model}' was routed to cluster '{}', which is not its provider's",
                provider_cfg.cluster
            )));
        }
        Ok(Attempt {
            provider: provider_cfg,
            client_model,
            upstream_model: &model.upstream_model,
            stream: host::property(state::STREAM).as_deref() == Some("true"),
            client_asked_usage: host::property(state::USAGE_ASKED).as_deref() == Some("true"),
        })
    }

    fn prepare(&mut self) -> Result<(), GatewayError> {
        let cluster = host::property_path(&["xds", "cluster_name"]).unwrap_or_default();
        let provider = self
            .config
            .providers
            .iter()
            .position(|p| p.cluster == cluster)
            .ok_or_else(|| {
                GatewayError::Misconfigured(format!(
                    "Envoy cluster '{cluster}' is not a provider in the plugin configuration"
                ))
            })?;
        let client_model = host::property(state::MODEL).ok_or_else(|| {
            GatewayError::Misconfigured(
                "the request reached a provider cluster without passing the gateway filter".into(),
            )
        })?;
        let attempt = Self::attempt(&self.config, provider, &client_model)?;
        let translator = attempt.provider.kind.translator();
        let head = translator.request_head(&attempt);
        for name in PROVIDER_HEADERS {
            host::set_header(MapType::HttpRequestHeaders, name, None);
        }
        host::set_header(MapType::HttpRequestHeaders, ":path", Some(&head.path));
        for (name, value) in &head.headers {
            host::set_header(MapType::HttpRequestHeaders, name, Some(value));
        }
        host::set_property(state::PROVIDER, &attempt.provider.id);
        host::set_property(state::UPSTREAM_MODEL, attempt.upstream_model);
        if !translator.body_unchanged(&attempt) {
            // The new body has another length; the buffer filter after this one sets it.
            host::set_header(MapType::HttpRequestHeaders, "content-length", None);
            self.rewrite = Some((provider, client_model));
        }
        Ok(())
    }
}

impl Context for ProviderFilter {}

impl HttpContext for ProviderFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match self.prepare() {
            Ok(()) => Action::Continue,
            Err(e) => {
                log::error!("{e}");
                host::send_error(&e);
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some((provider, client_model)) = &self.rewrite else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let body = host::body(BufferType::HttpRequestBody, body_size);
        let translated = Self::attempt(&self.config, *provider, client_model)
            .and_then(|a| a.provider.kind.translator().request_body(&a, &body));
        match translated {
            Ok(new_body) => {
                host::replace_body(BufferType::HttpRequestBody, body_size, &new_body);
                Action::Continue
            }
            Err(e) => {
                log::error!("{e}");
                host::send_error(&e);
                Action::Pause
            }
        }
    }
}
