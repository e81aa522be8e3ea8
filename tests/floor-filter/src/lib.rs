//! The wasm floor of `make bench` (README "Benchmarks"): the least work a proxy-wasm filter
//! that touches the request body does. It lets the headers pass, pauses until the end of the
//! body, copies the body out of Envoy whole and writes the same bytes back. Envoy runs it where
//! the gateway's filters run (downstream, and in the floor's second variant also as the
//! per-attempt filter of the provider cluster), each followed by the same buffer filter, so the
//! gateway's CPU per request can be compared with what any such filter costs.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot) });
}}

struct FloorRoot;

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Floor))
    }
}

struct Floor;

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Envoy buffers the body while this pauses (pausing in the headers phase instead
        // never delivers the body in Envoy 1.40), as the gateway's filters do.
        if !end_of_stream {
            return Action::Pause;
        }
        match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(Some(body)) => {
                if let Err(e) =
                    hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body_size, &body)
                {
                    log::warn!("floor filter: writing the body back failed: {e:?}");
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("floor filter: reading the body failed: {e:?}"),
        }
        Action::Continue
    }
}
