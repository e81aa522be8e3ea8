//! A streamed chat completion put back together into the JSON completion it stands for, so it
//! can be stored once and replayed either way. Follows the shapes of OpenAI's
//! `CreateChatCompletionStreamResponse` (the chunk: `choices[].delta` with `role`, `content`,
//! `refusal`, `tool_calls[]` by `index`, and `finish_reason`; an empty `choices` with `usage`
//! last when `stream_options.include_usage` is set) and `CreateChatCompletionResponse` (see
//! filter/testdata/cache/README.md). Bounded: past `cap` bytes of text it only notes that the
//! answer is too large.

use serde_json::{json, Map, Value};

use super::entry::{check_chat, NotStored};

/// Most choices (`n`) and tool calls per choice kept apart.
const MAX_PARTS: usize = 128;

#[derive(Debug, Default)]
struct Choice {
    role: Option<String>,
    content: Option<String>,
    refusal: Option<String>,
    /// index -> (id, type, name, arguments)
    tool_calls: Vec<(u64, ToolCall)>,
    finish_reason: Option<String>,
}

/// id, type, name, arguments.
type ToolCall = (String, String, String, String);

/// The part at `index` of a list kept in index order, added when new and there is room (a
/// vector: a few parts at most, and no map code in the .wasm for it).
fn part<T: Default>(parts: &mut Vec<(u64, T)>, index: u64) -> Option<&mut T> {
    let at = match parts.binary_search_by_key(&index, |(i, _)| *i) {
        Ok(at) => at,
        Err(_) if parts.len() >= MAX_PARTS => return None,
        Err(at) => {
            parts.insert(at, (index, T::default()));
            at
        }
    };
    parts.get_mut(at).map(|(_, part)| part)
}

/// Reassembles one stream, event by event.
#[derive(Debug)]
pub struct Assembler {
    head: Map<String, Value>,
    /// By index, in index order.
    choices: Vec<(u64, Choice)>,
    usage: Option<Value>,
    /// Bytes of text still allowed.
    room: usize,
    too_large: bool,
    failed: bool,
    /// Something the completion would not keep was seen.
    unsupported: bool,
    done: bool,
}

/// Delta fields the completion keeps; any other with a value makes the stream unsupported.
const DELTA_FIELDS: &[&str] = &["role", "content", "refusal", "tool_calls"];

/// Top-level chunk fields carried into the completion.
const HEAD_FIELDS: &[&str] = &[
    "id",
    "created",
    "model",
    "system_fingerprint",
    "service_tier",
];

impl Assembler {
    pub fn new(cap: usize) -> Self {
        Self {
            head: Map::new(),
            choices: Vec::new(),
            usage: None,
            room: cap,
            too_large: false,
            failed: false,
            unsupported: false,
            done: false,
        }
    }

    /// One event's `data`.
    pub fn add(&mut self, data: &str) {
        if data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            self.failed = true;
            return;
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            self.failed = true;
            return;
        }
        for field in HEAD_FIELDS {
            if let Some(v) = chunk.get(*field).filter(|v| !v.is_null()) {
                // Azure's annotation chunks carry empty ids and models: real values win.
                let empty = v.as_str().is_some_and(str::is_empty);
                if !empty || !self.head.contains_key(*field) {
                    self.head.insert((*field).into(), v.clone());
                }
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.add_choice(choice);
        }
    }

    fn add_choice(&mut self, choice: &Value) {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let logprobs = choice.get("logprobs").is_some_and(|l| !l.is_null());
        let other = choice
            .get("delta")
            .and_then(Value::as_object)
            .is_some_and(|d| {
                d.iter()
                    .any(|(k, v)| !v.is_null() && !DELTA_FIELDS.contains(&k.as_str()))
            });
        if logprobs || other {
            self.unsupported = true;
            return;
        }
        let room = &mut self.room;
        let too_large = &mut self.too_large;
        let Some(acc) = part(&mut self.choices, index) else {
            *too_large = true;
            return;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            acc.finish_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else {
            return;
        };
        let append =
            |to: &mut String, v: Option<&Value>, room: &mut usize, too_large: &mut bool| {
                if let Some(text) = v.and_then(Value::as_str) {
                    if text.len() > *room {
                        *too_large = true;
                    } else {
                        *room -= text.len();
                        to.push_str(text);
                    }
                }
            };
        if let Some(role) = delta.get("role").and_then(Value::as_str) {
            acc.role = Some(role.to_string());
        }
        if let Some(content) = delta.get("content").filter(|c| c.is_string()) {
            append(
                acc.content.get_or_insert_with(String::new),
                Some(content),
                room,
                too_large,
            );
        }
        if let Some(refusal) = delta.get("refusal").filter(|c| c.is_string()) {
            append(
                acc.refusal.get_or_insert_with(String::new),
                Some(refusal),
                room,
                too_large,
            );
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let Some(slot) = part(&mut acc.tool_calls, i) else {
                *too_large = true;
                continue;
            };
            let function = call.get("function");
            append(&mut slot.0, call.get("id"), room, too_large);
            append(&mut slot.1, call.get("type"), room, too_large);
            append(
                &mut slot.2,
                function.and_then(|f| f.get("name")),
                room,
                too_large,
            );
            append(
                &mut slot.3,
                function.and_then(|f| f.get("arguments")),
                room,
                too_large,
            );
        }
    }

    /// `[DONE]` was seen: the answer is complete (the connection may end a little later).
    pub fn done(&self) -> bool {
        self.done
    }

    /// The stream ended (cleanly or not): the completion to store, or why not.
    pub fn finish(self, tool_calls: bool) -> Result<Value, NotStored> {
        if self.too_large {
            return Err(NotStored::TooLarge);
        }
        if self.failed || !self.done {
            return Err(NotStored::Malformed);
        }
        if self.unsupported {
            return Err(NotStored::Unsupported);
        }
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, c)| {
                let mut message = Map::new();
                message.insert(
                    "role".into(),
                    c.role.unwrap_or_else(|| "assistant".into()).into(),
                );
                message.insert("content".into(), c.content.map_or(Value::Null, Value::from));
                if let Some(refusal) = c.refusal {
                    message.insert("refusal".into(), refusal.into());
                }
                if !c.tool_calls.is_empty() {
                    let calls: Vec<Value> = c
                        .tool_calls
                        .into_iter()
                        .map(|(_, (id, kind, name, args))| {
                            let kind = if kind.is_empty() { "function".into() } else { kind };
                            json!({"id": id, "type": kind, "function": {"name": name, "arguments": args}})
                        })
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                json!({"index": index, "message": message, "logprobs": null, "finish_reason": c.finish_reason})
            })
            .collect();
        let mut completion = self.head;
        completion.insert("object".into(), "chat.completion".into());
        completion.insert("choices".into(), Value::Array(choices));
        if let Some(usage) = self.usage {
            completion.insert("usage".into(), usage);
        }
        let completion = Value::Object(completion);
        check_chat(&completion, tool_calls)?;
        Ok(completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream in the shape of OpenAI's reference (role chunk, content deltas, finish chunk,
    /// usage chunk, `[DONE]`).
    const STREAM: &[&str] = &[
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
        "[DONE]",
    ];

    fn run(events: &[&str], cap: usize, tools: bool) -> Result<Value, NotStored> {
        let mut a = Assembler::new(cap);
        for e in events {
            a.add(e);
        }
        a.finish(tools)
    }

    #[test]
    fn a_stream_becomes_the_completion_it_stands_for() {
        let c = run(STREAM, 1000, false).unwrap();
        let expected = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}});
        assert_eq!(c, expected);
    }

    #[test]
    fn broken_cut_or_long_streams_are_not_stored() {
        let without_done = &STREAM[..STREAM.len() - 1];
        assert_eq!(run(without_done, 1000, false), Err(NotStored::Malformed));
        let mut with_error = STREAM[..2].to_vec();
        with_error.push(r#"{"error":{"message":"boom","type":"server_error"}}"#);
        with_error.push("[DONE]");
        assert_eq!(run(&with_error, 1000, false), Err(NotStored::Malformed));
        let without_finish = [STREAM[0], STREAM[1], "[DONE]"];
        assert_eq!(
            run(&without_finish, 1000, false),
            Err(NotStored::Incomplete)
        );
        assert_eq!(run(STREAM, 5, false), Err(NotStored::TooLarge));
        // Log probabilities and audio would be lost in the stored completion.
        let logprobs = STREAM[1].replace(
            r#""logprobs":null"#,
            r#""logprobs":{"content":[{"token":"Hello","logprob":-0.1,"bytes":[72],"top_logprobs":[]}]}"#,
        );
        let audio = STREAM[1].replace(
            r#"{"content":"Hello"}"#,
            r#"{"audio":{"id":"a","data":"AAAA"}}"#,
        );
        for changed in [logprobs, audio] {
            let mut events = STREAM.to_vec();
            events[1] = &changed;
            assert_eq!(
                run(&events, 1000, false),
                Err(NotStored::Unsupported),
                "{changed}"
            );
        }
    }

    #[test]
    fn tool_calls_are_joined_by_index_and_stored_only_when_allowed() {
        let events = [
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ];
        assert_eq!(run(&events, 1000, false), Err(NotStored::ToolCalls));
        let c = run(&events, 1000, true).unwrap();
        assert_eq!(
            c["choices"][0]["message"],
            serde_json::json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
        );
    }
}
