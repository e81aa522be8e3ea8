//! The fake provider speaking the AWS Bedrock runtime API: `POST /model/{modelId}/converse`
//! (JSON), `/converse-stream` (binary `application/vnd.amazon.eventstream` frames, one per
//! chunk) and `/invoke` for embeddings (Titan text, Cohere Embed), with the behaviour every fake
//! format shares (tests/src/fake/README.md).
//!
//! Like Bedrock it first **verifies the SigV4 signature** of every request, with its own
//! implementation (the `sha2` and `hmac` crates, not the filter's code): the canonical request
//! is rebuilt from what arrived (method, path encoded once more, the signed headers' values, the
//! SHA-256 of the body it received), so a wrong key, scope, date, header or body byte, or a
//! body changed after signing, is refused with 403 as Bedrock refuses it.
//!
//! Formats:
//! - Converse: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
//!   (`{"output": {"message": {"role", "content": [{text} | {toolUse}]}}, "stopReason",
//!   "usage": {inputTokens, outputTokens, totalTokens}, "metrics"}`);
//! - ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
//!   (events `messageStart`, `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`,
//!   `messageStop`, `metadata`, each JSON payload with Bedrock's `p` padding field; exceptions as
//!   `:message-type: exception` frames), framed per "Event stream encoding"
//!   (https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html), CRCs by `crc32fast`;
//! - errors: the HTTP status, `{"message": ...}` and `x-amzn-ErrorType`
//!   (https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html);
//! - Titan embeddings `{"inputText", "dimensions"?}` → `{"embedding", "inputTextTokenCount"}`;
//!   Cohere Embed `{"texts", "input_type"}` → `{"embeddings", "id", "response_type", "texts"}`
//!   (no token count in the body; Bedrock sends it in `x-amzn-bedrock-input-token-count`).
//!
//! Like Bedrock it refuses a conversation that does not start with a user turn or does not
//! alternate roles, blank text blocks, tool blocks without `toolConfig`, tool results that answer
//! no tool use of the previous turn, unknown top-level fields, and Titan bodies with extra keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fake_provider::{count_tokens, fake_vector, words, Received, Reply};

/// The credentials the fake accepts; tests give them to Envoy as `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDEXAMPLEGATEWAY";
pub const TEST_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

const REQUEST_ID: &str = "6e3c1b0a-0000-4000-8000-00000fakeb0c";
const SIGNATURE_MISMATCH: &str =
    "The request signature we calculated does not match the signature you provided.";
const THROTTLED: &str = "Too many requests, please wait before trying again.";

pub fn reply(req: &Received) -> Reply {
    if let Err(refusal) = verify_signature(req) {
        return refusal;
    }
    let path = req.path.split('?').next().unwrap_or_default();
    let Some((model, action)) = path
        .strip_prefix("/model/")
        .and_then(|rest| rest.rsplit_once('/'))
    else {
        return error(
            404,
            "UnknownOperationException",
            &format!("fake bedrock: no route {}", req.path),
        );
    };
    let model = percent_decode(model);
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            400,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    match action {
        "converse" | "converse-stream" if model.contains("embed") => error(
            400,
            "ValidationException",
            "This action doesn't support the model that you provided. Try again with a supported text or chat model.",
        ),
        "converse" => converse(&body, false),
        "converse-stream" => converse(&body, true),
        "invoke" => invoke(&model, &body),
        _ => error(
            404,
            "UnknownOperationException",
            &format!("fake bedrock: no route {}", req.path),
        ),
    }
}

fn error(status: u16, kind: &str, message: &str) -> Reply {
    let mut r = Reply::json(status, &json!({ "message": message }));
    r.headers.push((
        "x-amzn-errortype".into(),
        format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    ));
    r.headers
        .push(("x-amzn-requestid".into(), REQUEST_ID.into()));
    r
}

fn validation(message: &str) -> Reply {
    error(400, "ValidationException", message)
}

// ------------------------------------------------------------------------------------------
// SigV4 verification, after https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

fn forbidden(kind: &str, message: &str) -> Reply {
    error(403, kind, message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, the rest `%XX`.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Seconds since the epoch of an `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
fn parse_amz_date(d: &str) -> Option<u64> {
    if d.len() != 16 || &d[8..9] != "T" || !d.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| d.get(r)?.parse::<i64>().ok();
    let (y, m, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, min, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + s).ok()
}

pub(crate) fn verify_signature(req: &Received) -> Result<(), Reply> {
    let Some(auth) = req.header("authorization") else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let Some(fields) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Authorization header requires the AWS4-HMAC-SHA256 algorithm.",
        ));
    };
    let field = |name: &str| {
        fields
            .split(',')
            .map(str::trim)
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        field("Credential"),
        field("SignedHeaders"),
        field("Signature"),
    ) else {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope.as_slice() else {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Credential should be scoped to a valid region.",
        ));
    };
    if *access_key != TEST_ACCESS_KEY_ID {
        return Err(forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if *service != "bedrock" || *terminator != "aws4_request" {
        return Err(forbidden(
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'bedrock'.",
        ));
    }
    let amz_date = req.header("x-amz-date").unwrap_or_default();
    let Some(signed_at) = parse_amz_date(amz_date).filter(|_| amz_date.starts_with(date)) else {
        return Err(forbidden(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.abs_diff(signed_at) > 15 * 60 {
        return Err(forbidden(
            "InvalidSignatureException",
            &format!("Signature expired: {amz_date} is more than 15 minutes away from the server's time."),
        ));
    }
    let host = req.header("host").unwrap_or_default();
    if host != format!("bedrock-runtime.{region}.amazonaws.com") {
        return Err(forbidden(
            "InvalidSignatureException",
            &format!(
                "Credential should be scoped to a valid region, not '{region}' for host '{host}'."
            ),
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(forbidden(
            "InvalidSignatureException",
            "'Host' and 'X-Amz-Date' must be signed headers.",
        ));
    }
    if req.header("x-amz-security-token").is_some() && !names.contains(&"x-amz-security-token") {
        return Err(forbidden("InvalidSignatureException", SIGNATURE_MISMATCH));
    }
    // The payload hash of the body as it arrived, whatever the request claims.
    let payload_hash = sha256_hex(&req.body);
    if let Some(claimed) = req.header("x-amz-content-sha256") {
        if claimed != payload_hash {
            return Err(forbidden(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let Some(value) = req.header(name) else {
            return Err(forbidden("InvalidSignatureException", SIGNATURE_MISMATCH));
        };
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    // Every service but S3 signs each path segment URI-encoded twice: the wire path is
    // encoded once, so it is encoded once more here.
    let canonical_uri = path
        .split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/");
    let mut query: Vec<&str> = query.split('&').filter(|q| !q.is_empty()).collect();
    query.sort_unstable();
    let canonical_request = format!(
        "{}\n{canonical_uri}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        req.method,
        query.join("&")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(
        format!("AWS4{TEST_SECRET_ACCESS_KEY}").as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let expected = hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(forbidden("InvalidSignatureException", SIGNATURE_MISMATCH));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Converse.

const CONVERSE_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "outputConfig",
    "serviceTier",
];

fn texts_of(blocks: &Value) -> Vec<String> {
    blocks
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The text of a tool result's content blocks (`json` blocks as JSON text).
fn tool_result_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|b| match (&b["text"], &b["json"]) {
                    (Value::String(t), _) => t.clone(),
                    (_, Value::Null) => String::new(),
                    (_, json) => json.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Bedrock's checks of a Converse body; `Err` is its 400 message.
fn validate(body: &Value) -> Result<(), String> {
    let Some(obj) = body.as_object() else {
        return Err("Malformed input request, please reformat your input and try again.".into());
    };
    if let Some(unknown) = obj.keys().find(|k| !CONVERSE_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "Malformed input request: extraneous key [{unknown}] is not permitted, please reformat your input and try again."
        ));
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if messages.first().map(|m| &m["role"]) != Some(&json!("user")) {
        return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
    }
    let mut uses_tools = false;
    let mut previous_tool_uses: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["user", "assistant"].contains(&role) {
            return Err(format!(
                "messages.{i}.role: Member must satisfy enum value set: [user, assistant]"
            ));
        }
        if i > 0 && messages[i - 1]["role"] == m["role"] {
            return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        let Some(content) = m["content"].as_array().filter(|c| !c.is_empty()) else {
            return Err(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."));
        };
        let mut tool_uses = Vec::new();
        for (j, block) in content.iter().enumerate() {
            if let Some(text) = block.get("text") {
                if text.as_str().is_none_or(|t| t.trim().is_empty()) {
                    return Err(format!("The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."));
                }
            } else if let Some(tool_use) = block.get("toolUse") {
                uses_tools = true;
                if !tool_use["input"].is_object() || tool_use["name"].as_str().is_none() {
                    return Err(format!("messages.{i}.content.{j}.toolUse: input must be an object and name a string"));
                }
                tool_uses.push(
                    tool_use["toolUseId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            } else if let Some(result) = block.get("toolResult") {
                uses_tools = true;
                let id = result["toolUseId"].as_str().unwrap_or_default();
                if !previous_tool_uses.iter().any(|u| u == id) {
                    return Err(format!("messages.{i}.content.{j}: the toolResult answers toolUseId '{id}', which the previous turn did not use"));
                }
            } else if let Some(point) = block.get("cachePoint") {
                // CachePointBlock: `type` is required and "default" its only value.
                if point["type"] != "default" {
                    return Err(format!("messages.{i}.content.{j}.cachePoint.type: Member must satisfy enum value set: [default]"));
                }
            } else if block.get("image").is_none() {
                return Err(format!(
                    "messages.{i}.content.{j}: unknown content block {block}"
                ));
            }
        }
        previous_tool_uses = tool_uses;
    }
    if uses_tools && !body["toolConfig"].is_object() {
        return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    Ok(())
}

enum Answer {
    Text(String),
    ToolUse { name: String, input: Value },
}

fn converse(body: &Value, stream: bool) -> Reply {
    if let Err(message) = validate(body) {
        return validation(&message);
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| texts_of(&m["content"]).join(" "))
        .unwrap_or_default();
    if last_user.trim() == "FAIL 429" {
        return error(429, "ThrottlingException", THROTTLED);
    }
    // Every text block, the system prompt included; tool uses and results are not counted.
    let prompt: u64 = texts_of(&body["system"])
        .into_iter()
        .chain(messages.iter().flat_map(|m| texts_of(&m["content"])))
        .map(|t| count_tokens(&t))
        .sum();
    let results: Vec<String> = last["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b.get("toolResult"))
                .map(tool_result_text)
                .collect()
        })
        .unwrap_or_default();
    let first_tool = body["toolConfig"]["tools"][0]["toolSpec"]["name"].as_str();
    let answer = match first_tool {
        _ if !results.is_empty() => Answer::Text(format!("Tool said: {}", results.join(" "))),
        Some(name) => Answer::ToolUse {
            name: name.to_string(),
            input: json!({ "text": last_user }),
        },
        None => Answer::Text(format!(
            "Hello from the demo provider! You said: {last_user}"
        )),
    };
    match answer {
        Answer::Text(text) if stream && last_user.trim() == "FAIL STREAM" => failing_stream(&text),
        Answer::Text(text) => {
            let output = count_tokens(&text);
            if stream {
                text_stream(&text, prompt, output)
            } else {
                converse_json(json!([{ "text": text }]), "end_turn", prompt, output)
            }
        }
        Answer::ToolUse { name, input } => {
            let id = "tooluse_FakeB3dr0ckCall01";
            let output = count_tokens(&input.to_string());
            if stream {
                tool_stream(id, &name, &input.to_string(), prompt, output)
            } else {
                converse_json(
                    json!([{"toolUse": {"toolUseId": id, "name": name, "input": input}}]),
                    "tool_use",
                    prompt,
                    output,
                )
            }
        }
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
}

fn converse_json(content: Value, stop_reason: &str, input: u64, output: u64) -> Reply {
    let mut r = Reply::json(
        200,
        &json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": usage(input, output),
            "metrics": {"latencyMs": 42},
        }),
    );
    r.headers
        .push(("x-amzn-requestid".into(), REQUEST_ID.into()));
    r
}

// ------------------------------------------------------------------------------------------
// ConverseStream: event-stream frames.

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (12 + h.len() + payload.len() + 4) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An event frame; the payload gets Bedrock's `p` padding field (random-length filler that
/// hides the payload's size), here of a length that varies with the event.
fn event(kind: &str, mut payload: Value) -> Vec<u8> {
    let filler = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let n = (payload.to_string().len() * 7) % filler.len();
    payload["p"] = filler[..n].into();
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

fn event_stream(frames: Vec<Vec<u8>>) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            (
                "content-type".into(),
                "application/vnd.amazon.eventstream".into(),
            ),
            ("x-amzn-requestid".into(), REQUEST_ID.into()),
        ],
        pieces: frames
            .into_iter()
            .map(|f| (Duration::from_millis(5), f))
            .collect(),
        chunked: true,
    }
}

fn text_delta(word: &str) -> Vec<u8> {
    event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": word}}),
    )
}

fn message_start() -> Vec<u8> {
    event("messageStart", json!({"role": "assistant"}))
}

fn text_stream(text: &str, input: u64, output: u64) -> Reply {
    let mut frames = vec![message_start()];
    frames.extend(words(text).iter().map(|w| text_delta(w)));
    frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    frames.push(event("messageStop", json!({"stopReason": "end_turn"})));
    frames.push(event(
        "metadata",
        json!({"usage": usage(input, output), "metrics": {"latencyMs": 42}}),
    ));
    event_stream(frames)
}

fn failing_stream(text: &str) -> Reply {
    let mut frames = vec![message_start()];
    frames.extend(words(text).iter().take(2).map(|w| text_delta(w)));
    frames.push(exception("throttlingException", THROTTLED));
    event_stream(frames)
}

fn tool_stream(id: &str, name: &str, input: &str, prompt: u64, output: u64) -> Reply {
    let mut frames = vec![
        message_start(),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
        ),
    ];
    // The input JSON in pieces of up to 8 characters, as a model emits it token by token.
    let chars: Vec<char> = input.chars().collect();
    for piece in chars.chunks(8) {
        let piece: String = piece.iter().collect();
        frames.push(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}),
        ));
    }
    frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    frames.push(event("messageStop", json!({"stopReason": "tool_use"})));
    frames.push(event(
        "metadata",
        json!({"usage": usage(prompt, output), "metrics": {"latencyMs": 42}}),
    ));
    event_stream(frames)
}

// ------------------------------------------------------------------------------------------
// InvokeModel for embeddings.

fn invoke(model: &str, body: &Value) -> Reply {
    let mut r = if model.contains("titan-embed") {
        titan(body)
    } else if model.contains("cohere.embed") {
        cohere(body)
    } else {
        validation(&format!(
            "fake bedrock: InvokeModel is served for embedding models here, not '{model}'"
        ))
    };
    r.headers
        .push(("x-amzn-requestid".into(), REQUEST_ID.into()));
    r
}

fn titan(body: &Value) -> Reply {
    let allowed = ["inputText", "dimensions", "normalize", "embeddingTypes"];
    if let Some(key) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return validation(&format!(
            "Malformed input request: #: extraneous key [{key}] is not permitted, please reformat your input and try again."
        ));
    }
    let Some(text) = body["inputText"].as_str() else {
        return validation(
            "Malformed input request: #: required key [inputText] not found, please reformat your input and try again.",
        );
    };
    if let Some(d) = body.get("dimensions") {
        if ![256, 512, 1024].contains(&d.as_u64().unwrap_or(0)) {
            return validation(&format!(
                "Malformed input request: #/dimensions: {d} is not a valid enum value, please reformat your input and try again."
            ));
        }
    }
    let tokens = count_tokens(text);
    let mut r = Reply::json(
        200,
        &json!({"embedding": fake_vector(text), "inputTextTokenCount": tokens}),
    );
    r.headers.push((
        "x-amzn-bedrock-input-token-count".into(),
        tokens.to_string(),
    ));
    r
}

fn cohere(body: &Value) -> Reply {
    let Some(texts) = body["texts"].as_array() else {
        return validation("Malformed input request: #: required key [texts] not found, please reformat your input and try again.");
    };
    if !body["input_type"].is_string() {
        return validation("Malformed input request: #: required key [input_type] not found, please reformat your input and try again.");
    }
    let texts: Vec<String> = texts
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();
    let tokens: u64 = texts.iter().map(|t| count_tokens(t)).sum();
    let vectors: Vec<Vec<f64>> = texts.iter().map(|t| fake_vector(t)).collect();
    let mut r = Reply::json(
        200,
        &json!({"embeddings": vectors, "id": REQUEST_ID, "response_type": "embeddings_floats", "texts": texts}),
    );
    r.headers.push((
        "x-amzn-bedrock-input-token-count".into(),
        tokens.to_string(),
    ));
    r
}
