"""The fake Gemini API server, driven over raw HTTP the way Gemini CLI (through @google/genai) calls it."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.harness.fake_gemini import (
    API_KEY_INVALID,
    FakeGemini,
    function_calls,
    hang,
    status,
    text,
)

REQUEST = {"contents": [{"role": "user", "parts": [{"text": "Fix the bug in calc/stats.py"}]}],
           "tools": [{"functionDeclarations": [{"name": "read_file", "parametersJsonSchema": {"type": "object"}},
                                               {"name": "replace", "parametersJsonSchema": {"type": "object"}}]}]}


@pytest.fixture
def server() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


def post(server: FakeGemini, path: str, body: object = REQUEST, key: str = "fake-key",
         timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, content type, body) of one POST to path, the key in x-goog-api-key as @google/genai sends it."""
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=timeout)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json",
                                                                         "x-goog-api-key": key})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        connection.close()


def events(body: str) -> list[dict]:
    """The JSON objects of an SSE body."""
    return [json.loads(line[len("data: "):]) for line in body.splitlines() if line.startswith("data: ")]


def parts(response: dict) -> list[dict]:
    return response["candidates"][0]["content"]["parts"]


def test_a_text_reply_without_streaming(server: FakeGemini) -> None:
    server.script(text("Hello there", prompt_tokens=12, completion_tokens=3))
    code, kind, body = post(server, "/v1beta/models/gemini-2.5-pro:generateContent")
    answer = json.loads(body)
    assert (code, kind.split(";")[0]) == (200, "application/json")
    assert parts(answer) == [{"text": "Hello there"}] and answer["candidates"][0]["finishReason"] == "STOP"
    assert answer["usageMetadata"] == {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15}
    assert server.requests == [REQUEST] and server.models == ["gemini-2.5-pro"]
    assert server.methods == ["generateContent"] and server.keys == ["fake-key"]
    assert server.tool_names() == ["read_file", "replace"]


def test_a_streamed_text_reply_arrives_word_by_word_and_finishes_once(server: FakeGemini) -> None:
    server.script(text("Reading the tests now"))
    code, kind, body = post(server, "/v1beta/models/fake-gemini:streamGenerateContent?alt=sse")
    chunks = events(body)
    assert (code, kind) == (200, "text/event-stream")
    assert "".join(p["text"] for c in chunks for p in parts(c)) == "Reading the tests now" and len(chunks) == 4
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, None, "STOP"]
    assert "usageMetadata" in chunks[-1] and "usageMetadata" not in chunks[0]


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent?alt=sse"])
def test_function_calls_name_the_clients_tools_with_their_arguments(server: FakeGemini, method: str) -> None:
    arguments = {"file_path": "calc/stats.py", "old_string": "(len(values) - 1)", "new_string": "len(values)"}
    server.script(function_calls(("read_file", {"file_path": "calc/stats.py"}), ("replace", arguments),
                                 content="Let me fix it."))
    code, _, body = post(server, f"/v1beta/models/fake-gemini:{method}")
    found = [part for chunk in (events(body) if "sse" in method else [json.loads(body)]) for part in parts(chunk)]
    assert code == 200
    assert "".join(p.get("text", "") for p in found) == "Let me fix it."
    assert [p["functionCall"] for p in found if "functionCall" in p] == [
        {"id": "call_1", "name": "read_file", "args": {"file_path": "calc/stats.py"}},
        {"id": "call_2", "name": "replace", "args": arguments}]


def test_an_invalid_key_is_answered_as_google_answers_it(server: FakeGemini) -> None:
    server.script(status(400, api_key_invalid=True))
    code, _, body = post(server, "/v1beta/models/fake-gemini:streamGenerateContent?alt=sse")
    error = json.loads(body)["error"]
    assert (code, error["code"], error["status"], error["message"]) == (400, 400, "INVALID_ARGUMENT", API_KEY_INVALID)
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


def test_other_statuses_carry_their_google_status_name(server: FakeGemini) -> None:
    server.script(status(429, "Resource has been exhausted"), status(503))
    first = json.loads(post(server, "/v1beta/models/fake-gemini:generateContent")[2])["error"]
    second = json.loads(post(server, "/v1beta/models/fake-gemini:generateContent")[2])["error"]
    assert (first["status"], first["message"]) == ("RESOURCE_EXHAUSTED", "Resource has been exhausted")
    assert (second["code"], second["status"]) == (503, "UNAVAILABLE") and "details" not in second


def test_count_tokens_and_listing_models_do_not_consume_the_script(server: FakeGemini) -> None:
    server.script(text("still here"))
    code, _, body = post(server, "/v1beta/models/fake-gemini:countTokens")
    assert code == 200 and json.loads(body)["totalTokens"] > 0
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=5)
    connection.request("GET", "/v1beta/models?key=query-key")
    listed = json.loads(connection.getresponse().read())
    connection.close()
    assert listed["models"][0]["name"] == "models/fake-gemini"
    assert server.pending == 1 and server.requests == []
    assert server.calls == ["POST /v1beta/models/fake-gemini:countTokens", "GET /v1beta/models"]
    assert server.keys == ["fake-key", "query-key"]


def test_an_exhausted_script_answers_500_unless_a_default_is_set(server: FakeGemini) -> None:
    code, _, body = post(server, "/v1beta/models/fake-gemini:generateContent")
    assert code == 500 and "script exhausted" in body
    server.default = text("again")
    assert parts(json.loads(post(server, "/v1beta/models/fake-gemini:generateContent")[2])) == [{"text": "again"}]


def test_unknown_routes_and_bodies_that_are_not_json_objects_are_errors(server: FakeGemini) -> None:
    assert post(server, "/v1beta/files")[0] == 404
    assert post(server, "/v1beta/models/fake-gemini:generateContent", body=[1, 2])[0] == 400
    assert server.requests == [] and len(server.calls) == 2


def test_a_hanging_reply_sends_nothing_until_the_server_stops() -> None:
    server = FakeGemini(hang(30)).start()
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(post(server, "/v1beta/models/fake-gemini:generateContent", timeout=10))
        except (http.client.HTTPException, OSError) as error:
            outcome.append(error)

    asker = threading.Thread(target=ask)
    asker.start()
    server.wait_for_requests(1)
    time.sleep(0.2)
    assert outcome == []  # nothing answered yet
    started = time.monotonic()
    server.stop()
    asker.join(5)
    assert time.monotonic() - started < 3 and len(outcome) == 1 and isinstance(outcome[0], Exception)


def test_wait_for_requests_names_what_it_waited_for(server: FakeGemini) -> None:
    with pytest.raises(AssertionError, match="expected 1 generate request"):
        server.wait_for_requests(1, timeout=0.1)


def test_constructors_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(ValueError):
        function_calls()
    with pytest.raises(TypeError):
        function_calls(("replace", "not a dict"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        status(200)
    with pytest.raises(TypeError):
        text(None)  # type: ignore[arg-type]
