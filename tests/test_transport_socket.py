"""A transport's socket object, on both loops. ferroloop's connections made by
create_connection's short path and by a native server start from a bare fd, and the
socket object is made only when asked for; these tests pin down that what a program sees
of it, before and after close, is what asyncio shows, and that the fd is closed exactly
once whoever asked."""

import asyncio
import gc
import socket
import warnings

import pytest

from conftest import (check_fd_reuse_is_safe, open_fds, resource_warnings_collected,
                      run_python)
from test_transports import Peer, connected_pair, run, shut


def describe(sock):
    return (sock.family, sock.type, sock.proto, sock.gettimeout())


def test_socket_object_is_asyncios_on_both_ends(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        seen = []
        for transport in (client.transport, srv.transport):
            sock = transport.get_extra_info("socket")
            # The same object on every request, wrapping the transport's fd.
            assert transport.get_extra_info("socket") is sock
            assert sock.fileno() == transport._sock_fd
            assert sock.getsockname() == transport.get_extra_info("sockname")
            assert sock.getpeername() == transport.get_extra_info("peername")
            seen.append(describe(sock))
        await shut(server, srv, client)
        return seen

    tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, 0.0)
    assert run(loop, main()) == [tcp, tcp]


@pytest.mark.parametrize("ask_before_close", [False, True])
def test_closed_transport_answers_a_closed_socket(loop, ask_before_close):
    async def main():
        server, srv, client = await connected_pair(loop)
        transports = (client.transport, srv.transport)
        before = [t.get_extra_info("socket") for t in transports] if ask_before_close else []
        await shut(server, srv, client)
        after = [t.get_extra_info("socket") for t in transports]
        return transports, before, after

    transports, before, after = run(loop, main())
    for transport in transports:
        assert transport._sock is None
    for sock in before + after:
        assert sock.fileno() == -1
        assert (sock.family, sock.type) == (socket.AF_INET, socket.SOCK_STREAM)
    if ask_before_close:
        assert [s.fileno() for s in before] == [s.fileno() for s in after]


def test_socket_object_made_mid_connection_is_closed_with_the_transport(loop):
    """The socket object takes the fd over from the moment it exists; closing the transport
    closes it once (a second close of the number could close someone else's fd)."""
    async def main():
        server, srv, client = await connected_pair(loop)
        raw = client.transport._sock
        fd = raw.fileno()
        await shut(server, srv, client)
        assert raw.fileno() == -1
        check_fd_reuse_is_safe()
        return fd

    run(loop, main())


@pytest.mark.parametrize("port", [70000, -1, 2**40])
def test_port_out_of_range_raises_sockets_error(loop, port):
    async def main():
        with pytest.raises(OverflowError) as caught:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        return str(caught.value)

    assert run(loop, main()) == "connect(): port must be 0-65535."


def test_unclosed_transport_warns_and_closes_its_fd(loop_factory):
    fds_before = open_fds()
    loop = loop_factory()
    try:
        async def main():
            server, srv, client = await connected_pair(loop)
            server.close()
            return server, srv, client

        server, srv, client = run(loop, main())
        fds = {client.transport._sock_fd, srv.transport._sock_fd}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            loop.close()
            del srv, client, server
            gc.collect()
        unclosed = [w for w in caught if "unclosed transport" in str(w.message)]
        assert len(unclosed) == 2, [str(w.message) for w in caught]
        assert not {str(fd) for fd in fds} & open_fds()
    finally:
        loop.close()
    assert open_fds() <= fds_before


AT_EXIT_SCRIPT = """
import asyncio, sys
import ferroloop

factory = {"asyncio": asyncio.SelectorEventLoop, "ferroloop": ferroloop.new_event_loop}
loop = factory[sys.argv[1]]()

async def main():
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    global pair
    pair = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    await asyncio.sleep(0.01)

loop.run_until_complete(main())
print(type(loop).__module__)
"""


def test_transports_left_open_at_exit_warn_as_asyncios_do(loop_name):
    """Transports still open when the interpreter exits die after the import system is
    gone: asyncio's __del__ warns with the `warnings.warn` it bound when it was defined,
    and so must ours, rather than fail in an import."""
    proc = run_python("-X", "dev", "-c", AT_EXIT_SCRIPT, loop_name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0].startswith(loop_name)
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.stderr.count("ResourceWarning: unclosed transport") == 2, proc.stderr


@pytest.mark.parametrize("side", ["client", "server"])
def test_failing_make_socket_transport_leaves_nothing_open(loop_factory, side):
    """A subclass's _make_socket_transport gets a socket object; when it raises, the
    connection is closed once and nothing leaks."""
    probe = loop_factory()
    base = type(probe)
    probe.close()
    made = []

    class Loop(base):
        def _make_socket_transport(self, sock, protocol, waiter=None, *,
                                   extra=None, server=None, **options):  # 3.15: context
            is_server = server is not None
            made.append(is_server)
            if is_server == (side == "server"):
                raise RuntimeError("no transport")
            return super()._make_socket_transport(sock, protocol, waiter,
                                                  extra=extra, server=server, **options)

    fds_before = open_fds()
    loop = Loop()
    loop.set_exception_handler(lambda _loop, context: None)
    try:
        async def main():
            server = await loop.create_server(Peer, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            if side == "client":
                with pytest.raises(RuntimeError, match="no transport"):
                    await loop.create_connection(Peer, "127.0.0.1", port)
            else:
                # The server drops the connection; the client sees it end.
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert await reader.read() == b""
                writer.close()
                await writer.wait_closed()
            server.close()
            await server.wait_closed()

        with resource_warnings_collected():
            run(loop, main())
    finally:
        loop.close()
    assert (side == "server") in made
    gc.collect()
    assert open_fds() <= fds_before


def test_sock_calls_refuse_a_live_transports_fd(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        sock = client.transport._sock
        with pytest.raises(RuntimeError, match="is used by transport"):
            await loop.sock_recv(sock, 1)
        await shut(server, srv, client)

    run(loop, main())


class NotAProtocol:
    """Has data_received but no connection_made: the transport fails to set up."""

    def data_received(self, data):
        pass


def test_transport_failing_to_set_up_closes_its_fd_once(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(AttributeError, match="connection_made"):
            await loop.create_connection(NotAProtocol, "127.0.0.1", port)
        check_fd_reuse_is_safe()
        server.close()
        await server.wait_closed()

    with resource_warnings_collected():
        run(loop, main())


def test_accepted_transport_failing_to_set_up_drops_the_connection(loop):
    """The server's protocol cannot take the connection: asyncio drops it (its socket
    closed once the collector finds it), and the client reads EOF; nothing is left
    open, and nothing closed twice."""
    async def main():
        server = await loop.create_server(NotAProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)
        gc.collect()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        check_fd_reuse_is_safe()
        server.close()
        await server.wait_closed()

    with resource_warnings_collected():
        run(loop, main())
