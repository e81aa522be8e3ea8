//! What the benchmark sends and what its fake upstream answers: a realistic chat request of about
//! 1.5 KB, and canned provider answers in the OpenAI and Anthropic wire formats, JSON and SSE.
//! The answers are built once; serving them costs the upstream no JSON work at all.

use serde_json::{json, Value};

/// Events in every streamed answer, whatever the wire format.
pub const STREAM_EVENTS: usize = 50;
const CREATED: u64 = 1_700_000_000;

/// A support conversation: system prompt, two earlier turns and the new question.
pub fn chat_request(model: &str, stream: bool) -> Vec<u8> {
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are the support assistant of Northwind Books, an online bookshop. Answer in a friendly, concise tone, in at most three short paragraphs. Only use facts from the conversation and the order data you are given; when you are not sure, say so and offer to hand the case over to a person. Never invent order numbers, prices, tracking links or delivery dates. Refunds are possible within 30 days of delivery for books in their original condition."},
            {"role": "user", "content": "Hi! I ordered three books last Tuesday (order NW-48213): a cookbook, a travel guide to Portugal and a hardback novel. The tracking page still says 'label created' and nothing has moved for four days. Is my parcel lost?"},
            {"role": "assistant", "content": "Thanks for the order number. Order NW-48213 was packed on Wednesday; 'label created' means the carrier has not scanned it yet, which sometimes happens when parcels are collected late in the week. It is not considered lost until ten working days have passed, but I can ask the warehouse to check with the carrier if you like."},
            {"role": "user", "content": "Yes please, ask them. Also, the travel guide was meant as a gift for a trip on the 14th. If it does not arrive by then, can I cancel just that book and get a refund, or would I have to send the whole parcel back? And is there a faster shipping option for a replacement?"}
        ],
        "temperature": 0.7,
        "max_tokens": 400,
        "user": "customer-4821"
    });
    if stream {
        body["stream"] = Value::Bool(true);
    }
    body.to_string().into_bytes()
}

/// The answer text, split into the given number of words (repeating a stock sentence).
fn answer_words(count: usize) -> Vec<String> {
    const TEXT: &str = "I have asked the warehouse to contact the carrier about order NW-48213 and you will hear from us within one working day. If the travel guide has not arrived by the 12th you can cancel that book alone and we refund it in full, without returning the rest of the parcel; a replacement can go by express delivery.";
    TEXT.split(' ')
        .cycle()
        .take(count)
        .enumerate()
        .map(|(i, w)| {
            if i + 1 < count {
                format!("{w} ")
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// A complete HTTP/1.1 response with a fixed body.
fn full_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A chunked SSE response: the head, then one HTTP chunk per event (the last one carrying the
/// terminating chunk), each written on its own.
fn sse_response(events: &[String]) -> Vec<Vec<u8>> {
    let mut writes =
        vec![b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n".to_vec()];
    for (i, e) in events.iter().enumerate() {
        let mut w = format!("{:x}\r\n{e}\r\n", e.len()).into_bytes();
        if i + 1 == events.len() {
            w.extend_from_slice(b"0\r\n\r\n");
        }
        writes.push(w);
    }
    writes
}

/// The canned answers, as bytes ready to write.
pub struct Canned {
    pub openai_json: Vec<u8>,
    pub openai_sse: Vec<Vec<u8>>,
    pub anthropic_json: Vec<u8>,
    pub anthropic_sse: Vec<Vec<u8>>,
    pub not_found: Vec<u8>,
    /// Body sizes of the JSON answers, for the report.
    pub openai_json_body: usize,
    pub anthropic_json_body: usize,
}

const PROMPT_TOKENS: u64 = 312;

impl Canned {
    pub fn new() -> Self {
        let (openai, anthropic) = (openai_json(), anthropic_json());
        Self {
            openai_json: full_response("200 OK", "application/json", openai.as_bytes()),
            openai_sse: sse_response(&openai_events()),
            anthropic_json: full_response("200 OK", "application/json", anthropic.as_bytes()),
            anthropic_sse: sse_response(&anthropic_events()),
            not_found: full_response(
                "404 Not Found",
                "application/json",
                br#"{"error":{"message":"bench upstream: no such path","type":"invalid_request_error","param":null,"code":null}}"#,
            ),
            openai_json_body: openai.len(),
            anthropic_json_body: anthropic.len(),
        }
    }
}

impl Default for Canned {
    fn default() -> Self {
        Self::new()
    }
}

fn openai_json() -> String {
    let text: String = answer_words(60).concat();
    json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 60, "total_tokens": PROMPT_TOKENS + 60,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    })
    .to_string()
}

/// Role chunk, 46 words, finish chunk, usage chunk, `[DONE]`: 50 events.
fn openai_events() -> Vec<String> {
    let words = answer_words(STREAM_EVENTS - 4);
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
                "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                "usage": null})
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    let n = words.len() as u64;
    events.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench", "choices": [],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}})
    ));
    events.push("data: [DONE]\n\n".into());
    assert_eq!(events.len(), STREAM_EVENTS);
    events
}

fn anthropic_usage(output: u64) -> Value {
    json!({"input_tokens": PROMPT_TOKENS, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
        "output_tokens": output})
}

fn anthropic_json() -> String {
    let text: String = answer_words(60).concat();
    json!({
        "id": "msg_bench_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": anthropic_usage(60)
    })
    .to_string()
}

/// message_start, content_block_start, ping, 44 text deltas, content_block_stop, message_delta,
/// message_stop: 50 events.
fn anthropic_events() -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let words = answer_words(STREAM_EVENTS - 6);
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_bench_01", "type": "message",
                "role": "assistant", "model": "claude-haiku-4-5-20251001", "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": anthropic_usage(1)}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    events.extend(words.iter().map(|w| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
        )
    }));
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": words.len()}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    assert_eq!(events.len(), STREAM_EVENTS);
    events
}
