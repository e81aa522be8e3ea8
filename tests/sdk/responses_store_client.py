"""Drives the gateway's response store (`responses.store`) with the official OpenAI Python SDK:
a response kept and retrieved, a follow-up by `previous_response_id`, its input items, deletion,
`store=False`, a streamed response kept, and another gateway key that finds none of them. Prints
what it saw as JSON. Run through Envoy by tests/tests/responses_store.rs.

usage: responses_store_client.py BASE_URL KEY OTHER_KEY MODEL,...
"""
import json
import sys

import openai

base, key, other_key = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
other = openai.OpenAI(base_url=base, api_key=other_key, max_retries=0)


def error_of(call):
    try:
        call()
        return {"raised": None}
    except openai.APIStatusError as e:
        return {"raised": type(e).__name__, "status": e.status_code, "code": e.code, "param": e.param}


out = {}
for model in [m for m in sys.argv[4].split(",") if m]:
    seen = {}
    first = client.responses.create(model=model, input=f"Remember the number 7, {model}")
    seen["first"] = {"id": first.id, "text": first.output_text}
    got = client.responses.retrieve(first.id)
    seen["retrieved"] = {"id": got.id, "text": got.output_text, "status": got.status}

    second = client.responses.create(model=model, input="Which number?", previous_response_id=first.id)
    seen["second"] = {"id": second.id, "text": second.output_text}
    items = client.responses.input_items.list(second.id)
    seen["second_items"] = [item.model_dump(exclude_none=True) for item in items.data]

    with client.responses.stream(model=model, input="Streamed, then kept") as s:
        streamed = s.get_final_response()
    seen["streamed"] = {"id": streamed.id, "text": streamed.output_text,
                        "retrieved": client.responses.retrieve(streamed.id).output_text}

    unstored = client.responses.create(model=model, input="Do not keep this", store=False)
    seen["unstored"] = error_of(lambda: client.responses.retrieve(unstored.id))

    seen["other_retrieve"] = error_of(lambda: other.responses.retrieve(second.id))
    seen["other_previous"] = error_of(
        lambda: other.responses.create(model=model, input="x", previous_response_id=second.id))
    seen["other_delete"] = error_of(lambda: other.responses.delete(second.id))
    seen["unknown_previous"] = error_of(
        lambda: client.responses.create(model=model, input="x", previous_response_id="resp_nope"))

    deleted = error_of(lambda: client.responses.delete(first.id))
    seen["deleted"] = deleted
    seen["after_delete"] = error_of(lambda: client.responses.retrieve(first.id))
    seen["still_there"] = client.responses.retrieve(second.id).output_text
    out[model] = seen
print(json.dumps(out))
