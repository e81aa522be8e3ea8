//! What the gateway filter hands the provider filter of the same request, and what the attempts
//! hand back. When both filters run in one VM (the same `vm_id`: envoy/envoy.yaml), they run on
//! the same worker thread, so the decision passes as a value in this VM: no filter-state field
//! written, read back and parsed per attempt. Where the provider filter has a VM of its own (the
//! Istio manifests), no provider root context was configured in this VM and the gateway filter
//! writes the decision as filter state instead, as the provider filter then expects.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::inbound::Api;
use crate::provider::Operation;

/// Bodies up to this size ride along in the VM; larger ones stay in Envoy's filter state, so
/// the VM holds no large body while the provider works.
pub const MAX_BODY_IN_VM: usize = 64 * 1024;

#[derive(Debug)]
pub struct Handoff {
    pub model: String,
    pub operation: Operation,
    pub stream: bool,
    pub client_asked_usage: bool,
    /// Indices of the model's targets in the order Envoy tries them.
    pub chain: Vec<usize>,
    /// The client's validated body, until the answer starts (no attempt follows then); `None`
    /// when it is too large to keep here (then it is in filter state).
    pub body: RefCell<Option<Rc<[u8]>>>,
    /// The API the client used; for one other than OpenAI's, its own body (same rules as
    /// `body`) and why it cannot be translated, if it cannot.
    pub api: Api,
    /// `POST /v1/messages/count_tokens` (sent only to Anthropic targets).
    pub count_tokens: bool,
    pub native_body: RefCell<Option<Rc<[u8]>>>,
    pub untranslatable: Option<String>,
    /// Attempts started so far.
    pub attempts: Cell<usize>,
    /// The provider and upstream model of the last attempt.
    pub served: RefCell<Option<(String, String)>>,
}

thread_local! {
    static PROVIDER_FILTER_HERE: Cell<bool> = const { Cell::new(false) };
    static HANDOFFS: RefCell<HashMap<u32, Rc<Handoff>>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
}

/// A provider filter's root context was configured in this VM (called at its start).
pub fn note_provider_filter_here() {
    PROVIDER_FILTER_HERE.with(|h| h.set(true));
}

pub fn provider_filter_here() -> bool {
    PROVIDER_FILTER_HERE.with(Cell::get)
}

/// Keeps `handoff` for the provider filter; the id goes to it in filter state.
pub fn register(handoff: Handoff) -> (u32, Rc<Handoff>) {
    let id = NEXT_ID.with(|n| {
        let id = n.get().wrapping_add(1);
        n.set(id);
        id
    });
    let handoff = Rc::new(handoff);
    HANDOFFS.with(|h| h.borrow_mut().insert(id, Rc::clone(&handoff)));
    (id, handoff)
}

pub fn find(id: u32) -> Option<Rc<Handoff>> {
    HANDOFFS.with(|h| h.borrow().get(&id).cloned())
}

/// The request is over: its handoff goes.
pub fn release(id: u32) {
    HANDOFFS.with(|h| h.borrow_mut().remove(&id));
}

/// Handoffs alive in this VM (none may outlive its request).
#[cfg(test)]
pub fn live() -> usize {
    HANDOFFS.with(|h| h.borrow().len())
}
