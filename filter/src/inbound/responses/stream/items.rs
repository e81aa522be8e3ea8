//! The output items of a stream as they grow: a `message` item's content parts (text, refusal)
//! and `function_call` items, with the events that open, extend and close them.

use serde_json::{json, Value};

use super::StreamFromChat;
use crate::inbound::responses::{function_call_item, message_item, output_text, refusal};

#[derive(Debug)]
pub(super) enum Item {
    /// `status`: set when the item is done.
    Message {
        id: String,
        parts: Vec<Part>,
        status: Option<&'static str>,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: Option<&'static str>,
    },
}

#[derive(Debug)]
pub(super) struct Part {
    pub(super) refusal: bool,
    pub(super) text: String,
    pub(super) done: bool,
}

impl Part {
    pub(super) fn json(&self) -> Value {
        if self.refusal {
            refusal(&self.text)
        } else {
            output_text(&self.text)
        }
    }
}

impl StreamFromChat {
    pub(super) fn text_delta(&mut self, text: &str, is_refusal: bool, out: &mut Vec<u8>) {
        let output_index = match self.open_message {
            Some(index) => index,
            None => {
                let index = self.items.len();
                let id = self.identity().message_id(index);
                let item = message_item(&id, "in_progress", Vec::new());
                self.items.push(Item::Message {
                    id,
                    parts: Vec::new(),
                    status: None,
                });
                self.open_message = Some(index);
                self.emit(json!({"type": "response.output_item.added", "output_index": index, "item": item}), out);
                index
            }
        };
        let Some(Item::Message { id, parts, .. }) = self.items.get_mut(output_index) else {
            return;
        };
        let id = id.clone();
        let mut events = Vec::new();
        let same_kind = parts
            .last()
            .is_some_and(|p| !p.done && p.refusal == is_refusal);
        if !same_kind {
            let last_index = parts.len().saturating_sub(1);
            if let Some(last) = parts.last_mut().filter(|p| !p.done) {
                events.extend(part_done_events(&id, output_index, last_index, last));
            }
            let part = Part {
                refusal: is_refusal,
                text: String::new(),
                done: false,
            };
            events.push(json!({
                "type": "response.content_part.added",
                "item_id": id, "output_index": output_index, "content_index": parts.len(),
                "part": part.json(),
            }));
            parts.push(part);
        }
        let content_index = parts.len().saturating_sub(1);
        if let Some(part) = parts.last_mut() {
            part.text.push_str(text);
        }
        let mut delta = json!({
            "type": if is_refusal { "response.refusal.delta" } else { "response.output_text.delta" },
            "item_id": id, "output_index": output_index, "content_index": content_index, "delta": text,
        });
        if !is_refusal {
            if let Some(obj) = delta.as_object_mut() {
                obj.insert("logprobs".into(), json!([]));
            }
        }
        events.push(delta);
        for event in events {
            self.emit(event, out);
        }
    }

    pub(super) fn call_delta(&mut self, call: &Value, out: &mut Vec<u8>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        fn text(v: Option<&Value>) -> &str {
            v.and_then(Value::as_str).unwrap_or_default()
        }
        let call_id = text(call.get("id"));
        let name = text(function.and_then(|f| f.get("name")));
        let arguments = text(function.and_then(|f| f.get("arguments")));
        if !self.hold(
            call_id
                .len()
                .saturating_add(name.len())
                .saturating_add(arguments.len()),
            out,
        ) {
            return;
        }
        let known = self
            .calls
            .iter()
            .find(|(i, _)| *i == chat_index)
            .map(|(_, item)| *item);
        let output_index = match known {
            Some(index) => index,
            None => {
                self.close_message("completed", out);
                let index = self.items.len();
                let id = self.identity().call_item_id(index);
                let item = function_call_item(&id, "in_progress", call_id, name, "");
                self.items.push(Item::Call {
                    id,
                    call_id: call_id.to_string(),
                    name: name.to_string(),
                    arguments: String::new(),
                    status: None,
                });
                self.calls.push((chat_index, index));
                self.emit(json!({"type": "response.output_item.added", "output_index": index, "item": item}), out);
                if arguments.is_empty() {
                    return;
                }
                index
            }
        };
        let Some(Item::Call {
            id,
            call_id: held_id,
            name: held_name,
            arguments: held,
            ..
        }) = self.items.get_mut(output_index)
        else {
            return;
        };
        if known.is_some() {
            // Later chunks of a call: an id or name that came late, or in pieces.
            if held_id.is_empty() {
                held_id.push_str(call_id);
            }
            held_name.push_str(name);
        }
        if arguments.is_empty() {
            return;
        }
        held.push_str(arguments);
        let event = json!({
            "type": "response.function_call_arguments.delta",
            "item_id": id, "output_index": output_index, "delta": arguments,
        });
        self.emit(event, out);
    }

    /// Ends the message item that text went to: its last part, then the item.
    pub(super) fn close_message(&mut self, item_status: &'static str, out: &mut Vec<u8>) {
        let Some(index) = self.open_message.take() else {
            return;
        };
        let mut events = Vec::new();
        if let Some(Item::Message { id, parts, status }) = self.items.get_mut(index) {
            let last = parts.len().saturating_sub(1);
            if let Some(part) = parts.last_mut().filter(|p| !p.done) {
                events.extend(part_done_events(id, index, last, part));
            }
            *status = Some(item_status);
            let content = parts.iter().map(Part::json).collect();
            events.push(json!({
                "type": "response.output_item.done", "output_index": index,
                "item": message_item(id, item_status, content),
            }));
        }
        for event in events {
            self.emit(event, out);
        }
    }
}

/// `response.output_text.done` (or `response.refusal.done`) and `response.content_part.done`.
fn part_done_events(
    item_id: &str,
    output_index: usize,
    content_index: usize,
    part: &mut Part,
) -> [Value; 2] {
    part.done = true;
    let done = if part.refusal {
        json!({
            "type": "response.refusal.done", "item_id": item_id, "output_index": output_index,
            "content_index": content_index, "refusal": part.text,
        })
    } else {
        json!({
            "type": "response.output_text.done", "item_id": item_id, "output_index": output_index,
            "content_index": content_index, "text": part.text, "logprobs": [],
        })
    };
    let part_done = json!({
        "type": "response.content_part.done", "item_id": item_id, "output_index": output_index,
        "content_index": content_index, "part": part.json(),
    });
    [done, part_done]
}
