//! Invalid requests, one table per area: each names the parameter OpenAI would name.

use super::{assert_refused, messages, with};

/// Top-level fields: each wrong type or value names the field.
#[test]
fn bad_fields_name_the_parameter() {
    let cases: &[(&str, &str, &str)] = &[
        // (field, bad value, param)
        ("stream", r#""yes""#, "stream"),
        ("stream", "1", "stream"),
        ("logprobs", r#""s""#, "logprobs"),
        ("store", "0", "store"),
        ("parallel_tool_calls", r#""false""#, "parallel_tool_calls"),
        ("user", "5", "user"),
        ("prompt_cache_key", "[]", "prompt_cache_key"),
        ("n", "0", "n"),
        ("n", "129", "n"),
        ("n", "-1", "n"),
        ("n", "1.5", "n"),
        ("n", r#""2""#, "n"),
        ("seed", "1.5", "seed"),
        ("seed", "9223372036854775808", "seed"),
        ("seed", r#""7""#, "seed"),
        ("top_logprobs", "21", "top_logprobs"),
        ("top_logprobs", "-1", "top_logprobs"),
        ("temperature", "3", "temperature"),
        ("temperature", "-0.1", "temperature"),
        ("temperature", r#""hot""#, "temperature"),
        ("top_p", "-0.1", "top_p"),
        ("top_p", "1.01", "top_p"),
        ("presence_penalty", "2.5", "presence_penalty"),
        ("frequency_penalty", "-3", "frequency_penalty"),
        ("frequency_penalty", "true", "frequency_penalty"),
        ("reasoning_effort", r#""extreme""#, "reasoning_effort"),
        ("reasoning_effort", "1", "reasoning_effort"),
        ("service_tier", r#""gold""#, "service_tier"),
        ("verbosity", r#""loud""#, "verbosity"),
        (
            "prompt_cache_retention",
            r#""1h""#,
            "prompt_cache_retention",
        ),
        ("stop", "[1]", "stop[0]"),
        ("stop", r#"["a","b","c","d","e"]"#, "stop"),
        ("stop", "5", "stop"),
        (
            "stream_options",
            r#"{"include_usage":true}"#,
            "stream_options",
        ),
        ("stream_options", r#""yes""#, "stream_options"),
        ("logit_bias", "[1]", "logit_bias"),
        ("logit_bias", r#"{"abc":1}"#, "logit_bias"),
        ("logit_bias", r#"{"50256":101}"#, "logit_bias"),
        ("logit_bias", r#"{"50256":-100.5}"#, "logit_bias"),
        ("logit_bias", r#"{"50256":"1"}"#, "logit_bias.50256"),
        ("metadata", r#""m""#, "metadata"),
        ("metadata", r#"{"k":1}"#, "metadata.k"),
        ("modalities", r#""text""#, "modalities"),
        ("modalities", r#"["video"]"#, "modalities[0]"),
        ("modalities", r#"["text","audio"]"#, "audio"),
        ("audio", r#""alloy""#, "audio"),
        ("audio", r#"{"voice":"alloy"}"#, "audio.format"),
        (
            "audio",
            r#"{"voice":"alloy","format":"ogg"}"#,
            "audio.format",
        ),
        ("audio", r#"{"format":"wav"}"#, "audio.voice"),
        ("audio", r#"{"format":"wav","voice":7}"#, "audio.voice"),
        ("audio", r#"{"format":"wav","voice":{}}"#, "audio.voice.id"),
        ("prediction", r#""code""#, "prediction"),
        (
            "prediction",
            r#"{"type":"text","content":"x"}"#,
            "prediction.type",
        ),
        ("prediction", r#"{"type":"content"}"#, "prediction.content"),
        (
            "prediction",
            r#"{"type":"content","content":[]}"#,
            "prediction.content",
        ),
        (
            "prediction",
            r#"{"type":"content","content":[{"type":"image_url"}]}"#,
            "prediction.content[0].type",
        ),
        ("web_search_options", "true", "web_search_options"),
        (
            "web_search_options",
            r#"{"search_context_size":"huge"}"#,
            "web_search_options.search_context_size",
        ),
        (
            "web_search_options",
            r#"{"user_location":{"approximate":{}}}"#,
            "web_search_options.user_location.type",
        ),
        (
            "web_search_options",
            r#"{"user_location":{"type":"approximate"}}"#,
            "web_search_options.user_location.approximate",
        ),
        (
            "web_search_options",
            r#"{"user_location":{"type":"approximate","approximate":{"city":1}}}"#,
            "web_search_options.user_location.approximate.city",
        ),
        ("response_format", r#""json""#, "response_format"),
        ("response_format", "{}", "response_format.type"),
        (
            "response_format",
            r#"{"type":"xml"}"#,
            "response_format.type",
        ),
        (
            "response_format",
            r#"{"type":"json_schema"}"#,
            "response_format.json_schema",
        ),
        (
            "response_format",
            r#"{"type":"json_schema","json_schema":{}}"#,
            "response_format.json_schema.name",
        ),
        (
            "response_format",
            r#"{"type":"json_schema","json_schema":{"name":"a b"}}"#,
            "response_format.json_schema.name",
        ),
        (
            "response_format",
            r#"{"type":"json_schema","json_schema":{"name":"p","schema":"{}"}}"#,
            "response_format.json_schema.schema",
        ),
        (
            "response_format",
            r#"{"type":"json_schema","json_schema":{"name":"p","strict":"yes"}}"#,
            "response_format.json_schema.strict",
        ),
        ("tools", "{}", "tools"),
        ("tools", "[1]", "tools[0]"),
        ("tools", "[{}]", "tools[0].type"),
        ("tools", r#"[{"type":"retrieval"}]"#, "tools[0].type"),
        ("tools", r#"[{"type":"function"}]"#, "tools[0].function"),
        (
            "tools",
            r#"[{"type":"function","function":"f"}]"#,
            "tools[0].function",
        ),
        (
            "tools",
            r#"[{"type":"function","function":{}}]"#,
            "tools[0].function.name",
        ),
        (
            "tools",
            r#"[{"type":"function","function":{"name":"get weather"}}]"#,
            "tools[0].function.name",
        ),
        (
            "tools",
            r#"[{"type":"function","function":{"name":""}}]"#,
            "tools[0].function.name",
        ),
        (
            "tools",
            r#"[{"type":"function","function":{"name":"f","parameters":"{}"}}]"#,
            "tools[0].function.parameters",
        ),
        (
            "tools",
            r#"[{"type":"function","function":{"name":"f","strict":1}}]"#,
            "tools[0].function.strict",
        ),
        (
            "tools",
            r#"[{"type":"function","function":{"name":"f","description":[]}}]"#,
            "tools[0].function.description",
        ),
        ("tools", r#"[{"type":"custom"}]"#, "tools[0].custom"),
        (
            "tools",
            r#"[{"type":"custom","custom":{"name":"c","format":{"type":"grammar"}}}]"#,
            "tools[0].custom.format.grammar",
        ),
        (
            "tools",
            r#"[{"type":"custom","custom":{"name":"c","format":{"type":"grammar","grammar":{"definition":"x","syntax":"peg"}}}}]"#,
            "tools[0].custom.format.grammar.syntax",
        ),
        ("tool_choice", r#""any""#, "tool_choice"),
        ("tool_choice", "1", "tool_choice"),
        ("tool_choice", r#"{"type":"tool"}"#, "tool_choice.type"),
        (
            "tool_choice",
            r#"{"type":"function"}"#,
            "tool_choice.function",
        ),
        (
            "tool_choice",
            r#"{"type":"function","function":{}}"#,
            "tool_choice.function.name",
        ),
        ("tool_choice", r#""required""#, "tool_choice"),
        (
            "tool_choice",
            r#"{"type":"function","function":{"name":"f"}}"#,
            "tool_choice",
        ),
        (
            "tool_choice",
            r#"{"type":"allowed_tools","allowed_tools":{"mode":"any","tools":[]}}"#,
            "tool_choice.allowed_tools.mode",
        ),
        (
            "tool_choice",
            r#"{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[1]}}"#,
            "tool_choice.allowed_tools.tools[0]",
        ),
        ("functions", "{}", "functions"),
        ("functions", "[]", "functions"),
        ("functions", r#"[{"description":"d"}]"#, "functions[0].name"),
        ("functions", r#"[{"name":"a.b"}]"#, "functions[0].name"),
        (
            "functions",
            r#"[{"name":"f","parameters":[]}]"#,
            "functions[0].parameters",
        ),
        ("function_call", r#""required""#, "function_call"),
        ("function_call", "[]", "function_call"),
        ("function_call", r#"{"name":"f"}"#, "function_call"),
        ("function_call", "{}", "function_call.name"),
        ("model", "5", "model"),
        ("model", r#""""#, "model"),
        ("messages", r#""hi""#, "messages"),
        ("messages", "[]", "messages"),
    ];
    for (field, value, param) in cases {
        assert_refused(&with(field, value), param, "invalid_parameter");
    }
    // One character over the reference's 64.
    let long = "s".repeat(65);
    assert_refused(
        &with("safety_identifier", &format!("\"{long}\"")),
        "safety_identifier",
        "invalid_parameter",
    );
    let tool = format!(r#"[{{"type":"function","function":{{"name":"{long}"}}}}]"#);
    assert_refused(
        &with("tools", &tool),
        "tools[0].function.name",
        "invalid_parameter",
    );
    assert!(cases.len() >= 100, "{} cases", cases.len());
}

/// Messages by role and content parts by type.
#[test]
fn bad_messages_name_the_parameter() {
    let cases: &[(&str, &str)] = &[
        (r#"[1]"#, "messages[0]"),
        (r#"[{"content":"x"}]"#, "messages[0].role"),
        (r#"[{"role":"robot","content":"x"}]"#, "messages[0].role"),
        (r#"[{"role":5,"content":"x"}]"#, "messages[0].role"),
        (r#"[{"role":"user"}]"#, "messages[0].content"),
        (r#"[{"role":"user","content":null}]"#, "messages[0].content"),
        (r#"[{"role":"user","content":1}]"#, "messages[0].content"),
        (
            r#"[{"role":"user","content":{"text":"x"}}]"#,
            "messages[0].content",
        ),
        (r#"[{"role":"user","content":[]}]"#, "messages[0].content"),
        (
            r#"[{"role":"user","content":"x","name":7}]"#,
            "messages[0].name",
        ),
        (r#"[{"role":"system"}]"#, "messages[0].content"),
        (
            r#"[{"role":"developer","content":5}]"#,
            "messages[0].content",
        ),
        (
            r#"[{"role":"tool","content":"x"}]"#,
            "messages[0].tool_call_id",
        ),
        (
            r#"[{"role":"tool","content":"x","tool_call_id":1}]"#,
            "messages[0].tool_call_id",
        ),
        (
            r#"[{"role":"tool","tool_call_id":"c"}]"#,
            "messages[0].content",
        ),
        (r#"[{"role":"function","content":"x"}]"#, "messages[0].name"),
        (r#"[{"role":"function","name":"f"}]"#, "messages[0].content"),
        (
            r#"[{"role":"function","name":"f","content":[]}]"#,
            "messages[0].content",
        ),
        // Content parts.
        (
            r#"[{"role":"user","content":[1]}]"#,
            "messages[0].content[0]",
        ),
        (
            r#"[{"role":"user","content":[{}]}]"#,
            "messages[0].content[0].type",
        ),
        (
            r#"[{"role":"user","content":[{"type":"video"}]}]"#,
            "messages[0].content[0].type",
        ),
        (
            r#"[{"role":"user","content":[{"type":"text"}]}]"#,
            "messages[0].content[0].text",
        ),
        (
            r#"[{"role":"user","content":[{"type":"text","text":5}]}]"#,
            "messages[0].content[0].text",
        ),
        (
            r#"[{"role":"user","content":[{"type":"refusal","refusal":"no"}]}]"#,
            "messages[0].content[0].type",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url"}]}]"#,
            "messages[0].content[0].image_url",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url","image_url":"https://x/a.png"}]}]"#,
            "messages[0].content[0].image_url",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url","image_url":{"url":7}}]}]"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/a.png"}}]}]"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url","image_url":{"url":"a.png"}}]}]"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png","detail":"max"}}]}]"#,
            "messages[0].content[0].image_url.detail",
        ),
        (
            r#"[{"role":"user","content":[{"type":"input_audio","input_audio":{"format":"wav"}}]}]"#,
            "messages[0].content[0].input_audio.data",
        ),
        (
            r#"[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"ogg"}}]}]"#,
            "messages[0].content[0].input_audio.format",
        ),
        (
            r#"[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA"}}]}]"#,
            "messages[0].content[0].input_audio.format",
        ),
        (
            r#"[{"role":"user","content":[{"type":"input_audio"}]}]"#,
            "messages[0].content[0].input_audio",
        ),
        (
            r#"[{"role":"user","content":[{"type":"file"}]}]"#,
            "messages[0].content[0].file",
        ),
        (
            r#"[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf"}}]}]"#,
            "messages[0].content[0].file.file_data",
        ),
        (
            r#"[{"role":"user","content":[{"type":"file","file":{"file_id":5}}]}]"#,
            "messages[0].content[0].file.file_id",
        ),
        (
            r#"[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]"#,
            "messages[0].content[0].type",
        ),
        (
            r#"[{"role":"tool","tool_call_id":"c","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]"#,
            "messages[0].content[0].type",
        ),
        (
            r#"[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":""}}]}]"#,
            "messages[1].content[1].image_url.url",
        ),
        // Assistant turns.
        (r#"[{"role":"assistant"}]"#, "messages[0].content"),
        (
            r#"[{"role":"assistant","content":null}]"#,
            "messages[0].content",
        ),
        (
            r#"[{"role":"assistant","content":5}]"#,
            "messages[0].content",
        ),
        (
            r#"[{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]"#,
            "messages[0].content[0].type",
        ),
        (
            r#"[{"role":"assistant","content":[{"type":"refusal"}]}]"#,
            "messages[0].content[0].refusal",
        ),
        (
            r#"[{"role":"assistant","refusal":1}]"#,
            "messages[0].refusal",
        ),
        (
            r#"[{"role":"assistant","audio":{}}]"#,
            "messages[0].audio.id",
        ),
        (r#"[{"role":"assistant","audio":"a"}]"#, "messages[0].audio"),
        (
            r#"[{"role":"assistant","function_call":{"name":"f"}}]"#,
            "messages[0].function_call.arguments",
        ),
        (
            r#"[{"role":"assistant","function_call":{"name":"f","arguments":{}}}]"#,
            "messages[0].function_call.arguments",
        ),
        (
            r#"[{"role":"assistant","tool_calls":{}}]"#,
            "messages[0].tool_calls",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[]}]"#,
            "messages[0].tool_calls",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[1]}]"#,
            "messages[0].tool_calls[0]",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]"#,
            "messages[0].tool_calls[0].id",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}]"#,
            "messages[0].tool_calls[0].type",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"tool","function":{"name":"f","arguments":"{}"}}]}]"#,
            "messages[0].tool_calls[0].type",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]"#,
            "messages[0].tool_calls[0].function",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]"#,
            "messages[0].tool_calls[0].function.name",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f"}}]}]"#,
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}}]}]"#,
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"c"}}]}]"#,
            "messages[0].tool_calls[0].custom.input",
        ),
    ];
    for (msgs, param) in cases {
        assert_refused(&messages(msgs), param, "invalid_parameter");
    }
}
