"""Stream transports, method by method, on both loops: ferroloop's are native, and each test
also runs on the stdlib's `_SelectorSocketTransport`, which proves it encodes asyncio's
behaviour."""

import asyncio
import sys
import contextvars
import logging
import socket
import unittest.mock

import pytest

import ferroloop

TIMEOUT = 30


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Peer(asyncio.Protocol):
    """Records everything a transport tells its protocol."""

    def __init__(self, eof_keeps_open=False):
        self.loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.events = []
        self.eof_keeps_open = eof_keeps_open
        self.made = self.loop.create_future()
        self.got_data = asyncio.Event()
        self.lost = self.loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        assert isinstance(data, bytes)
        self.data += data
        self.got_data.set()

    def eof_received(self):
        self.events.append("eof")
        return self.eof_keeps_open

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)

    async def wait_for_data(self, size):
        while len(self.data) < size:
            self.got_data.clear()
            await self.got_data.wait()


async def connected_pair(loop, client_factory=Peer, server_factory=Peer):
    """A server-side and a client-side protocol over one TCP connection."""
    accepted = loop.create_future()

    def make_server_protocol():
        proto = server_factory()
        accepted.set_result(proto)
        return proto

    server = await loop.create_server(make_server_protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(client_factory, "127.0.0.1", port)
    srv = await accepted
    await srv.made
    return server, srv, client


async def shut(server, *protos):
    for proto in protos:
        proto.transport.close()
    for proto in protos:
        await proto.lost
    server.close()
    await server.wait_closed()


def test_transport_is_an_asyncio_transport_and_native_on_ferroloop(loop, loop_name):
    async def main():
        server, srv, client = await connected_pair(loop)
        kinds = (type(srv.transport), type(client.transport))
        await shut(server, srv, client)
        return kinds

    for kind in run(loop, main()):
        assert issubclass(kind, asyncio.Transport)
        assert issubclass(kind, asyncio.transports._FlowControlMixin)
        if loop_name == "ferroloop":
            assert kind is ferroloop._transports.SocketTransport


def test_data_both_ways_and_clean_close(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        client.transport.write(b"hello ")
        client.transport.writelines([b"wor", bytearray(b"ld"), memoryview(b"!!")[:1]])
        await srv.wait_for_data(12)
        srv.transport.write(memoryview(b"back"))
        await client.wait_for_data(4)
        client.transport.close()
        assert client.transport.is_closing()
        assert await client.lost is None
        assert await srv.lost is None
        server.close()
        await server.wait_closed()
        return bytes(srv.data), bytes(client.data), srv.events, client.events

    srv_data, client_data, srv_events, client_events = run(loop, main())
    assert srv_data == b"hello world!"
    assert client_data == b"back"
    assert srv_events == ["made", "eof", ("lost", None)]
    assert client_events == ["made", ("lost", None)]


def test_extra_info(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        t = client.transport
        info = (t.get_extra_info("socket"), t.get_extra_info("sockname"),
                t.get_extra_info("peername"), t.get_extra_info("peercert"),
                t.get_extra_info("nothing", "default"),
                srv.transport.get_extra_info("peername"))
        await shut(server, srv, client)
        return info

    sock, sockname, peername, peercert, default, srv_peer = run(loop, main())
    assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
    assert sockname[0] == "127.0.0.1" and peername[0] == "127.0.0.1"
    assert peercert is None and default == "default"
    assert srv_peer == sockname


def test_eof_received_true_keeps_the_connection_half_open(loop):
    async def main():
        server, srv, client = await connected_pair(
            loop, server_factory=lambda: Peer(eof_keeps_open=True))
        client.transport.write(b"question")
        assert client.transport.can_write_eof()
        client.transport.write_eof()
        with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
            client.transport.write(b"more")
        await srv.wait_for_data(8)
        while "eof" not in srv.events:
            await asyncio.sleep(0.01)
        assert not srv.transport.is_closing()
        srv.transport.write(b"answer")
        await client.wait_for_data(6)
        await shut(server, srv, client)
        return bytes(client.data)

    assert run(loop, main()) == b"answer"


def test_write_rejects_non_bytes_with_asyncios_message(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        expected = ("data argument must be a bytes, bytearray, or memoryview object, not 'str'"
                    if sys.version_info >= (3, 14)
                    else "data argument must be a bytes-like object, not 'str'")
        with pytest.raises(TypeError) as raised:
            client.transport.write("text")
        assert str(raised.value) == expected
        client.transport.write(b"")  # nothing to do, no error
        await shut(server, srv, client)

    run(loop, main())


def test_pause_and_resume_reading(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        t = srv.transport
        assert t.is_reading()
        t.pause_reading()
        t.pause_reading()  # idempotent
        assert not t.is_reading()
        client.transport.write(b"held back")
        await asyncio.sleep(0.05)
        held = bytes(srv.data)
        t.resume_reading()
        assert t.is_reading()
        await srv.wait_for_data(9)
        await shut(server, srv, client)
        return held, bytes(srv.data)

    assert run(loop, main()) == (b"", b"held back")


def test_write_buffer_limits_and_flow_control(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        t = client.transport
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        t.set_write_buffer_limits(high=100)
        assert t.get_write_buffer_limits() == (25, 100)
        t.set_write_buffer_limits(low=10)
        assert t.get_write_buffer_limits() == (10, 40)
        with pytest.raises(ValueError, match=r"high \(1\) must be >= low \(2\) must be >= 0"):
            t.set_write_buffer_limits(high=1, low=2)
        srv.transport.pause_reading()
        chunk = b"x" * 65536
        while t.get_write_buffer_size() == 0:
            t.write(chunk)
        for _ in range(3):
            t.write(chunk)
        assert t.get_write_buffer_size() > 40
        assert client.events[-1] == "pause"
        srv.transport.resume_reading()
        while t.get_write_buffer_size():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        await shut(server, srv, client)
        return client.events

    events = run(loop, main())
    assert events[:3] == ["made", "pause", "resume"]


def fill_until_buffered(transport):
    """Writes until the kernel refuses some: returns everything written."""
    chunk = bytes(range(256)) * 256
    written = bytearray()
    while transport.get_write_buffer_size() == 0:
        transport.write(chunk)
        written += chunk
    for _ in range(4):
        transport.write(chunk)
        written += chunk
    return bytes(written)


def test_close_drains_the_buffer_first_and_abort_does_not(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        srv.transport.pause_reading()
        payload = fill_until_buffered(client.transport)
        client.transport.close()
        await asyncio.sleep(0.05)
        assert not client.lost.done(), "close() must wait for the buffer to drain"
        srv.transport.resume_reading()
        assert await client.lost is None
        await srv.lost
        drained = bytes(srv.data) == payload

        server2, srv2, client2 = await connected_pair(loop)
        srv2.transport.pause_reading()
        payload2 = fill_until_buffered(client2.transport)
        client2.transport.abort()
        assert await client2.lost is None
        assert client2.transport.get_write_buffer_size() == 0
        srv2.transport.resume_reading()
        await srv2.lost
        server.close()
        server2.close()
        await server.wait_closed()
        await server2.wait_closed()
        return drained, len(srv2.data) < len(payload2)

    assert run(loop, main()) == (True, True)


def test_buffered_protocol(loop):
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.made = asyncio.get_running_loop().create_future()
            self.buf = bytearray(5)
            self.received = bytearray()
            self.sizes = []
            self.lost = asyncio.get_running_loop().create_future()

        def connection_made(self, transport):
            self.transport = transport
            self.made.set_result(transport)

        def get_buffer(self, sizehint):
            self.sizes.append(sizehint)
            return self.buf

        def buffer_updated(self, nbytes):
            self.received += self.buf[:nbytes]

        def eof_received(self):
            return False

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        server, srv, client = await connected_pair(loop, server_factory=Buffered)
        client.transport.write(b"buffered protocols read in place")
        client.transport.close()
        await client.lost
        assert await srv.lost is None
        server.close()
        await server.wait_closed()
        return bytes(srv.received), set(srv.sizes)

    received, sizes = run(loop, main())
    assert received == b"buffered protocols read in place"
    assert sizes == {-1}


def test_set_protocol_switches_the_receiver(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        t = srv.transport
        assert t.get_protocol() is srv
        replacement = Peer()
        t.set_protocol(replacement)
        assert t.get_protocol() is replacement
        client.transport.write(b"to the new one")
        await replacement.wait_for_data(14)
        client.transport.close()
        await client.lost
        await replacement.lost
        server.close()
        await server.wait_closed()
        return bytes(srv.data), bytes(replacement.data), t.get_protocol()

    old, new, after = run(loop, main())
    assert (old, new, after) == (b"", b"to the new one", None)


def test_exception_in_data_received_reaches_the_handler_and_closes(loop):
    class Failing(Peer):
        def data_received(self, data):
            raise ZeroDivisionError("boom")

    async def main():
        server, srv, client = await connected_pair(loop, server_factory=Failing)
        client.transport.write(b"trigger")
        exc = await srv.lost
        await client.lost
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ZeroDivisionError)
    calls, loop.handler_calls = loop.handler_calls, []
    assert len(calls) == 1
    assert calls[0]["message"] == "Fatal error: protocol.data_received() call failed."
    assert isinstance(calls[0]["exception"], ZeroDivisionError)
    assert isinstance(calls[0]["transport"], asyncio.Transport)


request_id = contextvars.ContextVar("request_id", default=None)


def test_protocol_callbacks_run_in_the_readers_context(loop):
    # asyncio's reader Handle keeps one context copy for the connection's reads: a var set
    # in one data_received is seen by the next, and not by connection_made's context.
    class Counting(Peer):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.seen_at_made = request_id.get()

        def data_received(self, data):
            super().data_received(data)
            self.events.append(request_id.get())
            request_id.set(len(self.events))

    async def main():
        request_id.set("outer")
        server, srv, client = await connected_pair(loop, server_factory=Counting)
        for part in (b"a", b"b"):
            client.transport.write(part)
            await srv.wait_for_data(len(srv.data) + 1)
        await shut(server, srv, client)
        return srv.seen_at_made, srv.events[1:3], request_id.get()

    seen_at_made, seen_in_reads, outer = run(loop, main())
    assert seen_at_made == "outer"
    assert seen_in_reads == ["outer", 2]
    assert outer == "outer"


def test_slow_data_received_is_reported_in_debug_mode(loop, caplog):
    class Slow(Peer):
        def data_received(self, data):
            super().data_received(data)
            import time
            time.sleep(0.15)

    async def main():
        loop.set_debug(True)
        loop.slow_callback_duration = 0.1
        server, srv, client = await connected_pair(loop, server_factory=Slow)
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            client.transport.write(b"slow")
            await srv.wait_for_data(4)
            await asyncio.sleep(0)
        await shut(server, srv, client)
        loop.set_debug(False)

    run(loop, main())
    assert any("_read_ready()" in r.getMessage() and "took" in r.getMessage()
               for r in caplog.records), caplog.text


def test_transport_repr(loop, loop_name):
    async def main():
        server, srv, client = await connected_pair(loop)
        open_repr = repr(client.transport)
        client.transport.close()
        closing_repr = repr(client.transport)
        await client.lost
        closed_repr = repr(client.transport)
        await shut(server, srv)
        return open_repr, closing_repr, closed_repr

    open_repr, closing_repr, closed_repr = run(loop, main())
    assert "fd=" in open_repr and "read=polling" in open_repr
    assert "write=<idle, bufsize=0>" in open_repr
    assert " closing " in closing_repr
    assert " closed " in closed_repr


def test_no_data_received_after_pause_reading_in_the_same_pass(loop):
    # Both connections' data arrive in one poll; the first data_received pauses the other
    # transport, whose queued read must then be dropped (asyncio cancels its Handle).
    async def main():
        accepted = []
        paused_then_received = []

        class Pauser(Peer):
            def data_received(self, data):
                super().data_received(data)
                if not self.transport.is_reading():
                    paused_then_received.append(self)
                for other in accepted:
                    if other is not self:
                        other.transport.pause_reading()

        def factory():
            proto = Pauser()
            accepted.append(proto)
            return proto

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [(await loop.create_connection(Peer, "127.0.0.1", port))[1] for _ in range(2)]
        while len(accepted) < 2:
            await asyncio.sleep(0.01)
        await asyncio.gather(*(p.made for p in accepted))
        await asyncio.sleep(0.01)
        for c in clients:
            c.transport.write(b"same pass")
        await asyncio.sleep(0.1)
        with_data = sum(bool(p.data) for p in accepted)
        for p in accepted + clients:
            p.transport.close()
        await asyncio.gather(*(p.lost for p in accepted + clients))
        server.close()
        await server.wait_closed()
        return len(paused_then_received), with_data

    assert run(loop, main()) == (0, 1)


def test_small_writes_arrive_in_order_and_leave_nothing_buffered(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        t = srv.transport
        t.write(b"head ")
        sizes = [t.get_write_buffer_size()]
        t.write(b"body ")
        t.write(bytearray(b"tail"))
        sizes.append(t.get_write_buffer_size())
        await client.wait_for_data(14)
        await shut(server, srv, client)
        return bytes(client.data), sizes

    assert run(loop, main()) == (b"head body tail", [0, 0])


def test_write_then_abort_in_one_callback_delivers_the_write(loop):
    async def main():
        server, srv, client = await connected_pair(loop)
        srv.transport.write(b"last words")
        srv.transport.abort()
        await srv.lost
        while "eof" not in client.events and not client.lost.done():
            await asyncio.sleep(0.01)
        data = bytes(client.data)
        client.transport.close()
        await client.lost
        server.close()
        await server.wait_closed()
        return data

    assert run(loop, main()) == b"last words"


def test_each_write_is_on_the_wire_when_it_returns(loop):
    # asyncio's write sends at once when nothing is buffered, so a peer read in the same
    # callback, before it returns, sees each part: a test that talks to a blocking socket
    # this way works on the stdlib loop (zuvloop, which holds writes to the end of its
    # loop iteration, times out here).
    listener = socket.create_server(("127.0.0.1", 0))

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, *listener.getsockname())
        peer, _ = listener.accept()
        peer.settimeout(5)
        try:
            seen = []
            for part in (b"head ", b"body ", b"tail"):
                transport.write(part)
                seen.append(peer.recv(100))
            transport.writelines([b"more ", b"lines"])
            seen.append(peer.recv(100))
            return seen
        finally:
            transport.close()
            peer.close()

    try:
        assert run(loop, main()) == [b"head ", b"body ", b"tail", b"more lines"]
    finally:
        listener.close()


def test_write_while_the_loop_is_not_running_is_sent_at_once(loop):
    async def setup():
        server, srv, client = await connected_pair(loop)
        return server, srv, client

    server, srv, client = run(loop, setup())
    peer = srv.transport.get_extra_info("socket")
    # The loop is stopped, and the write is on the wire when write() returns.
    client.transport.write(b"outside")
    raw = socket.socket(fileno=peer.fileno())
    try:
        raw.settimeout(5)
        assert raw.recv(100, socket.MSG_PEEK) == b"outside"
    finally:
        raw.detach()
    run(loop, shut(server, srv, client))


def test_pause_and_resume_in_one_pass_drop_the_read_already_queued(loop):
    # asyncio's pause_reading cancels the reader Handle a poll may already have queued
    # for this pass, and resume_reading registers a new one: the data is read on the
    # next pass, not by the event queued before the pause.
    async def main():
        server, srv, client = await connected_pair(loop)
        log = []
        srv.data_received = lambda data: log.append(("data", len(data)))

        def pause_then_resume():
            srv.transport.pause_reading()
            srv.transport.resume_reading()

        def mark(n):
            log.append(n)
            if n < 3:
                loop.call_soon(mark, n + 1)

        client.transport.write(b"12345")  # readable when the next pass polls
        loop.call_soon(pause_then_resume)  # runs before that pass's I/O events
        loop.call_soon(mark, 0)
        while len(log) < 5:
            await asyncio.sleep(0)
        await shut(server, srv, client)
        return log

    assert run(loop, main()) == [0, 1, ("data", 5), 2, 3]


def test_protocol_methods_are_looked_up_at_each_call(loop):
    # asyncio's transport calls `self._protocol.data_received(data)` each time: a protocol
    # may swap its methods while connected, or a test patch its class.
    async def main():
        server, srv, client = await connected_pair(loop)
        got = []
        srv.data_received = lambda data: got.append(("instance", data))
        client.transport.write(b"one")
        while not got:
            await asyncio.sleep(0)
        del srv.data_received
        patched = lambda self, data: got.append(("class", data))  # noqa: E731
        with unittest.mock.patch.object(Peer, "data_received", patched):
            client.transport.write(b"two")
            while len(got) < 2:
                await asyncio.sleep(0)
        await shut(server, srv, client)
        return got

    assert run(loop, main()) == [("instance", b"one"), ("class", b"two")]


def test_write_buffer_limits_need_not_be_ints(loop):
    # asyncio keeps the limits as given and compares the buffer's size with them: a float
    # (64 * 1024 / 2), an int past any size, infinity.
    async def main():
        server, srv, client = await connected_pair(loop)
        t = client.transport
        t.set_write_buffer_limits(high=2**70)
        limits = [t.get_write_buffer_limits()]
        t.set_write_buffer_limits(high=float("inf"), low=0.5)
        limits.append(t.get_write_buffer_limits())
        t.set_write_buffer_limits(high=64 * 1024 / 2, low=100.5)
        limits.append(t.get_write_buffer_limits())
        srv.transport.pause_reading()
        fill_until_buffered(t)
        paused_at = t.get_write_buffer_size()
        srv.transport.resume_reading()
        while t.get_write_buffer_size():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        await shut(server, srv, client)
        return limits, paused_at > 32768, client.events[:3]

    assert run(loop, main()) == (
        [(2**68, 2**70), (0.5, float("inf")), (100.5, 32768.0)],
        True,
        ["made", "pause", "resume"],
    )


@pytest.mark.parametrize("nothing", [None, 0, "", b"", []])
def test_writelines_of_nothing(loop, nothing):
    # 3.12's writelines returns at once for a false argument, before iterating it; 3.11's
    # joins it (and None cannot be joined). The fuzz test found ferroloop iterating first.
    joins = sys.version_info < (3, 12)
    expected = TypeError if joins and nothing in (None, 0) else None

    async def main():
        server, srv, client = await connected_pair(loop)
        try:
            client.transport.writelines(nothing)
            return None
        except Exception as exc:  # noqa: BLE001 - the outcome is compared
            return type(exc)
        finally:
            await shut(server, srv, client)

    assert run(loop, main()) is expected
