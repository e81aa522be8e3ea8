//! Where the host lets a filter change what (proxy-wasm ABI v0.2.1 specification, "HTTP fields"
//! and "Buffers"): request headers only in their own callback, the request body in its own, and
//! so on for the response, or while the stream is paused from that callback. Envoy forgets a map
//! once its callback goes on, so a header written later fails at the host: the adapter logs it
//! and the change is lost. Every native test checks each event's effects against the event they
//! came from (the check is compiled into tests only).

#[cfg(test)]
use super::Effect;

/// The host callback a state machine is handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    /// A callout's answer: it may change whatever its stream is paused in (not tracked here).
    CalloutAnswer,
    Log,
}

/// The callback an effect has to be carried out in, for the effects that have one.
#[cfg(test)]
fn only_in(effect: &Effect) -> Option<Callback> {
    match effect {
        Effect::RemoveRequestHeader(_) | Effect::SetRequestHeader(..) => {
            Some(Callback::RequestHeaders)
        }
        Effect::ReplaceRequestBody(_) => Some(Callback::RequestBody),
        Effect::SetResponseHeader(..) => Some(Callback::ResponseHeaders),
        Effect::ReplaceResponseBody(_) => Some(Callback::ResponseBody),
        _ => None,
    }
}

/// Which callback each effect was emitted in, for the native tests: effects may be taken after
/// several events, so each is checked when the next event starts or when they are taken.
#[cfg(test)]
#[derive(Debug)]
pub struct Tracker {
    callback: Callback,
    /// How many of the pending effects are already checked.
    checked: usize,
}

#[cfg(test)]
impl Tracker {
    pub fn new() -> Self {
        Self {
            callback: Callback::RequestHeaders,
            checked: 0,
        }
    }

    /// A new callback starts: what the last one emitted is checked against the last one.
    pub fn enter(&mut self, callback: Callback, pending: &[Effect]) {
        self.check_new(pending);
        self.callback = callback;
    }

    /// The pending effects are taken by the adapter (or a test).
    pub fn taken(&mut self, pending: &[Effect]) {
        self.check_new(pending);
        self.checked = 0;
    }

    fn check_new(&mut self, pending: &[Effect]) {
        check(
            self.callback,
            pending.get(self.checked..).unwrap_or_default(),
        );
        self.checked = pending.len();
    }
}

/// Fails the test when an effect emitted in `callback` could not be carried out there.
#[cfg(test)]
fn check(callback: Callback, effects: &[Effect]) {
    if callback == Callback::CalloutAnswer {
        return;
    }
    for effect in effects {
        if let Some(needed) = only_in(effect) {
            assert_eq!(
                needed, callback,
                "{effect:?} emitted in {callback:?}: the host allows it only in {needed:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Effect {
        Effect::SetRequestHeader("x-h".into(), Some("1".into()))
    }

    #[test]
    fn effects_taken_after_several_callbacks_count_for_the_one_they_came_from() {
        let mut tracker = Tracker::new();
        let mut pending = vec![header()]; // emitted in the request headers
        tracker.enter(Callback::RequestBody, &pending);
        pending.push(Effect::ReplaceRequestBody(b"{}".to_vec()));
        tracker.enter(Callback::CalloutAnswer, &pending);
        pending.push(Effect::SetResponseHeader("x-r", None)); // a callout may: not tracked
        tracker.taken(&pending);
        pending.clear();
        tracker.enter(Callback::ResponseHeaders, &pending);
        pending.push(Effect::SetResponseHeader("x-r", None));
        tracker.taken(&pending);
    }

    #[test]
    #[should_panic(expected = "emitted in RequestBody: the host allows it only in RequestHeaders")]
    fn a_request_header_written_from_the_body_callback_fails_the_test() {
        let mut tracker = Tracker::new();
        tracker.enter(Callback::RequestBody, &[]);
        tracker.taken(&[header()]);
    }

    #[test]
    #[should_panic(expected = "emitted in Log: the host allows it only in ResponseHeaders")]
    fn a_response_header_written_at_the_end_fails_the_test() {
        let mut tracker = Tracker::new();
        let pending = vec![Effect::Count("gw.x".into(), 1)];
        tracker.enter(Callback::Log, &pending);
        tracker.taken(&[
            Effect::Count("gw.x".into(), 1),
            Effect::SetResponseHeader("x-gateway-cache", Some("miss".into())),
        ]);
    }
}
