"""add_reader / add_writer: level-triggered, ints or objects with fileno()."""

import asyncio
import socket


def test_reader_is_level_triggered(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    calls = []

    def on_readable():
        calls.append(1)
        if len(calls) == 3:
            loop.stop()

    loop.add_reader(a, on_readable)
    b.send(b"x")
    loop.call_later(5, loop.stop)
    loop.run_forever()
    # Nothing was read, so the fd stays readable and the reader runs on every pass.
    assert len(calls) == 3
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False
    a.close()
    b.close()


def test_reader_reads_and_writer_writes(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got = []

    def on_writable():
        b.send(b"hello")
        loop.remove_writer(b.fileno())

    def on_readable(sock):
        got.append(sock.recv(100))
        loop.stop()

    loop.add_writer(b.fileno(), on_writable)
    loop.add_reader(a.fileno(), on_readable, a)
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert got == [b"hello"]
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_writer(b.fileno()) is False
    a.close()
    b.close()


def test_replacing_a_reader_cancels_the_old_one(loop):
    a, b = socket.socketpair()
    calls = []
    loop.add_reader(a, calls.append, "old")
    loop.add_reader(a, lambda: (calls.append("new"), loop.stop()))
    b.send(b"x")
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert calls == ["new"]
    loop.remove_reader(a)
    a.close()
    b.close()


def test_reader_and_writer_on_one_fd(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    seen = set()

    def note(what):
        seen.add(what)
        if seen == {"r", "w"}:
            loop.stop()

    loop.add_reader(a, note, "r")
    loop.add_writer(a, note, "w")
    b.send(b"x")
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert seen == {"r", "w"}
    assert loop.remove_writer(a) and loop.remove_reader(a)
    a.close()
    b.close()


def test_fd_closed_and_reused_while_registered():
    # asyncio's selector keeps a stale key for a closed fd and then fails to watch the new
    # fd that reuses its number; ferroloop re-registers it.
    import ferroloop

    loop = ferroloop.new_event_loop()
    a, b = socket.socketpair()
    loop.add_reader(a.fileno(), print)
    fd = a.fileno()
    a.close()
    b.close()
    c, d = socket.socketpair()
    # The kernel dropped the old registration; a new fd with the same number must work.
    got = []
    target, other = (c, d) if c.fileno() == fd else (d, c)
    assert target.fileno() == fd, "the kernel reuses the lowest free fd"
    loop.add_reader(target.fileno(), lambda: (got.append(1), loop.stop()))
    other.send(b"x")
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert got == [1]
    loop.remove_reader(target.fileno())
    loop.remove_reader(fd)
    c.close()
    d.close()
    loop.close()


def test_sock_and_streams_work(loop):
    async def main():
        async def handle(reader, writer):
            data = await reader.read(100)
            writer.write(b"echo: " + data)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        reply = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return reply

    assert loop.run_until_complete(main()) == b"echo: ping"


def test_pipes_and_subprocess(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "read x; echo got $x", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(b"hi\n")
        return out, proc.returncode

    assert loop.run_until_complete(main()) == (b"got hi\n", 0)
