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
use crate::provider::{headers, Attempt, Operation, ResponseTranslator};
use crate::routing::Observed;
use crate::state;

/// Largest provider answer translated as a whole (a JSON answer or an error); past it the client
/// gets a 502 `response_too_large`. Streams are translated event by event and need no such cap.
const MAX_TRANSLATED_ANSWER: usize = 16 * 1024 * 1024;

fn answer_too_large() -> GatewayError {
    GatewayError::ProviderFailure {
        code: "response_too_large",
        message: format!(
            "The provider's answer is larger than the gateway's limit of {MAX_TRANSLATED_ANSWER} bytes for answers it translates."
        ),
    }
}

pub struct ProviderFilter {
    config: Rc<Config>,
    /// The translated body, swapped in when the client's body passes.
    pending_body: Option<Vec<u8>>,
    response: Option<Box<dyn ResponseTranslator>>,
    buffer_response: bool,
    /// The provider's answer is larger than the gateway translates: the rest is dropped and the
    /// client gets this error at the end.
    answer_too_large: Option<GatewayError>,
    /// Shared-data key of this attempt's target observations.
    observed_key: Option<String>,
}

impl ProviderFilter {
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            config,
            pending_body: None,
            response: None,
            buffer_response: false,
            answer_too_large: None,
            observed_key: None,
        }
    }

    fn prepare(&mut self) -> Result<(), GatewayError> {
        let config = Rc::clone(&self.config);
        let cluster = host::property_path(&["xds", "cluster_name"]).unwrap_or_default();
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
        let chain: Vec<usize> = host::property(state::CHAIN)
            .unwrap_or_default()
            .split(',')
            .filter_map(|i| i.parse().ok())
            .collect();
        // This attempt's place in the chain: attempts are sequential, so a counter in filter
        // state tells which one this is.
        let attempt = host::property(state::ATTEMPT)
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(0)
            + 1;
        host::set_property(state::ATTEMPT, &attempt.to_string());
        let index = chain
            .get(attempt - 1)
            .or(chain.last())
            .copied()
            .ok_or_else(passed_gateway)?;
        let target = model.route.targets.get(index).ok_or_else(passed_gateway)?;
        let provider = config
            .providers
            .get(target.provider)
            .ok_or_else(passed_gateway)?;
        if provider.cluster != cluster {
            return Err(GatewayError::Misconfigured(format!(
                "attempt {attempt} of model '{client_model}' should go to cluster '{}' but Envoy sent it to '{cluster}': the route's cluster matcher and the providers' clusters disagree",
                provider.cluster
            )));
        }
        // Should this attempt fail, Envoy's retry re-selects the cluster from this.
        if let Some(next) = chain.get(attempt).and_then(|&i| model.route.targets.get(i)) {
            if let Some(p) = config.providers.get(next.provider) {
                host::set_property(state::TARGET, &p.cluster);
            }
        }
        let attempt_info = Attempt {
            provider,
            operation,
            client_model: &client_model,
            upstream_model: &target.upstream_model,
            stream: host::property(state::STREAM).as_deref() == Some("true"),
            client_asked_usage: host::property(state::USAGE_ASKED).as_deref() == Some("true"),
            embeddings_base64: operation == Operation::Embeddings && embeddings_base64(&body),
            // Envoy already picked the endpoint; its metadata names the key it stands for.
            key_index: host::property_path(&[
                "xds",
                "upstream_host_metadata",
                "filter_metadata",
                "ai_gateway",
                "key_index",
            ])
            .and_then(|v| v.trim().trim_matches('"').parse().ok())
            .unwrap_or(0),
            now_unix: host::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let translator = provider.kind.translator();
        let request = translator.request(&attempt_info, &body)?;
        // Fails closed: without the list of headers, none could be vetted.
        let present = proxy_wasm::hostcalls::get_map(MapType::HttpRequestHeaders).map_err(|s| {
            GatewayError::Misconfigured(format!("reading the request headers failed: {s:?}"))
        })?;
        for name in headers::removals(present.iter().map(|(n, _)| n.as_str()), provider) {
            host::set_header(MapType::HttpRequestHeaders, name, None);
        }
        host::set_header(
            MapType::HttpRequestHeaders,
            "user-agent",
            Some(headers::USER_AGENT),
        );
        host::set_header(MapType::HttpRequestHeaders, ":path", Some(&request.path));
        for (name, value) in &request.headers {
            host::set_header(MapType::HttpRequestHeaders, name, Some(value));
        }
        host::set_property(state::PROVIDER, &provider.id);
        host::set_property(state::UPSTREAM_MODEL, &target.upstream_model);
        if request.body.is_some() {
            // The new body has another length; the buffer filter after this one sets it.
            host::set_header(MapType::HttpRequestHeaders, "content-length", None);
        }
        self.pending_body = request.body;
        self.response = translator.response(&attempt_info);
        self.observed_key = Some(Observed::key(&provider.id, &target.upstream_model));
        Ok(())
    }

    /// A provider that answers 429 (or says it has no requests left) is marked limited until
    /// its `retry-after` (10 s without one), for the cost and latency strategies to avoid.
    fn note_rate_limit(&self, status: u32) {
        let Some(key) = &self.observed_key else {
            return;
        };
        let exhausted = [
            "x-ratelimit-remaining-requests",
            "anthropic-ratelimit-requests-remaining",
        ]
        .iter()
        .any(|h| host::header(MapType::HttpResponseHeaders, h).as_deref() == Some("0"));
        if status != 429 && !exhausted {
            return;
        }
        let wait = host::header(MapType::HttpResponseHeaders, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(10);
        let until = host::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + wait;
        host::update_shared(key, |old| {
            let o = old.map(Observed::decode).unwrap_or_default();
            Observed {
                limited_until: o.limited_until.max(until),
                ..o
            }
            .encode()
        });
    }

    fn refuse(&self, e: &GatewayError) -> Action {
        if e.status() >= 500 {
            log::error!("{e}");
        }
        // The gateway answered, not a provider: the access log says so.
        host::set_property(state::REFUSED, e.code());
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
        if self.pending_body.is_none() {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        // Handed to Envoy and dropped: the attempt keeps no body while it waits for the answer.
        if let Some(new_body) = self.pending_body.take() {
            host::replace_body(BufferType::HttpRequestBody, body_size, &new_body);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let status = host::header(MapType::HttpResponseHeaders, ":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.note_rate_limit(status);
        let Some(translator) = self.response.as_mut() else {
            return Action::Continue;
        };
        let content_type = host::header(MapType::HttpResponseHeaders, "content-type");
        let shape = translator.start(status, content_type.as_deref());
        host::set_header(
            MapType::HttpResponseHeaders,
            "content-type",
            Some(shape.content_type),
        );
        let length = host::header(MapType::HttpResponseHeaders, "content-length")
            .and_then(|l| l.trim().parse::<usize>().ok());
        host::set_header(MapType::HttpResponseHeaders, "content-length", None);
        self.buffer_response = shape.buffer_whole;
        if shape.buffer_whole && length.is_some_and(|l| l > MAX_TRANSLATED_ANSWER) {
            // Known before any byte: the client gets a 502 instead of the answer.
            host::set_header(MapType::HttpResponseHeaders, ":status", Some("502"));
            self.answer_too_large = Some(answer_too_large());
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(translator) = self.response.as_mut() else {
            return Action::Continue;
        };
        if self.buffer_response && body_size > MAX_TRANSLATED_ANSWER {
            // Found out while buffering (no content-length): the status has gone already; the
            // body becomes the error.
            self.answer_too_large.get_or_insert_with(answer_too_large);
        }
        if let Some(error) = &self.answer_too_large {
            let body = if end_of_stream {
                error.to_json()
            } else {
                Vec::new()
            };
            host::replace_body(BufferType::HttpResponseBody, body_size, &body);
            return Action::Continue;
        }
        if self.buffer_response && !end_of_stream {
            return Action::Pause;
        }
        let chunk = host::body(BufferType::HttpResponseBody, body_size);
        let translated = translator.body(&chunk, end_of_stream);
        host::replace_body(BufferType::HttpResponseBody, body_size, &translated);
        Action::Continue
    }
}
