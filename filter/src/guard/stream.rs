//! Response guards on a streamed answer. The text of each choice (and of each tool call's
//! arguments) is held in a sliding window: only as much as the longest possible match of the
//! request's guards (bounded by `stream_window_bytes`) waits for the next event, the rest goes
//! on at once, masked, with the request's placeholders restored. A match or a placeholder that
//! straddles the window's edge is held whole. A blocking match ends the stream with an OpenAI
//! error event and `[DONE]`; nothing after it reaches the client.
//!
//! Events are re-framed as `data: {json}\n\n`; events that carry no text pass byte for byte.

use serde_json::Value;

use super::session::{Session, Verdict, LONGEST_PLACEHOLDER};
use super::{Guardrails, Phase};
use crate::error::GatewayError;
use crate::provider::openai_format;
use crate::scrub::Scrubber;
use crate::sse::{SseEvent, SseParser};

/// Most windows a stream keeps (choices × tool calls): the provider picks the indices, and
/// each window holds up to the window size. Past it the stream is ended as the provider's fault.
const MAX_WINDOWS: usize = 256;

/// What [`GuardStream::advance`] reports when the stream cannot go on: a guard blocked it
/// (its index), or the provider opened more windows than [`MAX_WINDOWS`].
pub const TOO_MANY_WINDOWS: usize = usize::MAX;

/// The pending text of one choice's content (`tool` None) or one tool call's arguments.
#[derive(Debug)]
struct Window {
    choice: u64,
    tool: Option<u64>,
    pending: String,
}

#[derive(Debug)]
pub struct GuardStream {
    parser: SseParser,
    windows: Vec<Window>,
    /// The last chunk object, the model of the events that carry held-back text at the end.
    template: Option<Value>,
    hold: usize,
    /// The guard that ended the stream.
    pub blocked: Option<usize>,
}

/// What the guards need from the request.
pub struct Guarding<'a> {
    pub rails: &'a Guardrails,
    pub scrubber: &'a Scrubber,
    pub session: &'a mut Session,
}

impl GuardStream {
    /// `hold`: the bytes held back per window (the longest match of the request's guards).
    pub fn new(hold: usize) -> Self {
        Self {
            parser: SseParser::new(),
            windows: Vec::new(),
            template: None,
            hold: hold.max(LONGEST_PLACEHOLDER),
            blocked: None,
        }
    }

    /// The bytes to send in place of `chunk`.
    pub fn feed(&mut self, g: &mut Guarding<'_>, chunk: &[u8], end: bool) -> Vec<u8> {
        if self.blocked.is_some() {
            return Vec::new();
        }
        let mut events = Vec::new();
        self.parser.feed(chunk, &mut events);
        if end {
            self.parser.finish(&mut events);
        }
        let mut out = Vec::with_capacity(chunk.len());
        for event in events {
            if let Err(guard) = self.event(g, &event, &mut out) {
                self.end(g, guard, &mut out);
                return out;
            }
        }
        if end {
            if let Err(guard) = self.flush_all(g, &mut out) {
                self.end(g, guard, &mut out);
            }
        }
        out
    }

    /// Ends the client's stream: an error event (after a blank line that ends whatever partial
    /// event it holds) and `[DONE]`; nothing after it is sent.
    fn end(&mut self, g: &Guarding<'_>, guard: usize, out: &mut Vec<u8>) {
        self.blocked = Some(guard);
        let error = match g.rails.guards.get(guard) {
            Some(found) => GatewayError::Guardrail {
                guard: found.name.clone(),
                request: false,
            },
            None => GatewayError::ProviderFailure {
                code: "stream_too_many_choices",
                message: format!(
                    "The provider's stream opened more than {MAX_WINDOWS} choices and tool calls; the gateway's guardrails ended it."
                ),
            },
        };
        out.extend_from_slice(b"\n\n");
        out.extend(openai_format::stream_failure(&error));
    }

    fn event(
        &mut self,
        g: &mut Guarding<'_>,
        event: &SseEvent,
        out: &mut Vec<u8>,
    ) -> Result<(), usize> {
        let Some(data) = event.data.as_deref() else {
            out.extend_from_slice(&event.raw);
            return Ok(());
        };
        if data.trim() == "[DONE]" {
            self.flush_all(g, out)?;
            out.extend_from_slice(&event.raw);
            return Ok(());
        }
        let Ok(mut v) = serde_json::from_str::<Value>(data) else {
            out.extend_from_slice(&event.raw);
            return Ok(());
        };
        let mut changed = false;
        let mut before: Vec<(u64, Option<u64>, String)> = Vec::new();
        if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
            for (position, choice) in choices.iter_mut().enumerate() {
                let index = choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(position as u64);
                let finishing = choice.get("finish_reason").is_some_and(|f| !f.is_null());
                let Some(delta) = choice.get_mut("delta") else {
                    continue;
                };
                let mut here: Vec<Option<u64>> = Vec::new();
                if let Some(Value::String(s)) = delta.get_mut("content") {
                    *s = self.advance(g, index, None, s, finishing)?;
                    here.push(None);
                    changed = true;
                }
                if let Some(calls) = delta.get_mut("tool_calls").and_then(Value::as_array_mut) {
                    for (j, call) in calls.iter_mut().enumerate() {
                        let tool = call
                            .get("index")
                            .and_then(Value::as_u64)
                            .unwrap_or(j as u64);
                        let args = call
                            .get_mut("function")
                            .and_then(|f| f.get_mut("arguments"));
                        if let Some(Value::String(s)) = args {
                            *s = self.advance(g, index, Some(tool), s, finishing)?;
                            here.push(Some(tool));
                            changed = true;
                        }
                    }
                }
                if finishing {
                    // What this choice still holds elsewhere goes out before its last event.
                    let rest: Vec<Option<u64>> = self
                        .windows
                        .iter()
                        .filter(|w| w.choice == index && !here.contains(&w.tool))
                        .map(|w| w.tool)
                        .collect();
                    for tool in rest {
                        let text = self.advance(g, index, tool, "", true)?;
                        before.push((index, tool, text));
                    }
                }
            }
        }
        if self.template.is_none() || changed {
            self.template = Some(v.clone());
        }
        for (choice, tool, text) in before {
            if let Some(event) = synthetic(&v, choice, tool, text) {
                out.extend(event);
            }
        }
        if changed {
            out.extend(frame(&v));
        } else {
            out.extend_from_slice(&event.raw);
        }
        Ok(())
    }

    /// Adds `text` to a window and returns what can go now (all of it when `flush`).
    fn advance(
        &mut self,
        g: &mut Guarding<'_>,
        choice: u64,
        tool: Option<u64>,
        text: &str,
        flush: bool,
    ) -> Result<String, usize> {
        let pos = match self
            .windows
            .iter()
            .position(|w| w.choice == choice && w.tool == tool)
        {
            Some(p) => p,
            None if self.windows.len() >= MAX_WINDOWS => return Err(TOO_MANY_WINDOWS),
            None => {
                self.windows.push(Window {
                    choice,
                    tool,
                    pending: String::new(),
                });
                self.windows.len().saturating_sub(1)
            }
        };
        let Some(window) = self.windows.get_mut(pos) else {
            return Ok(text.to_string());
        };
        window.pending.push_str(text);
        let pending = &window.pending;
        let spans = g
            .session
            .spans(g.rails, g.scrubber, Phase::Response, pending)?;
        let mut cut = if flush {
            pending.len()
        } else {
            floor_boundary(pending, pending.len().saturating_sub(self.hold))
        };
        // A match that reaches over the edge is held whole.
        for &(start, end) in &spans {
            if start < cut && end > cut {
                cut = start;
            }
        }
        // So is a placeholder cut in two: a `[` with no `]` after it, near the edge.
        if let Some(head) = pending.get(..cut) {
            if let Some(open) = head.rfind('[') {
                if !head.get(open..).unwrap_or_default().contains(']')
                    && cut.saturating_sub(open) < LONGEST_PLACEHOLDER
                {
                    cut = open;
                }
            }
        }
        let ready: String = window.pending.drain(..cut).collect();
        let masked = match g
            .session
            .check(g.rails, g.scrubber, Phase::Response, &ready)
        {
            Verdict::Blocked(guard) => return Err(guard),
            Verdict::Rewritten(m) => m,
            Verdict::Clean => ready,
        };
        Ok(g.session.restore(&masked).unwrap_or(masked))
    }

    /// Every window's held text, as events before the end of the stream.
    fn flush_all(&mut self, g: &mut Guarding<'_>, out: &mut Vec<u8>) -> Result<(), usize> {
        let open: Vec<(u64, Option<u64>)> = self
            .windows
            .iter()
            .filter(|w| !w.pending.is_empty())
            .map(|w| (w.choice, w.tool))
            .collect();
        for (choice, tool) in open {
            let text = self.advance(g, choice, tool, "", true)?;
            if let Some(event) = self
                .template
                .as_ref()
                .and_then(|t| synthetic(t, choice, tool, text))
            {
                out.extend(event);
            }
        }
        Ok(())
    }
}

/// An event like `template` carrying only `text` for one choice (or one of its tool calls).
fn synthetic(template: &Value, choice: u64, tool: Option<u64>, text: String) -> Option<Vec<u8>> {
    if text.is_empty() {
        return None;
    }
    let delta = match tool {
        None => serde_json::json!({"content": text}),
        Some(t) => {
            serde_json::json!({"tool_calls": [{"index": t, "function": {"arguments": text}}]})
        }
    };
    let mut v = template.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "choices".into(),
            serde_json::json!([{"index": choice, "delta": delta, "finish_reason": null}]),
        );
        obj.remove("usage");
    }
    Some(frame(&v))
}

fn frame(v: &Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend(serde_json::to_vec(v).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    out
}

/// The largest character boundary of `s` at or before `at`.
fn floor_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
