//! The request side (Messages -> chat). Reference payloads: request and answer shapes from Anthropic's Messages API reference
//! (https://docs.anthropic.com/en/api/messages), its streaming guide's event sequences for text
//! and tool use (https://docs.anthropic.com/en/docs/build-with-claude/streaming) and its errors
//! page (https://docs.anthropic.com/en/api/errors); the OpenAI side from the Chat Completions
//! reference (https://platform.openai.com/docs/api-reference/chat/object and
//! .../chat-streaming).

use serde_json::{json, Value};

use super::*;

fn chat_of(body: Value) -> (Value, Context) {
    let (chat, ctx) = to_chat(body.to_string().as_bytes()).unwrap();
    (serde_json::from_slice(&chat).unwrap(), ctx)
}

#[test]
fn plain_request_with_system_blocks() {
    // The reference's basic request, with `system` as text blocks carrying cache_control.
    let (chat, ctx) = chat_of(json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Answer in French."}],
        "messages": [{"role": "user", "content": "Hello, world"}],
        "temperature": 0.5,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"}
    }));
    assert_eq!(
        chat,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [
                {"role": "system", "content": "You are terse.\nAnswer in French."},
                {"role": "user", "content": "Hello, world"}
            ],
            "temperature": 0.5,
            "stop": ["END"],
            "user": "u-1"
        })
    );
    assert_eq!(
        ctx,
        Context {
            model: "claude-sonnet-4-5".into(),
            stream: false,
            untranslatable: None
        }
    );
}

#[test]
fn streamed_request_asks_for_usage() {
    let (chat, ctx) = chat_of(json!({"model": "m", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    assert!(ctx.stream);
}

#[test]
fn tools_and_tool_results_multi_turn() {
    // The tool-use guide's get_weather exchange: a tool_use block in the assistant turn, its
    // tool_result (then text) in the next user turn.
    let (chat, ctx) = chat_of(json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "tools": [{"name": "get_weather", "description": "Get the current weather in a given location",
                   "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "What's the weather like in San Francisco?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
                {"type": "text", "text": "I'll check."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                 "input": {"location": "San Francisco, CA"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                 "content": [{"type": "text", "text": "15 degrees"}]},
                {"type": "text", "text": "Thanks"}]}
        ]
    }));
    assert_eq!(
        chat["tools"],
        json!([{"type": "function", "function": {"name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}])
    );
    assert_eq!(chat["tool_choice"], "required");
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "user", "content": "What's the weather like in San Francisco?"},
            {"role": "assistant", "content": "I'll check.", "tool_calls": [{"id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
            {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}
        ])
    );
    assert_eq!(ctx.untranslatable, None);
}

#[test]
fn images_documents_and_named_tool_choice() {
    let (chat, _) = chat_of(json!({
        "model": "m", "max_tokens": 5,
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "t"},
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "tool_result", "tool_use_id": "x", "content": "oops", "is_error": true}
        ]}]
    }));
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "t"}})
    );
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "tool", "tool_call_id": "x", "content": "Error: oops"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}}
            ]}
        ])
    );
}

#[test]
fn system_turns_among_the_messages_stay_where_they_are() {
    // Claude Code sends them (a system turn between user turns).
    let (chat, _) = chat_of(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "a"},
        {"role": "system", "content": [{"type": "text", "text": "be careful"}]},
        {"role": "user", "content": "b"}]}));
    assert_eq!(
        chat["messages"],
        json!([{"role": "user", "content": "a"}, {"role": "system", "content": "be careful"},
               {"role": "user", "content": "b"}])
    );
}

#[test]
fn server_tools_are_only_for_anthropic() {
    let (chat, ctx) = chat_of(json!({"model": "m", "max_tokens": 5,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "messages": [{"role": "user", "content": "news?"}]}));
    assert!(chat.get("tools").is_none());
    assert!(
        ctx.untranslatable
            .as_deref()
            .unwrap()
            .contains("web_search_20250305"),
        "{:?}",
        ctx.untranslatable
    );
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (json!({"max_tokens": 5, "messages": []}), "model"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 0, "messages": []}),
            "max_tokens",
        ),
        (json!({"model": "m", "max_tokens": 5}), "messages"),
        (
            json!({"model": "m", "max_tokens": 5, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
            "messages[0].content[0].text",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "tool_result"}]}]}),
            "messages[0].content[0].tool_use_id",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]}),
            "temperature",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}),
            "stream",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tools": [{"name": "t"}], "messages": [{"role": "user", "content": "x"}]}),
            "tools[0].input_schema",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tool_choice": {"type": "maybe"}, "messages": [{"role": "user", "content": "x"}]}),
            "tool_choice.type",
        ),
    ];
    for (body, param) in cases {
        let err = to_chat(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.status(), 400, "{body}");
        assert_eq!(err.param(), Some(param), "{body}: {err}");
    }
    assert_eq!(to_chat(b"{oops").unwrap_err().status(), 400);
}
