"""Drives the gateway's Messages API with the official Anthropic Python SDK, unchanged, and prints
what it saw as JSON. The Rust tests (tests/tests/messages_api.rs) check the figures.

usage: anthropic_client.py BASE_URL API_KEY MODEL,...
"""
import json
import sys
import traceback

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
models = [m for m in sys.argv[3].split(",") if m]
tools = [{"name": "lookup", "description": "Look a text up.",
          "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]


def error_of(call):
    try:
        call()
        return {"raised": None}
    except anthropic.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        error = body.get("error") or {}
        return {"raised": type(e).__name__, "status": e.status_code, "type": error.get("type"),
                "shape": body.get("type")}
    except anthropic.APIError as e:
        return {"raised": type(e).__name__, "message": str(e)}


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


def usage_of(message):
    return {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}


def streamed(**kwargs):
    """A streamed answer: the text as it arrived, the event types, and the final message."""
    kinds, text = [], ""
    with client.messages.stream(**kwargs) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
        final = stream.get_final_message()
    return {"text": text, "final_text": text_of(final), "usage": usage_of(final),
            "stop_reason": final.stop_reason, "events": sorted(set(kinds)),
            "tool_uses": [{"name": b.name, "input": b.input} for b in final.content if b.type == "tool_use"]}


def run(model, seen):
    hello = [{"role": "user", "content": f"Hello from the SDK to {model}"}]
    r = client.messages.create(model=model, max_tokens=200, messages=hello)
    seen["plain"] = {"text": text_of(r), "usage": usage_of(r), "stop_reason": r.stop_reason,
                     "type": r.type, "role": r.role, "model": r.model}

    r = client.messages.create(model=model, max_tokens=200, system="Be brief.", messages=hello)
    seen["system"] = {"text": text_of(r), "usage": usage_of(r)}

    turns = [{"role": "user", "content": "first question"},
             {"role": "assistant", "content": "first answer"},
             {"role": "user", "content": [{"type": "text", "text": "second question"}]}]
    r = client.messages.create(model=model, max_tokens=200, messages=turns)
    seen["multi_turn"] = {"text": text_of(r), "usage": usage_of(r)}

    seen["stream"] = streamed(model=model, max_tokens=200, messages=hello)

    r = client.messages.create(model=model, max_tokens=200, messages=hello, tools=tools)
    uses = [b for b in r.content if b.type == "tool_use"]
    seen["tools"] = {"stop_reason": r.stop_reason, "uses": [{"name": b.name, "input": b.input} for b in uses]}
    if not uses:
        seen["tools"]["content"] = r.model_dump()
    followup = hello + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "42"}]}]
    r = client.messages.create(model=model, max_tokens=200, messages=followup, tools=tools)
    seen["tool_result"] = {"text": text_of(r), "stop_reason": r.stop_reason}
    seen["stream_tools"] = streamed(model=model, max_tokens=200, messages=hello, tools=tools)
    seen["stream_tool_result"] = streamed(model=model, max_tokens=200, messages=followup, tools=tools)

    seen["count_tokens"] = client.messages.count_tokens(model=model, messages=hello).input_tokens
    seen["rate_limited"] = error_of(lambda: client.messages.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "FAIL 429"}]))
    seen["bad_request"] = error_of(lambda: client.messages.create(
        model=model, max_tokens=50, messages=hello, extra_body={"temperature": 5}))
    seen["stream_error"] = error_of(lambda: streamed(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "FAIL STREAM"}]))


out = {}
for model in models:
    out[model] = {}
    try:
        run(model, out[model])
    except Exception:  # the Rust test shows what failed, and what was seen before
        out[model]["crash"] = traceback.format_exc()

out["not_found"] = error_of(lambda: client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]))
bad_key = anthropic.Anthropic(base_url=sys.argv[1], api_key="not-a-gateway-key", max_retries=0)
out["bad_key"] = error_of(lambda: bad_key.messages.create(model=models[0], max_tokens=5, messages=[{"role": "user", "content": "x"}]))
print(json.dumps(out))
