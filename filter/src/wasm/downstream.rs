//! The client-facing filter (root_id `gateway`): feeds each proxy-wasm callback to the request's
//! state machine (`crate::pipeline`) and carries out the effects it returns. Nothing is decided
//! here.

use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::{host, timing};
use crate::config::Config;
use crate::pipeline::{Effect, Flow, GrpcCall, Host, HttpCall, Request, MAX_CALLOUT_ANSWER};
use crate::quota::SharedStore;

/// More than any request body Envoy buffers (`max_request_bytes` is at most 64 MiB).
const MAX_BUFFERED_BODY: usize = 128 * 1024 * 1024;

pub struct GatewayFilter {
    request: Request,
}

impl GatewayFilter {
    pub fn new(config: Rc<Config>, started_unix: u64) -> Self {
        Self {
            request: Request::new(config, started_unix, host::now()),
        }
    }

    /// Carries out what the last event decided, then tells Envoy whether to go on.
    fn apply(&mut self, flow: Flow, body_size: usize) -> Action {
        for effect in self.request.take_effects() {
            carry_out(effect, body_size);
        }
        match flow {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }
}

/// Carries out one effect; `body_size` is the size of the body piece of the callback at hand.
pub(super) fn carry_out(effect: Effect, body_size: usize) {
    match effect {
        Effect::Reply {
            status,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Err(s) = hostcalls::send_http_response(status, headers, Some(&body)) {
                log::error!("sending a local reply failed: {s:?}");
            }
        }
        Effect::RemoveRequestHeader(name) => {
            host::set_header(MapType::HttpRequestHeaders, name, None);
        }
        Effect::SetRequestHeader(name, value) => {
            host::set_header(MapType::HttpRequestHeaders, &name, value.as_deref());
        }
        Effect::ReplaceRequestBody(body) => {
            host::replace_body(BufferType::HttpRequestBody, body_size, &body);
        }
        Effect::SetResponseHeader(name, value) => {
            host::set_header(MapType::HttpResponseHeaders, name, value.as_deref());
        }
        Effect::SetProperty(name, value) => host::set_property_bytes(name, &value),
        Effect::ClearRouteCache => host::clear_route_cache(),
        Effect::ReplaceResponseBody(body) => {
            host::replace_body(BufferType::HttpResponseBody, body_size, &body);
        }
        Effect::ResumeRequest => {
            if let Err(s) = hostcalls::resume_http_request() {
                log::error!("resuming the request failed: {s:?}");
            }
        }
        Effect::ResumeResponse => {
            if let Err(s) = hostcalls::resume_http_response() {
                log::error!("resuming the response failed: {s:?}");
            }
        }
        Effect::Count(name, by) => host::count(&name, by),
        Effect::Record(name, value) => host::record(&name, value),
    }
}

/// The proxy-wasm host as the state machines see it.
pub(super) struct WasmHost;

impl Host for WasmHost {
    fn now(&self) -> SystemTime {
        host::now()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        host::header(MapType::HttpResponseHeaders, name)
    }

    fn request_body(&self, len: usize) -> Vec<u8> {
        host::body(BufferType::HttpRequestBody, len)
    }

    fn response_body(&self, len: usize) -> Vec<u8> {
        host::body(BufferType::HttpResponseBody, len)
    }

    fn property(&self, path: &[&str]) -> Option<String> {
        host::property_path(path)
    }

    fn property_bytes(&self, name: &str) -> Option<Vec<u8>> {
        host::property_bytes(name)
    }

    fn request_headers(&self) -> Result<Vec<(String, String)>, String> {
        host::headers(MapType::HttpRequestHeaders)
    }

    fn store(&self) -> &dyn SharedStore {
        &host::HostStore
    }

    fn call_grpc(&self, call: GrpcCall<'_>) -> Result<u32, String> {
        hostcalls::dispatch_grpc_call(
            call.cluster,
            call.service,
            call.method,
            vec![],
            Some(call.message),
            call.timeout,
        )
        .map_err(|s| format!("{s:?}"))
    }

    fn call_http(&self, call: HttpCall<'_>) -> Result<u32, String> {
        // The call's own headers win (a signed call signs its `content-type` and host).
        let given = |name: &str| call.headers.iter().any(|(n, _)| *n == name);
        let mut headers = vec![(":method", "POST"), (":path", call.path)];
        if !given("content-type") {
            headers.push(("content-type", "application/json"));
        }
        if !given(":authority") {
            headers.push((":authority", call.cluster));
        }
        headers.extend_from_slice(call.headers);
        hostcalls::dispatch_http_call(call.cluster, headers, Some(call.body), vec![], call.timeout)
            .map_err(|s| format!("{s:?}"))
    }

    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), String> {
        // WASI random_get, which Envoy implements.
        getrandom::getrandom(buf).map_err(|e| e.to_string())
    }
}

impl Context for GatewayFilter {
    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        let size = response_size.min(MAX_CALLOUT_ANSWER);
        let body = hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size)
            .ok()
            .flatten();
        self.request
            .on_rate_limit_answer(&WasmHost, token, status_code, body.as_deref());
        self.apply(Flow::Continue, 0);
    }

    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let status = host::header(MapType::HttpCallResponseHeaders, ":status").unwrap_or_default();
        let cap = self.request.callout_answer_cap(token);
        let answer = host::body(BufferType::HttpCallResponseBody, body_size.min(cap));
        self.request
            .on_http_call_answer(&WasmHost, token, &status, &answer);
        // A guard's verdict rewrites the body Envoy holds while the request (or the answer)
        // waits: all of it, whose length is read only then.
        let effects = self.request.take_effects();
        let buffered = |buffer| host::body(buffer, MAX_BUFFERED_BODY).len();
        for effect in effects {
            let size = match &effect {
                Effect::ReplaceRequestBody(_) => buffered(BufferType::HttpRequestBody),
                Effect::ReplaceResponseBody(_) => buffered(BufferType::HttpResponseBody),
                _ => 0,
            };
            carry_out(effect, size);
        }
    }
}

impl HttpContext for GatewayFilter {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        timing::time("gateway request headers", || {
            let flow = self.request.on_request_headers(&WasmHost, end_of_stream);
            self.apply(flow, 0)
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        timing::time("gateway request body", || {
            let flow = self
                .request
                .on_request_body(&WasmHost, body_size, end_of_stream);
            self.apply(flow, body_size)
        })
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        timing::time("gateway response headers", || {
            let flow = self.request.on_response_headers(&WasmHost);
            self.apply(flow, 0)
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        timing::time("gateway response body", || {
            let flow = self
                .request
                .on_response_body(&WasmHost, body_size, end_of_stream);
            self.apply(flow, body_size)
        })
    }

    fn on_log(&mut self) {
        timing::time("gateway log", || {
            host::note_vm_memory();
            self.request.on_log(&WasmHost);
            self.apply(Flow::Continue, 0);
        });
        timing::request_done();
    }
}
