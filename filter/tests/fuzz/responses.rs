//! The Responses API front end (`inbound::responses`): `to_chat` on random bytes and on
//! generated requests built from the API reference ("Create a model response"), mostly valid
//! with fields swapped for anything; `StreamFromChat` on generated chat chunk streams (text,
//! refusals, tool call pieces, usage, errors, garbage) cut at random offsets; `answer_from_chat`
//! and `error_from_chat` on anything. Checked: no panic; an accepted request is a valid chat
//! request; a refusal is a 400 naming a parameter; a stream is the same whole and cut, is
//! well-formed (`response.created` first, consecutive sequence numbers, exactly one terminal
//! event, last) and bounded by its input.

use ai_gateway::chat::parse_chat_request;
use ai_gateway::inbound::responses::{
    answer_from_chat, error_from_chat, to_chat, Context, StreamFromChat,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::common::{cuts, json, line_end, mostly, number, pieces, runner, sse_event, text};

const KEYS: &[&str] = &[
    "model",
    "input",
    "role",
    "content",
    "type",
    "text",
    "message",
    "input_text",
    "input_image",
    "image_url",
    "function_call",
    "function_call_output",
    "call_id",
    "name",
    "arguments",
    "output",
    "tools",
    "function",
    "tool_choice",
    "instructions",
    "stream",
    "format",
    "choices",
    "delta",
    "tool_calls",
    "index",
    "usage",
    "error",
    "finish_reason",
];

fn role() -> impl Strategy<Value = Value> {
    prop::sample::select(&["user", "assistant", "system", "developer", "tool"][..])
        .prop_map(Value::from)
}

fn part() -> BoxedStrategy<Value> {
    mostly(
        prop_oneof![
            3 => text().prop_map(|t| json!({"type": "input_text", "text": t})),
            1 => text().prop_map(|t| json!({"type": "output_text", "text": t, "annotations": []})),
            1 => Just(json!({"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"})),
            1 => text().prop_map(|url| json!({"type": "input_image", "image_url": url})),
            1 => Just(json!({"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"})),
        ],
        KEYS,
    )
}

/// One `input` item (SDK `response_input_param.py`).
fn item() -> BoxedStrategy<Value> {
    let content = prop_oneof![
        text().prop_map(Value::from),
        prop::collection::vec(part(), 0..3).prop_map(Value::Array),
    ];
    let name = prop::sample::select(&["lookup", "get_weather", "f-1"][..]);
    mostly(
        prop_oneof![
            4 => (role(), content).prop_map(|(role, content)| json!({"role": role, "content": content})),
            2 => (text(), name).prop_map(|(args, name)| json!({"type": "function_call", "call_id": "c1", "name": name, "arguments": args})),
            2 => text().prop_map(|out| json!({"type": "function_call_output", "call_id": "c1", "output": out})),
            1 => Just(json!({"type": "reasoning", "id": "rs_1", "summary": []})),
        ],
        KEYS,
    )
}

/// A request body, each optional field present or not, any of them sometimes of a wrong kind.
fn request() -> impl Strategy<Value = Value> {
    let input = mostly(
        prop_oneof![
            1 => text().prop_map(Value::from),
            3 => prop::collection::vec(item(), 0..5).prop_map(Value::Array),
        ],
        KEYS,
    );
    let name = prop_oneof![
        3 => Just("lookup".to_string()),
        1 => text(),
        1 => Just("n".repeat(65)),
    ];
    let tool = mostly(
        name.prop_map(
            |name| json!({"type": "function", "name": name, "parameters": {"type": "object"}}),
        ),
        KEYS,
    );
    let choice = mostly(
        prop_oneof![
            Just(json!("auto")),
            Just(json!("required")),
            Just(json!({"type": "function", "name": "lookup"})),
        ],
        KEYS,
    );
    let format = mostly(
        prop_oneof![
            Just(json!({"format": {"type": "text"}})),
            Just(
                json!({"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}})
            ),
            Just(
                json!({"format": {"type": "json_schema", "name": "a", "schema": {}, "strict": true, "description": "d"}, "verbosity": "low"})
            ),
        ],
        KEYS,
    );
    (
        input,
        prop::option::of(mostly(text().prop_map(Value::from), KEYS)),
        prop::option::of(prop::collection::vec(tool, 0..3)),
        prop::option::of(choice),
        prop::option::of(format),
        prop::option::of(number()),
        prop::option::of(any::<bool>()),
        prop::option::of(mostly(
            prop::sample::select(&["low", "high", "extreme"][..])
                .prop_map(|e| json!({"effort": e, "summary": "auto"})),
            KEYS,
        )),
    )
        .prop_map(
            |(input, instructions, tools, choice, text, max, stream, reasoning)| {
                let mut body = json!({"model": "gpt-4.1", "input": input});
                let fields = [
                    ("instructions", instructions),
                    ("tools", tools.map(Value::Array)),
                    ("tool_choice", choice),
                    ("text", text),
                    ("max_output_tokens", max),
                    ("stream", stream.map(Value::Bool)),
                    ("reasoning", reasoning),
                ];
                for (key, value) in fields {
                    if let Some(value) = value {
                        body[key] = value;
                    }
                }
                body
            },
        )
}

fn check_request(body: &[u8]) -> Result<(), TestCaseError> {
    match to_chat(body) {
        Ok((chat, ctx)) => {
            // What the pipeline forwards is a chat request the gateway's own checks accept,
            // else the client would be told about parameters it never sent.
            let checked = parse_chat_request(&chat);
            prop_assert!(
                checked.is_ok(),
                "{:?}\n{}",
                checked,
                String::from_utf8_lossy(&chat)
            );
            let checked = checked.unwrap();
            prop_assert_eq!(&checked.model, &ctx.model);
            prop_assert_eq!(checked.stream, ctx.stream);
        }
        Err(e) => {
            prop_assert_eq!(e.status(), 400);
            prop_assert!(e.code() == "invalid_json" || e.param().is_some(), "{:?}", e);
        }
    }
    Ok(())
}

/// One chat chunk event's data (OpenAI "The chat completion chunk object"), tool calls by
/// `index` with their id, name and arguments in pieces.
fn chunk() -> BoxedStrategy<String> {
    let tool_call = (0u64..3, prop::option::of(text()), prop::option::of(text()), text())
        .prop_map(|(index, id, name, args)| {
            json!({"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": args}})
        });
    let delta = prop_oneof![
        3 => text().prop_map(|t| json!({"content": t})),
        1 => text().prop_map(|t| json!({"refusal": t})),
        2 => prop::collection::vec(tool_call, 1..3).prop_map(|calls| json!({"tool_calls": calls})),
    ];
    let finish = prop::option::of(prop::sample::select(
        &["stop", "length", "tool_calls", "content_filter"][..],
    ));
    let choice = (delta, finish)
        .prop_map(|(delta, finish)| json!({"id": "chatcmpl-f", "created": 1, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}));
    let usage = (number(), number()).prop_map(|(p, c)| {
        json!({"id": "chatcmpl-f", "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c}})
    });
    let data = mostly(
        prop_oneof![
            8 => choice,
            1 => usage,
            1 => text().prop_map(|m| json!({"error": {"message": m, "type": "server_error"}})),
        ],
        KEYS,
    );
    prop_oneof![
        10 => data.prop_map(|v| v.to_string()),
        1 => Just("[DONE]".to_string()),
        1 => text(),
    ]
    .boxed()
}

fn chat_stream() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(chunk(), 0..10), line_end()).prop_map(|(events, end)| {
        events
            .iter()
            .flat_map(|data| sse_event(None, data, end))
            .collect()
    })
}

fn ctx() -> Context {
    match to_chat(br#"{"model": "gpt-4.1", "input": "Hi", "stream": true}"#) {
        Ok((_, ctx)) => ctx,
        Err(e) => panic!("{e}"),
    }
}

fn translate(input: &[u8], cuts: &[Index]) -> Vec<u8> {
    let mut stream = StreamFromChat::new(&ctx());
    let mut out = Vec::new();
    for piece in pieces(input, cuts) {
        out.extend(stream.push(piece, false));
    }
    out.extend(stream.push(b"", true));
    out
}

fn check_stream(input: &[u8], cuts: &[Index]) -> Result<(), TestCaseError> {
    let whole = translate(input, &[]);
    prop_assert_eq!(&translate(input, cuts), &whole);
    prop_assert!(
        whole.len() <= input.len().saturating_mul(50) + 20_000,
        "{} from {}",
        whole.len(),
        input.len()
    );
    let text = std::str::from_utf8(&whole);
    prop_assert!(text.is_ok());
    let events: Vec<Value> = text
        .unwrap_or_default()
        .split_terminator("\n\n")
        .map(|block| {
            let data = block
                .split_once("\ndata: ")
                .map(|(_, d)| d)
                .unwrap_or_default();
            serde_json::from_str(data).unwrap_or(Value::Null)
        })
        .collect();
    prop_assert!(events.len() >= 3, "created, in_progress and an end");
    prop_assert_eq!(&events[0]["type"], "response.created");
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ];
    for (i, event) in events.iter().enumerate() {
        prop_assert_eq!(&event["sequence_number"], &json!(i), "{}", event);
        let is_terminal = terminal.iter().any(|t| event["type"] == *t);
        prop_assert_eq!(is_terminal, i == events.len() - 1, "{}", event);
    }
    Ok(())
}

fn check_answer(chat: &[u8]) -> Result<(), TestCaseError> {
    let answer: Value =
        serde_json::from_slice(&answer_from_chat(chat, &ctx())).unwrap_or(Value::Null);
    prop_assert_eq!(&answer["object"], "response");
    let status = answer["status"].as_str().unwrap_or_default();
    prop_assert!(
        ["completed", "incomplete", "failed"].contains(&status),
        "{}",
        answer
    );
    for item in answer["output"].as_array().into_iter().flatten() {
        prop_assert!(
            item["type"] == "message" || item["type"] == "function_call",
            "{}",
            item
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(runner(256))]

    #[test]
    fn to_chat_on_random_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        check_request(&body)?;
    }

    #[test]
    fn to_chat_on_generated_requests(body in request()) {
        check_request(body.to_string().as_bytes())?;
    }

    #[test]
    fn streams_on_random_bytes(input in prop::collection::vec(any::<u8>(), 0..200), cuts in cuts()) {
        check_stream(&input, &cuts)?;
    }

    #[test]
    fn streams_on_generated_chunks(input in chat_stream(), cuts in cuts()) {
        check_stream(&input, &cuts)?;
    }

    #[test]
    fn answers_on_anything(chat in json(KEYS), choice in chunk()) {
        check_answer(chat.to_string().as_bytes())?;
        let completion = json!({"id": "chatcmpl-a", "choices": [{"index": 0, "message": serde_json::from_str::<Value>(&choice).unwrap_or(Value::Null)}]});
        check_answer(completion.to_string().as_bytes())?;
    }

    #[test]
    fn error_bodies_on_anything(status in 100u32..600, body in prop::collection::vec(any::<u8>(), 0..200), v in json(KEYS)) {
        for body in [body, json!({"error": v}).to_string().into_bytes()] {
            let out: Value = serde_json::from_slice(&error_from_chat(status, &body)).unwrap_or(Value::Null);
            prop_assert!(out["error"]["message"].is_string(), "{}", out);
            for key in ["type", "param", "code"] {
                prop_assert!(out["error"].get(key).is_some(), "{}", out);
            }
        }
    }
}
