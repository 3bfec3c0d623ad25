"""create_connection: the common cases (a numeric address, or a connected sock=, with no
other option) take ferroloop's short path; these pin down that what a program sees is
what asyncio's general path gives it, on both loops."""

import asyncio
import socket
import sys

import pytest

TIMEOUT = 30


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


class Recorder(asyncio.Protocol):
    def __init__(self):
        self.made = []

    def connection_made(self, transport):
        self.made.append(transport)


def closed_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_numeric_address(loop, host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    async def main():
        try:
            server = await loop.create_server(asyncio.Protocol, host, 0)
        except OSError:
            pytest.skip(f"cannot listen on {host}")
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, host, port)
        # connection_made has run by the time create_connection returns.
        assert proto.made == [transport]
        sock = transport.get_extra_info("socket")
        assert sock.family == family and sock.type == socket.SOCK_STREAM
        assert sock.gettimeout() == 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        peer = transport.get_extra_info("peername")
        assert peer[:2] == (host, port)
        assert transport.get_extra_info("sockname") == sock.getsockname()
        transport.close()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_refused_connection_raises_asyncios_error(loop):
    port = closed_port()

    async def main():
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        return info.value

    exc = run(loop, main())
    assert exc.errno is not None
    assert str(exc) == f"[Errno {exc.errno}] Connect call failed ('127.0.0.1', {port})"


def test_cancelled_while_connecting_closes_the_socket(loop):
    """Cancelled between the connect and the socket becoming writable: the socket is
    closed and its writer removed (the fixture fails the test on a leaked fd)."""
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(20):
            task = loop.create_task(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
            await asyncio.sleep(0)  # the task starts and waits for the connect
            task.cancel()
            try:
                transport, _ = await task
            except asyncio.CancelledError:
                pass
            else:  # the connect completed first
                transport.close()
        await asyncio.sleep(0.05)  # the server side sees each EOF and closes
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)

    run(loop, main())


def test_connected_sock(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port))
        transport, proto = await loop.create_connection(Recorder, sock=sock)
        assert proto.made == [transport]
        assert transport.get_extra_info("socket").fileno() == sock.fileno()
        assert sock.gettimeout() == 0  # asyncio makes it non-blocking
        transport.close()
        await asyncio.sleep(0.05)  # the server side sees the EOF and closes
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_invalid_combinations_raise_asyncios_errors(loop):
    async def main():
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with pytest.raises(ValueError, match="A Stream Socket was expected"):
                await loop.create_connection(asyncio.Protocol, sock=udp)
        finally:
            udp.close()
        tcp = socket.socket()
        try:
            with pytest.raises(ValueError, match="can not be specified at the same time"):
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, sock=tcp)
        finally:
            tcp.close()
        with pytest.raises(ValueError, match="no sock specified"):
            await loop.create_connection(asyncio.Protocol)
        with pytest.raises(TypeError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, no_such_option=1)
        if sys.version_info < (3, 12):
            # all_errors arrived in 3.12; before, it is an unknown keyword.
            with pytest.raises(TypeError):
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                             all_errors=False)

    run(loop, main())


def test_options_at_their_defaults_and_a_failing_factory(loop):
    """Explicit default options still connect; a protocol factory that raises leaves
    no socket behind."""
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, ssl=None, family=0, proto=0, flags=0,
            local_addr=None, server_hostname=None, happy_eyeballs_delay=None)
        transport.close()

        def factory():
            raise RuntimeError("no protocol")

        with pytest.raises(RuntimeError, match="no protocol"):
            await loop.create_connection(factory, "127.0.0.1", port)
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_cancelled_once_connected_closes_the_transport(loop):
    """Cancelled after the protocol and transport exist, before create_connection
    returns: asyncio closes the transport, so connection_made is followed by
    connection_lost(None), and nothing is left open (the fixture checks fds)."""
    events = []

    class Watcher(asyncio.Protocol):
        def connection_made(self, transport):
            events.append("made")

        def connection_lost(self, exc):
            events.append(("lost", exc))

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        task = None

        def factory():
            task.cancel()
            return Watcher()

        task = loop.create_task(loop.create_connection(factory, "127.0.0.1", port))
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # connection_lost runs; the server side sees EOF
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert events == ["made", ("lost", None)]


@pytest.mark.parametrize("host", [
    "127.0.0.1", "10.1.2.3", "::1", "fe80::1", "::ffff:1.2.3.4", "localhost",
    "01.2.3.4", "1.2.3", "1.2.3.4.5", "", " 1.2.3.4", "256.0.0.1", "::1\0", "1.2.3.4 ",
])
def test_numeric_address_check_matches_asyncios(host):
    """For a str host and an int port, create_connection's short path asks
    _numeric_family where asyncio asks _ipaddr_info."""
    from asyncio import base_events

    from ferroloop._ferroloop import _numeric_family

    try:
        info = base_events._ipaddr_info(host, 80, 0, socket.SOCK_STREAM, 0)
    except ValueError:
        # A NUL in the host: the general path raises it (test_host_with_nul_raises).
        info = None
    assert _numeric_family(host) == (info[0] if info else None)


def test_host_with_nul_raises_asyncios_error(loop):
    async def main():
        with pytest.raises(ValueError, match="embedded null"):
            await loop.create_connection(asyncio.Protocol, "::1\0", 80)

    run(loop, main())


@pytest.mark.parametrize("host, port_type", [(b"127.0.0.1", str), ("127.0.0.1", str),
                                             (b"127.0.0.1", bytes), (b"127.0.0.1", int)])
def test_other_address_types_connect_as_asyncios(loop, host, port_type):
    """Hosts and ports of other types go through asyncio's _ipaddr_info first."""
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        given = {str: str, bytes: lambda p: str(p).encode(), int: int}[port_type](port)
        transport, _ = await loop.create_connection(asyncio.Protocol, host, given)
        peer = transport.get_extra_info("peername")
        transport.close()
        server.close()
        await server.wait_closed()
        return peer, port

    peer, port = run(loop, main())
    assert peer == ("127.0.0.1", port)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6, socket.AF_UNIX])
def test_transport_names_are_the_sockets(loop, family):
    """A transport's sockname and peername (looked up natively for plain sockets) equal
    what the socket module returns, for each family."""
    if family == socket.AF_UNIX:
        ours, theirs = socket.socketpair(socket.AF_UNIX)
    else:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        try:
            listener = socket.socket(family)
            listener.bind((host, 0))
        except OSError:
            pytest.skip(f"no {host}")
        listener.listen()
        ours = socket.create_connection(listener.getsockname()[:2])
        theirs, _ = listener.accept()
        listener.close()

    async def main():
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        assert transport.get_extra_info("sockname") == ours.getsockname()
        assert transport.get_extra_info("peername") == ours.getpeername()
        transport.close()
        await asyncio.sleep(0)

    run(loop, main())
    theirs.close()


def test_connect_failing_at_once_raises_the_sockets_error(loop):
    """A connect the kernel refuses at once (no route to a broadcast address) raises what
    socket.connect() raises, as asyncio lets it."""
    address = ("255.255.255.255", 1)
    probe = socket.socket()
    probe.setblocking(False)
    try:
        probe.connect(address)
    except (BlockingIOError, InterruptedError):
        pytest.skip("here a connect to the broadcast address does not fail at once")
    except OSError as exc:
        expected = exc
    else:
        pytest.skip("here the broadcast address accepts connections")
    finally:
        probe.close()

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_connection(asyncio.Protocol, *address)
        return info.value

    exc = run(loop, main())
    assert type(exc) is type(expected)
    assert (exc.errno, str(exc)) == (expected.errno, str(expected))


def test_a_connection_after_one_given_up_early_reads(loop):
    """A connection whose factory raises, then one whose protocol closes in
    connection_made: the next connections take the same fd numbers, and each still hears
    its peer. (ferroloop leaves a connected fd watched for the transport's first read;
    whatever closes it first must end that, or the number's next user goes unwatched.)"""
    class Closer(asyncio.Protocol):
        def connection_made(self, transport):
            transport.close()

    class Greeted(asyncio.Protocol):
        def __init__(self):
            self.greeting = loop.create_future()

        def data_received(self, data):
            self.greeting.set_result(data)

    def greeter():
        class Greeter(asyncio.Protocol):
            def connection_made(self, transport):
                transport.write(b"hello")
        return Greeter()

    def failing():
        raise RuntimeError("no protocol")

    async def main():
        server = await loop.create_server(greeter, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for first in (failing, Closer):
            try:
                await loop.create_connection(first, "127.0.0.1", port)
            except RuntimeError:
                pass
            transport, proto = await loop.create_connection(Greeted, "127.0.0.1", port)
            assert await asyncio.wait_for(proto.greeting, 5) == b"hello"
            transport.close()
        server.close()
        await server.wait_closed()

    run(loop, main())
