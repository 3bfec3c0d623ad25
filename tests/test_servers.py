"""create_server / create_connection / Unix sockets / Server objects / sock_*: the options
the networking issue names, each on both loops."""

import asyncio
import pathlib
import socket
import ssl
import sys

import pytest

TIMEOUT = 30


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_once(loop, connect, payload=b"ping"):
    reader, writer = await connect()
    writer.write(payload)
    reply = await reader.readexactly(len(payload))
    writer.close()
    await writer.wait_closed()
    return reply


def test_server_object_lifecycle(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False,
                                          reuse_address=True, backlog=10)
        assert server.get_loop() is loop
        assert not server.is_serving()
        await server.start_serving()
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        reply = await echo_once(loop, lambda: asyncio.open_connection("127.0.0.1", port))
        async with server:
            pass
        assert not server.is_serving()
        await server.wait_closed()
        return reply, server.sockets

    reply, sockets = run(loop, main())
    assert reply == b"ping"
    assert list(sockets) == []


@pytest.mark.parametrize("backlog", [0, -5])
def test_a_backlog_of_zero_or_less_is_taken(loop, loop_name, backlog):
    # listen() takes it on both loops. asyncio's accept loop then runs range(backlog)
    # times (3.14: backlog + 1) and accepts nothing when that is empty; ferroloop accepts
    # one connection per readiness.
    batch = backlog + (1 if sys.version_info >= (3, 14) else 0)

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=backlog)
        port = server.sockets[0].getsockname()[1]
        if loop_name == "ferroloop" or batch > 0:
            reply = await echo_once(loop, lambda: asyncio.open_connection("127.0.0.1", port))
        else:
            reply = b"ping"
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"ping"


def test_serve_forever_is_cancelled_by_close(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        assert server.is_serving()
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.wait_closed()

    run(loop, main())


def test_create_server_on_a_host_list_and_with_reuse_port(loop):
    async def main():
        server = await loop.create_server(Echo, ["127.0.0.1"], 0, reuse_port=True,
                                          family=socket.AF_INET)
        port = server.sockets[0].getsockname()[1]
        reply = await echo_once(loop, lambda: asyncio.open_connection("127.0.0.1", port))
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"ping"


def test_create_server_and_connection_with_sock(loop):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        server = await loop.create_server(Echo, sock=listener)
        port = listener.getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        reply = await echo_once(loop, lambda: asyncio.open_connection(sock=sock))
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"ping"


def test_create_connection_options(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        kwargs = {"local_addr": ("127.0.0.1", 0), "happy_eyeballs_delay": 0.25,
                  "interleave": 1}
        if sys.version_info >= (3, 12):
            kwargs["all_errors"] = True
        reply = await echo_once(
            loop, lambda: asyncio.open_connection("localhost", port, **kwargs))
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"ping"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="all_errors is new in 3.12")
def test_all_errors_raises_an_exception_group(loop):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ExceptionGroup) as info:
        run(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", port, all_errors=True))
    assert info.group_contains(ConnectionRefusedError)


def test_unix_server_with_a_path_object_and_the_abstract_namespace(loop, tmp_path):
    async def main():
        path = pathlib.Path(tmp_path) / "echo.sock"
        server = await loop.create_unix_server(Echo, path)
        first = await echo_once(loop, lambda: asyncio.open_unix_connection(path))
        server.close()
        await server.wait_closed()

        abstract = f"\0ferroloop-test-{id(loop)}"
        server = await loop.create_unix_server(Echo, abstract)
        second = await echo_once(loop, lambda: asyncio.open_unix_connection(abstract))
        server.close()
        await server.wait_closed()
        return first, second

    assert run(loop, main()) == (b"ping", b"ping")


def test_connect_accepted_socket(loop):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        listener.close()
        conn.setblocking(False)
        transport, proto = await loop.connect_accepted_socket(Echo, conn)
        assert isinstance(transport, asyncio.Transport)
        client.setblocking(False)
        await loop.sock_sendall(client, b"accepted")
        reply = await loop.sock_recv(client, 100)
        transport.close()
        client.close()
        await asyncio.sleep(0)
        return reply

    assert run(loop, main()) == b"accepted"


def test_ssl_arguments_are_validated_as_asyncio_does(loop):
    async def main():
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                         ssl_handshake_timeout=1)
        with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                         server_hostname="x")
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl_handshake_timeout=1)
        with pytest.raises(TypeError, match="ssl argument must be an SSLContext or None"):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True)

    run(loop, main())


def test_tls_round_trip(loop, tmp_path):
    # The TLS path runs asyncio's SSLProtocol over ferroloop's native transport.
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reply = await echo_once(loop, lambda: asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"))
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"ping"


@pytest.mark.skipif(sys.version_info < (3, 13), reason="keep_alive and close_clients are 3.13")
def test_keep_alive_and_close_clients(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, keep_alive=True)
        port = server.sockets[0].getsockname()[1]
        readers = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            await reader.readexactly(1)
            readers.append((reader, writer))
        server.close()
        server.close_clients()
        eofs = [await reader.read() for reader, _ in readers]
        for _, writer in readers:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()
        return eofs

    assert run(loop, main()) == [b"", b"", b""]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="abort_clients is 3.13")
def test_abort_clients(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        await reader.readexactly(1)
        server.close()
        server.abort_clients()
        tail = await reader.read()
        writer.close()
        await writer.wait_closed()
        await server.wait_closed()
        return tail

    assert run(loop, main()) == b""


def test_sock_methods_refuse_blocking_sockets_in_debug_mode(loop):
    # asyncio checks (and so raises) only in debug mode.
    loop.set_debug(True)

    async def main():
        a, b = socket.socketpair()
        try:
            for call in (lambda: loop.sock_recv(a, 1), lambda: loop.sock_sendall(a, b"x"),
                         lambda: loop.sock_recv_into(a, bytearray(1))):
                with pytest.raises(ValueError, match="the socket must be non-blocking"):
                    await call()
        finally:
            a.close()
            b.close()

    run(loop, main())


def test_sock_datagram_methods(loop):
    async def main():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.bind(("127.0.0.1", 0))
            tx.bind(("127.0.0.1", 0))
            rx.setblocking(False)
            tx.setblocking(False)
            await loop.sock_sendto(tx, b"datagram", rx.getsockname())
            data, addr = await loop.sock_recvfrom(rx, 100)
            await loop.sock_sendto(tx, b"again", rx.getsockname())
            buf = bytearray(10)
            n, _ = await loop.sock_recvfrom_into(rx, buf)
            return data, addr == tx.getsockname(), bytes(buf[:n])
        finally:
            rx.close()
            tx.close()

    assert run(loop, main()) == (b"datagram", True, b"again")


def test_getaddrinfo_and_getnameinfo_match_the_socket_module(loop):
    async def main():
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        named = await loop.getaddrinfo("localhost", "80", family=socket.AF_INET)
        name = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)
        return infos, named, name

    infos, named, name = run(loop, main())
    assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert named == socket.getaddrinfo("localhost", "80", family=socket.AF_INET)
    assert name == socket.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)


def test_numeric_getaddrinfo_skips_the_executor_on_ferroloop(loop, loop_name):
    import concurrent.futures

    class Refusing(concurrent.futures.ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise AssertionError("a numeric host needs no executor")

    async def main():
        loop.set_default_executor(Refusing())
        results = []
        for host, port in (("127.0.0.1", 80), ("::1", "443"), (None, 0), (b"10.0.0.1", None)):
            results.append(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        return results

    if loop_name == "asyncio":
        pytest.skip("the stdlib loop always resolves through the executor")
    results = run(loop, main())
    assert results[0] == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert results[1] == socket.getaddrinfo("::1", "443", type=socket.SOCK_STREAM)
    assert results[2] == socket.getaddrinfo(None, 0, type=socket.SOCK_STREAM)
    assert results[3] == socket.getaddrinfo(b"10.0.0.1", None, type=socket.SOCK_STREAM)
