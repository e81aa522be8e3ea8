//! A non-streamed `chat.completion` → the Responses API `response` object: the first choice's
//! text (and refusal) as one `message` item, each tool call as a `function_call` item after
//! it, the finish reason as the status (`length` → incomplete, `max_output_tokens`), usage
//! renamed.
//!
//! Reference: https://platform.openai.com/docs/api-reference/responses/object and the
//! openai-python SDK's `types/responses/response.py`, `response_output_message.py`,
//! `response_function_tool_call.py`, `response_usage.py`.

use serde_json::{json, Value};

use super::{
    function_call_item, message_item, output_text, refusal, response_object, usage_of, Context,
    Identity, Status,
};

/// A non-streamed OpenAI chat completion (JSON bytes) → the Responses API `response` object.
/// An answer that is not a chat completion becomes a `failed` response saying so (the
/// provider's fault), never a panic or an empty body.
pub fn answer_from_chat(chat: &[u8], ctx: &Context) -> Vec<u8> {
    let parsed = serde_json::from_slice::<Value>(chat)
        .ok()
        .filter(Value::is_object);
    let response = match parsed {
        Some(chat) => from_completion(&chat, ctx),
        None => {
            let identity = Identity::of(&Value::Null, ctx);
            let error = json!({
                "code": "server_error",
                "message": "The provider's answer was not a valid chat completion.",
            });
            response_object(ctx, &identity, &Status::Failed(error), Vec::new(), None)
        }
    };
    response.to_string().into_bytes()
}

fn from_completion(chat: &Value, ctx: &Context) -> Value {
    let identity = Identity::of(chat, ctx);
    let choice = chat.get("choices").and_then(|c| c.get(0));
    let message = choice.and_then(|c| c.get("message"));
    let status = Status::of_finish(
        choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str),
    );
    let item_status = status.item_status();
    let mut output = Vec::new();

    let text = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let refused = message
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    if text.is_some() || refused.is_some() {
        let mut content = Vec::new();
        if let Some(text) = text {
            content.push(output_text(text));
        }
        if let Some(refused) = refused {
            content.push(refusal(refused));
        }
        output.push(message_item(&identity.message_id(0), item_status, content));
    }
    let calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for call in calls {
        let function = call.get("function");
        let field = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let index = output.len();
        output.push(function_call_item(
            &identity.call_item_id(index),
            item_status,
            &field(call.get("id")),
            &field(function.and_then(|f| f.get("name"))),
            &field(function.and_then(|f| f.get("arguments"))),
        ));
    }
    response_object(ctx, &identity, &status, output, usage_of(chat.get("usage")))
}
