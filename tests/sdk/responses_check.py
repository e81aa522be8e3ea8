"""Feeds the gateway's Responses API output through the official OpenAI Python SDK and prints, as
JSON, what the SDK made of it. The Rust test tests/tests/responses_sdk.rs writes the files
(produced by the filter's translators from the golden inputs) and checks the figures.

The SDK is driven as a client would drive it: `client.responses.create(...)` (plain and
`stream=True`) and the `client.responses.stream(...)` helper, against an in-process transport
that answers with the file's bytes, with strict response validation on, so every object and every
stream event is validated against the SDK's own types (`Response`, the `ResponseStreamEvent`
union). Each JSON answer is also checked with `Response.model_validate`. The request bodies the
SDK sent are written to DIR/requests/ for the Rust side to translate.

usage: responses_check.py DIR   (DIR holds cases.json: [{"name", "kind", "file", "status"}])
"""
import json
import os
import sys

import httpx2
import openai
import pydantic
from openai.types.responses import Response, ResponseStreamEvent

directory = sys.argv[1]
cases = json.load(open(os.path.join(directory, "cases.json")))
os.makedirs(os.path.join(directory, "requests"), exist_ok=True)
event_adapter = pydantic.TypeAdapter(ResponseStreamEvent)


def client_answering(status, body, content_type, name):
    """A client whose every request gets `body`; the request body is kept in requests/NAME.json."""
    count = [0]

    def handler(request):
        count[0] += 1
        with open(os.path.join(directory, "requests", f"{name}.{count[0]}.json"), "wb") as f:
            f.write(request.content)
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    return openai.OpenAI(
        base_url="http://gateway.test/v1",
        api_key="client-key",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        _strict_response_validation=True,
    )


tools = [{"type": "function", "name": "get_weather", "description": "Current weather for a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                         "additionalProperties": False}, "strict": True}]
follow_up = [
    {"role": "user", "content": "Weather in Paris?"},
    {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
    {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
]


def error_of(call):
    try:
        call()
        return {"raised": None}
    except openai.APIStatusError as e:
        return {"raised": type(e).__name__, "status": e.status_code, "code": e.code, "param": e.param,
                "type": e.type, "message": e.message}


def answer_case(case, body):
    seen = {"validated": Response.model_validate(json.loads(body)).status}
    client = client_answering(200, body, "application/json", case["name"])
    r = client.responses.create(model="gpt-4.1", instructions="Be brief.", input="Say hello.", tools=tools,
                                tool_choice="auto", max_output_tokens=256, temperature=0.2,
                                metadata={"ticket": "T-1"}, reasoning={"effort": "low"}, store=False)
    seen.update({
        "status": r.status,
        "output_text": r.output_text,
        "incomplete_reason": r.incomplete_details.reason if r.incomplete_details else None,
        "calls": [{"call_id": o.call_id, "name": o.name, "arguments": json.loads(o.arguments)}
                  for o in r.output if o.type == "function_call"],
        "usage": r.usage.model_dump() if r.usage else None,
    })
    # A tool result sent back, as a client continues the conversation.
    client.responses.create(model="gpt-4.1", input=follow_up, tools=tools)
    return seen


def stream_case(case, body):
    for data in [line[len("data: "):] for line in body.decode().split("\n") if line.startswith("data: ")]:
        event_adapter.validate_python(json.loads(data))
    client = client_answering(200, body, "text/event-stream", case["name"])
    events, text, arguments, failed = [], "", {}, None
    for event in client.responses.create(model="gpt-4.1", input="Tell me about Paris.", tools=tools,
                                         stream=True):
        events.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.function_call_arguments.done":
            arguments[event.item_id] = json.loads(event.arguments)
        elif event.type == "error":
            failed = {"code": event.code, "message": event.message}
        elif event.type == "response.failed":
            failed = dict(failed or {}, response_error=event.response.error.model_dump(exclude_none=True))
    seen = {"events": events, "streamed_text": text, "arguments": list(arguments.values()), "failed": failed}
    # The SDK's stream helper accumulates the events into the final response.
    try:
        with client.responses.stream(model="gpt-4.1", input="Tell me about Paris.", tools=tools) as s:
            final = s.get_final_response()
        seen["helper"] = {"status": final.status, "output_text": final.output_text,
                          "usage": final.usage.model_dump() if final.usage else None}
    except RuntimeError as e:
        seen["helper"] = {"raised": str(e)}
    return seen


def error_case(case, body):
    client = client_answering(case["status"], body, "application/json", case["name"])
    return error_of(lambda: client.responses.create(model="gpt-4.1", input="Hi"))


out = {}
for case in cases:
    body = open(os.path.join(directory, case["file"]), "rb").read()
    out[case["name"]] = {"answer": answer_case, "stream": stream_case, "error": error_case}[case["kind"]](case, body)
print(json.dumps(out))
