//! The proxy-wasm adapters: the root context reads the configuration and hands each HTTP stream
//! to the filter of its role. Only this module calls the host.

mod abi;
mod downstream;
mod host;
mod timing;
mod upstream;

use std::rc::Rc;

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use crate::cache::shared::collection::{Keeper, VECTORS_HANDLE_KEY};
use crate::config::Config;
use crate::pipeline::{Host, HttpCall, MAX_CALLOUT_ANSWER};

/// How often a gateway with a shared cache tier checks that its collection is known.
const SHARED_TIER_TICK: Duration = Duration::from_millis(500);

/// The collection lookup's timeout.
const COLLECTION_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

proxy_wasm::main! {{
    // Installs a panic hook that logs at critical level.
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Gateway,
    Provider,
}

struct Root {
    role: Option<Role>,
    config: Option<Rc<Config>>,
    started_unix: u64,
    /// Learns the cache's shared collection (`cache/shared/collection.rs`).
    keeper: Keeper,
    /// Learns the collection of the semantic entries.
    vectors_keeper: Keeper,
}

impl Default for Root {
    fn default() -> Self {
        Self {
            role: None,
            config: None,
            started_unix: 0,
            keeper: Keeper::default(),
            vectors_keeper: Keeper::new(VECTORS_HANDLE_KEY),
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let status = host::header(MapType::HttpCallResponseHeaders, ":status").unwrap_or_default();
        let answer = host::body(
            BufferType::HttpCallResponseBody,
            body_size.min(MAX_CALLOUT_ANSWER),
        );
        let Some(tier) = self
            .config
            .as_ref()
            .and_then(|c| c.cache.as_ref())
            .and_then(|c| c.shared.as_ref())
        else {
            return;
        };
        let (keeper, api) = if self.vectors_keeper.token == Some(token) {
            (&mut self.vectors_keeper, tier.vectors_api())
        } else {
            (&mut self.keeper, tier.api())
        };
        let outcome = match keeper.on_answer(api, &host::HostStore, &status, &answer) {
            Ok(_) => "ready",
            Err(e) => e.name(),
        };
        host::count(
            &crate::metrics::cache_shared("none", "collection", outcome),
            1,
        );
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log::info!(
            "ai-gateway {} ({}) starting",
            env!("CARGO_PKG_VERSION"),
            env!("GATEWAY_GIT_HASH")
        );
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let root_id = host::property_path(&["plugin_root_id"]).unwrap_or_default();
        let role = match root_id.as_str() {
            "gateway" => Role::Gateway,
            "provider" => Role::Provider,
            other => {
                log::error!(
                    "invalid plugin configuration at `root_id`: '{other}' is not a role; use 'gateway' (downstream filter) or 'provider' (upstream filter in a provider cluster)"
                );
                return false;
            }
        };
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(Some(b)) => b,
            _ => {
                log::error!("invalid plugin configuration at `(document)`: the plugin configuration is empty");
                return false;
            }
        };
        match Config::from_json(&bytes, &|name| std::env::var(name).ok()) {
            Ok(config) => {
                if role == Role::Gateway {
                    for p in config.providers.iter().filter(|p| !p.enabled()) {
                        log::warn!(
                            "provider '{}' is switched off: {} is not set",
                            p.id,
                            p.missing_vars()
                        );
                    }
                }
                if role == Role::Gateway
                    && config.cache.as_ref().is_some_and(|c| c.shared.is_some())
                {
                    if let Err(s) = hostcalls::set_tick_period(SHARED_TIER_TICK) {
                        log::error!("cache shared tier: no tick ({s:?}); its collection cannot be looked up");
                    }
                }
                if role == Role::Provider {
                    // The gateway filter hands this VM's provider filters its decision in the VM.
                    crate::pipeline::handoff::note_provider_filter_here();
                }
                self.role = Some(role);
                self.config = Some(Rc::new(config));
                self.started_unix = host::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                true
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    /// Looks the shared tier's collection up while it is unknown.
    fn on_tick(&mut self) {
        let now = host::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let Some(config) = self.config.clone() else {
            return;
        };
        let Some(tier) = config.cache.as_ref().and_then(|c| c.shared.as_ref()) else {
            return;
        };
        let vectors = config.cache.as_ref().is_some_and(|c| c.shares_vectors());
        let keepers = [
            Some((&mut self.keeper, tier.api())),
            vectors.then_some((&mut self.vectors_keeper, tier.vectors_api())),
        ];
        for (keeper, api) in keepers.into_iter().flatten() {
            let Some(call) = keeper.on_tick(api, &host::HostStore, now) else {
                continue;
            };
            let started = downstream::WasmHost.call_http(HttpCall {
                cluster: &tier.cluster,
                path: &call.path,
                headers: &[],
                body: &call.body,
                timeout: COLLECTION_LOOKUP_TIMEOUT,
            });
            match started {
                Ok(token) => keeper.token = Some(token),
                Err(reason) => {
                    keeper.not_sent(&reason);
                    host::count(
                        &crate::metrics::cache_shared("none", "collection", "unreachable"),
                        1,
                    );
                }
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(match self.role? {
            Role::Gateway => Box::new(downstream::GatewayFilter::new(config, self.started_unix)),
            Role::Provider => Box::new(upstream::ProviderFilter::new(config)),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
