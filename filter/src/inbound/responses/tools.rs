//! `tools` and `tool_choice`: Responses' flat function tools become chat's nested ones; the
//! hosted tools (web search, file search, computer use, code interpreter, MCP, custom, ...) run
//! at OpenAI and were set aside before (`openai_only`); one left here (a type that is not a
//! string) is refused.
//!
//! Reference: the openai-python SDK's `types/responses/function_tool_param.py`,
//! `tool_choice_function_param.py`, `tool_choice_options.py`.

use serde_json::{json, Map, Value};

use super::request::get;
use crate::chat::check_name;
use crate::chat::wrong_type;
use crate::error::{invalid, GatewayError};

type Object = Map<String, Value>;

/// Responses' flat function tools → chat's nested ones. Hosted tools (web search, file search,
/// computer use, code interpreter, MCP, ...) run at OpenAI and cannot be translated.
pub(super) fn tools_of(req: &Object) -> Result<Vec<Value>, GatewayError> {
    let tools = match get(req, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(wrong_type("tools", "an array", other)),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let Some(tool) = tool.as_object() else {
            return Err(wrong_type(&param, "an object", tool));
        };
        match get(tool, "type") {
            Some(Value::String(t)) if t == "function" => {}
            Some(Value::String(t)) => {
                return Err(invalid(
                    format!("{param}.type"),
                    format!("Tool type '{t}' is not supported by this gateway: only 'function' tools can be translated for every provider (built-in tools run at OpenAI)."),
                ))
            }
            None => return Err(invalid(format!("{param}.type"), format!("Missing required parameter: '{param}.type'."))),
            Some(other) => return Err(wrong_type(&format!("{param}.type"), "a string", other)),
        }
        let name = match get(tool, "name") {
            Some(Value::String(n)) => n,
            None => {
                return Err(invalid(
                    format!("{param}.name"),
                    format!("Missing required parameter: '{param}.name'."),
                ))
            }
            Some(other) => return Err(wrong_type(&format!("{param}.name"), "a string", other)),
        };
        check_name(name, &format!("{param}.name"))?;
        let mut function = Object::new();
        function.insert("name".into(), Value::from(name.as_str()));
        for (key, is_ok, expected) in [
            (
                "description",
                Value::is_string as fn(&Value) -> bool,
                "a string",
            ),
            ("parameters", Value::is_object, "an object"),
            ("strict", Value::is_boolean, "a boolean"),
        ] {
            if let Some(value) = get(tool, key) {
                if !is_ok(value) {
                    return Err(wrong_type(&format!("{param}.{key}"), expected, value));
                }
                function.insert(key.into(), value.clone());
            }
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}

/// `none`/`auto`/`required` as they are; `{type: "function", name}` → chat's
/// `{type: "function", function: {name}}`; the hosted tool choices cannot be translated.
/// Requiring or naming a tool needs tools to choose from (as on chat).
pub(super) fn tool_choice_of(choice: &Value, has_tools: bool) -> Result<Value, GatewayError> {
    let translated = translate_choice(choice)?;
    if !has_tools && !matches!(translated.as_str(), Some("none" | "auto")) {
        return Err(invalid(
            "tool_choice",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        ));
    }
    Ok(translated)
}

fn translate_choice(choice: &Value) -> Result<Value, GatewayError> {
    const PARAM: &str = "tool_choice";
    match choice {
        Value::String(s) if matches!(s.as_str(), "none" | "auto" | "required") => Ok(choice.clone()),
        Value::String(s) => Err(invalid(
            PARAM,
            format!("Invalid value for 'tool_choice': expected 'none', 'auto' or 'required', but got '{s}'."),
        )),
        Value::Object(obj) => match (get(obj, "type"), get(obj, "name")) {
            (Some(Value::String(t)), Some(Value::String(name))) if t == "function" => {
                Ok(json!({"type": "function", "function": {"name": name}}))
            }
            (Some(Value::String(t)), None) if t == "function" => Err(invalid(
                "tool_choice.name",
                "Missing required parameter: 'tool_choice.name'.",
            )),
            (Some(Value::String(t)), _) => Err(invalid(
                "tool_choice.type",
                format!("tool_choice of type '{t}' is not supported by this gateway: only 'none', 'auto', 'required' and a named function can be translated."),
            )),
            _ => Err(invalid("tool_choice.type", "Missing required parameter: 'tool_choice.type'.")),
        },
        other => Err(wrong_type(PARAM, "a string or an object", other)),
    }
}
