"""The fake OpenAI server, driven through litellm (the way agents talk to it) and raw HTTP.

The litellm tests pin down what litellm 1.106.2 (with openai 2.x) does for each scripted
fault, so code under test can rely on it: which exception class, raised where, and whether
anything was retried (the server counts the requests).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from tests.harness.fake_openai import (
    FakeOpenAI,
    cut_stream,
    hang,
    malformed,
    status,
    text,
    tool_calls,
)

MESSAGES = [{"role": "user", "content": "Fix the bug in calc/stats.py"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "edit_file",
            "description": "Replace text in a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "old": {"type": "string"}}},
        },
    },
]
# litellm 1.106.2 imports its MCP gateway (and with it the optional `mcp` package) whenever
# `tools` is passed; `_skip_mcp_handler` skips that when `mcp` is not installed.
TOOL_KWARGS = {"tools": TOOLS} | ({} if importlib.util.find_spec("mcp") else {"_skip_mcp_handler": True})
NO_RETRIES = {"num_retries": 0}


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map
    import litellm as module

    module.suppress_debug_info = True
    return module


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def complete(litellm: ModuleType, server: FakeOpenAI, **kwargs):
    kwargs.setdefault("messages", MESSAGES)
    return litellm.completion(model="openai/fake-model", api_base=server.url, api_key="sk-test", **kwargs)


def raw_request(
    server: FakeOpenAI, method: str, path: str, body: object = None, timeout: float = 5.0
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send one request with http.client; path is relative to the host (e.g. "/v1/models")."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": "Bearer sk-raw", "Content-Type": "application/json"}
    conn.request(method, path, body=data, headers=headers)
    return conn, conn.getresponse()


def sse_data(payload: bytes) -> list[str]:
    """The `data:` values of an SSE body, in order."""
    events = [e for e in payload.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: ") :] for e in events]


# --------------------------------------------------------------------------- litellm


def test_text_reply_without_streaming(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(text("The mean divides by n - 1.", prompt_tokens=7, completion_tokens=4))
    reply = complete(litellm, server)
    choice = reply.choices[0]
    assert choice.message.content == "The mean divides by n - 1."
    assert choice.message.role == "assistant"
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (7, 4, 11)
    assert server.requests == [{"model": "fake-model", "messages": MESSAGES}]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert server.headers[0]["authorization"] == "Bearer sk-test"  # lookups ignore case


def test_text_reply_streams_in_pieces_with_usage(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(text("Reading tests/test_stats.py now", prompt_tokens=12, completion_tokens=6))
    chunks = list(complete(litellm, server, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["Reading ", "tests/test_stats.py ", "now"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert [(u.prompt_tokens, u.completion_tokens, u.total_tokens) for u in usage] == [(12, 6, 18)]
    rebuilt = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert rebuilt.choices[0].message.content == "Reading tests/test_stats.py now"
    assert rebuilt.usage.total_tokens == 18
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_tool_calls_without_streaming(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(
        tool_calls(
            ("read_file", {"path": "calc/stats.py"}),
            ("edit_file", {"path": "calc/stats.py", "old": "len(values) - 1"}),
            content="Let me look.",
        )
    )
    reply = complete(litellm, server, **TOOL_KWARGS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    calls = choice.message.tool_calls
    assert [(c.id, c.type, c.function.name) for c in calls] == [
        ("call_1", "function", "read_file"),
        ("call_2", "function", "edit_file"),
    ]
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"path": "calc/stats.py"},
        {"path": "calc/stats.py", "old": "len(values) - 1"},
    ]
    assert [t["function"]["name"] for t in server.requests[0]["tools"]] == ["read_file", "edit_file"]


def test_tool_calls_stream_as_indexed_deltas(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(tool_calls(("read_file", {"path": "calc/stats.py"}), ("edit_file", {"path": "a.py", "old": "x"})))
    chunks = list(complete(litellm, server, stream=True, **TOOL_KWARGS))
    calls: dict[int, dict] = {}
    argument_pieces = 0
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.id or call["id"]
            call["name"] = delta.function.name or call["name"]
            if delta.function.arguments:
                call["arguments"] += delta.function.arguments
                argument_pieces += 1
    assert argument_pieces > 2  # the arguments really arrived in pieces
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("call_1", "read_file", {"path": "calc/stats.py"}),
        ("call_2", "edit_file", {"path": "a.py", "old": "x"}),
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    rebuilt = litellm.stream_chunk_builder(chunks, messages=MESSAGES).choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in rebuilt] == [
        ("read_file", {"path": "calc/stats.py"}),
        ("edit_file", {"path": "a.py", "old": "x"}),
    ]


async def test_async_streaming_through_acompletion(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(text("async works too"))
    stream = await litellm.acompletion(
        model="openai/fake-model", api_base=server.url, api_key="sk-test", messages=MESSAGES, stream=True
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert pieces == ["async ", "works ", "too"]


@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_raises_rate_limit_error(litellm: ModuleType, server: FakeOpenAI, stream: bool) -> None:
    server.script(status(429, "slow down", retry_after=0.2))
    with pytest.raises(litellm.RateLimitError, match="slow down") as caught:
        complete(litellm, server, stream=stream, **NO_RETRIES)  # raised by completion() itself, even when streaming
    assert caught.value.status_code == 429
    assert len(server.requests) == 1  # num_retries=0: no retry


def test_rate_limit_is_retried_twice_by_default_honouring_retry_after(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(*[status(429, "slow down", retry_after=0.05)] * 3, text("finally"))
    with pytest.raises(litellm.RateLimitError):
        complete(litellm, server)
    assert len(server.requests) == 3  # the openai SDK's own max_retries=2
    assert complete(litellm, server).choices[0].message.content == "finally"


def test_server_error_raises_internal_server_error(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(status(500, "boom"))
    with pytest.raises(litellm.InternalServerError, match="boom") as caught:
        complete(litellm, server, **NO_RETRIES)
    assert caught.value.status_code == 500
    assert len(server.requests) == 1


def test_other_statuses_map_to_their_litellm_exceptions(litellm: ModuleType, server: FakeOpenAI) -> None:
    cases = [
        (status(401), litellm.AuthenticationError),
        (status(400, "bad request"), litellm.BadRequestError),
        (status(404, "no such model"), litellm.NotFoundError),
        (status(503, "overloaded"), litellm.ServiceUnavailableError),
    ]
    for reply, expected in cases:
        server.script(reply)
        with pytest.raises(expected):
            complete(litellm, server, **NO_RETRIES)
    assert len(server.requests) == len(cases)


@pytest.mark.parametrize("stream", [False, True])
def test_hang_times_out_and_shutdown_stays_prompt(litellm: ModuleType, stream: bool) -> None:
    server = FakeOpenAI(hang(30)).start()
    try:
        started = time.monotonic()
        with pytest.raises(litellm.Timeout):
            complete(litellm, server, stream=stream, timeout=0.3, **NO_RETRIES)
        assert time.monotonic() - started < 3
        assert len(server.requests) == 1
    finally:
        stopping = time.monotonic()
        server.stop()
        assert time.monotonic() - stopping < 1.0


def test_malformed_json_body_raises_internal_server_error(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(malformed())
    with pytest.raises(litellm.InternalServerError, match="Expecting value"):
        complete(litellm, server, **NO_RETRIES)
    assert len(server.requests) == 1


def test_malformed_stream_fails_while_iterating(litellm: ModuleType, server: FakeOpenAI) -> None:
    from litellm.exceptions import MidStreamFallbackError  # not exported as litellm.MidStreamFallbackError

    server.script(malformed())
    stream = complete(litellm, server, stream=True, **NO_RETRIES)  # the 200 headers were fine
    got = []
    with pytest.raises(MidStreamFallbackError, match="Expecting value"):
        for chunk in stream:
            got.append(chunk)
    assert got == []
    assert issubclass(MidStreamFallbackError, litellm.ServiceUnavailableError)


def test_cut_stream_yields_the_first_chunks_then_raises(litellm: ModuleType, server: FakeOpenAI) -> None:
    from litellm.exceptions import MidStreamFallbackError

    server.script(cut_stream(2))
    stream = complete(litellm, server, stream=True, **NO_RETRIES)
    pieces = []
    with pytest.raises(MidStreamFallbackError, match="incomplete chunked read"):
        for chunk in stream:
            pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["", "This ", "reply "]  # role delta, then exactly two content chunks
    assert len(server.requests) == 1  # a broken stream is never retried


def test_cut_body_without_streaming_is_a_connection_error(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(cut_stream())
    with pytest.raises(litellm.InternalServerError, match="Connection error"):
        complete(litellm, server, **NO_RETRIES)
    assert len(server.requests) == 1


def test_script_exhausted_is_a_500_and_still_recorded(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(text("only one"))
    assert complete(litellm, server).choices[0].message.content == "only one"
    with pytest.raises(litellm.InternalServerError, match="fake server: script exhausted"):
        complete(litellm, server, messages=[{"role": "user", "content": "again"}], **NO_RETRIES)
    assert len(server.requests) == 2
    assert server.requests[1]["messages"] == [{"role": "user", "content": "again"}]
    server.default = text("fallback")
    assert complete(litellm, server).choices[0].message.content == "fallback"
    assert complete(litellm, server).choices[0].message.content == "fallback"


# --------------------------------------------------------------------------- raw HTTP


def test_raw_stream_wire_format(server: FakeOpenAI) -> None:
    server.script(text("one two three"), text("again"))
    body = {"model": "fake-model", "messages": MESSAGES, "stream": True}
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", body)
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    data = sse_data(resp.read())
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["one ", "two ", "three"]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in c for c in chunks)  # no usage unless asked for

    # The same keep-alive connection serves the next request; this one asks for usage.
    conn.request("POST", "/v1/chat/completions", json.dumps(body | {"stream_options": {"include_usage": True}}))
    data = sse_data(conn.getresponse().read())
    usage_chunk = json.loads(data[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert all(json.loads(d)["usage"] is None for d in data[:-2])
    conn.close()


def test_raw_non_streaming_shape(server: FakeOpenAI) -> None:
    server.script(tool_calls(("read_file", {"path": "x"})))
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"model": "m", "messages": MESSAGES})
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    completion = json.loads(resp.read())
    conn.close()
    assert completion["object"] == "chat.completion" and completion["model"] == "m"
    message = completion["choices"][0]["message"]
    assert message["role"] == "assistant" and message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "x"}'}}
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_raw_routes(server: FakeOpenAI) -> None:
    conn, resp = raw_request(server, "GET", "/v1/models")
    assert resp.status == 200
    assert "fake-model" in [m["id"] for m in json.loads(resp.read())["data"]]
    conn.close()
    server.script(text("a"), text("b"))
    for path, expected in (("/chat/completions", "a"), ("/some/prefix/chat/completions?x=1", "b")):
        conn, resp = raw_request(server, "POST", path, {"model": "fake-model", "messages": MESSAGES})
        assert json.loads(resp.read())["choices"][0]["message"]["content"] == expected
        conn.close()
    conn, resp = raw_request(server, "POST", "/v1/embeddings", {"input": "x"})
    assert resp.status == 404 and "error" in json.loads(resp.read())
    conn.close()
    assert len(server.requests) == 2  # only chat requests are recorded
    assert server.headers[0]["Authorization"] == "Bearer sk-raw"


def test_raw_status_reply_shape_and_retry_after(server: FakeOpenAI) -> None:
    server.script(status(429, "slow down", retry_after=2), status(429, retry_after=0.5), status(500))
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
    assert resp.status == 429 and resp.getheader("Retry-After") == "2"
    assert json.loads(resp.read()) == {
        "error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    conn.close()
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
    assert resp.getheader("Retry-After") == "0.5"
    assert json.loads(resp.read())["error"]["message"] == "fake server: Too Many Requests"
    conn.close()
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
    assert resp.status == 500 and resp.getheader("Retry-After") is None
    assert json.loads(resp.read())["error"]["type"] == "server_error"
    conn.close()


def test_raw_exhausted_script(server: FakeOpenAI) -> None:
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES, "stream": True})
    assert resp.status == 500
    assert "fake server: script exhausted" in json.loads(resp.read())["error"]["message"]
    conn.close()
    assert server.requests == [{"messages": MESSAGES, "stream": True}]


@pytest.mark.parametrize("stream", [False, True])
def test_raw_malformed(server: FakeOpenAI, stream: bool) -> None:
    server.script(malformed())
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES, "stream": stream})
    assert resp.status == 200
    payload = resp.read()
    conn.close()
    if stream:
        data = sse_data(payload)
        assert data[-1] == "[DONE]"
        with pytest.raises(json.JSONDecodeError):
            json.loads(data[0])
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(payload)


def test_raw_cut_stream(server: FakeOpenAI) -> None:
    server.script(cut_stream(3, content="alpha beta gamma delta"), cut_stream())
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES, "stream": True})
    with pytest.raises(http.client.IncompleteRead) as caught:
        resp.read()
    conn.close()
    data = sse_data(caught.value.partial)
    assert "[DONE]" not in data
    chunks = [json.loads(d) for d in data]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "alpha ", "beta ", "gamma "]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)

    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
    with pytest.raises(http.client.IncompleteRead) as caught:
        resp.read()
    conn.close()
    assert 0 < len(caught.value.partial) < int(resp.getheader("Content-Length"))


def test_hang_closes_without_answering_after_its_time(server: FakeOpenAI) -> None:
    server.script(hang(0.2))
    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
    assert 0.2 <= time.monotonic() - started < 2


def test_requests_are_recorded_before_the_reply_and_stop_releases_a_hang() -> None:
    server = FakeOpenAI(hang(60)).start()
    outcome: list[BaseException] = []

    def client() -> None:
        try:
            raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES}, timeout=30)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        server.wait_for_requests(1, timeout=5)  # recorded while the reply is still hanging
        assert server.requests == [{"messages": MESSAGES}]
    finally:
        started = time.monotonic()
        server.stop()
        thread.join(5)
        assert time.monotonic() - started < 1.0
    assert [type(e) for e in outcome] == [http.client.RemoteDisconnected]


def test_wait_for_requests_times_out_with_an_assertion(server: FakeOpenAI) -> None:
    with pytest.raises(AssertionError, match="expected 1 chat request"):
        server.wait_for_requests(1, timeout=0.05)


def test_concurrent_requests_each_consume_one_reply(server: FakeOpenAI) -> None:
    server.script(*(text(f"reply {i}") for i in range(8)))
    answers: list[str] = []

    def client() -> None:
        conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
        answers.append(json.loads(resp.read())["choices"][0]["message"]["content"])
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(answers) == [f"reply {i}" for i in range(8)]
    server.wait_for_requests(8, timeout=1)
    assert server.pending == 0


def test_chunk_delay_spaces_streamed_chunks(litellm: ModuleType, server: FakeOpenAI) -> None:
    server.script(text("one two three", chunk_delay=0.1),
                  tool_calls(("read_file", {"path": "a.py"}), content="Reading", chunk_delay=0.05),
                  text("one two three"))
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    for chunk in complete(litellm, server, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.monotonic(), chunk.choices[0].delta.content))
    assert "".join(piece for _, piece in arrivals) == "one two three"  # the same pieces, only slower
    gaps = [later - earlier for (earlier, _), (later, _) in zip(arrivals, arrivals[1:])]
    assert len(gaps) == 2 and all(gap >= 0.08 for gap in gaps), gaps
    assert time.monotonic() - started >= 0.35  # three words and the finish chunk, 0.1 s before each

    started = time.monotonic()
    chunks = list(complete(litellm, server, stream=True, **TOOL_KWARGS))
    # one word, the call's head, its three argument pieces and the finish chunk: six waits of 0.05 s
    assert time.monotonic() - started >= 0.25
    calls = litellm.stream_chunk_builder(chunks, messages=MESSAGES).choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("read_file", {"path": "a.py"})]

    started = time.monotonic()
    assert complete(litellm, server, stream=True) is not None
    assert time.monotonic() - started < 0.3  # no delay unless asked for


def test_chunk_delay_is_ignored_without_streaming_and_checked(server: FakeOpenAI) -> None:
    assert text("x").chunk_delay == 0.0 and tool_calls(("list_files", {})).chunk_delay == 0.0
    with pytest.raises(ValueError, match="chunk_delay"):
        text("x", chunk_delay=-1)
    with pytest.raises(ValueError, match="chunk_delay"):
        tool_calls(("list_files", {}), chunk_delay=float("nan"))
    server.script(text("a b c d e f", chunk_delay=1.0))
    started = time.monotonic()
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
    assert json.loads(resp.read())["choices"][0]["message"]["content"] == "a b c d e f"
    conn.close()
    assert time.monotonic() - started < 0.5


def test_stop_cuts_a_slow_stream_promptly() -> None:
    server = FakeOpenAI(text("word " * 100, chunk_delay=0.5)).start()
    conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES, "stream": True})
    assert resp.status == 200
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()
    conn.close()


def test_stop_closes_idle_keep_alive_connections() -> None:
    with FakeOpenAI(text("x")) as server:
        conn, resp = raw_request(server, "POST", "/v1/chat/completions", {"messages": MESSAGES})
        resp.read()  # the connection stays open (keep-alive) after this
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    assert server._live == {}  # every handler thread finished
    conn.close()
