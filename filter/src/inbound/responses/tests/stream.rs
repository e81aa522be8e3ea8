//! Streams beyond the golden files: incomplete answers, refusals, failures before the first
//! chunk, caps, late or interleaved tool call pieces; answers and errors that are not what they
//! should be.

use serde_json::{json, Value};

use super::*;

fn ctx() -> Context {
    context_of("request_minimal.responses.json")
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "chatcmpl-t1", "object": "chat.completion.chunk", "created": 1700000300,
        "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn events(ctx: &Context, stream: &str) -> Vec<Value> {
    let events = events_of(&run_stream(ctx, &[stream.as_bytes()]));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i, "{e}");
    }
    events
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn a_length_finish_ends_with_response_incomplete() {
    let s = chunk(json!({"content": "Once upon"}), None)
        + &chunk(json!({}), Some("length"))
        + "data: [DONE]\n\n";
    let ev = events(&ctx(), &s);
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    assert_eq!(
        last["response"]["usage"],
        Value::Null,
        "no usage chunk came"
    );
    let item_done = ev
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert_eq!(item_done["item"]["status"], "incomplete");
}

#[test]
fn text_then_a_refusal_are_two_content_parts() {
    let s = chunk(json!({"content": "Well"}), None)
        + &chunk(json!({"refusal": "I can't"}), None)
        + &chunk(json!({"refusal": " help."}), Some("stop"))
        + "data: [DONE]\n\n";
    let ev = events(&ctx(), &s);
    assert_eq!(
        kinds(&ev),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.content_part.added",
            "response.refusal.delta",
            "response.refusal.delta",
            "response.refusal.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(ev[7]["content_index"], 1);
    assert_eq!(ev[7]["part"], json!({"type": "refusal", "refusal": ""}));
    assert_eq!(ev[10]["refusal"], "I can't help.");
    assert_eq!(
        ev[13]["response"]["output"][0]["content"],
        json!([
            {"type": "output_text", "text": "Well", "annotations": [], "logprobs": []},
            {"type": "refusal", "refusal": "I can't help."},
        ])
    );
}

#[test]
fn a_failure_before_the_first_chunk_still_starts_the_response() {
    let mut ctx = ctx();
    ctx.set_identity(1_800_000_000, "req-9f/2");
    let ev = events(&ctx, "data: {\"error\":{\"message\":\"Rate limited\",\"type\":\"rate_limit_error\",\"code\":\"rate_limit_exceeded\"}}\n\ndata: [DONE]\n\n");
    assert_eq!(
        kinds(&ev),
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    assert_eq!(ev[0]["response"]["id"], "resp_req-9f2");
    assert_eq!(ev[0]["response"]["created_at"], 1_800_000_000u64);
    assert_eq!(ev[2]["code"], "rate_limit_exceeded");
    assert_eq!(
        ev[3]["response"]["error"],
        json!({"code": "rate_limit_exceeded", "message": "Rate limited"})
    );
    assert_eq!(ev[3]["response"]["output"], json!([]));
}

#[test]
fn an_empty_stream_fails_and_a_done_alone_completes_empty() {
    let ev = events(&ctx(), "");
    assert_eq!(
        kinds(&ev),
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    assert_eq!(
        ev[0]["response"]["id"], "resp_gateway",
        "no id from anywhere"
    );
    let ev = events(&ctx(), ": keep-alive\n\ndata: [DONE]\n\n");
    assert_eq!(
        kinds(&ev),
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
    assert_eq!(ev[2]["response"]["output"], json!([]));
}

#[test]
fn a_chunk_that_is_not_json_fails_the_stream_and_nothing_follows() {
    let mut s = StreamFromChat::new(&ctx());
    let mut out = s.push(chunk(json!({"content": "a"}), None).as_bytes(), false);
    out.extend(s.push(b"data: {oops\n\n", false));
    let ev = events_of(&out);
    assert_eq!(ev[ev.len() - 2]["code"], "upstream_error");
    assert_eq!(ev.last().unwrap()["type"], "response.failed");
    assert!(s
        .push(chunk(json!({"content": "b"}), None).as_bytes(), false)
        .is_empty());
    assert!(s.push(b"data: [DONE]\n\n", true).is_empty());
}

#[test]
fn an_answer_over_the_cap_fails_the_stream() {
    let mut s = StreamFromChat::with_output_limit(&ctx(), 10);
    let out = s.push(
        chunk(json!({"content": "0123456789"}), None).as_bytes(),
        false,
    );
    assert_eq!(
        events_of(&out).last().unwrap()["type"],
        "response.output_text.delta",
        "10 bytes fit"
    );
    let out = s.push(
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}),
            None,
        )
        .as_bytes(),
        false,
    );
    let ev = events_of(&out);
    assert_eq!(kinds(&ev), ["error", "response.failed"]);
    assert_eq!(ev[0]["code"], "response_too_large");
    assert_eq!(ev[1]["response"]["error"]["code"], "server_error");
}

#[test]
fn an_event_over_the_sse_cap_fails_the_stream() {
    let huge = "x".repeat(crate::sse::MAX_EVENT_BYTES + 1);
    let ev = events(
        &ctx(),
        &(chunk(json!({"content": "a"}), None) + "data: " + &huge + "\n\n"),
    );
    assert_eq!(ev[ev.len() - 2]["code"], "stream_event_too_large");
    assert_eq!(ev.last().unwrap()["type"], "response.failed");
}

#[test]
fn tool_call_pieces_that_come_late_or_interleaved_land_on_their_item() {
    let s = chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_x", "function": {"name": "lo"}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls": [{"index": 1, "id": "call_y", "function": {"name": "other", "arguments": "{}"}}]}),
        None,
    ) + &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"name": "ok", "arguments": ":1}"}}]}),
        None,
    ) + &chunk(json!({}), Some("tool_calls"))
        + "data: [DONE]\n\n";
    let ev = events(&ctx(), &s);
    let done = ev.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        done["response"]["output"],
        json!([
            {"id": "fc_t1_0", "type": "function_call", "status": "completed", "call_id": "call_x", "name": "look", "arguments": "{\"a\":1}"},
            {"id": "fc_t1_1", "type": "function_call", "status": "completed", "call_id": "call_y", "name": "other", "arguments": "{}"},
        ])
    );
    let deltas: Vec<(&Value, &Value)> = ev
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| (&e["output_index"], &e["delta"]))
        .collect();
    assert_eq!(
        deltas,
        [
            (&json!(0), &json!("{\"a\"")),
            (&json!(1), &json!("{}")),
            (&json!(0), &json!(":1}"))
        ]
    );
}

#[test]
fn answers_that_are_not_chat_completions() {
    let ctx = ctx();
    let failed: Value = serde_json::from_slice(&answer_from_chat(b"<html>", &ctx)).unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["object"], "response");
    let empty: Value = serde_json::from_slice(&answer_from_chat(
        b"{\"id\":\"chatcmpl-e\",\"choices\":[]}",
        &ctx,
    ))
    .unwrap();
    assert_eq!(
        (empty["status"].as_str(), &empty["output"]),
        (Some("completed"), &json!([]))
    );
    let refused = json!({"id": "chatcmpl-r", "created": 1, "choices": [{"index": 0, "finish_reason": "content_filter",
        "message": {"role": "assistant", "content": null, "refusal": "No."}}]});
    let refused: Value =
        serde_json::from_slice(&answer_from_chat(refused.to_string().as_bytes(), &ctx)).unwrap();
    assert_eq!(refused["status"], "incomplete");
    assert_eq!(
        refused["incomplete_details"],
        json!({"reason": "content_filter"})
    );
    assert_eq!(
        refused["output"][0]["content"],
        json!([{"type": "refusal", "refusal": "No."}])
    );
}

#[test]
fn error_bodies_keep_the_shape_whatever_came() {
    let body: Value = serde_json::from_slice(&error_from_chat(
        503,
        b"<html>upstream connect error</html>",
    ))
    .unwrap();
    assert_eq!(
        body["error"]["message"],
        "The provider answered HTTP 503: <html>upstream connect error</html>"
    );
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert!(body["error"].get("param").is_some());
    let body: Value =
        serde_json::from_slice(&error_from_chat(400, b"{\"error\":{\"message\":\"bad\"}}"))
            .unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": "upstream_rejected"}})
    );
    let long = "y".repeat(5000);
    let body: Value = serde_json::from_slice(&error_from_chat(500, long.as_bytes())).unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().len() < 600,
        "quoted text is capped"
    );
}
