"""The relay against servers that answer oddly or with hostility (httpx MockTransport): an
answer for every host request whatever the server does, nothing but JSON-RPC lines on stdout,
a session the server lost started again the way the spec says."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from mcp_client_auth.proxy import jsonrpc
from mcp_client_auth.proxy.connect import Connector
from mcp_client_auth.proxy.relay import Relay
from mcp_client_auth.proxy.stdio import HostOutput

URL = "https://mcp.example.com/mcp"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "h"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
Handler = Callable[[httpx.Request], httpx.Response]


def run_host(handler: Handler, lines: list[bytes], transport: str = "http-only") -> list[Any]:
    """Feed ``lines`` to a relay whose server is ``handler``; every line it wrote, parsed."""
    written = run_host_raw(handler, lines, transport).split(b"\n")
    assert written[-1] == b""  # every message ends its line
    return [json.loads(line) for line in written[:-1]]


def run_host_raw(handler: Handler, lines: list[bytes], transport: str = "http-only") -> bytes:
    """Feed ``lines`` to a relay whose server is ``handler``; what it wrote to stdout."""
    out = io.BytesIO()

    async def main() -> None:
        async def feed() -> Any:
            for line in lines:
                yield line
                await asyncio.sleep(0)

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with client:
            output = HostOutput(out)
            choice: Any = transport
            connector = Connector(URL, client, output.send, headers={}, choice=choice)
            relay = Relay(connector, output, url=URL, login_hint="To sign in, run `x`")
            await relay.run(feed())

    asyncio.run(main())
    return out.getvalue()


def line(message: Any) -> bytes:
    return json.dumps(message).encode()


def sse(*events: str) -> bytes:
    return "".join(f"{e}\n\n" for e in events).encode()


def answer(request: httpx.Request, result: Any, session: str | None = "s1") -> httpx.Response:
    message = json.loads(request.content)
    headers = {"mcp-session-id": session} if session else {}
    body = {"jsonrpc": "2.0", "id": message["id"], "result": result}
    return httpx.Response(200, json=body, headers=headers)


def test_a_lost_session_is_started_again_and_the_request_resent() -> None:
    seen: list[tuple[str | None, str]] = []
    sessions = iter(["s1", "s2"])

    def server(request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return httpx.Response(405)  # no stream of its own; no DELETE
        message = json.loads(request.content)
        method = message.get("method", "")
        seen.append((request.headers.get("mcp-session-id"), method))
        if method == "initialize":
            return answer(request, {"protocolVersion": "2025-06-18"}, next(sessions))
        if "id" not in message:
            return httpx.Response(202)
        if request.headers.get("mcp-session-id") == "s1" and len(seen) > 3:
            return httpx.Response(404)
        return answer(request, {"tools": []})

    ids = [1, 2]
    lines = [line(INIT), line(INITIALIZED)] + [
        line({"jsonrpc": "2.0", "id": i, "method": "tools/list"}) for i in ids
    ]
    got = run_host(server, lines)
    assert [m["id"] for m in got] == [0, 1, 2]  # the replayed initialize's answer stays
    assert all("result" in m for m in got)
    assert (None, "initialize") in seen[3:]  # a new session, without the old id
    assert seen[-1] == ("s2", "tools/list")


def test_a_session_that_cannot_be_renewed_is_an_error_not_a_hang() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        message = json.loads(request.content) if request.content else {}
        if message.get("method") == "initialize" and "mcp-session-id" not in request.headers:
            if message["id"] != 0:
                return httpx.Response(500)
            return answer(request, {"protocolVersion": "2025-06-18"})
        return httpx.Response(404) if "id" in message else httpx.Response(202)

    got = run_host(server, [line(INIT), line({"jsonrpc": "2.0", "id": 1, "method": "ping"})])
    assert got[1]["id"] == 1 and got[1]["error"]["code"] < 0


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (httpx.Response(202), jsonrpc.TRANSPORT_ERROR),
        (httpx.Response(200, text="<html>", headers={"content-type": "text/html"}), -32003),
        (
            httpx.Response(200, text="{not json", headers={"content-type": "application/json"}),
            -32003,
        ),
        (httpx.Response(500, text="oops"), jsonrpc.TRANSPORT_ERROR),
        (
            httpx.Response(
                200, content=sse("data: 1"), headers={"content-type": "text/event-stream"}
            ),
            -32003,
        ),
    ],
)
def test_every_odd_answer_is_an_error_for_the_request(response: httpx.Response, code: int) -> None:
    got = run_host(lambda _: response, [line({"jsonrpc": "2.0", "id": 7, "method": "ping"})])
    assert len(got) == 1 and got[0]["id"] == 7 and got[0]["error"]["code"] == code


def test_the_servers_json_rpc_error_keeps_the_hosts_id() -> None:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32602, "message": "bad params"}}
    got = run_host(
        lambda _: httpx.Response(400, json=body),
        [line({"jsonrpc": "2.0", "id": "a", "method": "tools/call"})],
    )
    assert got == [{"jsonrpc": "2.0", "id": "a", "error": body["error"]}]


def test_sse_events_become_one_line_each_in_order() -> None:
    pretty = json.dumps({"jsonrpc": "2.0", "method": "notifications/progress"}, indent=2)
    stream = sse(
        ": a comment",
        "id: 1\ndata: " + "\ndata: ".join(pretty.splitlines()),
        "event: message\ndata: not json at all",
        'data: {"jsonrpc":"2.0","id":3,"result":{"text":"a\\nb"}}',
        'data: {"jsonrpc":"2.0","id":99,"result":{}}',  # after the answer: not read
    )
    got = run_host(
        lambda _: httpx.Response(
            200, content=stream, headers={"content-type": "text/event-stream"}
        ),
        [line({"jsonrpc": "2.0", "id": 3, "method": "tools/call"})],
    )
    assert got == [
        {"jsonrpc": "2.0", "method": "notifications/progress"},
        {"jsonrpc": "2.0", "id": 3, "result": {"text": "a\nb"}},
    ]


def test_malformed_host_lines_get_parse_errors_and_the_relay_goes_on() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return answer(request, {}, None)

    got = run_host(
        server,
        [
            b"nope",
            b"",
            b"   ",
            b"[1, 2]",
            b'{"a": NaN}',
            b"[]",
            line({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        ],
    )
    assert [m["error"]["code"] for m in got[:4]] == [-32700, -32600, -32700, -32600]
    assert got[4] == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_a_batch_is_relayed_as_one_post_and_answered_as_one_line() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        batch = json.loads(request.content)
        return httpx.Response(
            200, json=[{"jsonrpc": "2.0", "id": m["id"], "result": {}} for m in batch]
        )

    batch = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in (1, 2)]
    got = run_host(server, [line(batch)])
    assert got == [
        [{"jsonrpc": "2.0", "id": 1, "result": {}}, {"jsonrpc": "2.0", "id": 2, "result": {}}]
    ]


def test_stateless_revision_headers_mirror_the_body() -> None:
    seen: list[httpx.Headers] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return answer(request, {}, None)

    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "ünïcode tool",
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        },
    }
    run_host(server, [line(call)])
    assert seen[0]["mcp-protocol-version"] == "2026-07-28"
    assert seen[0]["mcp-method"] == "tools/call"
    assert seen[0]["mcp-name"].startswith("=?base64?")
    assert "mcp-session-id" not in seen[0]


@pytest.mark.parametrize("probe_first", [False, True])
def test_http_first_falls_back_to_legacy_sse(probe_first: bool) -> None:
    """Also for a host whose client probes ``server/discover`` before ``initialize``: the
    probe fails on streamable HTTP, and the handshake after it is what picks the transport."""
    posted: list[Any] = []
    endpoint_stream = sse("event: endpoint\ndata: /mcp/messages?session=abc")

    class Legacy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path == "/mcp":
                return httpx.Response(405)
            if request.method == "GET":

                async def body() -> Any:
                    yield endpoint_stream
                    while not posted:
                        await asyncio.sleep(0.01)
                    reply = {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2024-11-05"}}
                    yield sse(f"event: message\ndata: {json.dumps(reply)}")

                return httpx.Response(
                    200, content=body(), headers={"content-type": "text/event-stream"}
                )
            posted.append((str(request.url), json.loads(await request.aread())))
            return httpx.Response(202)

    out = io.BytesIO()

    async def main() -> None:
        async def feed() -> Any:
            if probe_first:
                yield line({"jsonrpc": "2.0", "id": "probe", "method": "server/discover"})
                for _ in range(2000):  # the probe's answer first, as the client waits for it
                    if out.getvalue():
                        break
                    await asyncio.sleep(0.01)
            yield line(INIT)

        async with httpx.AsyncClient(transport=Legacy()) as client:
            output = HostOutput(out)
            connector = Connector(URL, client, output.send, headers={}, choice="http-first")
            await Relay(connector, output, url=URL, login_hint="").run(feed())

    asyncio.run(main())
    assert [url for url, _ in posted] == ["https://mcp.example.com/mcp/messages?session=abc"]
    answers = [json.loads(written) for written in out.getvalue().splitlines()]
    assert answers[-1]["result"]["protocolVersion"] == "2024-11-05"
    if probe_first:
        assert answers[0]["id"] == "probe" and "405" in answers[0]["error"]["message"]


def test_a_slow_request_does_not_hold_up_the_next_one() -> None:
    """The first request's answer waits until the second request has reached the server: a
    relay that sent them one after the other would never answer either."""
    out = io.BytesIO()

    class Server(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.second_arrived = asyncio.Event()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            message = json.loads(await request.aread())
            if message["id"] == 1:
                await asyncio.wait_for(self.second_arrived.wait(), 60)
            else:
                self.second_arrived.set()
            reply = {"jsonrpc": "2.0", "id": message["id"], "result": {}}
            return httpx.Response(200, json=reply)

    async def main() -> None:
        async def feed() -> Any:
            for request_id in (1, 2):
                yield line({"jsonrpc": "2.0", "id": request_id, "method": "tools/call"})
            await asyncio.sleep(0)

        async with httpx.AsyncClient(transport=Server()) as client:
            output = HostOutput(out)
            connector = Connector(URL, client, output.send, headers={})
            relay = Relay(connector, output, url=URL, login_hint="")
            lines = feed()
            task = asyncio.ensure_future(relay.run(_until_answered(lines, out, 2)))
            await asyncio.wait_for(task, 60)

    asyncio.run(main())
    answers = [json.loads(x) for x in out.getvalue().splitlines()]
    assert sorted(a["id"] for a in answers) == [1, 2] and answers[0]["id"] == 2


async def _until_answered(lines: Any, out: io.BytesIO, count: int) -> Any:
    """The host's lines, then stdin held open until ``count`` answers were written (a host
    closes stdin only when it is done)."""
    async for item in lines:
        yield item
    while out.getvalue().count(b"\n") < count:
        await asyncio.sleep(0.01)


def test_a_refusal_after_sign_in_names_the_login_command() -> None:
    got = run_host(
        lambda _: httpx.Response(403), [line({"jsonrpc": "2.0", "id": 1, "method": "x"})]
    )
    assert got[0]["error"]["code"] == jsonrpc.AUTH_FAILED
    assert "To sign in, run `x`" in got[0]["error"]["message"]


def test_stateless_cancellation_closes_the_requests_stream_and_sends_nothing() -> None:
    """In the stateless revision a request is cancelled by closing its stream: the slow
    request's POST is abandoned, the host's cancellation is never POSTed, and the host gets no
    answer for the request it cancelled."""
    posted: list[Any] = []
    out = io.BytesIO()
    meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    slow = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "s", **meta}}
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    after = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": meta}

    class Server(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.closed = asyncio.Event()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            message = json.loads(await request.aread())
            posted.append(message)
            if message.get("id") == 1:
                closed = self.closed

                async def never_answers() -> Any:
                    try:
                        yield b": working\n\n"
                        await asyncio.sleep(60)
                    finally:
                        closed.set()

                return httpx.Response(
                    200, content=never_answers(), headers={"content-type": "text/event-stream"}
                )
            await asyncio.wait_for(self.closed.wait(), 60)  # answered once 1 was abandoned
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": 2, "result": {}})

    async def main() -> None:
        async def feed() -> Any:
            yield line(slow)
            while len(posted) < 1:
                await asyncio.sleep(0.01)
            yield line(cancel)
            yield line(after)

        async with httpx.AsyncClient(transport=Server()) as client:
            output = HostOutput(out)
            connector = Connector(URL, client, output.send, headers={})
            relay = Relay(connector, output, url=URL, login_hint="")
            await asyncio.wait_for(relay.run(_until_answered(feed(), out, 1)), 60)

    asyncio.run(main())
    assert [json.loads(x) for x in out.getvalue().splitlines()] == [
        {"jsonrpc": "2.0", "id": 2, "result": {}}
    ]
    assert [m.get("method") for m in posted] == ["tools/call", "tools/list"]


def test_the_servers_stream_is_reopened_with_last_event_id_after_a_drop() -> None:
    gets: list[httpx.Headers] = []
    out = io.BytesIO()
    note = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}

    def server(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gets.append(request.headers)
            stream = sse(f"id: e{len(gets)}\nretry: 10\ndata: {json.dumps(note)}")
            return httpx.Response(
                200, content=stream, headers={"content-type": "text/event-stream"}
            )
        if request.method == "DELETE":
            return httpx.Response(200)
        message = json.loads(request.content)
        if message.get("method") == "initialize":
            return answer(request, {"protocolVersion": "2025-06-18"}, "s1")
        return httpx.Response(202)

    async def main() -> None:
        async def feed() -> Any:
            yield line(INIT)
            yield line(INITIALIZED)

        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            output = HostOutput(out)
            connector = Connector(URL, client, output.send, headers={})
            relay = Relay(connector, output, url=URL, login_hint="")
            await asyncio.wait_for(relay.run(_until_answered(feed(), out, 3)), 60)

    asyncio.run(main())
    got = [json.loads(x) for x in out.getvalue().splitlines()]
    assert got[1:3] == [note, note]
    assert "last-event-id" not in gets[0]
    assert gets[1]["last-event-id"] == "e1" and gets[1]["mcp-session-id"] == "s1"


def test_the_handshake_reaches_the_server_before_the_requests_after_it() -> None:
    order: list[str] = []

    class Server(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            message = json.loads(await request.aread())
            if message.get("method") == "notifications/initialized":
                for _ in range(50):  # a slow answer: the next request must still wait for it
                    await asyncio.sleep(0)
            order.append(message["method"])
            if "id" not in message:
                return httpx.Response(202)
            return answer(request, {"protocolVersion": "2025-06-18"}, "s1")

    out = io.BytesIO()

    async def main() -> None:
        async def feed() -> Any:
            for message in (INIT, INITIALIZED, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}):
                yield line(message)

        async with httpx.AsyncClient(transport=Server()) as client:
            output = HostOutput(out)
            connector = Connector(URL, client, output.send, headers={}, choice="http-only")
            relay = Relay(connector, output, url=URL, login_hint="")
            await asyncio.wait_for(relay.run(_until_answered(feed(), out, 2)), 60)

    asyncio.run(main())
    assert order[:3] == ["initialize", "notifications/initialized", "tools/list"]


def test_each_sse_event_reaches_the_host_before_the_stream_goes_on() -> None:
    """The server sends its answer only once the host has the progress notification: a proxy
    that waited for the whole stream would never answer."""
    out = io.BytesIO()
    progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}

    class Server(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            async def body() -> Any:
                yield sse(f"data: {json.dumps(progress)}")
                for _ in range(6000):
                    if out.getvalue():
                        break
                    await asyncio.sleep(0.01)
                seen = {"jsonrpc": "2.0", "id": 1, "result": {"host_had_it": bool(out.getvalue())}}
                yield sse(f"data: {json.dumps(seen)}")

            return httpx.Response(
                200, content=body(), headers={"content-type": "text/event-stream"}
            )

    async def main() -> None:
        async def feed() -> Any:
            yield line({"jsonrpc": "2.0", "id": 1, "method": "tools/call"})

        async with httpx.AsyncClient(transport=Server()) as client:
            output = HostOutput(out)
            connector = Connector(URL, client, output.send, headers={})
            relay = Relay(connector, output, url=URL, login_hint="")
            await asyncio.wait_for(relay.run(_until_answered(feed(), out, 2)), 60)

    asyncio.run(main())
    assert [json.loads(x) for x in out.getvalue().splitlines()] == [
        progress,
        {"jsonrpc": "2.0", "id": 1, "result": {"host_had_it": True}},
    ]


class ForgetfulLegacyServer(httpx.AsyncBaseTransport):
    """HTTP+SSE: each stream is a new session; the first session is forgotten after its
    ``initialize`` (a restart the proxy's open stream has not noticed), so later POSTs to it
    get 404."""

    def __init__(self) -> None:
        self.sessions: list[asyncio.Queue[Any]] = []
        self.posted: list[tuple[int, Any, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self.sessions.append(queue)
            number = len(self.sessions)

            async def body() -> Any:
                yield sse(f"event: endpoint\ndata: /mcp/messages?session={number}")
                while True:
                    reply = await queue.get()
                    yield sse(f"event: message\ndata: {json.dumps(reply)}")

            return httpx.Response(
                200, content=body(), headers={"content-type": "text/event-stream"}
            )
        number = int(request.url.params["session"])
        message = json.loads(await request.aread())
        self.posted.append((number, message, request.headers.get("x-test")))
        if number == 1 and message.get("method") != "initialize":
            return httpx.Response(404)
        if "id" in message:
            result = {"protocolVersion": "2024-11-05"} if message["method"] == "initialize" else {}
            await self.sessions[number - 1].put(
                {"jsonrpc": "2.0", "id": message["id"], "result": result}
            )
        return httpx.Response(202)


def test_legacy_session_the_server_forgot_is_reopened_and_the_message_retried() -> None:
    server = ForgetfulLegacyServer()
    written: list[Any] = []
    answered = asyncio.Event()

    def emit(message: Any) -> None:
        written.append(message)
        if isinstance(message, dict) and message.get("id") == 1:
            answered.set()

    async def main() -> None:
        async def feed() -> Any:
            for message in (INIT, INITIALIZED, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}):
                yield line(message)
            await asyncio.wait_for(answered.wait(), 30)

        async with httpx.AsyncClient(transport=server) as client:
            output = HostOutput(io.BytesIO())
            output.send = emit  # type: ignore[method-assign]
            connector = Connector(URL, client, emit, headers={"x-test": "kept"}, choice="sse-only")
            await Relay(connector, output, url=URL, login_hint="").run(feed())

    asyncio.run(main())
    assert [m.get("id") for m in written] == [0, 1]  # the replayed handshake stays inside
    assert written[1]["result"] == {}
    assert [(n, m.get("method"), header) for n, m, header in server.posted] == [
        (1, "initialize", "kept"),
        (1, "notifications/initialized", "kept"),  # 404: the server forgot the session
        (2, "initialize", "kept"),  # a new stream, a new session: the handshake replayed
        (2, "notifications/initialized", "kept"),  # once, not again as the retry
        (2, "tools/list", "kept"),
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://elsewhere.example/mcp/messages",  # another host
        "https://mcp.example.com:8443/mcp/messages",  # another port
        "http://mcp.example.com/mcp/messages",  # plain http
        "/messages?session=1",  # beside the stream, as the SDK's default layout
        "/mcpx/messages",  # a prefix, not a path segment
        "/mcp/%2e%2e/admin",  # below /mcp only until the server decodes it
        "/mcp/..%2Fadmin",
        "http://[::1",  # not a URL
    ],
)
def test_a_legacy_endpoint_outside_the_token_is_refused_before_any_post(endpoint: str) -> None:
    posted: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            stream = sse(f"event: endpoint\ndata: {endpoint}")
            return httpx.Response(
                200, content=stream, headers={"content-type": "text/event-stream"}
            )
        posted.append(str(request.url))
        return httpx.Response(202)

    written = run_host(server, [line(INIT)], transport="sse-first")
    assert not posted
    assert [m["id"] for m in written] == [0]
    assert written[0]["error"]["code"] == jsonrpc.TRANSPORT_ERROR
    if "[" not in endpoint:
        named = urljoin(URL, endpoint).split("?")[0]
        assert f"named {named} for the host's messages: refused" in written[0]["error"]["message"]
    else:
        assert "named a messages endpoint that is not a URL" in written[0]["error"]["message"]


def test_messages_pass_byte_for_byte_where_they_are_one_line_of_utf8() -> None:
    """What the proxy only forwards is not written out afresh: the host's own spacing and
    key order reach the server, the server's reach the host; an answer spread over lines,
    or in UTF-16, still reaches the host as one line of UTF-8."""
    posted: list[bytes] = []
    call = b'{ "params" : {"name": "echo"}, "method": "tools/call", "id": 7, "jsonrpc": "2.0" }'
    answers = {
        7: b'{"result": {"text": "caf\\u00e9"}, "jsonrpc": "2.0", "id": 7}',
        8: b'{\n  "jsonrpc": "2.0",\n  "id": 8,\n  "result": {}\n}\n',
        9: '{"jsonrpc": "2.0", "id": 9, "result": {"text": "ü"}}'.encode("utf-16"),
    }

    def server(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        message = json.loads(request.content)
        if message.get("method") == "initialize":
            return answer(request, {"protocolVersion": "2025-06-18"}, session=None)
        if "id" not in message:
            return httpx.Response(202)
        return httpx.Response(
            200, content=answers[message["id"]], headers={"content-type": "application/json"}
        )

    later = [line({"jsonrpc": "2.0", "id": n, "method": "ping"}) for n in (8, 9)]
    out = run_host_raw(server, [line(INIT), line(INITIALIZED), call, *later])
    assert call in posted
    written = out.split(b"\n")
    assert answers[7] in written
    assert {json.loads(w)["id"]: json.loads(w) for w in written if w}[8]["result"] == {}
    utf16 = [w for w in written if b'"id":9' in w]
    assert utf16 and json.loads(utf16[0].decode("utf-8"))["result"] == {"text": "ü"}


def test_an_id_no_utf8_can_carry_still_gets_its_answer() -> None:
    """A lone surrogate in an id (JSON allows the escape; UTF-8 cannot carry the character):
    the proxy's own error still reaches the host, the id written as JSON's escape."""

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    request = b' {"jsonrpc": "2.0", "id": "\\ud800", "method": "ping"}'
    (written,) = run_host(unreachable, [request])
    assert written["id"] == "\ud800"
    assert written["error"]["code"] == -32000


def test_an_event_stream_line_that_never_ends_is_cut_off_at_the_event_limit() -> None:
    """A line without its end is held whole until it ends: the proxy stops reading it once it
    is past the size of the largest event it would take, instead of holding all of it (a
    hostile server could stream one line until the memory runs out)."""
    from mcp_client_auth.proxy.sse import MAX_EVENT_CHARS

    chunk = b"a" * (1024 * 1024)
    sent: list[int] = []

    async def endless_line() -> Any:
        yield b"data: "
        for _ in range(4 * MAX_EVENT_CHARS // len(chunk)):  # stands for "never ends"
            sent.append(len(chunk))
            yield chunk

    response = httpx.Response(
        200, content=endless_line(), headers={"content-type": "text/event-stream"}
    )
    got = run_host(lambda _: response, [line({"jsonrpc": "2.0", "id": 7, "method": "ping"})])
    assert len(got) == 1 and got[0]["id"] == 7 and "error" in got[0]
    assert sum(sent) <= MAX_EVENT_CHARS + 2 * len(chunk)
