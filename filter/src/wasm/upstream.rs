//! The per-attempt filter in every provider cluster (root_id `provider`). Envoy creates it
//! afresh for each attempt, retries included, so each attempt is translated for the provider
//! of the cluster it runs in. Header changes of one attempt carry into the next: every attempt
//! sets or removes every provider header.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::host;
use crate::chat::embeddings_base64;
use crate::config::Config;
use crate::error::GatewayError;
use crate::provider::{Attempt, Operation, ResponseTranslator, PROVIDER_HEADERS};
use crate::state;

pub struct ProviderFilter {
    config: Rc<Config>,
    /// The translated body, swapped in when the client's body passes.
    pending_body: Option<Vec<u8>>,
    response: Option<Box<dyn ResponseTranslator>>,
    buffer_response: bool,
}

impl ProviderFilter {
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            config,
            pending_body: None,
            response: None,
            buffer_response: false,
        }
    }

    fn prepare(&mut self) -> Result<(), GatewayError> {
        let config = Rc::clone(&self.config);
        let cluster = host::property_path(&["xds", "cluster_name"]).unwrap_or_default();
        let provider = config.provider_by_cluster(&cluster).ok_or_else(|| {
            GatewayError::Misconfigured(format!(
                "Envoy cluster '{cluster}' is not a provider in the plugin configuration"
            ))
        })?;
        let passed_gateway = || {
            GatewayError::Misconfigured(
                "the request reached a provider cluster without passing the gateway filter".into(),
            )
        };
        let client_model = host::property(state::MODEL).ok_or_else(passed_gateway)?;
        let operation = host::property(state::OPERATION)
            .and_then(|o| Operation::parse(&o))
            .ok_or_else(passed_gateway)?;
        let body = host::property_bytes(state::BODY).ok_or_else(passed_gateway)?;
        let model = config.models.get(&client_model).ok_or_else(|| {
            GatewayError::Misconfigured(format!("model '{client_model}' is not configured"))
        })?;
        if config
            .providers
            .get(model.provider)
            .map(|p| p.cluster.as_str())
            != Some(cluster.as_str())
        {
            return Err(GatewayError::Misconfigured(format!(
                "model '{client_model}' was routed to cluster '{cluster}', which is not its provider's"
            )));
        }
        let attempt = Attempt {
            provider,
            operation,
            client_model: &client_model,
            upstream_model: &model.upstream_model,
            stream: host::property(state::STREAM).as_deref() == Some("true"),
            client_asked_usage: host::property(state::USAGE_ASKED).as_deref() == Some("true"),
            embeddings_base64: operation == Operation::Embeddings && embeddings_base64(&body),
            now_unix: host::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let translator = provider.kind.translator();
        let request = translator.request(&attempt, &body)?;
        for name in PROVIDER_HEADERS {
            host::set_header(MapType::HttpRequestHeaders, name, None);
        }
        host::set_header(MapType::HttpRequestHeaders, ":path", Some(&request.path));
        for (name, value) in &request.headers {
            host::set_header(MapType::HttpRequestHeaders, name, Some(value));
        }
        host::set_property(state::PROVIDER, &provider.id);
        host::set_property(state::UPSTREAM_MODEL, &model.upstream_model);
        if request.body.is_some() {
            // The new body has another length; the buffer filter after this one sets it.
            host::set_header(MapType::HttpRequestHeaders, "content-length", None);
        }
        self.pending_body = request.body;
        self.response = translator.response(&attempt);
        Ok(())
    }

    fn refuse(&self, e: &GatewayError) -> Action {
        if e.status() >= 500 {
            log::error!("{e}");
        }
        host::send_error(e);
        Action::Pause
    }
}

impl Context for ProviderFilter {}

impl HttpContext for ProviderFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match self.prepare() {
            Ok(()) => Action::Continue,
            Err(e) => self.refuse(&e),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(new_body) = &self.pending_body else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        host::replace_body(BufferType::HttpRequestBody, body_size, new_body);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let Some(translator) = self.response.as_mut() else {
            return Action::Continue;
        };
        let status = host::header(MapType::HttpResponseHeaders, ":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let content_type = host::header(MapType::HttpResponseHeaders, "content-type");
        let shape = translator.start(status, content_type.as_deref());
        host::set_header(
            MapType::HttpResponseHeaders,
            "content-type",
            Some(shape.content_type),
        );
        host::set_header(MapType::HttpResponseHeaders, "content-length", None);
        self.buffer_response = shape.buffer_whole;
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(translator) = self.response.as_mut() else {
            return Action::Continue;
        };
        if self.buffer_response && !end_of_stream {
            return Action::Pause;
        }
        let chunk = host::body(BufferType::HttpResponseBody, body_size);
        let translated = translator.body(&chunk, end_of_stream);
        host::replace_body(BufferType::HttpResponseBody, body_size, &translated);
        Action::Continue
    }
}
