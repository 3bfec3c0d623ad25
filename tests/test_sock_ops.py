"""loop.sock_recv and loop.sock_sendall, on both loops. ferroloop runs asyncio's steps for
them natively (src/py/sock_ops.rs) and lets a finished wait's epoll registration linger
for the socket's next wait; these tests pin down what a program sees: results, errors and
their types, cancellation, what stays registered, and that a socket closed while its fd
lingers does not blind the next socket to get that number."""

import asyncio
import errno
import gc
import socket
import struct
import weakref

import pytest

from conftest import resource_warnings_collected


def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def run(loop, coro, timeout=10):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def test_data_already_there_and_data_waited_for(loop):
    async def main():
        a, b = pair()
        with a, b:
            b.send(b"ready")
            first = await loop.sock_recv(a, 100)
            waiting = loop.create_task(loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            assert not waiting.done()
            await loop.sock_sendall(b, b"later")
            return first, await waiting

    assert run(loop, main()) == (b"ready", b"later")


def test_recv_takes_at_most_n_and_keeps_the_rest(loop):
    async def main():
        a, b = pair()
        with a, b:
            await loop.sock_sendall(b, b"0123456789")
            return [await loop.sock_recv(a, 4), await loop.sock_recv(a, 100)]

    assert run(loop, main()) == [b"0123", b"456789"]


def test_a_datagram_is_read_whole_or_truncated_as_recv_does(loop):
    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:
            a.setblocking(False)
            b.send(b"x" * 300)
            b.send(b"y" * 10)
            return [await loop.sock_recv(a, 100), await loop.sock_recv(a, 100)]

    assert run(loop, main()) == [b"x" * 100, b"y" * 10]


def test_end_of_stream_is_empty_bytes(loop):
    async def main():
        a, b = pair()
        with a:
            waiting = loop.create_task(loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            b.close()
            return await waiting, await loop.sock_recv(a, 100)

    assert run(loop, main()) == (b"", b"")


def test_a_reset_connection_raises_connection_reset_error(loop):
    async def main():
        listener = socket.socket()
        with listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            with client, server:
                server.setblocking(False)
                waiting = loop.create_task(loop.sock_recv(server, 100))
                await asyncio.sleep(0)
                # SO_LINGER of zero: close sends RST.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                with pytest.raises(ConnectionResetError) as caught:
                    await waiting
                return caught.value.errno

    assert run(loop, main()) == errno.ECONNRESET


def test_sendall_delivers_everything_in_order_across_partial_sends(loop):
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB: far past the socket buffers

    async def main():
        a, b = pair()
        with a, b:
            sending = loop.create_task(loop.sock_sendall(a, payload))
            received = bytearray()
            while len(received) < len(payload):
                received += await loop.sock_recv(b, 65536)
            assert await sending is None
            return bytes(received)

    assert run(loop, main()) == payload


def test_sendall_to_a_closed_peer_raises(loop):
    async def main():
        a, b = pair()
        with a:
            b.close()
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                await loop.sock_sendall(a, b"x" * 1024)

    run(loop, main())


@pytest.mark.parametrize("n, error", [(-1, ValueError), ("10", TypeError), (1.5, TypeError),
                                      (2**62, MemoryError), (2**63, OverflowError)])
def test_a_bad_size_raises_what_recv_raises(loop, n, error):
    async def main():
        a, b = pair()
        with a, b:
            with pytest.raises(error) as caught:
                await loop.sock_recv(a, n)
            return str(caught.value)

    a, _ = socket.socketpair()
    with a, _:
        with pytest.raises(error) as expected:
            a.recv(n)
    assert run(loop, main()) == str(expected.value)


def test_a_size_past_the_read_buffer(loop):
    async def main():
        a, b = pair()
        with a, b:
            await loop.sock_sendall(b, b"x" * 100)
            waiting = loop.create_task(loop.sock_recv(a, 4 << 20))
            first = await waiting
            later = loop.create_task(loop.sock_recv(a, 4 << 20))
            await asyncio.sleep(0)
            await loop.sock_sendall(b, b"y")
            return first, await later

    assert run(loop, main()) == (b"x" * 100, b"y")


def test_data_that_is_not_bytes(loop):
    async def main():
        a, b = pair()
        with a, b:
            with pytest.raises(TypeError):
                await loop.sock_sendall(a, "text")
            await loop.sock_sendall(a, bytearray(b"array"))
            await loop.sock_sendall(a, memoryview(b"view"))
            return await loop.sock_recv(b, 100)

    assert run(loop, main()) == b"arrayview"


def test_a_blocking_socket_is_refused_in_debug_mode(loop):
    async def main():
        a, b = socket.socketpair()
        with a, b:
            for call in (lambda: loop.sock_recv(a, 10), lambda: loop.sock_sendall(a, b"x")):
                with pytest.raises(ValueError, match="the socket must be non-blocking"):
                    await call()

    loop.set_debug(True)
    run(loop, main())


def test_a_socket_subclass_gets_its_own_methods_called(loop):
    calls = []

    class Counting(socket.socket):
        def recv(self, n, *args):
            calls.append("recv")
            return super().recv(n, *args)

        def send(self, data, *args):
            calls.append("send")
            return super().send(data, *args)

    async def main():
        a, b = socket.socketpair()
        with a, b:
            sub = Counting(fileno=a.detach())
            sub.setblocking(False)
            with sub:
                await loop.sock_sendall(sub, b"out")
                b.send(b"in")
                return await loop.sock_recv(sub, 10), b.recv(10)

    assert run(loop, main()) == (b"in", b"out")
    assert calls == ["send", "recv"]


def test_an_fd_a_transport_uses_is_refused(loop):
    async def main():
        a, b = pair()
        with b:
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            try:
                with pytest.raises(RuntimeError, match="is used by transport"):
                    await loop.sock_recv(a, 10)
            finally:
                transport.close()
                await asyncio.sleep(0)

    run(loop, main())


def test_a_finished_wait_leaves_no_reader_or_writer(loop):
    async def main():
        a, b = pair()
        with a, b:
            waiting = loop.create_task(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            b.send(b"x")
            assert await waiting == b"x"
            await asyncio.sleep(0)
            assert not loop.remove_reader(a.fileno())
            # A send the buffer cannot take waits for the writer, then finishes.
            big = b"y" * (8 << 20)
            sending = loop.create_task(loop.sock_sendall(a, big))
            got = 0
            while got < len(big):
                got += len(await loop.sock_recv(b, 1 << 20))
            await sending
            await asyncio.sleep(0)
            return loop.remove_writer(a.fileno()), loop.remove_reader(b.fileno())

    assert run(loop, main()) == (False, False)


def test_a_cancelled_wait_removes_its_reader_and_the_next_gets_the_data(loop):
    async def main():
        a, b = pair()
        with a, b:
            waiting = loop.create_task(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await asyncio.sleep(0)
            removed = loop.remove_reader(a.fileno())
            nxt = loop.create_task(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            b.send(b"data")
            return removed, await nxt

    assert run(loop, main()) == (False, b"data")


def test_a_closed_sockets_number_reused_at_once_is_watched(loop):
    """A wait that just finished leaves its fd lingering in epoll on ferroloop; the socket
    closes, and the next socket takes its number before the loop polls again."""
    async def main():
        seen = []
        for reuse in ("sock_recv", "add_reader"):
            a, b = pair()
            b.send(b"1")
            assert await loop.sock_recv(a, 10) == b"1"
            number = a.fileno()
            a.close()
            b.close()
            c, d = pair()
            with c, d:
                if c.fileno() != number:
                    c, d = d, c
                assert c.fileno() == number
                if reuse == "sock_recv":
                    waiting = loop.create_task(loop.sock_recv(c, 10))
                else:
                    waiting = loop.create_future()
                    loop.add_reader(number, lambda: (waiting.set_result(c.recv(10)),
                                                      loop.remove_reader(number)))
                await asyncio.sleep(0.01)  # a blocking poll
                d.send(b"2")
                seen.append(await waiting)
        return seen

    assert run(loop, main()) == [b"2", b"2"]


def test_a_socket_dropped_after_its_wait_is_not_kept_alive(loop):
    """A lingering fd holds its socket for a pass or two at most, busy loop or not."""
    async def main():
        a, b = pair()
        with b:
            waiting = loop.create_task(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            b.send(b"1")
            assert await waiting == b"1"
            dropped = weakref.ref(a)
            del a
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
            return dropped() is None

    with resource_warnings_collected():
        assert run(loop, main())


def test_a_lingering_fd_with_data_nobody_waits_for(loop):
    async def main():
        a, b = pair()
        with a, b:
            b.send(b"1")
            assert await loop.sock_recv(a, 10) == b"1"
            b.send(b"2")  # readable, with no wait
            for _ in range(3):
                await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            return await loop.sock_recv(a, 10)

    assert run(loop, main()) == b"2"


def test_reader_and_writer_waits_on_one_socket(loop):
    big = b"z" * (8 << 20)

    async def main():
        a, b = pair()
        with a, b:
            reading = loop.create_task(loop.sock_recv(a, 10))
            sending = loop.create_task(loop.sock_sendall(a, big))
            await asyncio.sleep(0)
            assert not reading.done() and not sending.done()
            got = 0
            while got < len(big):
                got += len(await loop.sock_recv(b, 1 << 20))
            await sending
            await loop.sock_sendall(b, b"back")
            return await reading

    assert run(loop, main()) == b"back"
