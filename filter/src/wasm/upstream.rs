//! The per-attempt filter in every provider cluster (root_id `provider`): feeds each callback of
//! an attempt to its state machine (`crate::pipeline::attempt`) and carries out the effects.
//! Nothing is decided here.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::downstream::{carry_out, WasmHost};
use super::timing;
use crate::config::Config;
use crate::pipeline::attempt::ProviderAttempt;
use crate::pipeline::Flow;

pub struct ProviderFilter {
    attempt: ProviderAttempt,
}

impl ProviderFilter {
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            attempt: ProviderAttempt::new(config),
        }
    }

    fn apply(&mut self, flow: Flow, body_size: usize) -> Action {
        for effect in self.attempt.take_effects() {
            carry_out(effect, body_size);
        }
        match flow {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }
}

impl Context for ProviderFilter {}

impl HttpContext for ProviderFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        timing::time("provider request headers", || {
            let flow = self.attempt.on_request_headers(&WasmHost);
            self.apply(flow, 0)
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        timing::time("provider request body", || {
            let flow = self.attempt.on_request_body(end_of_stream);
            self.apply(flow, body_size)
        })
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        timing::time("provider response headers", || {
            let flow = self.attempt.on_response_headers(&WasmHost);
            self.apply(flow, 0)
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        timing::time("provider response body", || {
            let flow = self
                .attempt
                .on_response_body(&WasmHost, body_size, end_of_stream);
            self.apply(flow, body_size)
        })
    }
}
