//! What only a provider serving the Responses API itself can take (OpenAI, Azure OpenAI): its
//! hosted tools (`web_search`, `file_search`, `code_interpreter`, `mcp`, ...), a `tool_choice`
//! naming one, output items of those tools sent back as input (`web_search_call`, ...), and
//! `truncation: "auto"`. Such a request is not refused at once: it passes through to those
//! providers as sent, and is refused (400, the reason below) by an attempt at any other, which
//! would get the chat form. The chat form every other stage reads (limits, guards, cache keys,
//! the translation) is built from the request with these parts set aside.
//!
//! Reference: https://platform.openai.com/docs/api-reference/responses/create (`tools`,
//! `tool_choice`, `input` item types, `truncation`).

use serde_json::{Map, Value};

type Object = Map<String, Value>;

/// Input item types the chat form carries (or, for `reasoning`, leaves out on purpose), and the
/// one that needs a response store (refused by the translation whatever the provider).
const CARRIED_ITEMS: &[&str] = &[
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "item_reference",
];

/// Removes from `req` what only a Responses provider can take, and says why the request then
/// cannot be translated (the first such part, named by its parameter); `None` when nothing was
/// removed.
pub(super) fn set_aside(req: &mut Object) -> Option<String> {
    let mut reason = None;
    let mut note = |param: String, what: String| {
        reason.get_or_insert_with(|| {
            format!("{what} ('{param}') is served only by a provider of the Responses API itself (OpenAI, Azure OpenAI), and this attempt's provider gets the request translated to Chat Completions: choose a model served by one, or leave it out.")
        });
    };
    let mut all_tools_hosted = false;
    if let Some(Value::Array(tools)) = req.get_mut("tools") {
        let before = tools.len();
        let mut i = 0;
        tools.retain(|tool| {
            let kind = tool.get("type").and_then(Value::as_str);
            let hosted = kind.is_some_and(|k| k != "function");
            if hosted {
                note(
                    format!("tools[{i}].type"),
                    format!("The hosted tool '{}'", kind.unwrap_or_default()),
                );
            }
            i += 1;
            !hosted
        });
        all_tools_hosted = before > 0 && tools.is_empty();
    }
    if all_tools_hosted {
        req.remove("tools");
    }
    let choice_kind = req
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match (choice_kind, req.get("tool_choice")) {
        (Some(kind), _) if kind != "function" => {
            note(
                "tool_choice.type".into(),
                format!("A tool_choice of type '{kind}'"),
            );
            req.remove("tool_choice");
        }
        // Requiring a tool of a request whose tools were all hosted: only they could answer.
        (_, Some(Value::String(choice))) if all_tools_hosted && choice == "required" => {
            req.remove("tool_choice");
        }
        _ => {}
    }
    if let Some(Value::Array(items)) = req.get_mut("input") {
        let mut i = 0;
        items.retain(|item| {
            let kind = item.get("type").and_then(Value::as_str);
            let foreign = kind.is_some_and(|k| !CARRIED_ITEMS.contains(&k));
            if foreign {
                note(
                    format!("input[{i}].type"),
                    format!("An input item of type '{}'", kind.unwrap_or_default()),
                );
            }
            i += 1;
            !foreign
        });
    }
    if req.get("truncation").and_then(Value::as_str) == Some("auto") {
        note("truncation".into(), "'truncation: auto'".into());
        req.remove("truncation");
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn aside(body: Value) -> (Value, Option<String>) {
        let Value::Object(mut req) = body else {
            panic!("an object")
        };
        let reason = set_aside(&mut req);
        (Value::Object(req), reason)
    }

    #[test]
    fn hosted_tools_their_choice_their_items_and_auto_truncation_are_set_aside() {
        let (left, reason) = aside(json!({
            "model": "m",
            "input": [{"role": "user", "content": "Hi"}, {"type": "web_search_call", "id": "ws_1"},
                      {"type": "reasoning", "id": "rs_1"}],
            "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}],
            "tool_choice": {"type": "web_search_preview"},
            "truncation": "auto",
        }));
        assert_eq!(
            left,
            json!({"model": "m",
                   "input": [{"role": "user", "content": "Hi"}, {"type": "reasoning", "id": "rs_1"}],
                   "tools": [{"type": "function", "name": "f"}]})
        );
        let reason = reason.expect("a reason");
        // The first part set aside is named, with its parameter.
        assert!(
            reason.starts_with("The hosted tool 'web_search' ('tools[1].type')"),
            "{reason}"
        );
    }

    #[test]
    fn only_hosted_tools_leave_no_tools_and_no_required_choice() {
        let (left, reason) = aside(json!({"model": "m", "input": "Hi",
            "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}], "tool_choice": "required"}));
        assert_eq!(left, json!({"model": "m", "input": "Hi"}));
        assert!(reason.expect("a reason").contains("'file_search'"));
    }

    #[test]
    fn a_request_the_chat_form_carries_is_left_as_it_is() {
        let body = json!({"model": "m", "input": [{"role": "user", "content": "Hi"},
            {"type": "function_call_output", "call_id": "c", "output": "x"}],
            "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "f"},
            "truncation": "disabled"});
        assert_eq!(aside(body.clone()), (body, None));
    }
}
