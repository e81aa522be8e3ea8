"""Drives the gateway with the official OpenAI Python SDK, unchanged, and prints what it saw as
JSON. The Rust test (tests/tests/openai_sdk.rs) checks the figures."""
import json
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="client-key-not-a-provider-key", max_retries=0)
messages = [{"role": "user", "content": "Hello from the SDK"}]
out = {}

r = client.chat.completions.create(model="demo-chat", messages=messages)
out["chat"] = {"content": r.choices[0].message.content, "usage": r.usage.model_dump(), "finish": r.choices[0].finish_reason}

content, usage, chunks = "", None, 0
for chunk in client.chat.completions.create(model="demo-chat", messages=messages, stream=True, stream_options={"include_usage": True}):
    chunks += 1
    if chunk.choices:
        content += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage.model_dump()
out["stream"] = {"content": content, "usage": usage, "chunks": chunks}

content = ""
for chunk in client.chat.completions.create(model="demo-chat", messages=messages, stream=True):
    if chunk.choices:
        content += chunk.choices[0].delta.content or ""
out["stream_no_usage"] = {"content": content}

out["models"] = [m.id for m in client.models.list().data]

for name, kwargs, error in [
    ("not_found", {"model": "no-such-model", "messages": messages}, openai.NotFoundError),
    ("bad_request", {"model": "demo-chat", "messages": messages, "temperature": 9}, openai.BadRequestError),
]:
    try:
        client.chat.completions.create(**kwargs)
        out[name] = {"raised": None}
    except error as e:
        out[name] = {"raised": type(e).__name__, "status": e.status_code, "code": e.code, "param": e.param}

print(json.dumps(out))
