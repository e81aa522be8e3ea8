//! Gemini accepts a subset of JSON Schema (its `Schema` object): client tool and response
//! schemas are reduced to it here. See the parent module for the rules.

use super::*;

// ---------------------------------------------------------------------------------------------
// JSON schema → Gemini `Schema`
// ---------------------------------------------------------------------------------------------

/// Keywords copied as they are (their values are not schemas).
pub(super) const PLAIN_SCHEMA_KEYS: &[&str] = &[
    "title",
    "description",
    "default",
    "example",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "pattern",
    "propertyOrdering",
];

/// A JSON schema cut down to Gemini's `Schema` (see the module comment); `None` for an object
/// schema without properties, which Gemini refuses and which says nothing anyway.
pub(super) fn gemini_schema(root: &Value) -> Result<Option<Value>, String> {
    let mut cx = SchemaCx {
        root,
        active_refs: Vec::new(),
        nodes: 0,
    };
    let schema = convert_schema(root, &mut cx, 0)?;
    let is_object = schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("object"));
    let no_properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if is_object && no_properties && schema.get("anyOf").is_none() {
        return Ok(None);
    }
    Ok(Some(schema))
}

pub(super) fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(root, |node, segment| {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        node.get(segment.as_str())
    })
}

pub(super) fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// The state of one schema conversion.
pub(super) struct SchemaCx<'a> {
    root: &'a Value,
    /// The `$ref`s being expanded around the current node: one seen again is a recursion.
    active_refs: Vec<String>,
    nodes: usize,
}

pub(super) fn convert_schema(
    schema: &Value,
    cx: &mut SchemaCx,
    depth: usize,
) -> Result<Value, String> {
    cx.nodes += 1;
    if depth > MAX_SCHEMA_DEPTH || cx.nodes > MAX_SCHEMA_NODES {
        return Err("The schema nests too deeply or is too large for Gemini.".into());
    }
    let Some(src) = schema.as_object() else {
        // Boolean schemas (`true`): anything goes.
        return Ok(json!({}));
    };
    if let Some(reference) = src.get("$ref") {
        let reference = reference.as_str().unwrap_or_default();
        if cx.active_refs.iter().any(|r| r == reference) {
            return Err(format!(
                "The schema refers to itself through '{reference}', which Gemini cannot express."
            ));
        }
        let target = resolve_ref(cx.root, reference)
            .ok_or_else(|| format!("The schema reference '{reference}' cannot be resolved."))?;
        let mut merged = target.as_object().cloned().unwrap_or_default();
        for (k, v) in src {
            if k != "$ref" {
                merged.insert(k.clone(), v.clone());
            }
        }
        cx.active_refs.push(reference.to_string());
        let converted = convert_schema(&Value::Object(merged), cx, depth + 1);
        cx.active_refs.pop();
        return converted;
    }

    let mut out = Map::new();
    let mut nullable = src.get("nullable").and_then(Value::as_bool) == Some(true);
    let mut type_options = Vec::new();
    match src.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), t.as_str().into());
        }
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable |= named.contains(&"null");
            let rest: Vec<&str> = named.into_iter().filter(|t| *t != "null").collect();
            match rest.as_slice() {
                [one] => {
                    out.insert("type".into(), (*one).into());
                }
                many => type_options = many.iter().map(|t| json!({ "type": t })).collect(),
            }
        }
        _ => {}
    }
    let ty = out
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    for key in PLAIN_SCHEMA_KEYS {
        if let Some(v) = src.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    if let Some(Value::String(format)) = src.get("format") {
        let known = match ty.as_deref() {
            Some("string") => matches!(format.as_str(), "enum" | "date-time"),
            Some("number") => matches!(format.as_str(), "float" | "double"),
            Some("integer") => matches!(format.as_str(), "int32" | "int64"),
            _ => false,
        };
        if known {
            out.insert("format".into(), format.as_str().into());
        }
    }
    let enum_values = match (src.get("enum"), src.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = enum_values {
        nullable |= values.iter().any(Value::is_null);
        let strings: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        // Gemini's enum holds strings only.
        if !strings.is_empty() && strings.iter().all(Value::is_string) {
            out.insert("enum".into(), Value::Array(strings));
            out.entry("type").or_insert_with(|| "string".into());
        }
    }
    if let Some(Value::Object(properties)) = src.get("properties") {
        let mut converted = Map::new();
        for (name, property) in properties {
            converted.insert(name.clone(), convert_schema(property, cx, depth + 1)?);
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if let Some(Value::Array(required)) = src.get("required") {
        let names: Vec<Value> = required.iter().filter(|r| r.is_string()).cloned().collect();
        if !names.is_empty() {
            out.insert("required".into(), Value::Array(names));
        }
    }
    if let Some(items) = src.get("items").filter(|i| i.is_object()) {
        out.insert("items".into(), convert_schema(items, cx, depth + 1)?);
    }
    let any_of = src
        .get("anyOf")
        .or_else(|| src.get("oneOf"))
        .and_then(Value::as_array);
    let mut options = Vec::new();
    for option in any_of.into_iter().flatten() {
        if is_null_schema(option) {
            nullable = true;
        } else {
            options.push(convert_schema(option, cx, depth + 1)?);
        }
    }
    if options.is_empty() {
        options = type_options;
    }
    match options.len() {
        0 => {}
        1 if !out.contains_key("type") => {
            if let Some(Value::Object(only)) = options.pop() {
                merge_schema(&mut out, only);
            }
        }
        _ => {
            out.insert("anyOf".into(), Value::Array(options));
        }
    }
    if let Some(Value::Array(all)) = src.get("allOf") {
        for part in all {
            if let Value::Object(part) = convert_schema(part, cx, depth + 1)? {
                merge_schema(&mut out, part);
            }
        }
    }
    if nullable {
        out.insert("nullable".into(), true.into());
    }
    Ok(Value::Object(out))
}

/// Adds what `other` says and `out` does not: properties and required names are united, other
/// keywords of `out` win.
pub(super) fn merge_schema(out: &mut Map<String, Value>, other: Map<String, Value>) {
    for (key, value) in other {
        match (out.get_mut(&key), value) {
            (Some(Value::Object(mine)), Value::Object(theirs)) if key == "properties" => {
                for (k, v) in theirs {
                    mine.entry(k).or_insert(v);
                }
            }
            (Some(Value::Array(mine)), Value::Array(theirs)) if key == "required" => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (Some(_), _) => {}
            (None, value) => {
                out.insert(key, value);
            }
        }
    }
}
