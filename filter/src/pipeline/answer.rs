//! The way back: the answer (already in the OpenAI format: the provider filter translated it)
//! passes through while its usage is read, secrets are scrubbed, errors get the OpenAI shape,
//! and a stream that breaks ends with an error event. Every buffer here has a cap.

use super::guard::Guarded;
use super::phase::Callback;
use super::{Effect, Flow, Host, Outbound, Request};
use crate::error::GatewayError;
use crate::inbound::{Api, NativeStream};
use crate::response::{log_excerpt, normalize_error_body, ResponseMode, MAX_ERROR_BODY};

impl Request {
    /// The response's headers: chooses how its body is handled and adds the gateway's headers.
    pub fn on_response_headers(&mut self, host: &dyn Host) -> Flow {
        self.enter(Callback::ResponseHeaders);
        if self.cache.answered() {
            return Flow::Continue; // the cache's own reply
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.status = status;
        // Errors of every origin (Envoy's own 413/503 text replies too) get the OpenAI shape;
        // the gateway's own replies already have it and pass unchanged.
        if self.operation.is_none() && status < 400 {
            return Flow::Continue;
        }
        let content_type = host.response_header("content-type");
        let strip = self
            .plan
            .as_ref()
            .is_some_and(|p| p.stream && !p.client_asked_usage);
        // No attempt follows once the answer is here: a body kept for them goes.
        if let Some((_, handoff)) = &self.handoff {
            handoff.body.borrow_mut().take();
            handoff.native_body.borrow_mut().take();
        }
        let served = self.plan.as_ref().map(|_| self.read_served(host));
        self.served.clone_from(&served);
        let provider = served.as_ref().map(|s| s.provider.clone());
        let mode = match (&provider, status) {
            (Some(provider), 401 | 403) => {
                let e = GatewayError::ProviderAuth {
                    provider: provider.clone(),
                    status,
                };
                self.status = e.status();
                self.error_code = Some((e.code(), e.fault()));
                self.emit(Effect::SetResponseHeader(":status", Some("502".into())));
                self.emit(Effect::SetResponseHeader(
                    "content-type",
                    Some("application/json".into()),
                ));
                ResponseMode::Replace(e.to_json())
            }
            _ => ResponseMode::choose(
                status,
                content_type.as_deref(),
                strip,
                self.body_log.is_some(),
                self.config.body_log_max_bytes,
            ),
        };
        let mode = self.choose_outbound(served.as_ref().map(|s| s.provider.as_str()), mode);
        let translated = matches!(self.outbound, Some(Outbound::Translate(_)));
        let guarded = self.guards_answer() && self.plan.is_some();
        if guarded && matches!(mode, Some(ResponseMode::Stream(_))) {
            self.guard_stream_start();
        }
        if guarded || translated || !matches!(mode, Some(ResponseMode::Json(_))) {
            // The body may be rewritten: its length is not known in advance.
            self.emit(Effect::SetResponseHeader("content-length", None));
        }
        self.mode = mode;
        self.cache_on_response_headers(status);
        if self.plan.is_none() {
            return Flow::Continue;
        }
        if let Some(provider) = provider {
            self.emit(Effect::SetResponseHeader(
                "x-gateway-provider",
                Some(provider),
            ));
        }
        if let Some(served) = served {
            if let Some(model) = served.upstream_model {
                self.emit(Effect::SetResponseHeader("x-gateway-model", Some(model)));
            }
            if served.attempts > 0 {
                let attempts = served.attempts.to_string();
                self.emit(Effect::SetResponseHeader(
                    "x-gateway-attempts",
                    Some(attempts),
                ));
            }
        }
        for (name, value) in std::mem::take(&mut self.limit_headers) {
            self.emit(Effect::SetResponseHeader(name, Some(value)));
        }
        Flow::Continue
    }

    /// For a client of another API than OpenAI's, how the answer reaches it: untouched from a
    /// provider that speaks that API (its usage read in that API's format), else translated
    /// from the OpenAI answer. Returns the mode the OpenAI machinery keeps (none for a native
    /// stream, observed on its own).
    fn choose_outbound(
        &mut self,
        provider: Option<&str>,
        mode: ResponseMode,
    ) -> Option<ResponseMode> {
        let Some(front) = &self.front else {
            return Some(mode);
        };
        let Some(provider) = provider else {
            return Some(mode);
        };
        let native = self
            .config
            .providers
            .iter()
            .find(|p| p.id == provider)
            .is_some_and(|p| self.guard.is_none() && front.api().native_to(p));
        match (native, mode) {
            (true, ResponseMode::Stream(_)) => {
                self.outbound = Some(Outbound::Native(Some(Box::new(front.native_stream()))));
                None
            }
            (true, ResponseMode::Json(window)) => {
                self.outbound = Some(Outbound::Native(None));
                Some(ResponseMode::Json(
                    window.reading_usage_with(front.native_usage()),
                ))
            }
            (true, other) => {
                self.outbound = Some(Outbound::Native(None));
                Some(other)
            }
            (false, ResponseMode::Stream(observer)) => {
                self.outbound = Some(Outbound::Translate(Some(Box::new(front.stream()))));
                Some(ResponseMode::Stream(observer))
            }
            (false, other) => {
                self.outbound = Some(Outbound::Translate(None));
                Some(other)
            }
        }
    }

    /// A native stream (see `choose_outbound`): passes untouched but for secrets scrubbed and
    /// an error event after it when it broke.
    fn on_native_stream(
        &mut self,
        host: &dyn Host,
        size: usize,
        end_of_stream: bool,
        stream: &mut NativeStream,
    ) {
        let chunk = host.response_body(size);
        let scrubbed = self
            .scrub
            .feed(&self.config.scrubber, &chunk, end_of_stream);
        let clean = scrubbed.as_deref().unwrap_or(&chunk);
        let ending = stream.push(clean, end_of_stream);
        let replacement = match ending {
            Some(ending) => {
                let mut out = clean.to_vec();
                out.extend(ending);
                Some(out)
            }
            None => scrubbed,
        };
        if let Some(bytes) = replacement {
            self.emit(Effect::ReplaceResponseBody(bytes));
        }
        if end_of_stream {
            self.usage = stream.usage();
            if let Some(code) = stream.failure() {
                self.error_code = Some((code, "provider"));
            } else if stream.errored() {
                self.error_code = Some(("stream_error", "provider"));
            }
            if let (Some(pending), Some(response)) =
                (self.response_pending.as_mut(), stream.finished_response())
            {
                pending.set_response(response);
            }
            self.on_response_end(None);
            self.response_store_end(host);
        }
    }

    /// A piece of the response body (`size` bytes; the last one when `end_of_stream`).
    pub fn on_response_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        self.enter(Callback::ResponseBody);
        if self.first_byte_ms.is_none() && size > 0 {
            self.first_byte_ms = Some(self.millis_since_start(host.now()));
        }
        if let Some(Outbound::Native(native)) = self.outbound.as_mut() {
            if let Some(mut stream) = native.take() {
                self.on_native_stream(host, size, end_of_stream, &mut stream);
                self.outbound = Some(Outbound::Native(Some(stream)));
                return Flow::Continue;
            }
        }
        let streamed = matches!(self.mode, Some(ResponseMode::Stream(_)));
        let mut guarded = None;
        if streamed || matches!(self.mode, Some(ResponseMode::Json(_))) {
            match self.guard_answer(host, size, end_of_stream, streamed) {
                Guarded::Wait => return Flow::Pause, // a guarded JSON answer is read whole
                // Resumed by the guard callouts' verdicts (`answer_body` then).
                Guarded::Asking => return Flow::Pause,
                Guarded::Unguarded => {}
                Guarded::Bytes(bytes) => guarded = Some(bytes),
            }
        }
        self.answer_body(host, size, end_of_stream, guarded)
    }

    /// A response body piece after the guards (`guarded`: the bytes they let go instead).
    pub(super) fn answer_body(
        &mut self,
        host: &dyn Host,
        size: usize,
        end_of_stream: bool,
        guarded: Option<Vec<u8>>,
    ) -> Flow {
        let translating = matches!(self.outbound, Some(Outbound::Translate(_)));
        let was_guarded = guarded.is_some();
        let scrubber = &self.config.scrubber;
        let mut replacement = None;
        match &mut self.mode {
            None => {}
            Some(ResponseMode::Error { .. } | ResponseMode::Replace(_))
                if !end_of_stream && size <= MAX_ERROR_BODY =>
            {
                return Flow::Pause; // errors are small: read them whole
            }
            Some(ResponseMode::Error { status }) => {
                // An error body past the cap is read only up to it; the rest is dropped.
                let status = *status;
                let body = host.response_body(size.min(MAX_ERROR_BODY));
                // Scrubbed before the message is shortened, which could cut a secret in two.
                let scrubbed = scrubber.scrub(&body);
                let clean = scrubbed.as_deref().unwrap_or(&body);
                let sent = match normalize_error_body(status, clean) {
                    Some(shaped) => shaped,
                    None if size > MAX_ERROR_BODY => {
                        normalize_error_body(status, b"").unwrap_or_default()
                    }
                    None => scrubbed.unwrap_or(body),
                };
                self.end_with(sent);
                return Flow::Continue;
            }
            Some(ResponseMode::Replace(body)) => {
                // Sent once, in place of the first (buffered) body; later pieces are dropped.
                let sent = std::mem::take(body);
                let sent = match self.api {
                    Api::OpenAi => sent,
                    api => api.error_body(self.status, sent),
                };
                if self.body_log.as_ref().is_some_and(|(_, r)| r.is_none()) {
                    self.end_with(sent);
                } else {
                    self.emit(Effect::ReplaceResponseBody(sent));
                }
                return Flow::Continue;
            }
            Some(ResponseMode::Json(_)) if translating && !end_of_stream => {
                return Flow::Pause; // translated whole: Envoy buffers it to its end
            }
            Some(ResponseMode::Json(window)) => {
                let chunk = guarded.unwrap_or_else(|| host.response_body(size));
                let scrubbed = self.scrub.feed(scrubber, &chunk, end_of_stream);
                window.push(scrubbed.as_deref().unwrap_or(&chunk));
                // The OpenAI answer as it goes on (scrubbed, guarded), and whether it changed.
                let (openai, changed) = match scrubbed {
                    Some(bytes) => (bytes, true),
                    None => (chunk, was_guarded),
                };
                self.cache.feed(&openai);
                // A response to keep: the provider's own as it passes, or the translated one.
                let cap = self.config.response_store.map_or(0, |c| c.max_entry_bytes);
                if let (Some(pending), false) = (self.response_pending.as_mut(), translating) {
                    pending.feed_json(&openai, cap);
                }
                replacement = match (translating, &self.front) {
                    (true, Some(front)) => Some(front.answer_from_chat(&openai)),
                    _ => changed.then_some(openai),
                };
                if let (Some(pending), true, Some(answer)) =
                    (self.response_pending.as_mut(), translating, &replacement)
                {
                    pending.set_response_bytes(answer);
                }
            }
            Some(ResponseMode::Stream(observer)) => {
                let chunk = guarded.unwrap_or_else(|| host.response_body(size));
                let scrubbed = self.scrub.feed(scrubber, &chunk, end_of_stream);
                let clean = scrubbed.as_deref().unwrap_or(&chunk);
                self.cache.feed(clean);
                let (openai, changed) = match observer.on_chunk(clean, end_of_stream) {
                    Some(bytes) => (bytes, true),
                    None => match scrubbed {
                        Some(bytes) => (bytes, true),
                        None => (chunk, was_guarded),
                    },
                };
                replacement = match self.outbound.as_mut() {
                    Some(Outbound::Translate(Some(front))) => {
                        let events = front.push(&openai, end_of_stream);
                        if let (Some(pending), Some(response)) =
                            (self.response_pending.as_mut(), front.finished_response())
                        {
                            pending.set_response(response);
                        }
                        Some(events)
                    }
                    _ => changed.then_some(openai),
                };
            }
        }
        if let Some(bytes) = replacement {
            self.emit(Effect::ReplaceResponseBody(bytes));
        }
        if end_of_stream {
            self.on_response_end(None);
            self.response_store_end(host);
        }
        if end_of_stream || self.cache.stream_ended() {
            self.cache_store(host);
        }
        Flow::Continue
    }

    /// Sends `body` in place of the (buffered) answer, records it as the end of the answer, and
    /// drops whatever else comes.
    fn end_with(&mut self, body: Vec<u8>) {
        // In the client's API's error shape (the OpenAI one kept as it is).
        let body = self.api.error_body(self.status, body);
        self.on_response_end(Some(&body));
        self.mode = Some(ResponseMode::Replace(Vec::new()));
        self.emit(Effect::ReplaceResponseBody(body));
    }

    /// The answer is complete: what it says of usage and errors, and its body-log excerpt.
    fn on_response_end(&mut self, last_body: Option<&[u8]>) {
        let cap = self.config.body_log_max_bytes;
        let logged = match self.mode.take() {
            Some(ResponseMode::Json(window)) => {
                self.usage = window.usage();
                window.excerpt(cap)
            }
            Some(ResponseMode::Stream(observer)) => {
                self.usage = observer.usage;
                if let Some(code) = observer.failure {
                    self.error_code = Some((code, "provider"));
                } else if observer.error && self.error_code.is_none() {
                    self.error_code = Some(("stream_error", "provider"));
                }
                observer
                    .transcript
                    .map(|t| log_excerpt(t.to_json().as_bytes(), cap))
                    .unwrap_or_default()
            }
            _ => log_excerpt(last_body.unwrap_or_default(), cap),
        };
        if let Some((_, response)) = self.body_log.as_mut() {
            *response = Some(logged);
        }
    }
}
