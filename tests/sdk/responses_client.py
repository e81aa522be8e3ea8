"""Drives the gateway's `POST /v1/responses` with the official OpenAI Python SDK, unchanged, and
prints what it saw as JSON, in the style of openai_client.py (the same `lookup` tool, so the fake
provider's known answers apply). Run through Envoy by tests/tests/responses_api.rs, and against a
stand-in for the pipeline by tests/tests/responses_sdk.rs.

usage: responses_client.py BASE_URL API_KEY MODEL,...
"""
import json
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
models = [m for m in sys.argv[3].split(",") if m]
tools = [{"type": "function", "name": "lookup", "description": "Look a text up.", "strict": False,
          "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]


def error_of(call):
    try:
        call()
        return {"raised": None}
    except openai.APIStatusError as e:
        return {"raised": type(e).__name__, "status": e.status_code, "code": e.code, "param": e.param}
    except openai.APIError as e:
        return {"raised": type(e).__name__, "message": str(e)}


def usage_of(response):
    return response.usage.model_dump() if response.usage else None


def collect(stream):
    """Event types, streamed text, finished tool calls, the terminal response and any error."""
    seen = {"events": [], "text": "", "calls": [], "final": None, "error": None}
    for event in stream:
        seen["events"].append(event.type)
        if event.type == "response.output_text.delta":
            seen["text"] += event.delta
        elif event.type == "response.output_item.done" and event.item.type == "function_call":
            seen["calls"].append({"call_id": event.item.call_id, "name": event.item.name,
                                  "arguments": json.loads(event.item.arguments or "null")})
        elif event.type in ("response.completed", "response.incomplete", "response.failed"):
            r = event.response
            seen["final"] = {"status": r.status, "output_text": r.output_text, "usage": usage_of(r),
                             "error": r.error.model_dump(exclude_none=True) if r.error else None}
        elif event.type == "error":
            seen["error"] = {"code": event.code, "message": event.message}
    return seen


def calls_of(response):
    return [{"call_id": o.call_id, "name": o.name, "arguments": json.loads(o.arguments)}
            for o in response.output if o.type == "function_call"]


out = {}
for model in models:
    prompt = f"Hello from the SDK to {model}"
    seen = {}
    r = client.responses.create(model=model, instructions="Answer briefly.", input=prompt)
    seen["plain"] = {"id": r.id, "status": r.status, "output_text": r.output_text, "usage": usage_of(r),
                     "model": r.model, "store": getattr(r, "store", None)}

    seen["stream"] = collect(client.responses.create(model=model, input=prompt, stream=True))

    with client.responses.stream(model=model, input=prompt) as s:
        final = s.get_final_response()
    seen["stream_helper"] = {"status": final.status, "output_text": final.output_text}

    messages = [{"role": "user", "content": prompt}]
    r = client.responses.create(model=model, input=messages, tools=tools)
    seen["tools"] = {"status": r.status, "calls": calls_of(r)}
    if r.output and seen["tools"]["calls"]:
        call = seen["tools"]["calls"][0]
        followup = messages + [{"type": "function_call", "call_id": call["call_id"], "name": call["name"],
                                "arguments": json.dumps(call["arguments"])},
                               {"type": "function_call_output", "call_id": call["call_id"], "output": "42"}]
        r = client.responses.create(model=model, input=followup, tools=tools)
        seen["tool_result"] = {"output_text": r.output_text}

    seen["stream_tools"] = collect(client.responses.create(model=model, input=messages, tools=tools, stream=True))

    seen["json_schema"] = {"output_text": client.responses.create(
        model=model, input=prompt,
        text={"format": {"type": "json_schema", "name": "answer", "strict": True,
                         "schema": {"type": "object", "properties": {"text": {"type": "string"}},
                                    "required": ["text"], "additionalProperties": False}}}).output_text}

    seen["rate_limited"] = error_of(lambda: client.responses.create(model=model, input="FAIL 429"))
    seen["bad_request"] = error_of(lambda: client.responses.create(model=model, input=prompt, temperature=9))
    seen["previous_response_id"] = error_of(
        lambda: client.responses.create(model=model, input=prompt, previous_response_id="resp_123"))
    seen["web_search"] = error_of(
        lambda: client.responses.create(model=model, input=prompt, tools=[{"type": "web_search"}]))
    seen["stream_error"] = collect(client.responses.create(model=model, input="FAIL STREAM", stream=True))
    out[model] = seen

out["retrieve"] = error_of(lambda: client.responses.retrieve("resp_123"))
bad_key = openai.OpenAI(base_url=sys.argv[1], api_key="not-a-gateway-key", max_retries=0)
out["bad_key"] = error_of(lambda: bad_key.responses.create(model=models[0], input="x"))
out["not_found"] = error_of(lambda: client.responses.create(model="no-such-model", input="x"))
print(json.dumps(out))
