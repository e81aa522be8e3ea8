//! `tools`, `tool_choice` and their deprecated forerunners `functions` and `function_call`
//! (OpenAI API reference: `ChatCompletionTool`, `CustomToolChatCompletions`,
//! `ChatCompletionToolChoiceOption`, `ChatCompletionFunctions`).

use crate::json::Json;

use super::check::{
    as_object, at_most, check_fields, check_name, join, non_empty, not_one_of, optional_array,
    present, required, required_object, required_one_of, required_str, wrong_type, Object, Rule,
};
use crate::error::{invalid, GatewayError};

pub fn check_tools(req: &Object) -> Result<(), GatewayError> {
    let tools = optional_array(req, "tools", "tools")?.unwrap_or_default();
    for (i, tool) in tools.iter().enumerate() {
        check_tool(tool, &format!("tools[{i}]"))?;
    }
    if let Some(choice) = present(req, "tool_choice") {
        check_tool_choice(choice, !tools.is_empty())?;
    }

    let functions = match optional_array(req, "functions", "functions")? {
        Some(functions) => at_most(non_empty(functions, "functions")?, 128, "functions")?,
        None => &[],
    };
    for (i, function) in functions.iter().enumerate() {
        let param = format!("functions[{i}]");
        check_function(as_object(function, &param)?, &param)?;
    }
    if let Some(call) = present(req, "function_call") {
        check_function_call(call, !functions.is_empty())?;
    }
    Ok(())
}

/// `{type: "function", function: {...}}` or `{type: "custom", custom: {name, description,
/// format}}`.
fn check_tool(tool: &Json, param: &str) -> Result<(), GatewayError> {
    let tool = as_object(tool, param)?;
    match required_one_of(tool, "type", param, &["function", "custom"])? {
        "function" => check_function(
            required_object(tool, "function", param)?,
            &join(param, "function"),
        ),
        _ => {
            let custom_param = join(param, "custom");
            let custom = required_object(tool, "custom", param)?;
            required_str(custom, "name", &custom_param)?;
            check_fields(custom, &custom_param, &[("description", Rule::Str)])?;
            match present(custom, "format") {
                Some(format) => check_custom_format(format, &join(&custom_param, "format")),
                None => Ok(()),
            }
        }
    }
}

fn check_custom_format(format: &Json, param: &str) -> Result<(), GatewayError> {
    let format = as_object(format, param)?;
    if required_one_of(format, "type", param, &["text", "grammar"])? == "grammar" {
        let grammar_param = join(param, "grammar");
        let grammar = required_object(format, "grammar", param)?;
        required_str(grammar, "definition", &grammar_param)?;
        required_one_of(grammar, "syntax", &grammar_param, &["lark", "regex"])?;
    }
    Ok(())
}

/// A function definition: `name` matching `^[a-zA-Z0-9_-]{1,64}$`, `parameters` a JSON
/// Schema object, `strict` a boolean.
fn check_function(function: &Object, param: &str) -> Result<(), GatewayError> {
    check_name(required_str(function, "name", param)?, &join(param, "name"))?;
    check_fields(
        function,
        param,
        &[("description", Rule::Str), ("strict", Rule::Bool)],
    )?;
    match present(function, "parameters") {
        None | Some(Json::Object(_)) => Ok(()),
        Some(other) => Err(wrong_type(&join(param, "parameters"), "an object", other)),
    }
}

/// `none`, `auto`, `required`, or an object naming a function, a custom tool, or the allowed
/// tools. Naming a tool or requiring one needs tools to choose from.
fn check_tool_choice(choice: &Json, has_tools: bool) -> Result<(), GatewayError> {
    const PARAM: &str = "tool_choice";
    let needs_tools = match choice {
        Json::String(s) => match s.as_ref() {
            "none" | "auto" => false,
            "required" => true,
            other => return Err(not_one_of(PARAM, other, &["none", "auto", "required"])),
        },
        Json::Object(choice) => {
            let kinds = ["function", "custom", "allowed_tools"];
            let kind = required_one_of(choice, "type", PARAM, &kinds)?;
            let body_param = join(PARAM, kind);
            let body = required_object(choice, kind, PARAM)?;
            if kind == "allowed_tools" {
                required_one_of(body, "mode", &body_param, &["auto", "required"])?;
                let tools_param = join(&body_param, "tools");
                match required(body, "tools", &body_param)? {
                    Json::Array(tools) => {
                        for (i, tool) in tools.iter().enumerate() {
                            as_object(tool, &format!("{tools_param}[{i}]"))?;
                        }
                    }
                    other => return Err(wrong_type(&tools_param, "an array", other)),
                }
            } else {
                required_str(body, "name", &body_param)?;
            }
            true
        }
        other => return Err(wrong_type(PARAM, "a string or an object", other)),
    };
    if needs_tools && !has_tools {
        return Err(invalid(
            PARAM,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        ));
    }
    Ok(())
}

/// `none`, `auto`, or `{name}` of one of `functions`.
fn check_function_call(call: &Json, has_functions: bool) -> Result<(), GatewayError> {
    const PARAM: &str = "function_call";
    match call {
        Json::String(s) if s == "none" || s == "auto" => Ok(()),
        Json::String(s) => Err(not_one_of(PARAM, s, &["none", "auto"])),
        Json::Object(call) => {
            required_str(call, "name", PARAM)?;
            if has_functions {
                Ok(())
            } else {
                Err(invalid(
                    PARAM,
                    "Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified.",
                ))
            }
        }
        other => Err(wrong_type(PARAM, "a string or an object", other)),
    }
}
