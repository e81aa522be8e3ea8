use super::*;
use crate::config::Config;

const NOW: u64 = 1_700_000_000;

fn config() -> Config {
    let json = r#"{"providers": {
            "google": {"type": "gemini", "api_key_env": "GEMINI_API_KEY"},
            "keyless": {"type": "gemini", "path_prefix": "/proxy/v1beta"}},
        "models": {
            "gem": {"provider": "google", "model": "gemini-2.0-flash"},
            "prefixed": {"provider": "google", "model": "models/gemini-2.5-pro"},
            "odd": {"provider": "google", "model": "my model/v1:x"},
            "embed": {"provider": "google", "model": "text-embedding-004"},
            "local": {"provider": "keyless", "model": "gemini-local"}}}"#;
    Config::from_json(json.as_bytes(), &|_| Some("g-key-123".into())).unwrap()
}

fn attempt<'a>(c: &'a Config, model: &'a str, operation: Operation, stream: bool) -> Attempt<'a> {
    let m = &c.models[model];
    Attempt {
        provider: c.provider_of(m).unwrap(),
        operation,
        client_model: model,
        upstream_model: &m.route.targets[0].upstream_model,
        stream,
        client_asked_usage: false,
        embeddings_base64: false,
        now_unix: NOW,
        key_index: 0,
    }
}

fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/gemini/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn testdata_json(name: &str) -> Value {
    serde_json::from_slice(&testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Compares JSON semantically; `arguments` strings (tool-call arguments, JSON in a string)
/// are compared as the JSON they hold.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("arguments", Value::String(s)) => {
                            serde_json::from_str(s).unwrap_or_else(|_| v.clone())
                        }
                        _ => normalize(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn assert_json_eq(got: &Value, want: &Value, what: &str) {
    assert_eq!(
        normalize(got),
        normalize(want),
        "{what}\n got: {}\nwant: {}",
        serde_json::to_string_pretty(got).unwrap(),
        serde_json::to_string_pretty(want).unwrap()
    );
}

fn request(
    model: &str,
    operation: Operation,
    stream: bool,
    body: &[u8],
) -> Result<UpstreamRequest, GatewayError> {
    let c = config();
    Gemini.request(&attempt(&c, model, operation, stream), body)
}

fn chat_body(body: Value) -> Result<Value, GatewayError> {
    let r = request("gem", Operation::Chat, false, body.to_string().as_bytes())?;
    Ok(serde_json::from_slice(&r.body.unwrap()).unwrap())
}

// --- request golden files --------------------------------------------------------------

#[test]
fn request_golden_files() {
    let cases = [
        (
            "request_chat",
            Operation::Chat,
            false,
            "/v1beta/models/gemini-2.0-flash:generateContent",
        ),
        (
            "request_image",
            Operation::Chat,
            false,
            "/v1beta/models/gemini-2.5-pro:generateContent",
        ),
        (
            "request_tools",
            Operation::Chat,
            false,
            "/v1beta/models/gemini-2.0-flash:generateContent",
        ),
        (
            "request_json_schema",
            Operation::Chat,
            true,
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        ),
        (
            "request_embeddings",
            Operation::Embeddings,
            false,
            "/v1beta/models/text-embedding-004:batchEmbedContents",
        ),
    ];
    for (name, operation, stream, path) in cases {
        let input = testdata(&format!("{name}.openai.json"));
        let model = serde_json::from_slice::<Value>(&input).unwrap()["model"]
            .as_str()
            .unwrap()
            .to_string();
        let r =
            request(&model, operation, stream, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.path, path, "{name}");
        assert_eq!(
            r.headers,
            vec![
                ("x-goog-api-key", "g-key-123".to_string()),
                ("content-type", "application/json".to_string())
            ],
            "{name}"
        );
        let got: Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
        assert_json_eq(&got, &testdata_json(&format!("{name}.gemini.json")), name);
    }
}

#[test]
fn path_prefix_key_and_model_segment() {
    let local = request(
        "local",
        Operation::Chat,
        true,
        br#"{"model":"local","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .unwrap();
    assert_eq!(
        local.path,
        "/proxy/v1beta/models/gemini-local:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        local.headers,
        vec![("content-type", "application/json".to_string())],
        "no key configured: no x-goog-api-key"
    );
    let odd = request(
        "odd",
        Operation::Chat,
        false,
        br#"{"model":"odd","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .unwrap();
    assert_eq!(
        odd.path,
        "/v1beta/models/my%20model%2Fv1%3Ax:generateContent"
    );
}

// --- request refusals ------------------------------------------------------------------

fn refused(body: Value) -> (u32, String) {
    let e = chat_body(body.clone()).expect_err(&body.to_string());
    (e.status(), e.param().unwrap_or_default().to_string())
}

#[test]
fn requests_gemini_cannot_honour_are_refused_naming_the_parameter() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let call = |args: &str| {
        json!({"model": "gem", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}]}]})
    };
    let cases = [
        (json!({"model": "gem", "messages": user, "n": 2}), "n"),
        (
            json!({"model": "gem", "messages": user, "logprobs": true}),
            "logprobs",
        ),
        (
            json!({"model": "gem", "messages": user, "logit_bias": {"50256": -100}}),
            "logit_bias",
        ),
        (
            call("{not json"),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            call("[1, 2]"),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"model": "gem", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "42"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"model": "gem", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/pic"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"model": "gem", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"model": "gem", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]}),
            "messages[0].content[0].file",
        ),
        (
            json!({"model": "gem", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, {"role": "user", "content": "hi"}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"model": "gem", "messages": user, "tool_choice": "required"}),
            "tool_choice",
        ),
        (
            json!({"model": "gem", "messages": user, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}),
            "tool_choice",
        ),
        (
            json!({"model": "gem", "messages": user, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}}}}]}),
            "tools[0].function.parameters",
        ),
        (
            json!({"model": "gem", "messages": user, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}}}]}),
            "tools[0].function.parameters",
        ),
        (
            json!({"model": "gem", "messages": user, "tools": [{"type": "custom", "custom": {"name": "f"}}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "gem", "messages": user, "response_format": {"type": "yaml"}}),
            "response_format.type",
        ),
    ];
    for (body, param) in cases {
        assert_eq!(refused(body.clone()), (400, param.to_string()), "{body}");
    }
}

#[test]
fn embeddings_refuse_token_arrays() {
    for input in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
        let body = json!({"model": "embed", "input": input}).to_string();
        let e = request("embed", Operation::Embeddings, false, body.as_bytes()).unwrap_err();
        assert_eq!((e.status(), e.param()), (400, Some("input")));
    }
}

#[test]
fn tool_results_use_the_latest_call_of_that_id_and_legacy_functions_map() {
    let out = chat_body(json!({"model": "gem", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "first", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": [{"type": "text", "text": "true"}]},
        {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "second", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "plain"},
        {"role": "assistant", "content": null, "function_call": {"name": "legacy", "arguments": "{\"a\":1}"}},
        {"role": "function", "name": "legacy", "content": "done"}]}))
    .unwrap();
    let want = json!([
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "first", "args": {}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "first", "response": {"content": true}}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "second", "args": {}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "second", "response": {"content": "plain"}}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "legacy", "args": {"a": 1}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "legacy", "response": {"content": "done"}}}]},
    ]);
    assert_json_eq(&out["contents"], &want, "contents");
}

#[test]
fn tool_choice_modes_and_audio_and_json_mode() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}},
                       {"type": "function", "function": {"name": "g"}}]);
    for (choice, want) in [
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("none"), json!({"mode": "NONE"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "g"}}]}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["g"]}),
        ),
    ] {
        let out = chat_body(json!({"model": "gem", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice})).unwrap();
        assert_eq!(out["toolConfig"]["functionCallingConfig"], want, "{choice}");
    }
    let out = chat_body(json!({"model": "gem", "response_format": {"type": "json_object"}, "max_tokens": 9, "stop": ["a", "b"],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "listen"},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]}))
    .unwrap();
    assert_eq!(
        out["generationConfig"],
        json!({"responseMimeType": "application/json", "maxOutputTokens": 9, "stopSequences": ["a", "b"]})
    );
    assert_eq!(
        out["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}})
    );
    assert!(out.get("toolConfig").is_none() && out.get("tools").is_none());
}

#[test]
fn schema_conversion_inlines_all_of_and_type_unions() {
    let schema = json!({
        "definitions": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
        "allOf": [{"$ref": "#/definitions/Base"}],
        "properties": {"kind": {"const": "cat"}, "size": {"type": ["integer", "string"]},
                       "v": {"oneOf": [{"type": "number", "format": "float"}, {"type": "boolean"}]}},
        "required": ["kind"],
        "additionalProperties": false
    });
    let want = json!({
        "type": "object",
        "properties": {"id": {"type": "integer"}, "kind": {"type": "string", "enum": ["cat"]},
                       "size": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                       "v": {"anyOf": [{"type": "number", "format": "float"}, {"type": "boolean"}]}},
        "required": ["kind", "id"]
    });
    assert_eq!(gemini_schema(&schema).unwrap(), Some(want));
    assert_eq!(gemini_schema(&json!({"type": "object"})).unwrap(), None);
}

#[test]
fn self_referring_and_exploding_schemas_are_refused_quickly() {
    let tree = json!({"$defs": {"Node": {"type": "object", "properties": {
            "left": {"$ref": "#/$defs/Node"}, "right": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node"});
    let e = gemini_schema(&tree).unwrap_err();
    assert!(e.contains("refers to itself"), "{e}");
    // Not recursive, but each level doubles: 2^30 copies if nothing stopped it.
    let mut defs = Map::new();
    for level in 0..30 {
        defs.insert(
            format!("L{level}"),
            json!({"type": "object", "properties": {
            "a": {"$ref": format!("#/$defs/L{}", level + 1)},
            "b": {"$ref": format!("#/$defs/L{}", level + 1)}}}),
        );
    }
    defs.insert("L30".into(), json!({"type": "string"}));
    let started = std::time::Instant::now();
    let e = gemini_schema(&json!({"$defs": defs, "$ref": "#/$defs/L0"})).unwrap_err();
    assert!(e.contains("too large"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

// --- typed request bodies --------------------------------------------------------------

fn body_of(model: &str, operation: Operation, raw: &[u8]) -> Value {
    let r = request(model, operation, false, raw).unwrap();
    serde_json::from_slice(&r.body.unwrap()).unwrap()
}

/// Strings the client escaped (`\"`, `\u00e9`, a surrogate pair) reach Gemini as the same
/// characters wherever the body borrows them, and inside arguments and tool results parsed from
/// JSON strings.
#[test]
fn escaped_strings_arrive_intact() {
    let raw = br#"{"model": "gem",
        "messages": [
            {"role": "system", "content": "say \"hi\" caf\u00e9 \ud83d\ude00"},
            {"role": "user", "content": [{"type": "text", "text": "q\"\u00e9\\n"},
                {"type": "image_url", "image_url": {"url": "https://example.com/caf\u00e9\".png"}}]},
            {"role": "assistant", "content": "a\"\u00e9", "tool_calls": [{"id": "id\"\u00e9", "type": "function",
                "function": {"name": "n\"\u00e9", "arguments": "{\"k\\\"\": \"v\\u00e9\\\"\", \"\u00e9\": 1}"}}]},
            {"role": "tool", "tool_call_id": "id\"\u00e9", "content": "r\"\u00e9"}],
        "tools": [{"type": "function", "function": {"name": "n\"\u00e9", "description": "d\"\u00e9",
            "parameters": {"type": "object", "properties": {"p\"\u00e9": {"type": "string", "description": "\"\u00e9"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "n\"\u00e9"}},
        "stop": "\u00e9\""}"#;
    let out = body_of("gem", Operation::Chat, raw);
    assert_eq!(
        out["systemInstruction"]["parts"][0]["text"],
        "say \"hi\" café 😀"
    );
    let contents = &out["contents"];
    assert_eq!(contents[0]["parts"][0]["text"], "q\"é\\n");
    assert_eq!(
        contents[0]["parts"][1]["fileData"]["fileUri"],
        "https://example.com/café\".png"
    );
    assert_eq!(contents[1]["parts"][0]["text"], "a\"é");
    assert_eq!(
        contents[1]["parts"][1]["functionCall"],
        json!({"name": "n\"é", "args": {"k\"": "vé\"", "é": 1}})
    );
    assert_eq!(
        contents[2]["parts"][0]["functionResponse"],
        json!({"name": "n\"é", "response": {"content": "r\"é"}}),
        "the result found its call through the escaped id"
    );
    let declaration = &out["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "n\"é");
    assert_eq!(declaration["description"], "d\"é");
    assert_eq!(
        declaration["parameters"]["properties"]["p\"é"]["description"],
        "\"é"
    );
    assert_eq!(
        out["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"],
        json!(["n\"é"])
    );
    assert_eq!(out["generationConfig"]["stopSequences"], json!(["é\""]));

    let raw = br#"{"model": "embed", "input": ["\"\u00e9\"", ""], "dimensions": 8}"#;
    let out = body_of("embed", Operation::Embeddings, raw);
    assert_eq!(
        out,
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "\"é\""}]}, "outputDimensionality": 8},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": ""}]}, "outputDimensionality": 8}]})
    );
}

/// A member sent as `null` is treated as absent: no empty or null member goes to Gemini.
#[test]
fn null_members_are_left_out() {
    let out = chat_body(json!({"model": "gem",
        "messages": [
            {"role": "system", "content": null},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": null},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": null,
                "function": {"name": "f", "arguments": null}}], "function_call": null},
            {"role": "tool", "tool_call_id": "c1", "content": null},
            {"role": "assistant", "content": "done", "tool_calls": null}],
        "tools": [{"type": "function", "function": {"name": "f", "description": null, "parameters": null}}],
        "tool_choice": null, "response_format": null, "reasoning_effort": null, "stop": null,
        "n": null, "temperature": null, "top_p": null, "seed": null, "max_tokens": null,
        "max_completion_tokens": null, "presence_penalty": null, "frequency_penalty": null,
        "logprobs": null, "top_logprobs": null, "logit_bias": null, "audio": null,
        "functions": null, "function_call": null}))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": FOREIGN_SIGNATURE}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"content": ""}}}]},
                {"role": "model", "parts": [{"text": "done"}]}],
            "tools": [{"functionDeclarations": [{"name": "f"}]}]})
    );
    let out = chat_body(
        json!({"model": "gem", "messages": [{"role": "user", "content": "x"}],
        "stop": ["", 5, null], "max_completion_tokens": null, "max_tokens": 7}),
    )
    .unwrap();
    assert_eq!(out["generationConfig"], json!({"maxOutputTokens": 7}));
    let body = json!({"model": "embed", "input": "a", "dimensions": null}).to_string();
    let out = body_of("embed", Operation::Embeddings, body.as_bytes());
    assert!(out["requests"][0].get("outputDimensionality").is_none());
}

/// Only the first call of each model turn (consecutive assistant messages merged) is signed.
#[test]
fn the_first_call_of_each_merged_model_turn_is_signed() {
    let call = |id: &str| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}});
    let out = chat_body(json!({"model": "gem", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "first", "tool_calls": [call("a"), call("b")]},
        {"role": "assistant", "tool_calls": [call("c")]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "c", "content": "3"},
        {"role": "assistant", "tool_calls": [call("d")]}]}))
    .unwrap();
    let signed: Vec<Vec<bool>> = out["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|turn| {
            turn["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.get("thoughtSignature").is_some())
                .collect()
        })
        .collect();
    assert_eq!(
        signed,
        [
            vec![false],
            vec![false, true, false, false],
            vec![false, false],
            vec![true]
        ]
    );
}

/// Paths are spelled out only for an error: they must still name the message and part at fault
/// when it is not the first.
#[test]
fn refusals_name_the_part_of_a_later_message() {
    let call = |id: &str, args: &str| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": args}});
    let history = || {
        vec![
            json!({"role": "user", "content": "a"}),
            json!({"role": "assistant", "content": "b", "tool_calls": [call("c0", "{}")]}),
            json!({"role": "tool", "tool_call_id": "c0", "content": "ok"}),
        ]
    };
    let with = |last: Value| {
        let mut messages = history();
        messages.push(last);
        json!({"model": "gem", "messages": messages})
    };
    let cases = [
        (
            with(
                json!({"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}, {"type": "image_url"}]}),
            ),
            "messages[3].content[2].type",
        ),
        (
            with(
                json!({"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "https://e.com/x.gif"}}]}),
            ),
            "messages[3].content[1].image_url.url",
        ),
        (
            with(
                json!({"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {}}]}),
            ),
            "messages[3].content[1].image_url.url",
        ),
        (
            with(
                json!({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "ogg"}}]}),
            ),
            "messages[3].content[0].input_audio.format",
        ),
        (
            with(
                json!({"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "file", "file": {"file_data": "AAAA"}}]}),
            ),
            "messages[3].content[1].file.file_data",
        ),
        (
            with(json!({"role": "assistant", "tool_calls": [call("c1", "{}"), call("c2", "[]")]})),
            "messages[3].tool_calls[1].function.arguments",
        ),
        (
            with(
                json!({"role": "assistant", "tool_calls": [call("c1", "{}"), {"id": "c2", "function": {}}]}),
            ),
            "messages[3].tool_calls[1].function.name",
        ),
        (
            with(json!({"role": "assistant", "function_call": {"arguments": "{}"}})),
            "messages[3].function_call.name",
        ),
        (
            with(
                json!({"role": "system", "content": [{"type": "text", "text": "x"}, {"type": "image_url"}]}),
            ),
            "messages[3].content[1].type",
        ),
        (
            with(
                json!({"role": "tool", "tool_call_id": "c0", "content": [{"type": "text", "text": "x"}, {"type": "image_url"}]}),
            ),
            "messages[3].content[1].type",
        ),
        (
            with(json!({"role": "tool", "tool_call_id": "c9", "content": "x"})),
            "messages[3].tool_call_id",
        ),
        (
            with(json!({"role": "function", "content": "x"})),
            "messages[3].name",
        ),
        (
            with(json!({"role": "user", "content": 5})),
            "messages[3].content",
        ),
        (
            with(json!({"role": "critic", "content": "x"})),
            "messages[3].role",
        ),
        (
            json!({"model": "gem", "messages": history(), "tools": [
                {"type": "function", "function": {"name": "f"}},
                {"type": "function", "function": {"name": "g"}},
                {"type": "function", "function": {"description": "no name"}}]}),
            "tools[2].function.name",
        ),
    ];
    for (body, param) in cases {
        let e = chat_body(body.clone()).expect_err(&body.to_string());
        assert_eq!((e.status(), e.param()), (400, Some(param)), "{body}");
        let message = e.to_string();
        if message.starts_with("Missing required parameter") {
            assert!(message.contains(&format!("'{param}'")), "{message}");
        }
    }
}

// --- response golden files -------------------------------------------------------------

fn translate(
    model: &str,
    operation: Operation,
    stream: bool,
    status: u32,
    content_type: &str,
    pieces: &[&[u8]],
) -> (ResponseShape, Vec<u8>) {
    let c = config();
    let mut t = Gemini
        .response(&attempt(&c, model, operation, stream))
        .unwrap();
    let shape = t.start(status, Some(content_type));
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(t.body(piece, i + 1 == pieces.len()));
    }
    (shape, out)
}

#[test]
fn response_golden_files() {
    for name in [
        "response_text",
        "response_function_call",
        "response_usage",
        "response_blocked",
    ] {
        let body = testdata(&format!("{name}.gemini.json"));
        let (shape, out) = translate(
            "gem",
            Operation::Chat,
            false,
            200,
            "application/json",
            &[&body],
        );
        assert_eq!(shape, ResponseShape::JSON);
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_json_eq(&got, &testdata_json(&format!("{name}.openai.json")), name);
    }
}

#[test]
fn error_golden_file_keeps_the_status() {
    let body = testdata("error_429.gemini.json");
    for stream in [false, true] {
        let (shape, out) = translate(
            "gem",
            Operation::Chat,
            stream,
            429,
            "application/json",
            &[&body],
        );
        assert_eq!(
            shape,
            ResponseShape::JSON,
            "errors are JSON even for streams"
        );
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_json_eq(&got, &testdata_json("error_429.openai.json"), "error_429");
    }
}

#[test]
fn invalid_key_and_unreadable_errors() {
    let key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
    let (_, out) = translate(
        "gem",
        Operation::Chat,
        false,
        400,
        "application/json",
        &[key.to_string().as_bytes()],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'google' refused the gateway's credentials"),
        "{message}"
    );
    let (_, out) = translate(
        "gem",
        Operation::Chat,
        false,
        503,
        "text/html",
        &[b"<h1>upstream ", b"overloaded</h1>"],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["error"]["message"],
        "Gemini answered HTTP 503: <h1>upstream overloaded</h1>"
    );
    assert_eq!(v["error"]["code"], "upstream_unavailable");
    let (_, out) = translate(
        "gem",
        Operation::Chat,
        false,
        200,
        "application/json",
        &[b"{\"candid"],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "upstream_error");
}

#[test]
fn finish_reasons() {
    let cases = [
        (Some("STOP"), false, false, "stop"),
        (Some("STOP"), false, true, "tool_calls"),
        (None, false, true, "tool_calls"),
        (Some("MAX_TOKENS"), false, true, "length"),
        (Some("SAFETY"), false, false, "content_filter"),
        (Some("RECITATION"), false, false, "content_filter"),
        (Some("BLOCKLIST"), false, false, "content_filter"),
        (Some("PROHIBITED_CONTENT"), false, false, "content_filter"),
        (Some("SPII"), false, false, "content_filter"),
        (Some("MALFORMED_FUNCTION_CALL"), false, false, "stop"),
        (None, true, false, "content_filter"),
    ];
    for (raw, blocked, calls, want) in cases {
        assert_eq!(
            finish_reason(raw, blocked, calls),
            want,
            "{raw:?} {blocked} {calls}"
        );
    }
}

#[test]
fn embeddings_answer_in_floats_or_base64_as_asked() {
    let c = config();
    let body = testdata("response_embeddings.gemini.json");
    for (format, expected) in [
        ("float", "response_embeddings.openai.json"),
        ("base64", "response_embeddings_base64.openai.json"),
    ] {
        let mut a = attempt(&c, "embed", Operation::Embeddings, false);
        let req =
            json!({"model": "embed", "input": ["a", "b"], "encoding_format": format}).to_string();
        a.embeddings_base64 = crate::chat::embeddings_base64(req.as_bytes());
        Gemini.request(&a, req.as_bytes()).unwrap();
        let mut t = Gemini.response(&a).unwrap();
        assert_eq!(t.start(200, Some("application/json")), ResponseShape::JSON);
        let got: Value = serde_json::from_slice(&t.body(&body, true)).unwrap();
        assert_json_eq(&got, &testdata_json(expected), expected);
    }
    // No request seen for this attempt: floats.
    let (_, out) = translate(
        "embed",
        Operation::Embeddings,
        false,
        200,
        "application/json",
        &[&body],
    );
    let got: Value = serde_json::from_slice(&out).unwrap();
    assert_json_eq(
        &got,
        &testdata_json("response_embeddings.openai.json"),
        "default",
    );
}

// --- streams ---------------------------------------------------------------------------

/// The translated stream fed whole, and fed in two pieces cut at every byte offset.
fn run_stream_all_splits(stream: &[u8]) -> Vec<u8> {
    let (shape, whole) = translate(
        "gem",
        Operation::Chat,
        true,
        200,
        "text/event-stream",
        &[stream],
    );
    assert_eq!(shape, ResponseShape::SSE);
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        let (_, split) = translate(
            "gem",
            Operation::Chat,
            true,
            200,
            "text/event-stream",
            &[a, b],
        );
        assert_eq!(
            String::from_utf8_lossy(&split),
            String::from_utf8_lossy(&whole),
            "split at {cut}"
        );
    }
    let (_, bytewise) = {
        let pieces: Vec<&[u8]> = stream.chunks(1).chain(std::iter::once(&[][..])).collect();
        translate(
            "gem",
            Operation::Chat,
            true,
            200,
            "text/event-stream",
            &pieces,
        )
    };
    assert_eq!(bytewise, whole, "one byte at a time");
    whole
}

/// An OpenAI SSE stream as its events' JSON (`[DONE]` as a string); every block must be one
/// `data:` line followed by a blank line.
fn sse_events(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.ends_with("\n\n"), "{text:?}");
    text.split_terminator("\n\n")
        .map(|block| {
            let data = block
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("{block:?}"));
            if data == "[DONE]" {
                Value::String(data.into())
            } else {
                serde_json::from_str(data).unwrap_or_else(|e| panic!("{data}: {e}"))
            }
        })
        .collect()
}

#[test]
fn stream_golden_files_whole_and_split_everywhere() {
    for name in ["stream_text_and_call", "stream_error"] {
        let out = run_stream_all_splits(&testdata(&format!("{name}.gemini.sse")));
        let got = Value::Array(sse_events(&out));
        let want = Value::Array(sse_events(&testdata(&format!("{name}.openai.sse"))));
        assert_json_eq(&got, &want, name);
    }
}

#[test]
fn a_stream_without_finish_reason_or_events_still_ends() {
    let cut_short = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}]}}], \"responseId\": \"r\"}\r\n\r\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}]}}]}";
    let events = sse_events(&run_stream_all_splits(cut_short));
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello", "the unterminated last event is delivered");
    let n = events.len();
    assert_eq!(events[n - 3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[n - 2]["choices"], json!([]));
    assert_eq!(events[n - 2]["usage"]["total_tokens"], 0);
    assert_eq!(events[n - 1], "[DONE]");

    let (_, empty) = translate(
        "gem",
        Operation::Chat,
        true,
        200,
        "text/event-stream",
        &[b""],
    );
    let events = sse_events(&empty);
    assert_eq!(events.len(), 4, "role, finish, usage, [DONE]: {events:?}");
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        events[1]["model"], "gemini-2.0-flash",
        "the configured model when Gemini names none"
    );
}

#[test]
fn a_blocked_prompt_in_a_stream_ends_with_content_filter() {
    let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, \"usageMetadata\": {\"promptTokenCount\": 3, \"totalTokenCount\": 3}, \"responseId\": \"b\"}\n\n";
    let events = sse_events(&run_stream_all_splits(blocked));
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[1]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(events[2]["usage"]["prompt_tokens"], 3);
}

/// Gemini can answer a 2xx whose body or stream event is an error, as an object or as a list
/// holding one (https://ai.google.dev/gemini-api/docs/troubleshooting: the `error` object with
/// `code`, `message`, `status`); a 2xx body of neither shape is an upstream error, never an empty
/// answer.
#[test]
fn errors_in_a_success_and_bodies_of_another_shape() {
    let error = json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}});
    for body in [error.clone(), json!([error])] {
        let (_, out) = translate(
            "gem",
            Operation::Chat,
            false,
            200,
            "application/json",
            &[body.to_string().as_bytes()],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "The model is overloaded.", "{body}");
        assert_eq!(v["error"]["code"], "upstream_unavailable", "{body}");
        let event = format!("data: {body}\n\n");
        let (shape, out) = translate(
            "gem",
            Operation::Chat,
            true,
            200,
            "text/event-stream",
            &[event.as_bytes()],
        );
        assert_eq!(shape, ResponseShape::SSE);
        let events = sse_events(&out);
        let failure = events
            .iter()
            .find(|e| e.get("error").is_some())
            .unwrap_or_else(|| panic!("no error event for {body}: {events:?}"));
        assert_eq!(failure["error"]["message"], "The model is overloaded.");
        assert_eq!(events.last(), Some(&json!("[DONE]")));
    }
    for body in [&b"[1, 2]"[..], b"{\"candidates\": \"none\"}"] {
        let (_, out) = translate(
            "gem",
            Operation::Chat,
            false,
            200,
            "application/json",
            &[body],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["error"]["type"],
            "upstream_error",
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(v.get("choices").is_none());
    }
}
