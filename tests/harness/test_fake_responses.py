"""The fake Responses server answers as scripted, streams the events Codex reads, and records requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.harness.fake_responses import FakeResponses, custom_call, function_call, status, text, tool_names


def post(url: str, body: dict, key: str = "sk-test") -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/responses", json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def events(stream: str) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in stream.splitlines() if line.startswith("data: ")]


def test_a_text_reply_streams_deltas_between_created_and_completed() -> None:
    with FakeResponses(text("Hello there")) as server:
        code, body = post(server.url, {"model": "fake-model", "input": [], "stream": True})
    kinds = [event["type"] for event in events(body)]
    assert code == 200 and kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e["delta"] for e in events(body) if e["type"] == "response.output_text.delta") == "Hello there"
    assert events(body)[-1]["response"]["usage"]["total_tokens"] == 15
    assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_tool_calls_are_output_items_with_call_ids() -> None:
    with FakeResponses(function_call("exec_command", {"cmd": "ls"}), custom_call("apply_patch", "*** Begin Patch")) as s:
        _, first = post(s.url, {"input": [], "tools": [{"type": "function", "name": "exec_command"}]})
        _, second = post(s.url, {"input": []})
    done = [e["item"] for e in events(first) if e["type"] == "response.output_item.done"]
    assert done[0]["type"] == "function_call" and json.loads(done[0]["arguments"]) == {"cmd": "ls"}
    assert done[0]["call_id"]
    custom = [e["item"] for e in events(second) if e["type"] == "response.output_item.done"][0]
    assert (custom["type"], custom["input"]) == ("custom_tool_call", "*** Begin Patch")
    assert tool_names(s.requests[0]) == ["exec_command"]


def test_errors_an_exhausted_script_and_websocket_upgrades() -> None:
    with FakeResponses(status(401)) as server:
        code, body = post(server.url, {"input": []})
        assert code == 401 and "Incorrect API key" in body
        assert post(server.url, {"input": []})[0] == 500
        request = urllib.request.Request(f"{server.url}/responses", headers={"Upgrade": "websocket",
                                                                            "Connection": "Upgrade"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=5)
    assert server.refused == ["GET /v1/responses (websocket)"] and len(server.requests) == 2
