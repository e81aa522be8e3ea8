"""Drives the gateway with the official OpenAI Python SDK, unchanged, and prints what it saw as
JSON. The Rust tests (tests/tests/openai_sdk.rs) check the figures.

usage: openai_client.py BASE_URL CHAT_MODEL,... [EMBEDDING_MODEL,...]
"""
import json
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="client-key-not-a-provider-key", max_retries=0)
chat_models = [m for m in sys.argv[2].split(",") if m]
embedding_models = [m for m in (sys.argv[3] if len(sys.argv) > 3 else "").split(",") if m]
tools = [{"type": "function", "function": {"name": "lookup", "description": "Look a text up.",
          "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}]


def error_of(call):
    try:
        call()
        return {"raised": None}
    except openai.APIStatusError as e:
        return {"raised": type(e).__name__, "status": e.status_code, "code": e.code, "param": e.param}
    except openai.APIError as e:
        return {"raised": type(e).__name__, "message": str(e)}


out = {"models": [m.id for m in client.models.list().data], "chat": {}, "embeddings": {}}
for model in chat_models:
    messages = [{"role": "user", "content": f"Hello from the SDK to {model}"}]
    seen = {}
    r = client.chat.completions.create(model=model, messages=messages)
    seen["chat"] = {"content": r.choices[0].message.content, "usage": r.usage.model_dump(), "finish": r.choices[0].finish_reason}

    content, usage = "", None
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True, stream_options={"include_usage": True}):
        if chunk.choices:
            content += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage.model_dump()
    seen["stream"] = {"content": content, "usage": usage}

    content = ""
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True):
        if chunk.choices:
            content += chunk.choices[0].delta.content or ""
    seen["stream_no_usage"] = {"content": content}

    r = client.chat.completions.create(model=model, messages=messages, tools=tools)
    call = r.choices[0].message.tool_calls[0]
    seen["tools"] = {"name": call.function.name, "arguments": json.loads(call.function.arguments), "finish": r.choices[0].finish_reason}
    followup = messages + [r.choices[0].message.model_dump(exclude_none=True),
                           {"role": "tool", "tool_call_id": call.id, "content": "42"}]
    r = client.chat.completions.create(model=model, messages=followup, tools=tools)
    seen["tool_result"] = {"content": r.choices[0].message.content}

    arguments, name = "", ""
    for chunk in client.chat.completions.create(model=model, messages=messages, tools=tools, stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += tc.function.name or "" if tc.function else ""
            arguments += tc.function.arguments or "" if tc.function else ""
    seen["stream_tools"] = {"name": name, "arguments": json.loads(arguments) if arguments else None}

    seen["rate_limited"] = error_of(lambda: client.chat.completions.create(model=model, messages=[{"role": "user", "content": "FAIL 429"}]))
    seen["bad_request"] = error_of(lambda: client.chat.completions.create(model=model, messages=messages, temperature=9))
    out["chat"][model] = seen

out["not_found"] = error_of(lambda: client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}]))

for model in embedding_models:
    text = f"embed me with the SDK via {model}"
    r = client.embeddings.create(model=model, input=[text])  # the SDK asks for base64 by default
    out["embeddings"][model] = {"text": text, "vector": r.data[0].embedding, "count": len(r.data)}

print(json.dumps(out))
