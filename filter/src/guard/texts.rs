//! Every text a request or a non-streamed answer carries, visited in place: the messages of
//! every role (strings and content parts), tool-call arguments (and the legacy
//! `function_call`), tool results (tool messages are messages), refusals, embeddings input;
//! the answer's message content, refusal and tool-call arguments. A visitor may rewrite a text
//! or stop the walk (a block).

use serde_json::Value;

/// What the visitor says of one text.
pub enum Step {
    Keep,
    Replace(String),
    Stop,
}

/// Visits the texts of a chat or embeddings request; false when the visitor stopped.
pub fn request_texts(body: &mut Value, visit: &mut dyn FnMut(&str) -> Step) -> bool {
    if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
        for message in messages {
            if !message_texts(message, visit) {
                return false;
            }
        }
    }
    // Embeddings: a string or an array of strings (token arrays carry no text to read).
    if let Some(input) = body.get_mut("input") {
        match input {
            Value::Array(items) => {
                for item in items {
                    if !text(item, visit) {
                        return false;
                    }
                }
            }
            other => {
                if !text(other, visit) {
                    return false;
                }
            }
        }
    }
    true
}

/// Visits the texts of a chat completion answer (every choice).
pub fn answer_texts(body: &mut Value, visit: &mut dyn FnMut(&str) -> Step) -> bool {
    let Some(choices) = body.get_mut("choices").and_then(Value::as_array_mut) else {
        return true;
    };
    for choice in choices {
        if let Some(message) = choice.get_mut("message") {
            if !message_texts(message, visit) {
                return false;
            }
        }
    }
    true
}

fn message_texts(message: &mut Value, visit: &mut dyn FnMut(&str) -> Step) -> bool {
    if let Some(content) = message.get_mut("content") {
        match content {
            Value::Array(parts) => {
                for part in parts {
                    if let Some(t) = part.get_mut("text") {
                        if !text(t, visit) {
                            return false;
                        }
                    }
                }
            }
            other => {
                if !text(other, visit) {
                    return false;
                }
            }
        }
    }
    if let Some(refusal) = message.get_mut("refusal") {
        if !text(refusal, visit) {
            return false;
        }
    }
    if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
        for call in calls {
            if let Some(args) = call
                .get_mut("function")
                .and_then(|f| f.get_mut("arguments"))
            {
                if !text(args, visit) {
                    return false;
                }
            }
        }
    }
    if let Some(args) = message
        .get_mut("function_call")
        .and_then(|f| f.get_mut("arguments"))
    {
        if !text(args, visit) {
            return false;
        }
    }
    true
}

/// One value: visited when it is a string.
fn text(value: &mut Value, visit: &mut dyn FnMut(&str) -> Step) -> bool {
    let Value::String(s) = value else {
        return true;
    };
    match visit(s) {
        Step::Keep => true,
        Step::Replace(new) => {
            *s = new;
            true
        }
        Step::Stop => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(mut body: Value, answer: bool) -> (Vec<String>, Value) {
        let mut texts = Vec::new();
        let mut visit = |t: &str| {
            texts.push(t.to_string());
            Step::Replace(t.to_uppercase())
        };
        if answer {
            answer_texts(&mut body, &mut visit);
        } else {
            request_texts(&mut body, &mut visit);
        }
        (texts, body)
    }

    #[test]
    fn every_text_of_a_chat_request() {
        // Shapes from the OpenAI chat completions reference (messages of each role, content
        // parts, tool calls and tool results).
        let (texts, body) = seen(
            json!({"model": "m", "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "https://x"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"to\":\"a\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "result"}
            ]}),
            false,
        );
        assert_eq!(texts, ["sys", "part", "{\"to\":\"a\"}", "result"]);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"TO\":\"A\"}"
        );
        assert_eq!(
            body["messages"][1]["content"][1]["image_url"]["url"],
            "https://x"
        );
        assert_eq!(body["model"], "m", "not a text of the conversation");
    }

    #[test]
    fn embeddings_input_and_answers() {
        assert_eq!(seen(json!({"input": "one"}), false).0, ["one"]);
        assert_eq!(
            seen(json!({"input": ["a", "b", [1, 2]]}), false).0,
            ["a", "b"]
        );
        let (texts, _) = seen(
            json!({"choices": [{"message": {"content": "hi", "tool_calls": [{"function": {"arguments": "{}"}}]}}, {"message": {"content": null, "refusal": "no"}}]}),
            true,
        );
        assert_eq!(texts, ["hi", "{}", "no"]);
    }

    #[test]
    fn a_stop_ends_the_walk() {
        let mut n = 0;
        let mut body = json!({"messages": [{"content": "a"}, {"content": "b"}]});
        assert!(!request_texts(&mut body, &mut |_| {
            n += 1;
            Step::Stop
        }));
        assert_eq!(n, 1);
    }
}
