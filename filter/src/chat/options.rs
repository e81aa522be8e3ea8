//! The object-shaped options of a chat request: `response_format`, `stream_options`,
//! `logit_bias`, `metadata`, `modalities` and `audio`, `prediction`, `web_search_options`,
//! `stop` (OpenAI API reference, `CreateChatCompletionRequest`).

use crate::json::Json;

use super::check::{
    as_object, at_most, check_fields, check_name, join, missing, non_empty, present, required,
    required_object, required_one_of, required_str, shown, wrong_type, Object, Rule,
};
use super::messages::{check_part, TEXT_PARTS};
use crate::error::{invalid, GatewayError};

pub fn check_options(req: &Object, stream: bool) -> Result<(), GatewayError> {
    if let Some(format) = present(req, "response_format") {
        check_response_format(format)?;
    }
    if let Some(options) = present(req, "stream_options") {
        let options = as_object(options, "stream_options")?;
        if !stream {
            return Err(invalid(
                "stream_options",
                "'stream_options' is only allowed when 'stream' is true.",
            ));
        }
        check_fields(
            options,
            "stream_options",
            &[
                ("include_usage", Rule::Bool),
                ("include_obfuscation", Rule::Bool),
            ],
        )?;
    }
    if present(req, "top_logprobs").is_some() && req.get("logprobs") != Some(&Json::Bool(true)) {
        return Err(invalid(
            "top_logprobs",
            "Invalid value for 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is set.",
        ));
    }
    check_stop(req)?;
    check_logit_bias(req)?;
    check_metadata(req)?;
    check_audio(req)?;
    if let Some(prediction) = present(req, "prediction") {
        check_prediction(prediction)?;
    }
    if let Some(options) = present(req, "web_search_options") {
        check_web_search(options)?;
    }
    Ok(())
}

/// `{type: "text"}`, `{type: "json_object"}` or `{type: "json_schema", json_schema: {name,
/// description, schema, strict}}`.
fn check_response_format(format: &Json) -> Result<(), GatewayError> {
    const PARAM: &str = "response_format";
    let format = as_object(format, PARAM)?;
    let kinds = ["text", "json_object", "json_schema"];
    if required_one_of(format, "type", PARAM, &kinds)? != "json_schema" {
        return Ok(());
    }
    let schema_param = join(PARAM, "json_schema");
    let json_schema = required_object(format, "json_schema", PARAM)?;
    check_name(
        required_str(json_schema, "name", &schema_param)?,
        &join(&schema_param, "name"),
    )?;
    check_fields(
        json_schema,
        &schema_param,
        &[("description", Rule::Str), ("strict", Rule::Bool)],
    )?;
    match present(json_schema, "schema") {
        None | Some(Json::Object(_)) => Ok(()),
        Some(other) => Err(wrong_type(
            &join(&schema_param, "schema"),
            "an object",
            other,
        )),
    }
}

/// A string or up to 4 strings.
fn check_stop(req: &Object) -> Result<(), GatewayError> {
    match present(req, "stop") {
        None | Some(Json::String(_)) => Ok(()),
        Some(Json::Array(items)) => {
            for (i, item) in at_most(items, 4, "stop")?.iter().enumerate() {
                if !item.is_string() {
                    return Err(wrong_type(&format!("stop[{i}]"), "a string", item));
                }
            }
            Ok(())
        }
        Some(other) => Err(wrong_type("stop", "a string or an array of strings", other)),
    }
}

/// Token ids (as object keys) to a bias from -100 to 100.
fn check_logit_bias(req: &Object) -> Result<(), GatewayError> {
    const PARAM: &str = "logit_bias";
    let Some(bias) = present(req, PARAM) else {
        return Ok(());
    };
    for (token, value) in as_object(bias, PARAM)?.iter() {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                PARAM,
                format!(
                    "Invalid key in 'logit_bias': '{}'. Keys must be token ids (integers).",
                    shown(token)
                ),
            ));
        }
        match value.as_number() {
            Some(b) if b.as_f64().is_some_and(|b| (-100.0..=100.0).contains(&b)) => {}
            Some(b) => {
                return Err(invalid(
                    PARAM,
                    format!("Invalid value in 'logit_bias' for token {}: {b}. Biases must be between -100 and 100.", shown(token)),
                ))
            }
            None => return Err(wrong_type(&format!("{PARAM}.{}", shown(token)), "a number", value)),
        }
    }
    Ok(())
}

/// Up to 16 pairs; keys up to 64 characters, values strings up to 512.
fn check_metadata(req: &Object) -> Result<(), GatewayError> {
    const PARAM: &str = "metadata";
    let Some(metadata) = present(req, PARAM) else {
        return Ok(());
    };
    let metadata = as_object(metadata, PARAM)?;
    if metadata.len() > 16 {
        return Err(invalid(
            PARAM,
            format!(
                "Invalid 'metadata': too many keys ({}); at most 16 are allowed.",
                metadata.len()
            ),
        ));
    }
    for (key, value) in metadata.iter() {
        if key.chars().count() > 64 {
            return Err(invalid(
                PARAM,
                format!(
                    "Invalid 'metadata': key '{}' is longer than 64 characters.",
                    shown(key)
                ),
            ));
        }
        let param = format!("{PARAM}.{}", shown(key));
        match value.as_str() {
            Some(v) if v.chars().count() <= 512 => {}
            Some(_) => {
                return Err(invalid(
                    param.as_str(),
                    format!("Invalid '{param}': values are at most 512 characters."),
                ))
            }
            None => return Err(wrong_type(&param, "a string", value)),
        }
    }
    Ok(())
}

/// `modalities` (`text`, `audio`) and `audio` ({voice, format}), which audio output requires.
fn check_audio(req: &Object) -> Result<(), GatewayError> {
    let mut wants_audio = false;
    if let Some(modalities) = present(req, "modalities") {
        let Json::Array(items) = modalities else {
            return Err(wrong_type("modalities", "an array", modalities));
        };
        for (i, item) in items.iter().enumerate() {
            super::check::check_value(
                item,
                &format!("modalities[{i}]"),
                Rule::OneOf(&["text", "audio"]),
            )?;
            wants_audio |= item.as_str() == Some("audio");
        }
    }
    let Some(audio) = present(req, "audio") else {
        return if wants_audio {
            Err(missing("audio"))
        } else {
            Ok(())
        };
    };
    let audio = as_object(audio, "audio")?;
    let formats = ["wav", "aac", "mp3", "flac", "opus", "pcm16"];
    required_one_of(audio, "format", "audio", &formats)?;
    // A built-in voice name, or `{id}` of a custom voice.
    match required(audio, "voice", "audio")? {
        Json::String(_) => Ok(()),
        Json::Object(voice) => required_str(voice, "id", "audio.voice").map(|_| ()),
        other => Err(wrong_type("audio.voice", "a string or an object", other)),
    }
}

/// `{type: "content", content: string or text parts}`.
fn check_prediction(prediction: &Json) -> Result<(), GatewayError> {
    const PARAM: &str = "prediction";
    let prediction = as_object(prediction, PARAM)?;
    required_one_of(prediction, "type", PARAM, &["content"])?;
    match required(prediction, "content", PARAM)? {
        Json::String(_) => Ok(()),
        Json::Array(parts) => {
            for (i, part) in non_empty(parts, "prediction.content")?.iter().enumerate() {
                check_part(part, &format!("prediction.content[{i}]"), TEXT_PARTS)?;
            }
            Ok(())
        }
        other => Err(wrong_type(
            "prediction.content",
            "a string or an array of text parts",
            other,
        )),
    }
}

/// `{search_context_size, user_location: {type: "approximate", approximate: {city, country,
/// region, timezone}}}`.
fn check_web_search(options: &Json) -> Result<(), GatewayError> {
    const PARAM: &str = "web_search_options";
    let options = as_object(options, PARAM)?;
    check_fields(
        options,
        PARAM,
        &[(
            "search_context_size",
            Rule::OneOf(&["low", "medium", "high"]),
        )],
    )?;
    let Some(location) = present(options, "user_location") else {
        return Ok(());
    };
    let location_param = join(PARAM, "user_location");
    let location = as_object(location, &location_param)?;
    required_one_of(location, "type", &location_param, &["approximate"])?;
    let approximate = required_object(location, "approximate", &location_param)?;
    let fields = ["city", "country", "region", "timezone"].map(|k| (k, Rule::Str));
    check_fields(approximate, &join(&location_param, "approximate"), &fields)
}
