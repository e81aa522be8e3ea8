"""The official OpenAI Python SDK against a cached model: the same question asked as a stream
(with usage) twice, then without a stream. Prints what it saw as JSON, for tests/tests/cache.rs.

Usage: cache_client.py BASE_URL MODEL QUESTION
"""

import json
import sys

from openai import OpenAI

base_url, model, question = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url, api_key="unused")
messages = [{"role": "user", "content": question}]
seen = []
for _ in range(2):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = "", None, None
    for chunk in raw.parse():
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage.completion_tokens
    seen.append({"cache": raw.headers.get("x-gateway-cache"), "text": text, "usage": usage, "finish": finish})
raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
answer = raw.parse()
seen.append({
    "cache": raw.headers.get("x-gateway-cache"),
    "text": answer.choices[0].message.content,
    "usage": answer.usage.completion_tokens,
    "finish": answer.choices[0].finish_reason,
})
print(json.dumps(seen))
