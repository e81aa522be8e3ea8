//! Fallible wrappers over the proxy-wasm host calls the filters use. A failed call is logged
//! and degrades (a missing value, a skipped change); it never panics the VM. The header calls go
//! through `abi`: the SDK's own panic on bytes a client or provider sends.

use std::time::{SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType};

use super::abi;
use crate::header_map;

/// One header's value; bytes that are not UTF-8 read as U+FFFD (see `crate::header_map`).
pub fn header(map: MapType, name: &str) -> Option<String> {
    match abi::header_value(map, name) {
        Ok(value) => value.map(|v| header_map::text(&v)),
        Err(s) => {
            log::warn!("reading header {name} failed: {s:?}");
            None
        }
    }
}

/// Every header of a map, in order, decoded like [`header`].
pub fn headers(map: MapType) -> Result<Vec<(String, String)>, String> {
    let bytes = abi::header_pairs(map).map_err(|s| format!("{s:?}"))?;
    header_map::decode_pairs(&bytes).map_err(str::to_string)
}

pub fn set_header(map: MapType, name: &str, value: Option<&str>) {
    if let Err(s) = abi::set_header(map, name, value.map(str::as_bytes)) {
        log::warn!("setting header {name} failed: {s:?}");
    }
}

pub fn body(buffer: BufferType, size: usize) -> Vec<u8> {
    match hostcalls::get_buffer(buffer, 0, size) {
        Ok(b) => b.unwrap_or_default(),
        Err(s) => {
            log::warn!("reading {buffer:?} failed: {s:?}");
            Vec::new()
        }
    }
}

pub fn replace_body(buffer: BufferType, old_size: usize, new: &[u8]) -> bool {
    hostcalls::set_buffer(buffer, 0, old_size, new)
        .map_err(|s| log::warn!("replacing {buffer:?} failed: {s:?}"))
        .is_ok()
}

pub fn property_path(path: &[&str]) -> Option<String> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) => String::from_utf8(bytes).ok(),
        Ok(None) => None,
        Err(s) => {
            log::debug!("property {path:?} unavailable: {s:?}");
            None
        }
    }
}

pub fn property_bytes(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_property(vec![name]).ok().flatten()
}

pub fn set_property_bytes(name: &str, value: &[u8]) {
    if let Err(s) = hostcalls::set_property(vec![name], Some(value)) {
        log::warn!("setting property {name} failed: {s:?}");
    }
}

pub fn now() -> SystemTime {
    hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
}

/// Envoy re-selects the route after the filter state that routes match on has changed.
pub fn clear_route_cache() {
    if let Err(s) = hostcalls::call_foreign_function("clear_route_cache", None) {
        log::error!("clear_route_cache failed: {s:?}");
    }
}

thread_local! {
    // The VM is single-threaded; each worker has its own VM and its own ids.
    static METRIC_IDS: std::cell::RefCell<hashbrown::HashMap<String, u32>> = Default::default();
}

fn metric_id(kind: MetricType, name: &str) -> Option<u32> {
    METRIC_IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if let Some(id) = ids.get(name) {
            return Some(*id);
        }
        match hostcalls::define_metric(kind, name) {
            Ok(id) => {
                ids.insert(name.to_string(), id);
                Some(id)
            }
            Err(s) => {
                log::warn!("defining metric {name} failed: {s:?}");
                None
            }
        }
    })
}

pub fn count(name: &str, by: u64) {
    if let Some(id) = metric_id(MetricType::Counter, name) {
        let _ = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
    }
}

/// Adds this VM's growth of linear memory to the `gw.vm_memory_bytes` gauge, so the gauge is
/// the memory of every VM of this Envoy (one per worker). Wasm memory never shrinks: this is the
/// high-water mark that matters. A host call only when the memory grew.
pub fn note_vm_memory() {
    thread_local!(static COUNTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    let now = core::arch::wasm32::memory_size(0) as u64 * 65_536;
    let counted = COUNTED.with(std::cell::Cell::get);
    if now > counted {
        if let Some(id) = metric_id(MetricType::Gauge, crate::metrics::VM_MEMORY) {
            let _ = hostcalls::increment_metric(id, i64::try_from(now - counted).unwrap_or(0));
        }
        COUNTED.with(|c| c.set(now));
    }
}

pub fn record(name: &str, value: u64) {
    if let Some(id) = metric_id(MetricType::Histogram, name) {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// Proxy-wasm shared data as the quota module's store: shared by every worker of this Envoy,
/// updated with compare-and-swap.
pub struct HostStore;

impl crate::quota::SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, crate::quota::StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((value, Some(cas))) => Ok(Some((value.unwrap_or_default(), cas))),
            Ok((_, None)) => Ok(None),
            Err(_) => Err(crate::quota::StoreError::Other),
        }
    }

    fn set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), crate::quota::StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(proxy_wasm::types::Status::CasMismatch) => {
                Err(crate::quota::StoreError::CasMismatch)
            }
            Err(_) => Err(crate::quota::StoreError::Other),
        }
    }
}
