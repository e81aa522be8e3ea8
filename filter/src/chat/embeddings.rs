//! Validation of `POST /v1/embeddings` (OpenAI API reference, `CreateEmbeddingRequest`):
//! `input` is a non-empty string, or 1 to 2048 non-empty strings, token ids, or non-empty
//! token arrays; `encoding_format` is `float` or `base64`; `dimensions` at least 1.

use crate::json::Json;

use super::check::{check_fields, wrong_type, Rule};
use super::model_of;
use crate::error::{invalid, read_object, GatewayError};

/// What the gateway needs to know of a valid embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    pub model: String,
    /// The client wants base64 vectors (the OpenAI SDKs' default).
    pub base64: bool,
}

/// Most inputs in one request (OpenAI API reference: "any array must be 2048 dimensions or
/// less").
const MAX_INPUTS: usize = 2048;

/// Whether an (already validated) embeddings body asks for base64 vectors.
pub fn embeddings_base64(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Format<'a> {
        #[serde(borrow)]
        encoding_format: Option<&'a str>,
    }
    serde_json::from_slice::<Format>(body).is_ok_and(|f| f.encoding_format == Some("base64"))
}

pub fn parse_embeddings_request(body: &[u8]) -> Result<EmbeddingsRequest, GatewayError> {
    let req = read_object(body)?;
    let model = model_of(&req)?;
    check_input(req.get("input"))?;
    check_fields(
        &req,
        "",
        &[
            ("encoding_format", Rule::OneOf(&["float", "base64"])),
            (
                "dimensions",
                Rule::Int {
                    min: 1,
                    max: i64::MAX,
                },
            ),
            ("user", Rule::Str),
        ],
    )?;
    let base64 = req.get("encoding_format").and_then(Json::as_str) == Some("base64");
    Ok(EmbeddingsRequest { model, base64 })
}

fn check_input(input: Option<&Json>) -> Result<(), GatewayError> {
    let is_token = |v: &Json| v.is_u64();
    let is_tokens = |v: &Json| {
        v.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(is_token))
    };
    let is_text = |v: &Json| v.as_str().is_some_and(|s| !s.is_empty());
    match input {
        None | Some(Json::Null) => Err(GatewayError::MissingParameter("input")),
        Some(Json::String(s)) if s.is_empty() => {
            Err(invalid("input", "'input' must not be empty."))
        }
        Some(Json::String(_)) => Ok(()),
        Some(Json::Array(items)) if items.is_empty() => {
            Err(invalid("input", "'input' must not be an empty array."))
        }
        Some(Json::Array(items)) if items.len() > MAX_INPUTS => Err(invalid(
            "input",
            format!(
                "'input' holds {} items; at most {MAX_INPUTS} are allowed.",
                items.len()
            ),
        )),
        Some(Json::Array(items))
            if items.iter().all(is_text)
                || items.iter().all(is_token)
                || items.iter().all(is_tokens) =>
        {
            Ok(())
        }
        Some(other) => Err(wrong_type(
            "input",
            "a non-empty string, an array of non-empty strings, or token arrays",
            other,
        )),
    }
}
