//! One attempt of a request at one provider, as the provider filter sees it (Envoy runs that
//! filter afresh for every attempt, retries included): which target of the chain this is, the
//! request translated for that provider (path, the allowed headers, credentials, body), and the
//! answer translated back to the OpenAI format, with a cap on what is translated whole. Events
//! in, effects out, like [`super::Request`]. Header changes of one attempt carry into the next,
//! so every attempt sets or removes every provider header.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use super::handoff::{self, Handoff};
use super::phase::Callback;
use super::{Effect, Flow, Host};
use crate::chat::embeddings_base64;
use crate::config::Config;
use crate::error::{invalid, GatewayError};
use crate::inbound::Api;
use crate::provider::{
    anthropic, headers, responses, Attempt, Operation, ProviderKind, ResponseTranslator,
};
use crate::quota;
use crate::routing::Observed;
use crate::state;

/// Largest provider answer translated as a whole (a JSON answer or an error); past it the client
/// gets a 502 `response_too_large`. Streams are translated event by event and need no such cap.
pub const MAX_TRANSLATED_ANSWER: usize = 16 * 1024 * 1024;

fn answer_too_large() -> GatewayError {
    GatewayError::ProviderFailure {
        code: "response_too_large",
        message: format!(
            "The provider's answer is larger than the gateway's limit of {MAX_TRANSLATED_ANSWER} bytes for answers it translates."
        ),
    }
}

/// The request this attempt serves, from the handoff or from filter state.
struct Decision {
    model: String,
    operation: Operation,
    stream: bool,
    client_asked_usage: bool,
    chain: Vec<usize>,
    /// This attempt's number, from 1.
    attempt: usize,
    body: Rc<[u8]>,
    /// The API the client used, its own body (for another API than OpenAI's) and why that
    /// cannot be translated, if it cannot.
    api: Api,
    count_tokens: bool,
    native_body: Option<Rc<[u8]>>,
    untranslatable: Option<String>,
}

pub struct ProviderAttempt {
    config: Rc<Config>,
    effects: Vec<Effect>,
    /// The translated body, swapped in when the client's body passes.
    pending_body: Option<Vec<u8>>,
    response: Option<Box<dyn ResponseTranslator>>,
    buffer_response: bool,
    /// The provider's answer is larger than the gateway translates: the rest is dropped and the
    /// client gets this error at the end.
    answer_too_large: Option<GatewayError>,
    /// Shared-data key of this attempt's target observations.
    observed_key: Option<String>,
    /// Which callback each effect came from, checked by the native tests.
    #[cfg(test)]
    callbacks: super::phase::Tracker,
}

impl ProviderAttempt {
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            config,
            effects: Vec::new(),
            pending_body: None,
            response: None,
            buffer_response: false,
            answer_too_large: None,
            observed_key: None,
            #[cfg(test)]
            callbacks: super::phase::Tracker::new(),
        }
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        #[cfg(test)]
        self.callbacks.taken(&self.effects);
        std::mem::take(&mut self.effects)
    }

    /// Notes the event being handled: the native tests check its effects against it.
    #[cfg_attr(not(test), inline(always))]
    fn enter(&mut self, _callback: Callback) {
        #[cfg(test)]
        self.callbacks.enter(_callback, &self.effects);
    }

    /// The attempt's request headers: translates the request for this cluster's provider, or
    /// answers itself when that provider cannot take it.
    pub fn on_request_headers(&mut self, host: &dyn Host) -> Flow {
        self.enter(Callback::RequestHeaders);
        match self.prepare(host) {
            Ok(()) => Flow::Continue,
            Err(e) => {
                if e.status() >= 500 {
                    log::error!("{e}");
                }
                // The gateway answered, not a provider: the access log says so.
                self.effects
                    .push(Effect::SetProperty(state::REFUSED, e.code().into()));
                self.effects.push(Effect::Reply {
                    status: e.status(),
                    headers: vec![("content-type", "application/json".into())],
                    body: e.to_json(),
                });
                Flow::Pause
            }
        }
    }

    /// The request body (the router's copy of the client's): replaced by the translated one.
    pub fn on_request_body(&mut self, end_of_stream: bool) -> Flow {
        self.enter(Callback::RequestBody);
        if self.pending_body.is_none() {
            return Flow::Continue;
        }
        if !end_of_stream {
            return Flow::Pause;
        }
        // Handed to Envoy and dropped: the attempt keeps no body while it waits for the answer.
        if let Some(body) = self.pending_body.take() {
            self.effects.push(Effect::ReplaceRequestBody(body));
        }
        Flow::Continue
    }

    pub fn on_response_headers(&mut self, host: &dyn Host) -> Flow {
        self.enter(Callback::ResponseHeaders);
        let watches_limits = self.observed_key.is_some() && self.config.observes_limits;
        if self.response.is_none() && !watches_limits {
            return Flow::Continue; // an answer in the client's format, nobody reads its status
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.note_rate_limit(host, status);
        let Some(translator) = self.response.as_mut() else {
            return Flow::Continue;
        };
        let content_type = host.response_header("content-type");
        let shape = translator.start(status, content_type.as_deref());
        let length = host
            .response_header("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok());
        self.effects.push(Effect::SetResponseHeader(
            "content-type",
            Some(shape.content_type.into()),
        ));
        self.effects
            .push(Effect::SetResponseHeader("content-length", None));
        self.buffer_response = shape.buffer_whole;
        if shape.buffer_whole && length.is_some_and(|l| l > MAX_TRANSLATED_ANSWER) {
            // Known before any byte: the client gets a 502 instead of the answer.
            self.effects
                .push(Effect::SetResponseHeader(":status", Some("502".into())));
            self.answer_too_large = Some(answer_too_large());
        }
        Flow::Continue
    }

    pub fn on_response_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        self.enter(Callback::ResponseBody);
        let Some(translator) = self.response.as_mut() else {
            return Flow::Continue;
        };
        if self.buffer_response && size > MAX_TRANSLATED_ANSWER {
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
            self.effects.push(Effect::ReplaceResponseBody(body));
            return Flow::Continue;
        }
        if self.buffer_response && !end_of_stream {
            return Flow::Pause;
        }
        let chunk = host.response_body(size);
        let translated = translator.body(&chunk, end_of_stream);
        self.effects.push(Effect::ReplaceResponseBody(translated));
        Flow::Continue
    }

    fn prepare(&mut self, host: &dyn Host) -> Result<(), GatewayError> {
        let config = Rc::clone(&self.config);
        let cluster = host.property(&["xds", "cluster_name"]).unwrap_or_default();
        let handoff = host
            .property(&[state::HANDOFF])
            .and_then(|id| id.parse().ok())
            .and_then(handoff::find);
        let decision = match &handoff {
            Some(handoff) => from_handoff(host, handoff)?,
            None => {
                let decision = from_filter_state(host)?;
                self.set_property(state::ATTEMPT, &decision.attempt.to_string());
                decision
            }
        };
        let model = config.models.get(&decision.model).ok_or_else(|| {
            GatewayError::Misconfigured(format!("model '{}' is not configured", decision.model))
        })?;
        let attempt = decision.attempt;
        let index = decision
            .chain
            .get(attempt - 1)
            .or(decision.chain.last())
            .copied()
            .ok_or_else(passed_gateway)?;
        let target = model.route.targets.get(index).ok_or_else(passed_gateway)?;
        let provider = config
            .providers
            .get(target.provider)
            .ok_or_else(passed_gateway)?;
        if provider.cluster != cluster {
            return Err(GatewayError::Misconfigured(format!(
                "attempt {attempt} of model '{}' should go to cluster '{}' but Envoy sent it to '{cluster}': the route's cluster matcher and the providers' clusters disagree",
                decision.model, provider.cluster
            )));
        }
        // Should this attempt fail, Envoy's retry re-selects the cluster from this.
        let next = decision
            .chain
            .get(attempt)
            .and_then(|&i| model.route.targets.get(i))
            .and_then(|t| config.providers.get(t.provider));
        if let Some(next) = next {
            self.set_property(state::TARGET, &next.cluster);
        }
        let body = &decision.body;
        let attempt_info = Attempt {
            provider,
            operation: decision.operation,
            client_model: &decision.model,
            upstream_model: &target.upstream_model,
            stream: decision.stream,
            client_asked_usage: decision.client_asked_usage,
            embeddings_base64: decision.operation == Operation::Embeddings
                && embeddings_base64(body),
            // Envoy already picked the endpoint; its metadata names the key it stands for
            // (asked only when there is a choice).
            key_index: if provider.api_key_count() > 1 {
                host.property(&[
                    "xds",
                    "upstream_host_metadata",
                    "filter_metadata",
                    "ai_gateway",
                    "key_index",
                ])
                .and_then(|v| v.trim().trim_matches('"').parse().ok())
                .unwrap_or(0)
            } else {
                0
            },
            now_unix: host
                .now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let translator = provider.kind.translator();
        // A provider that speaks the client's API gets the client's own body; any other the
        // OpenAI translation, translated again for it.
        let native = decision
            .native_body
            .as_ref()
            .filter(|_| decision.api.native_to(provider));
        let (request, response) = match native {
            Some(native) => (
                native_request(&attempt_info, decision.api, native, decision.count_tokens)?,
                None,
            ),
            None => {
                if let Some(reason) = &decision.untranslatable {
                    return Err(invalid("model", reason.clone()));
                }
                let mut request = translator.request(&attempt_info, body)?;
                if decision.native_body.is_some() && request.body.is_none() {
                    // Envoy's copy of the body is the client's own: the translation goes instead.
                    request.body = Some(body.to_vec());
                }
                (request, translator.response(&attempt_info))
            }
        };
        // Fails closed: without the list of headers, none could be vetted.
        let present = host.request_headers().map_err(|e| {
            GatewayError::Misconfigured(format!("reading the request headers failed: {e}"))
        })?;
        for name in headers::removals(present.iter().map(|(n, _)| n.as_str()), provider) {
            self.effects
                .push(Effect::SetRequestHeader(name.to_string(), None));
        }
        let mut set = |name: &str, value: &str| {
            self.effects.push(Effect::SetRequestHeader(
                name.to_string(),
                Some(value.to_string()),
            ));
        };
        set("user-agent", headers::USER_AGENT);
        set(":path", &request.path);
        for (name, value) in &request.headers {
            set(name, value);
        }
        if request.body.is_some() {
            // The new body has another length; the buffer filter after this one sets it.
            self.effects
                .push(Effect::SetRequestHeader("content-length".into(), None));
        }
        match &handoff {
            Some(handoff) => {
                *handoff.served.borrow_mut() =
                    Some((provider.id.clone(), target.upstream_model.clone()));
            }
            None => {
                self.set_property(state::PROVIDER, &provider.id);
                self.set_property(state::UPSTREAM_MODEL, &target.upstream_model);
            }
        }
        self.pending_body = request.body;
        self.response = response;
        self.observed_key = Some(Observed::key(&provider.id, &target.upstream_model));
        Ok(())
    }

    /// A provider that answers 429 (or says it has no requests left) is marked limited until
    /// its `retry-after` (10 s without one), for the cost and latency strategies to avoid.
    fn note_rate_limit(&self, host: &dyn Host, status: u32) {
        let Some(key) = &self.observed_key else {
            return;
        };
        // Only the cost and latency strategies look at limits: read no headers for nothing.
        if !self.config.observes_limits {
            return;
        }
        let exhausted = || {
            [
                "x-ratelimit-remaining-requests",
                "anthropic-ratelimit-requests-remaining",
            ]
            .iter()
            .any(|h| host.response_header(h).as_deref() == Some("0"))
        };
        if status != 429 && !exhausted() {
            return;
        }
        let wait = host
            .response_header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(10);
        let until = host
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_add(wait);
        quota::update_entry(host.store(), key, |old| {
            let o = old.map(Observed::decode).unwrap_or_default();
            Observed {
                limited_until: o.limited_until.max(until),
                ..o
            }
            .encode()
        });
    }

    fn set_property(&mut self, name: &'static str, value: &str) {
        self.effects
            .push(Effect::SetProperty(name, value.as_bytes().to_vec()));
    }
}

/// The client's own body for a provider that speaks its API.
fn native_request(
    attempt: &Attempt,
    api: Api,
    body: &[u8],
    count_tokens: bool,
) -> Result<crate::provider::UpstreamRequest, GatewayError> {
    match (api, attempt.provider.kind) {
        (Api::Messages, ProviderKind::Anthropic) => {
            anthropic::native_request(attempt, body, count_tokens)
        }
        (Api::Responses, _) => responses::native_request(attempt, body),
        (_, other) => Err(GatewayError::Misconfigured(format!(
            "no native {} request for a {} provider",
            api.name(),
            other.name()
        ))),
    }
}

fn passed_gateway() -> GatewayError {
    GatewayError::Misconfigured(
        "the request reached a provider cluster without passing the gateway filter".into(),
    )
}

/// The decision handed over in this VM; this attempt counted in it.
fn from_handoff(host: &dyn Host, handoff: &Handoff) -> Result<Decision, GatewayError> {
    let attempt = handoff.attempts.get() + 1;
    handoff.attempts.set(attempt);
    let body = match handoff.body.borrow().as_ref() {
        Some(body) => Rc::clone(body),
        // Too large to keep in the VM: Envoy's filter state has it.
        None => Rc::from(host_body(host)?),
    };
    let native_body = match (handoff.api, handoff.native_body.borrow().as_ref()) {
        (Api::OpenAi, _) => None,
        (_, Some(native)) => Some(Rc::clone(native)),
        (_, None) => host.property_bytes(state::NATIVE_BODY).map(Rc::from),
    };
    Ok(Decision {
        model: handoff.model.clone(),
        operation: handoff.operation,
        stream: handoff.stream,
        client_asked_usage: handoff.client_asked_usage,
        chain: handoff.chain.clone(),
        attempt,
        body,
        api: handoff.api,
        count_tokens: handoff.count_tokens,
        native_body,
        untranslatable: handoff.untranslatable.clone(),
    })
}

/// The decision the gateway filter wrote as filter state (the provider filter runs in another
/// VM); attempts are sequential, so a counter in filter state tells which one this is.
fn from_filter_state(host: &dyn Host) -> Result<Decision, GatewayError> {
    let model = host.property(&[state::MODEL]).ok_or_else(passed_gateway)?;
    let operation = host
        .property(&[state::OPERATION])
        .and_then(|o| Operation::parse(&o))
        .ok_or_else(passed_gateway)?;
    let chain = host
        .property(&[state::CHAIN])
        .unwrap_or_default()
        .split(',')
        .filter_map(|i| i.parse().ok())
        .collect();
    let api = host
        .property(&[state::API])
        .and_then(|a| Api::parse(&a))
        .unwrap_or(Api::OpenAi);
    let attempt = host
        .property(&[state::ATTEMPT])
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0)
        .saturating_add(1);
    Ok(Decision {
        model,
        operation,
        stream: host.property(&[state::STREAM]).as_deref() == Some("true"),
        client_asked_usage: host.property(&[state::USAGE_ASKED]).as_deref() == Some("true"),
        chain,
        attempt,
        body: Rc::from(host_body(host)?),
        api,
        count_tokens: host.property(&[state::COUNT_TOKENS]).as_deref() == Some("true"),
        native_body: match api {
            Api::OpenAi => None,
            _ => host.property_bytes(state::NATIVE_BODY).map(Rc::from),
        },
        untranslatable: host
            .property(&[state::UNTRANSLATABLE])
            .filter(|r| !r.is_empty()),
    })
}

fn host_body(host: &dyn Host) -> Result<Vec<u8>, GatewayError> {
    host.property_bytes(state::BODY).ok_or_else(passed_gateway)
}
