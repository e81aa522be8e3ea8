//! The fake provider speaking the Google Gemini API (generativelanguage, `v1beta`): the behaviour
//! of tests/src/fake/README.md in Gemini's own formats.
//!
//! - `POST .../models/{model}:generateContent` → a `GenerateContentResponse`
//!   (https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse);
//! - `POST .../models/{model}:streamGenerateContent?alt=sse` → SSE, one
//!   `GenerateContentResponse` per `data:` event, CRLF-framed as Google frames it; every event
//!   carries the usage so far, the last one the `finishReason` and the whole usage;
//! - `POST .../models/{model}:batchEmbedContents` → `{"embeddings": [{"values": [...]}]}`
//!   (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents), which reports no
//!   usage, as Gemini does not;
//! - errors in Google's shape `{"error": {"code", "message", "status"}}`
//!   (https://ai.google.dev/gemini-api/docs/troubleshooting).
//!
//! Tool calls are `functionCall` parts with finish reason `STOP` (Gemini has no separate "tool
//! use" reason); tool results arrive as `functionResponse` parts in a `user` turn.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_provider::{count_tokens, fake_vector, Received, Reply};

const RESPONSE_ID: &str = "fake-gemini-response";

pub fn reply(req: &Received) -> Reply {
    let path = req.path.split('?').next().unwrap_or_default();
    let Some((model, method)) = path
        .rsplit_once("/models/")
        .and_then(|(_, rest)| rest.rsplit_once(':'))
    else {
        return error(
            404,
            "NOT_FOUND",
            &format!("fake gemini: no route {}", req.path),
        );
    };
    let Ok(request) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received. Unexpected token.",
        );
    };
    match method {
        "batchEmbedContents" => embeddings(&request),
        "generateContent" => generate(model, &request, false),
        "streamGenerateContent" if req.path.contains("alt=sse") => generate(model, &request, true),
        "streamGenerateContent" => error(
            400,
            "INVALID_ARGUMENT",
            "fake gemini: streams are served as SSE only (alt=sse)",
        ),
        other => error(
            404,
            "NOT_FOUND",
            &format!("fake gemini: unknown method '{other}'"),
        ),
    }
}

/// A Google API error answer.
fn error(code: u16, status: &str, message: &str) -> Reply {
    Reply::json(
        code,
        &json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

fn part_texts(content: &Value) -> Vec<String> {
    content["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != true)
                .filter_map(|p| p["text"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A tool result's text: the `content` the gateway puts in `response`, as text.
fn function_result_text(response: &Value) -> String {
    let content = if response.get("content").is_some() {
        &response["content"]
    } else {
        response
    };
    match content {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

enum Answer {
    Text(String),
    Call { name: String, text: String },
}

/// The README's demo answer, read from a Gemini request, and the prompt's token count.
fn demo(request: &Value) -> (Answer, u64, String) {
    let contents = request["contents"].as_array().cloned().unwrap_or_default();
    let mut texts = part_texts(&request["systemInstruction"]);
    texts.extend(contents.iter().flat_map(part_texts));
    let prompt: u64 = texts.iter().map(|t| count_tokens(t)).sum();
    let last_user = contents
        .iter()
        .rev()
        .filter(|c| c["role"] == "user")
        .map(|c| part_texts(c).join(" "))
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    let last = contents.last().cloned().unwrap_or(Value::Null);
    let last_part = last["parts"]
        .as_array()
        .and_then(|p| p.last())
        .cloned()
        .unwrap_or(Value::Null);
    let first_tool = request["tools"][0]["functionDeclarations"][0]["name"].as_str();
    let answer = if let Some(response) = last_part.get("functionResponse") {
        Answer::Text(format!(
            "Tool said: {}",
            function_result_text(&response["response"])
        ))
    } else if let (true, Some(tool)) = (last["role"] == "user", first_tool) {
        Answer::Call {
            name: tool.to_string(),
            text: last_user.clone(),
        }
    } else {
        Answer::Text(format!(
            "Hello from the demo provider! You said: {last_user}"
        ))
    };
    (answer, prompt, last_user)
}

fn usage(prompt: u64, completion: Option<u64>) -> Value {
    match completion {
        Some(c) => {
            json!({"promptTokenCount": prompt, "candidatesTokenCount": c, "totalTokenCount": prompt + c})
        }
        None => json!({"promptTokenCount": prompt, "totalTokenCount": prompt}),
    }
}

fn response(model: &str, parts: Value, finish: Option<&str>, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": RESPONSE_ID})
}

fn sse(events: &[Value]) -> Reply {
    let framed: Vec<String> = events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect();
    Reply::sse(&framed, Duration::from_millis(5))
}

fn generate(model: &str, request: &Value, stream: bool) -> Reply {
    let (answer, prompt, last_user) = demo(request);
    match last_user.as_str() {
        "FAIL 429" => {
            let mut r = error(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
            );
            r.headers.push(("retry-after".into(), "1".into()));
            return r;
        }
        "FAIL STREAM" if stream => {
            let mut events: Vec<Value> = ["partial ", "answer "]
                .iter()
                .map(|w| response(model, json!([{"text": w}]), None, usage(prompt, None)))
                .collect();
            events.push(json!({"error": {"code": 500, "status": "INTERNAL",
                "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"}}));
            return sse(&events);
        }
        _ => {}
    }
    match answer {
        Answer::Call { name, text } => {
            let parts = json!([{"functionCall": {"name": name, "args": {"text": text}}}]);
            let body = response(model, parts, Some("STOP"), usage(prompt, Some(0)));
            if stream {
                sse(&[body])
            } else {
                Reply::json(200, &body)
            }
        }
        Answer::Text(text) => {
            let completion = count_tokens(&text);
            if !stream {
                let parts = json!([{ "text": text }]);
                return Reply::json(
                    200,
                    &response(model, parts, Some("STOP"), usage(prompt, Some(completion))),
                );
            }
            let words: Vec<&str> = text.split(' ').collect();
            let events: Vec<Value> = words
                .iter()
                .enumerate()
                .map(|(i, word)| {
                    let last = i + 1 == words.len();
                    let piece = if last {
                        word.to_string()
                    } else {
                        format!("{word} ")
                    };
                    let (finish, u) = if last {
                        (Some("STOP"), usage(prompt, Some(completion)))
                    } else {
                        (None, usage(prompt, None))
                    };
                    response(model, json!([{ "text": piece }]), finish, u)
                })
                .collect();
            sse(&events)
        }
    }
}

fn embeddings(request: &Value) -> Reply {
    let requests = request["requests"].as_array().cloned().unwrap_or_default();
    let embeddings: Vec<Value> = requests
        .iter()
        .map(|r| {
            let text = part_texts(&r["content"]).join(" ");
            let mut values = fake_vector(&text);
            if let Some(d) = r["outputDimensionality"].as_u64() {
                values.truncate(usize::try_from(d).unwrap_or(usize::MAX));
            }
            json!({ "values": values })
        })
        .collect();
    Reply::json(200, &json!({ "embeddings": embeddings }))
}
