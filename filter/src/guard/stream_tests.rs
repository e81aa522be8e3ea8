//! Streams of OpenAI chat-completion chunks (the shape of the chat streaming reference: `data:`
//! events with `choices[].delta.content` / `delta.tool_calls[].function.arguments`, a
//! `finish_reason` chunk, then `data: [DONE]`), guarded whole and split at every byte offset.

use serde_json::{json, Value};

use super::*;
use crate::guard::config::tests::rails;

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let v = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

fn stream_of(pieces: &[&str]) -> Vec<u8> {
    let mut s = chunk(json!({"role": "assistant", "content": ""}), None);
    for p in pieces {
        s.push_str(&chunk(json!({"content": p}), None));
    }
    s.push_str(&chunk(json!({}), Some("stop")));
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// The text the client reads (every delta's content, in order), whether the stream ended with
/// `[DONE]`, and the error code of an error event.
fn read(bytes: &[u8]) -> (String, bool, Option<String>) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    parser.feed(bytes, &mut events);
    parser.finish(&mut events);
    let (mut text, mut done, mut error) = (String::new(), false, None);
    for e in events {
        let Some(d) = e.data else { continue };
        if d == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(&d).unwrap();
        if let Some(code) = v.pointer("/error/code").and_then(Value::as_str) {
            error = Some(code.to_string());
        }
        for c in v["choices"].as_array().into_iter().flatten() {
            text.push_str(c["delta"]["content"].as_str().unwrap_or_default());
            if let Some(calls) = c["delta"]["tool_calls"].as_array() {
                for call in calls {
                    text.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
                }
            }
        }
    }
    (text, done, error)
}

/// Runs `bytes` through a guard stream cut at `cuts`.
fn run(r: &Guardrails, session: &mut Session, bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
    let scrubber = Scrubber::default();
    let mut g = Guarding {
        rails: r,
        scrubber: &scrubber,
        session,
    };
    let mut s = GuardStream::new(r.window_for(&g.session.guards.clone()));
    let mut out = Vec::new();
    let mut start = 0;
    let bounds: Vec<usize> = cuts.iter().copied().chain([bytes.len()]).collect();
    for (i, &end) in bounds.iter().enumerate() {
        out.extend(s.feed(&mut g, &bytes[start..end], i == bounds.len() - 1));
        start = end;
    }
    out
}

fn masking_rails() -> Guardrails {
    rails(json!({"policies": {"p": {"all": true, "guards": [
        {"name": "mail", "kind": "email", "action": "mask", "restore": true},
        {"name": "card", "kind": "payment_card", "action": "mask", "phase": "response"}
    ]}}}))
}

/// A session that masked jane@example.com as [EMAIL_1] on the way in.
fn session(r: &Guardrails) -> Session {
    let mut s = Session::new(r.select("m", None));
    let v = s.check(
        r,
        &Scrubber::default(),
        Phase::Request,
        "mail jane@example.com",
    );
    assert_eq!(v, Verdict::Rewritten("mail [EMAIL_1]".into()));
    s
}

#[test]
fn placeholders_split_across_events_are_restored_and_new_data_masked_at_every_cut() {
    let r = masking_rails();
    // The provider answers with the placeholder split over three events and a card number
    // over two.
    let bytes = stream_of(&[
        "Sure, I wrote to [EMA",
        "IL_",
        "1] and paid with 4242 4242 ",
        "4242 4242. Done.",
    ]);
    let want = "Sure, I wrote to jane@example.com and paid with [CARD_1]. Done.";
    for cut in 0..=bytes.len() {
        let mut s = session(&r);
        let out = run(&r, &mut s, &bytes, &[cut]);
        let (text, done, error) = read(&out);
        assert_eq!(text, want, "cut at {cut}");
        assert!(done && error.is_none(), "cut at {cut}");
        assert!(
            !String::from_utf8_lossy(&out).contains("4242 4242"),
            "cut at {cut}"
        );
    }
    // Split into every piece of a few bytes.
    let cuts: Vec<usize> = (1..bytes.len()).step_by(7).collect();
    let mut s = session(&r);
    assert_eq!(read(&run(&r, &mut s, &bytes, &cuts)).0, want);
}

#[test]
fn text_goes_on_at_once_beyond_the_window() {
    let r = masking_rails();
    let mut s = session(&r);
    let scrubber = Scrubber::default();
    let mut g = Guarding {
        rails: &r,
        scrubber: &scrubber,
        session: &mut s,
    };
    let mut stream = GuardStream::new(64);
    let long = "word ".repeat(40); // 200 bytes
    let out = stream.feed(
        &mut g,
        chunk(json!({"content": long}), None).as_bytes(),
        false,
    );
    let (text, _, _) = read(&out);
    // All but the held window goes out with the event that brought it.
    assert_eq!(text.len(), 200 - 64);
    assert!(long.starts_with(&text));
}

#[test]
fn a_block_ends_the_stream_with_an_error_event_and_done() {
    let r = rails(json!({"policies": {"p": {"all": true, "guards": [
        {"name": "no-secrets", "kind": "secrets", "action": "block", "phase": "response"}
    ]}}}));
    let bytes = stream_of(&[
        "here is the key: AKIA",
        "IOSFODNN7EXAMPLE and more",
        " text",
    ]);
    for cut in (0..=bytes.len()).step_by(3) {
        let mut s = Session::new(r.select("m", None));
        let out = run(&r, &mut s, &bytes, &[cut]);
        let (text, done, error) = read(&out);
        assert_eq!(error.as_deref(), Some("guardrail_blocked"), "cut at {cut}");
        assert!(done, "cut at {cut}");
        assert!(!text.contains("AKIA"), "cut at {cut}: {text}");
        assert_eq!(s.fired(), &[(0, Phase::Response)]);
    }
}

#[test]
fn tool_call_arguments_are_guarded_too() {
    let r = masking_rails();
    let mut bytes = chunk(
        json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "t", "type": "function", "function": {"name": "pay", "arguments": ""}}]}),
        None,
    );
    for part in [
        "{\"card\":\"4242",
        "424242424242\",\"to\":\"[EMAIL",
        "_1]\"}",
    ] {
        bytes.push_str(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
            None,
        ));
    }
    bytes.push_str(&chunk(json!({}), Some("tool_calls")));
    bytes.push_str("data: [DONE]\n\n");
    let mut s = session(&r);
    let (text, done, _) = read(&run(&r, &mut s, bytes.as_bytes(), &[]));
    assert_eq!(text, "{\"card\":\"[CARD_1]\",\"to\":\"jane@example.com\"}");
    assert!(done);
}

#[test]
fn a_provider_cannot_open_windows_without_end() {
    let r = masking_rails();
    let mut s = session(&r);
    let mut bytes = String::new();
    for i in 0..300 {
        let v = json!({"id": "c", "choices": [{"index": i, "delta": {"content": "x"}, "finish_reason": null}]});
        bytes.push_str(&format!("data: {v}\n\n"));
    }
    let (_, done, error) = read(&run(&r, &mut s, bytes.as_bytes(), &[]));
    assert_eq!(error.as_deref(), Some("stream_too_many_choices"));
    assert!(done);
}
