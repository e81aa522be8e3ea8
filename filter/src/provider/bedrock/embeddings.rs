//! Embeddings through InvokeModel: the OpenAI embeddings body → a Titan or Cohere Embed body,
//! and their answers → the OpenAI list (the mapping is in the module documentation of
//! `bedrock.rs`). Written and read through typed forms, no JSON trees.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::response::{error_message, is_success, unreadable};
use crate::error::{invalid, parse_object, GatewayError};
use crate::provider::cohere::FloatVectors;
use crate::provider::openai_format;
use crate::provider::{ResponseShape, ResponseTranslator};
use crate::usage::Usage;

/// An InvokeModel body for an embedding model (members in alphabetical order, as a JSON tree
/// with sorted keys writes them: the signing goldens pin the bytes).
#[derive(Serialize)]
#[serde(untagged)]
enum InvokeBody<'a> {
    /// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
    #[serde(rename_all = "camelCase")]
    Titan {
        #[serde(skip_serializing_if = "Option::is_none")]
        dimensions: Option<u64>,
        input_text: &'a str,
    },
    /// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html
    Cohere {
        input_type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_dimension: Option<u64>,
        texts: Vec<&'a str>,
    },
}

/// The InvokeModel body for an OpenAI embeddings body, serialized, and whether base64 was
/// asked for.
pub fn embeddings_request(model: &str, body: &[u8]) -> Result<(Vec<u8>, bool), GatewayError> {
    let req = parse_object(body)?;
    let (body, base64) = invoke_body(model, &req)?;
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::Misconfigured(e.to_string()))?;
    Ok((body, base64))
}

fn invoke_body<'a>(
    model: &str,
    req: &'a Map<String, Value>,
) -> Result<(InvokeBody<'a>, bool), GatewayError> {
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let texts: Vec<&str> = match req.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    "input",
                    "Bedrock embedding models take text; token arrays are not supported.",
                )
            })?,
        _ => return Err(GatewayError::MissingParameter("input")),
    };
    let dimensions = req.get("dimensions").and_then(Value::as_u64);
    let body = if model.contains("titan-embed") {
        let [text] = texts.as_slice() else {
            return Err(invalid(
                "input",
                format!(
                    "Titan embedding models embed one text per request; send one input, not {}.",
                    texts.len()
                ),
            ));
        };
        InvokeBody::Titan {
            dimensions,
            input_text: text,
        }
    } else if model.contains("cohere.embed") {
        InvokeBody::Cohere {
            input_type: "search_document",
            output_dimension: dimensions,
            texts,
        }
    } else {
        return Err(invalid(
            "model",
            format!(
                "Bedrock embeddings are served for Titan (amazon.titan-embed-*) and Cohere (cohere.embed-*) models, not '{model}'."
            ),
        ));
    };
    Ok((body, base64))
}

/// A Titan answer (`embedding`, `inputTextTokenCount`) or a Cohere one (`embeddings`, a list of
/// vectors or `{"float": [...]}` when embedding types were asked for).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokeAnswer {
    #[serde(default)]
    embedding: Option<Vec<f64>>,
    #[serde(default, deserialize_with = "crate::usage::token_count")]
    input_text_token_count: Option<u64>,
    #[serde(default)]
    embeddings: Option<FloatVectors>,
}

/// Translates an InvokeModel embeddings answer (Titan or Cohere) to the OpenAI list.
pub struct EmbeddingsResponse {
    model: String,
    base64: bool,
    status: u32,
    buf: Vec<u8>,
}

impl EmbeddingsResponse {
    pub fn new(model: String, base64: bool) -> Self {
        Self {
            model,
            base64,
            status: 0,
            buf: Vec::new(),
        }
    }

    fn translate(&self) -> Vec<u8> {
        if !is_success(self.status) {
            return openai_format::error_body(self.status, &error_message(self.status, &self.buf));
        }
        let answer = match serde_json::from_slice::<InvokeAnswer>(&self.buf) {
            Ok(answer) => answer,
            Err(e) if e.is_data() => return unreadable("no embedding in its answer"),
            Err(_) => return unreadable("a body that is not JSON"),
        };
        let (vectors, tokens) = match (answer.embedding, answer.embeddings) {
            (Some(vector), _) => (vec![vector], answer.input_text_token_count.unwrap_or(0)),
            (None, Some(FloatVectors(Some(vectors)))) => (vectors, 0),
            (None, _) => return unreadable("no embedding in its answer"),
        };
        let usage = Usage {
            prompt: tokens,
            total: tokens,
            ..Usage::default()
        };
        openai_format::embeddings(&self.model, &vectors, self.base64, &usage)
    }
}

impl ResponseTranslator for EmbeddingsResponse {
    fn start(&mut self, status: u32, _: Option<&str>) -> ResponseShape {
        self.status = status;
        ResponseShape::JSON
    }

    fn body(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        self.buf.extend_from_slice(chunk);
        if !end {
            return Vec::new();
        }
        let out = self.translate();
        self.buf.clear();
        out
    }
}
