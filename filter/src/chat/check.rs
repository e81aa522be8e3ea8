//! The checks every field of a request goes through: a JSON type, a range, one of a few
//! values, present or absent. Each failure is a 400 naming the parameter by its full path
//! (`messages[2].content[0].image_url.url`), worded as OpenAI words its own 400s.
//!
//! `null` counts as absent for an optional field (clients and SDKs send `null` for "unset");
//! for a required one it is a wrong type.

use serde_json::Number;

use crate::error::{invalid, GatewayError};
pub use crate::json::{Json, JsonValue, Object};

/// What a simple (scalar) field must hold.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    Bool,
    Str,
    /// A string of at most this many characters.
    StrMax(usize),
    /// A JSON integer (not `1.0`) within the bounds.
    Int {
        min: i64,
        max: i64,
    },
    /// Any JSON number within the bounds.
    Number {
        min: f64,
        max: f64,
    },
    /// A string, one of these.
    OneOf(&'static [&'static str]),
}

pub fn check_value(value: &Json, param: &str, rule: Rule) -> Result<(), GatewayError> {
    match rule {
        Rule::Bool if value.is_boolean() => Ok(()),
        Rule::Bool => Err(wrong_type(param, "a boolean", value)),
        Rule::Str if value.is_string() => Ok(()),
        Rule::Str => Err(wrong_type(param, "a string", value)),
        Rule::StrMax(max) => match value.as_str() {
            Some(s) if s.chars().count() <= max => Ok(()),
            Some(s) => Err(invalid(
                param,
                format!(
                    "Invalid '{param}': string too long. Expected a string with maximum length {max}, but got a string with length {} instead.",
                    s.chars().count()
                ),
            )),
            None => Err(wrong_type(param, "a string", value)),
        },
        Rule::Int { min, max } => check_int(value, param, min, max),
        Rule::Number { min, max } => {
            let Some(number) = value.as_number() else {
                return Err(wrong_type(param, "a number", value));
            };
            match number.as_f64() {
                Some(x) if x < min => Err(out_of_range(param, "decimal below minimum", ">=", min, number)),
                Some(x) if x > max => Err(out_of_range(param, "decimal above maximum", "<=", max, number)),
                _ => Ok(()),
            }
        }
        Rule::OneOf(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            Some(s) => Err(not_one_of(param, s, allowed)),
            None => Err(wrong_type(param, "a string", value)),
        },
    }
}

fn check_int(value: &Json, param: &str, min: i64, max: i64) -> Result<(), GatewayError> {
    let Some(number) = value.as_number() else {
        return Err(wrong_type(param, "an integer", value));
    };
    // An integer beyond i64 (up to u64::MAX) is above every bound we use.
    match (number.as_i64(), number.is_u64()) {
        (Some(n), _) if n < min => Err(out_of_range(
            param,
            "integer below minimum",
            ">=",
            min,
            number,
        )),
        (Some(n), _) if n > max => Err(out_of_range(
            param,
            "integer above maximum",
            "<=",
            max,
            number,
        )),
        (Some(_), _) => Ok(()),
        (None, true) => Err(out_of_range(
            param,
            "integer above maximum",
            "<=",
            max,
            number,
        )),
        (None, false) => Err(wrong_type(param, "an integer", value)),
    }
}

fn out_of_range(
    param: &str,
    what: &str,
    op: &str,
    bound: impl std::fmt::Display,
    got: &Number,
) -> GatewayError {
    invalid(
        param,
        format!("Invalid '{param}': {what} value. Expected a value {op} {bound}, but got {got} instead."),
    )
}

/// `a.b`, or `b` at the top level.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

pub fn missing(param: &str) -> GatewayError {
    invalid(param, format!("Missing required parameter: '{param}'."))
}

/// `got` is a value of the client's request, read in place or as a `serde_json::Value`.
pub fn wrong_type(param: &str, expected: &str, got: &impl JsonValue) -> GatewayError {
    invalid(
        param,
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            got.kind()
        ),
    )
}

pub fn not_one_of(param: &str, got: &str, allowed: &[&str]) -> GatewayError {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    invalid(
        param,
        format!(
            "Invalid value for '{param}': '{}'. Supported values are: {}.",
            shown(got),
            allowed.join(", ")
        ),
    )
}

/// A client's string as quoted in an error message: cut to 64 characters, so that a huge value
/// does not make a huge error.
pub fn shown(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", s.get(..cut).unwrap_or_default()),
        None => s.to_string(),
    }
}

/// `value` as an object, or a wrong-type error.
pub fn as_object<'a, 'j>(value: &'a Json<'j>, param: &str) -> Result<&'a Object<'j>, GatewayError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(param, "an object", value))
}

/// `obj[key]` when present and not null.
pub fn present<'a, 'j>(obj: &'a Object<'j>, key: &str) -> Option<&'a Json<'j>> {
    obj.get(key).filter(|v| !v.is_null())
}

pub fn required<'a, 'j>(
    obj: &'a Object<'j>,
    key: &str,
    prefix: &str,
) -> Result<&'a Json<'j>, GatewayError> {
    match obj.get(key) {
        None => Err(missing(&join(prefix, key))),
        Some(v) => Ok(v),
    }
}

pub fn required_str<'a>(obj: &'a Object, key: &str, prefix: &str) -> Result<&'a str, GatewayError> {
    let value = required(obj, key, prefix)?;
    value
        .as_str()
        .ok_or_else(|| wrong_type(&join(prefix, key), "a string", value))
}

pub fn required_object<'a, 'j>(
    obj: &'a Object<'j>,
    key: &str,
    prefix: &str,
) -> Result<&'a Object<'j>, GatewayError> {
    as_object(required(obj, key, prefix)?, &join(prefix, key))
}

/// A required string that must be one of `allowed`.
pub fn required_one_of<'a>(
    obj: &'a Object,
    key: &str,
    prefix: &str,
    allowed: &[&str],
) -> Result<&'a str, GatewayError> {
    let s = required_str(obj, key, prefix)?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(not_one_of(&join(prefix, key), s, allowed))
    }
}

/// Checks several optional fields of one object, each against its rule.
pub fn check_fields(
    obj: &Object,
    prefix: &str,
    rules: &[(&str, Rule)],
) -> Result<(), GatewayError> {
    for (key, rule) in rules {
        // The path is spelled out only for a field that is there (most are not).
        match obj.get(key) {
            None | Some(Json::Null) => {}
            Some(value) => check_value(value, &join(prefix, key), *rule)?,
        }
    }
    Ok(())
}

/// An optional array: its items, none when absent or null.
pub fn optional_array<'a, 'j>(
    obj: &'a Object<'j>,
    key: &str,
    param: &str,
) -> Result<Option<&'a [Json<'j>]>, GatewayError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Json::Array(items)) => Ok(Some(items)),
        Some(other) => Err(wrong_type(param, "an array", other)),
    }
}

/// An array that must hold at least one item.
pub fn non_empty<'a, 'j>(
    items: &'a [Json<'j>],
    param: &str,
) -> Result<&'a [Json<'j>], GatewayError> {
    if items.is_empty() {
        Err(invalid(
            param,
            format!("Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead."),
        ))
    } else {
        Ok(items)
    }
}

pub fn at_most<'a, 'j>(
    items: &'a [Json<'j>],
    max: usize,
    param: &str,
) -> Result<&'a [Json<'j>], GatewayError> {
    if items.len() > max {
        Err(invalid(
            param,
            format!("Invalid '{param}': array too long. Expected an array with maximum length {max}, but got an array with length {} instead.", items.len()),
        ))
    } else {
        Ok(items)
    }
}

/// A function or response-format name: `^[a-zA-Z0-9_-]{1,64}$` (OpenAI API reference,
/// `FunctionObject.name` and `ResponseFormatJsonSchema.json_schema.name`).
pub fn check_name(name: &str, param: &str) -> Result<(), GatewayError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            param,
            format!(
                "Invalid '{param}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$', but got '{}' instead.",
                shown(name)
            ),
        ))
    }
}
