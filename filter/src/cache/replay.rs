//! A stored chat completion sent as the SSE stream a provider would have sent: per choice a
//! chunk with the whole message as its delta (role, content, refusal, tool calls with their
//! `index`), then a chunk with its `finish_reason`; when the client asked
//! `stream_options.include_usage`, every chunk carries `"usage": null` and a last chunk with
//! empty `choices` carries the usage; then `data: [DONE]`. Shapes from OpenAI's
//! `CreateChatCompletionStreamResponse` (filter/testdata/cache/README.md).

use serde_json::{json, Map, Value};

/// The SSE bytes of a stored completion.
pub fn to_sse(completion: &Value, include_usage: bool) -> Vec<u8> {
    let mut head = Map::new();
    for field in [
        "id",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
    ] {
        if let Some(v) = completion.get(field) {
            head.insert(field.into(), v.clone());
        }
    }
    head.insert("object".into(), "chat.completion.chunk".into());
    let chunk = |choices: Value| {
        let mut c = head.clone();
        c.insert("choices".into(), choices);
        if include_usage {
            c.insert("usage".into(), Value::Null);
        }
        Value::Object(c)
    };
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    };
    let choices = completion
        .get("choices")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (position, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(position));
        let mut delta = Map::new();
        if let Some(Value::Object(message)) = choice.get("message") {
            for (k, v) in message {
                if k == "tool_calls" {
                    let calls: Vec<Value> = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, call)| {
                            let mut call = call.clone();
                            if let Some(o) = call.as_object_mut() {
                                o.insert("index".into(), json!(i));
                            }
                            call
                        })
                        .collect();
                    delta.insert(k.clone(), Value::Array(calls));
                } else {
                    delta.insert(k.clone(), v.clone());
                }
            }
        }
        let logprobs = choice.get("logprobs").cloned().unwrap_or(Value::Null);
        push(&chunk(
            json!([{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": null}]),
        ));
        let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
        push(&chunk(
            json!([{"index": index, "delta": {}, "logprobs": null, "finish_reason": finish}]),
        ));
    }
    if include_usage {
        let mut last = head.clone();
        last.insert("choices".into(), json!([]));
        last.insert(
            "usage".into(),
            completion.get("usage").cloned().unwrap_or(Value::Null),
        );
        push(&Value::Object(last));
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::assemble::Assembler;
    use super::*;
    use crate::sse::SseParser;

    fn completion() -> Value {
        json!({"id": "chatcmpl-9", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}})
    }

    fn events(bytes: &[u8]) -> Vec<String> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(bytes, &mut out);
        parser.finish(&mut out);
        out.into_iter().filter_map(|e| e.data).collect()
    }

    #[test]
    fn the_stream_has_the_reference_shape() {
        let data = events(&to_sse(&completion(), true));
        assert_eq!(data.len(), 4);
        let first: Value = serde_json::from_str(&data[0]).unwrap();
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["id"], "chatcmpl-9");
        assert_eq!(first["usage"], Value::Null);
        assert_eq!(
            first["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Hi there"})
        );
        let finish: Value = serde_json::from_str(&data[1]).unwrap();
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        let usage: Value = serde_json::from_str(&data[2]).unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 6);
        assert_eq!(data[3], "[DONE]");
        let without = events(&to_sse(&completion(), false));
        assert_eq!(without.len(), 3);
        assert!(!without[0].contains("usage"));
    }

    #[test]
    fn replaying_and_reassembling_gives_the_stored_completion_back() {
        let mut tool = completion();
        tool["choices"][0]["message"] = json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        tool["choices"][0]["finish_reason"] = json!("tool_calls");
        for (stored, tools) in [(completion(), false), (tool, true)] {
            let mut a = Assembler::new(10_000);
            for e in events(&to_sse(&stored, true)) {
                a.add(&e);
            }
            assert_eq!(a.finish(tools).unwrap(), stored);
        }
    }
}
