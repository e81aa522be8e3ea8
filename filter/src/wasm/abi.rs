//! The header-map host calls, made directly on the proxy-wasm ABI instead of through the SDK.
//!
//! proxy-wasm 0.2.5 panics inside these calls: on a header value that is not UTF-8 (which a
//! client or a provider controls) and on any status it did not expect (e.g. writing a map
//! outside the callbacks the ABI allows it in). A panic kills the VM: the request fails, and
//! so do the next ones until Envoy has reloaded it. Here every status is an `Err` and every
//! byte is read as it comes (`crate::header_map` decodes it). Signatures and statuses are the
//! Proxy-Wasm ABI v0.2.1 specification's (github.com/proxy-wasm/spec).

use std::ptr::null_mut;

use proxy_wasm::types::MapType;

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
    ) -> u32;
}

/// A host status other than OK (and NOT_FOUND where that means "absent").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

/// Takes ownership of bytes the host wrote into memory it had the VM allocate
/// (`proxy_on_memory_allocate`, a `Vec<u8>` of exactly `size` bytes).
fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: the host returned `data` from the SDK's `proxy_on_memory_allocate(size)`, which
    // leaks a `Vec<u8>` with capacity `size`; this takes that allocation back once.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Every pair of a header map, serialized as the ABI returns it.
pub fn header_pairs(map: MapType) -> Result<Vec<u8>, Status> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the host writes the two return values through valid pointers to locals.
    match unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) } {
        OK => Ok(owned(data, size)),
        status => Err(Status(status)),
    }
}

/// One header's value as bytes; `None` when the map has no such header.
pub fn header_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: `name` is valid for its length; the return pointers are valid locals.
    let status =
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) };
    match status {
        OK => Ok(Some(owned(data, size))),
        NOT_FOUND => Ok(None),
        status => Err(Status(status)),
    }
}

/// Sets a header (replacing every value it had), or with `None` removes it.
pub fn set_header(map: MapType, name: &str, value: Option<&[u8]>) -> Result<(), Status> {
    // SAFETY: `name` and `value` are valid for their lengths during the call.
    let status = unsafe {
        match value {
            Some(v) => {
                proxy_replace_header_map_value(map, name.as_ptr(), name.len(), v.as_ptr(), v.len())
            }
            None => proxy_remove_header_map_value(map, name.as_ptr(), name.len()),
        }
    };
    match status {
        OK => Ok(()),
        status => Err(Status(status)),
    }
}
