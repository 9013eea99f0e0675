"""The proxy's HTTP/1.1 transport against a real socket server on 127.0.0.1, scripted per
connection: keep-alive reuse, a connection the server closed while idle, a streamed body,
a body left unread, a server that hangs up, nobody listening."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from mcp_client_auth.proxy.keepalive import KeepAliveTransport
from mcp_client_auth.proxy.session import ProxyOptions, make_client
from mcp_client_auth.proxy_env import environment_names_a_proxy

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (its content-length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


def answer(body: bytes, *, close: bool = False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Server:
    """Counts connections; each is handled by ``script(reader, writer, number)``."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer, self.connections)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/mcp"

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=KeepAliveTransport()) as client:
        yield client


async def test_requests_share_one_kept_alive_connection(client: httpx.AsyncClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            request = await read_request(reader)
            writer.write(answer(request.rsplit(b"\r\n\r\n", 1)[1].upper()))

    server = Server(script)
    async with server as url:
        for text in (b"one", b"two", b"three"):
            response = await client.post(url, content=text, headers={"x-test": "kept"})
            assert response.status_code == 200
            assert response.content == text.upper()
    assert server.connections == 1


async def test_a_connection_idle_too_long_is_not_reused(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection dropped without a word (a middlebox's idle timeout) looks alive; after
    the expiry it is not trusted with a POST."""
    from mcp_client_auth.proxy import keepalive

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"ok"))

    server = Server(script)
    async with server as url:
        assert (await client.post(url, content=b"a")).content == b"ok"
        monkeypatch.setattr(keepalive, "KEEPALIVE_EXPIRY", 0.0)  # it has been idle too long
        assert (await client.post(url, content=b"b")).content == b"ok"
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()  # then hang up without saying so (a keep-alive timeout)

    server = Server(script)
    async with server as url:
        assert (await client.post(url, content=b"a")).content == b"ok"
        assert (await client.post(url, content=b"b")).content == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_connection_closed_under_a_request_resends_only_what_is_safe(
    method: str, client: httpx.AsyncClient
) -> None:
    """The server reads the second request, then hangs up: a GET goes again on a new
    connection; a POST does not (the server may have acted on it)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        if n == 1:
            await read_request(reader)

    server = Server(script)
    async with server as url:
        assert (await client.request(method, url)).content == b"ok"
        if method == "GET":
            assert (await client.request(method, url)).content == b"ok"
            assert server.connections == 2
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.request(method, url)
            assert server.connections == 1


async def test_https_with_the_servers_certificate_checked() -> None:
    import trustme

    authority = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_side)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"over tls"))

    server = Server(script, tls=server_side)
    async with server as url:
        async with httpx.AsyncClient(transport=KeepAliveTransport(trusting)) as client:
            for _ in range(2):
                assert (await client.post(url, content=b"x")).content == b"over tls"
        async with httpx.AsyncClient(transport=KeepAliveTransport()) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.post(url, content=b"x")  # the system's CAs do not know it
    assert server.connections == 1  # both over one connection; the refused one never got in


async def test_a_streamed_body_arrives_as_it_is_sent(client: httpx.AsyncClient) -> None:
    second_part = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await second_part.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await read_request(reader)
        writer.write(answer(b"again"))
        await writer.drain()

    server = Server(script)
    async with server as url:
        async with client.stream("POST", url, content=b"x") as response:
            chunks = response.aiter_bytes()
            assert await chunks.__anext__() == b"first"  # before the server sent the rest
            second_part.set()
            assert b"".join([c async for c in chunks]) == b"second"
        assert (await client.post(url, content=b"y")).content == b"again"
    assert server.connections == 1  # read to its end: the connection went back to the pool


async def test_a_body_left_unread_closes_its_connection(client: httpx.AsyncClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
            await writer.drain()

    server = Server(script)
    async with server as url:
        for _ in range(2):
            async with client.stream("POST", url, content=b"x") as response:
                assert await response.aiter_bytes().__anext__() == b"hi"
    assert server.connections == 2  # the next answer would have come after this one's rest


async def test_bytes_after_an_answer_are_never_read_as_the_next_answer(
    client: httpx.AsyncClient,
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"first %d" % n) + answer(b"unasked for"))
            await writer.drain()

    server = Server(script)
    async with server as url:
        assert (await client.post(url, content=b"a")).content == b"first 1"
        assert (await client.post(url, content=b"b")).content == b"first 2"
    assert server.connections == 2


async def test_an_answer_sent_while_the_connection_was_idle_is_never_read_as_the_next(
    client: httpx.AsyncClient,
) -> None:
    """An answer nobody asked for, sent after the last one ended: the idle connection has
    bytes waiting, and is not reused (they would be read as the next request's answer)."""
    asked = asyncio.Event()
    sent = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(answer(b"first %d" % n))
        if n == 1:
            await asked.wait()
            writer.write(answer(b"unasked for"))
            await writer.drain()
            sent.set()
        while True:
            await read_request(reader)
            writer.write(answer(b"next %d" % n))

    server = Server(script)
    async with server as url:
        assert (await client.post(url, content=b"a")).content == b"first 1"
        asked.set()
        await sent.wait()
        for _ in range(10):  # turns of the loop, each polling the sockets: the bytes arrive
            await asyncio.sleep(0)
        assert (await client.post(url, content=b"b")).content == b"first 2"
    assert server.connections == 2


async def test_a_switch_of_protocols_is_a_protocol_error(client: httpx.AsyncClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n"
        )
        await writer.drain()
        await reader.read()

    async with Server(script) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=b"x")


async def test_a_server_that_hangs_up_is_a_protocol_error(client: httpx.AsyncClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)

    async with Server(script) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=b"x")


async def test_a_malformed_answer_is_a_protocol_error(client: httpx.AsyncClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async with Server(script) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=b"x")


async def test_nobody_listening_is_a_connect_error(client: httpx.AsyncClient) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await client.post(f"http://127.0.0.1:{port}/mcp", content=b"x")


async def test_only_http_and_https(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        await client.get("ftp://127.0.0.1/x")


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_proxy_in_the_environment_is_used(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx's own transport then: the proxy variables keep their exact httpx meaning."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert not environment_names_a_proxy()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        server.requests.append(await read_request(reader))
        writer.write(answer(b"via the proxy"))
        await writer.drain()

    server = Server(script)
    async with server as proxy_url:
        monkeypatch.setenv(variable, proxy_url.removesuffix("/mcp"))
        assert environment_names_a_proxy()
        options = ProxyOptions(url="http://mcp.invalid/mcp", allow_http=True)
        async with make_client(options, None) as client:
            response = await client.post(options.url, content=b"x")
    assert response.content == b"via the proxy"
    assert server.requests[0].startswith(b"POST http://mcp.invalid/mcp HTTP/1.1")


async def test_an_international_host_is_dialled_by_its_own_ascii_name(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name the URL means (IDNA 2008, as httpx encodes it for the Host header), not what
    the socket layer's older codec makes of the Unicode text: ``straße`` is ``xn--strae-oqa``
    there and ``strasse`` (another owner's domain) here, where the token would go."""
    dialled: list[tuple[object, object]] = []

    async def recording(host: str, port: int, **keywords: object) -> None:
        dialled.append((host, keywords.get("server_hostname")))
        raise OSError("no network in this test")

    monkeypatch.setattr(asyncio, "open_connection", recording)
    with pytest.raises(httpx.ConnectError):
        await client.get("https://straße.de/mcp")
    assert dialled == [("xn--strae-oqa.de", "xn--strae-oqa.de")]


@pytest.mark.parametrize("transport", [KeepAliveTransport, httpx.AsyncHTTPTransport])
async def test_a_request_h11_will_not_send_is_httpxs_local_protocol_error(
    transport: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    """As httpx's own transport says it, so that callers catching httpx's transport errors
    catch it (the relay answers the host with an error instead of stopping)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.read()

    async with Server(script) as url, httpx.AsyncClient(transport=transport()) as client:
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(url, headers={"x-split": "a\nb"})


async def test_a_trusted_certificate_for_another_name_is_refused() -> None:
    """The certificate is checked against the host the URL names, not only its issuer."""
    import trustme

    authority = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("mcp.example.com").configure_cert(server_side)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(answer(b"should not be read"))

    client = httpx.AsyncClient(transport=KeepAliveTransport(trusting))
    async with Server(script, tls=server_side) as url, client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.post(url, content=b"x")


@pytest.mark.parametrize("transport", [KeepAliveTransport, httpx.AsyncHTTPTransport])
@pytest.mark.parametrize(("size", "read"), [(80 * 1024, True), (1024 * 1024, False)])
async def test_a_large_header_is_read_as_httpx_reads_it_and_a_huge_one_refused(
    transport: Callable[[], httpx.AsyncBaseTransport], size: int, read: bool
) -> None:
    """A header of tens of KiB (big cookies, a long challenge) passes, as through httpx's own
    transport, which the proxy used before; a head that keeps growing is a protocol error,
    not memory spent."""
    head = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * size + b"\r\ncontent-length: 2\r\n\r\nok"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(head)
        await writer.drain()

    async with Server(script) as url, httpx.AsyncClient(transport=transport()) as client:
        if read:
            response = await client.get(url)
            assert (response.content, len(response.headers["x-big"])) == (b"ok", size)
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(url)
