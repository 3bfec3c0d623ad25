"""Accepting connections: what a server's protocol factory and transports see, on both
loops. ferroloop accepts natively (src/py/server.rs) where asyncio starts a Task per
connection; these pin down that nothing a user can observe differs."""

import asyncio
import contextvars
import gc
import socket
import warnings

import pytest

from conftest import resource_warnings_collected

TIMEOUT = 30


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


class Recorder(asyncio.Protocol):
    """Keeps the transport and what connection_made saw, and echoes."""

    made = None

    def connection_made(self, transport):
        self.transport = transport
        self.made = asyncio.get_running_loop().create_future()
        self.made.set_result(transport)

    def data_received(self, data):
        self.transport.write(data)


class Accepted(list):
    """The protocols a server's factory has made, in order."""

    def factory(self):
        self.append(Recorder())
        return self[-1]


async def close_both(writer, server):
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def serve_one(accepted, connect):
    """Connects a client and waits until the server's factory has made a protocol (it
    appends to `accepted`) and connection_made has run; returns the client and protocol."""
    client = await connect()
    while not accepted or accepted[0].made is None:
        await asyncio.sleep(0.001)
    return client, accepted[0]


@pytest.mark.parametrize("family", ["inet", "inet6", "unix", "abstract"])
def test_accepted_transport_extra_info(loop, family, tmp_path):
    if family == "inet6" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    accepted = Accepted()

    async def main():
        if family in ("inet", "inet6"):
            host = "127.0.0.1" if family == "inet" else "::1"
            try:
                server = await loop.create_server(accepted.factory, host, 0)
            except OSError:
                pytest.skip(f"cannot listen on {host}")
            address = server.sockets[0].getsockname()[:2]
            connect = lambda: asyncio.open_connection(*address)  # noqa: E731
        else:
            path = str(tmp_path / "s.sock") if family == "unix" else "\0ferroloop-accept-test"
            server = await loop.create_unix_server(accepted.factory, path)
            connect = lambda: asyncio.open_unix_connection(path)  # noqa: E731
        async with server:
            (reader, writer), proto = await serve_one(accepted, connect)
            transport = proto.transport
            client = writer.get_extra_info("socket")
            assert transport.get_extra_info("peername") == client.getsockname()
            assert transport.get_extra_info("sockname") == client.getpeername()
            sock = transport.get_extra_info("socket")
            assert sock.family == server.sockets[0].family
            assert sock.type == socket.SOCK_STREAM
            assert sock.gettimeout() == 0
            if family in ("inet", "inet6"):
                # create_server's sockets come from getaddrinfo, with proto IPPROTO_TCP,
                # so asyncio disables Nagle on what they accept.
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            await close_both(writer, server)

    run(loop, main())


def test_nodelay_only_for_listeners_created_with_ipproto_tcp(loop):
    """asyncio's _set_nodelay checks the socket's proto: a listener made with
    socket.socket() (proto 0) passes its connections on with Nagle left on."""
    accepted = Accepted()

    async def main():
        for proto, expected in ((0, 0), (socket.IPPROTO_TCP, 1)):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
            listener.bind(("127.0.0.1", 0))
            server = await loop.create_server(accepted.factory, sock=listener)
            accepted.clear()
            connect = lambda: asyncio.open_connection(*listener.getsockname())  # noqa: E731
            (_, writer), proto_obj = await serve_one(accepted, connect)
            sock = proto_obj.transport.get_extra_info("socket")
            assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) == expected
            await close_both(writer, server)

    run(loop, main())


def test_each_connection_runs_in_its_own_copy_of_the_context(loop):
    """asyncio calls the factory in a Task, so in a copy of the listener's context: what
    the factory sets is seen by its connection's callbacks and by no other connection."""
    var = contextvars.ContextVar("var", default="unset")
    seen = []

    class Proto(Recorder):
        def connection_made(self, transport):
            seen.append(("made", var.get()))
            super().connection_made(transport)

    def factory():
        seen.append(("factory", var.get()))
        var.set(f"conn{len(seen)}")
        return Proto()

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            await reader.readexactly(1)
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        assert var.get() == "unset"

    run(loop, main())
    assert seen == [("factory", "unset"), ("made", "conn1"),
                    ("factory", "unset"), ("made", "conn3")]


def test_a_failing_protocol_factory_drops_the_connection_quietly(loop):
    """Outside debug mode asyncio reports nothing when the factory raises; the
    connection is dropped and the server goes on serving."""
    calls = 0

    def factory():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("no protocol for you")
        return Recorder()

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with warnings.catch_warnings():
            # asyncio leaves the refused socket to the garbage collector.
            warnings.simplefilter("ignore", ResourceWarning)
            while calls == 0:
                await asyncio.sleep(0.001)
            gc.collect()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"still serving")
        assert await reader.readexactly(13) == b"still serving"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert loop.handler_calls == []


def test_debug_mode_reports_a_failing_protocol_factory(loop):
    loop.set_debug(True)

    def factory():
        raise ValueError("no protocol for you")

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not loop.handler_calls:
            await asyncio.sleep(0.001)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    with resource_warnings_collected():
        run(loop, main())
    calls, loop.handler_calls = loop.handler_calls, []
    assert [c["message"] for c in calls] == [
        "Error on transport creation for incoming connection"]
    assert isinstance(calls[0]["exception"], ValueError)


def test_a_burst_of_connections_is_served_completely(loop):
    """Connections that queue up while the loop is busy are all accepted."""
    served = Accepted()

    async def main():
        server = await loop.create_server(served.factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        while len(served) < len(clients):
            await asyncio.sleep(0.001)
        for c in clients:
            c.close()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_a_subclass_make_socket_transport_is_used(loop_factory, loop_name):
    """A loop subclass that overrides _make_socket_transport gets the accepted sockets."""
    probe = loop_factory()
    base = type(probe)
    probe.close()
    made = []

    class Loop(base):
        def _make_socket_transport(self, sock, protocol, waiter=None, *,
                                   extra=None, server=None, **options):  # 3.15: context
            made.append((extra or {}).get("peername"))
            return super()._make_socket_transport(sock, protocol, waiter,
                                                  extra=extra, server=server, **options)

    loop = Loop()
    try:
        async def main():
            server = await loop.create_server(Recorder, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            await reader.readexactly(1)
            await close_both(writer, server)
            return writer.get_extra_info("sockname")

        client_address = run(loop, main())
    finally:
        loop.close()
    # The client's own transport is made by the same method, with no peername in extra.
    assert client_address in made


def test_transport_registry_behaves_as_a_weak_value_dictionary():
    """loop._transports is native on ferroloop; for the operations asyncio performs, and
    the views a debugging tool reads, it must answer as the stdlib's WeakValueDictionary
    does."""
    import weakref

    from ferroloop import _ferroloop

    class T:
        pass

    def script(mapping):
        out = []
        a, b = T(), T()
        mapping[3] = a
        mapping[4] = b
        out.append((mapping[3] is a, mapping.get(4) is b, mapping.get(5), mapping.get(5, "d")))
        out.append((3 in mapping, 5 in mapping, "x" in mapping, len(mapping)))
        mapping[3] = b  # an fd reused by another transport
        out.append(mapping[3] is b)
        del b
        gc.collect()
        out.append((3 in mapping, 4 in mapping, mapping.get(4), len(mapping)))
        for key in (4, 9):
            try:
                mapping[key]
            except KeyError as exc:
                out.append(("KeyError", exc.args))
            try:
                del mapping[key]
            except KeyError as exc:
                out.append(("del KeyError", exc.args))
        mapping[7] = a
        del mapping[7]
        out.append((7 in mapping, sorted(mapping), len(mapping)))
        c = T()
        mapping[5] = a
        mapping[1] = c
        names = {id(a): "a", id(c): "c"}
        out.append((sorted(mapping.keys()), sorted(names[id(v)] for v in mapping.values()),
                    sorted((k, names[id(v)]) for k, v in mapping.items())))
        return out

    assert script(_ferroloop.TransportRegistry()) == script(weakref.WeakValueDictionary())
    loop = __import__("ferroloop").new_event_loop()
    try:
        assert isinstance(loop._transports, _ferroloop.TransportRegistry)
    finally:
        loop.close()
