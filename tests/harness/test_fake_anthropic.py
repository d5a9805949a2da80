"""The fake Anthropic Messages server, over raw HTTP: what Claude Code (and any Messages client) reads from it."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.harness.fake_anthropic import (
    EXHAUSTED_MESSAGE,
    FakeAnthropic,
    hang,
    status,
    text,
    tool_use,
)

ASK = {"model": "claude-fake", "max_tokens": 100, "messages": [{"role": "user", "content": "Fix calc/stats.py"}]}


@pytest.fixture
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def request(server: FakeAnthropic, method: str, path: str, body: object = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def events(raw: bytes) -> list[tuple[str, dict]]:
    """The (event name, data) pairs of an SSE body; every data line must be JSON of that event's type."""
    found = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"], block
        found.append((lines["event"], data))
    return found


def test_a_streamed_text_reply_follows_the_messages_event_order(server: FakeAnthropic) -> None:
    server.script(text("Hello there, conductor."))
    code, headers, body = request(server, "POST", "/v1/messages?beta=true", ASK | {"stream": True},
                                  {"x-api-key": "sk-ant-test"})
    assert code == 200 and headers["Content-Type"].startswith("text/event-stream")
    found = events(body)
    names = [name for name, _ in found]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = found[0][1]["message"]
    assert (start["role"], start["model"], start["content"], start["stop_reason"]) == ("assistant", "claude-fake", [],
                                                                                      None)
    deltas = [data["delta"] for name, data in found if name == "content_block_delta"]
    assert len(deltas) > 1 and "".join(d["text"] for d in deltas) == "Hello there, conductor."
    assert {d["type"] for d in deltas} == {"text_delta"}
    assert found[-2][1]["delta"]["stop_reason"] == "end_turn" and found[-2][1]["usage"]["output_tokens"] == 5
    # Recorded: the body and the headers, looked up in any case.
    assert server.requests == [ASK | {"stream": True}] and server.headers[0]["X-Api-Key"] == "sk-ant-test"
    assert server.calls == ["POST /v1/messages"]


def test_a_streamed_tool_use_arrives_as_input_json_deltas_after_its_text(server: FakeAnthropic) -> None:
    edit = {"file_path": "/w/calc/stats.py", "old_string": "- 1", "new_string": ""}
    server.script(tool_use(("Read", {"file_path": "/w/calc/stats.py"}), ("Edit", edit), content="Fixing it."))
    found = events(request(server, "POST", "/v1/messages", ASK | {"stream": True})[2])
    starts = [data for name, data in found if name == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [(0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert [s["content_block"]["name"] for s in starts[1:]] == ["Read", "Edit"]
    assert starts[2]["content_block"]["id"] == "toolu_fake_1_2" and starts[2]["content_block"]["input"] == {}
    pieces = [data["delta"]["partial_json"] for name, data in found
              if name == "content_block_delta" and data["index"] == 2]
    assert len(pieces) > 1 and json.loads("".join(pieces)) == edit
    assert found[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_without_stream_the_reply_is_one_json_message(server: FakeAnthropic) -> None:
    server.script(tool_use(("Write", {"file_path": "/w/a.py", "content": "x = 1\n"})), text("Done."))
    code, _, body = request(server, "POST", "/v1/messages", ASK)
    message = json.loads(body)
    assert code == 200 and message["type"] == "message" and message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "tool_use", "id": "toolu_fake_1_1", "name": "Write",
                                   "input": {"file_path": "/w/a.py", "content": "x = 1\n"}}]
    message = json.loads(request(server, "POST", "/v1/messages", ASK)[2])
    assert message["content"] == [{"type": "text", "text": "Done."}] and message["stop_reason"] == "end_turn"


@pytest.mark.parametrize(("code", "kind", "message"), [
    (401, "authentication_error", "invalid x-api-key"), (529, "overloaded_error", "fake server: HTTP 529"),
    (400, "invalid_request_error", "fake server: Bad Request")])
def test_an_error_has_the_anthropic_error_shape(server: FakeAnthropic, code: int, kind: str, message: str) -> None:
    server.script(status(code))
    answer = request(server, "POST", "/v1/messages", ASK | {"stream": True})
    assert answer[0] == code and json.loads(answer[2]) == {"type": "error", "error": {"type": kind, "message": message},
                                                           "request_id": "req_fake"}


def test_token_counts_and_the_model_list_answer_without_using_the_script(server: FakeAnthropic) -> None:
    server.script(text("kept"))
    assert json.loads(request(server, "POST", "/v1/messages/count_tokens", ASK)[2])["input_tokens"] > 0
    assert json.loads(request(server, "GET", "/v1/models")[2])["data"][0]["id"] == "fake-model"
    assert request(server, "GET", "/v1/other")[0] == 404
    assert server.pending == 1 and server.requests == []
    assert server.calls == ["POST /v1/messages/count_tokens", "GET /v1/models", "GET /v1/other"]


def test_an_exhausted_script_answers_500_saying_so_unless_there_is_a_default(server: FakeAnthropic) -> None:
    code, _, body = request(server, "POST", "/v1/messages", ASK)
    assert code == 500 and EXHAUSTED_MESSAGE in json.loads(body)["error"]["message"]
    server.default = status(401)
    assert [request(server, "POST", "/v1/messages", ASK)[0] for _ in range(2)] == [401, 401]
    assert len(server.requests) == 3


def test_a_hanging_reply_is_released_when_the_server_stops() -> None:
    server = FakeAnthropic(hang(60)).start()
    failed: list[BaseException] = []

    def ask() -> None:
        try:
            request(server, "POST", "/v1/messages", ASK)
        except (OSError, http.client.HTTPException) as error:
            failed.append(error)

    thread = threading.Thread(target=ask)
    thread.start()
    server.wait_for_requests(1)
    began = time.monotonic()
    server.stop()
    thread.join(5)
    assert not thread.is_alive() and failed and time.monotonic() - began < 5


def test_the_constructors_refuse_what_is_not_a_reply() -> None:
    with pytest.raises(ValueError):
        tool_use()
    with pytest.raises(TypeError):
        tool_use(("Edit", "not a dict"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        status(200)
    with pytest.raises(TypeError):
        FakeAnthropic().script("text")  # type: ignore[arg-type]
