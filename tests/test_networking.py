"""TCP and Unix networking: the seed programs and the faults, on both loops.

Servers listen on 127.0.0.1 (or a temporary Unix path) only; every wait has a timeout.
"""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from conftest import open_fds

TIMEOUT = 30


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def handle_client(reader, writer):
    data = await reader.read(100)
    writer.write(b"echo: " + data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_echo_server_with_200_concurrent_clients(loop):
    async def client(port, i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = f"client {i}".encode()
        writer.write(message)
        await writer.drain()
        reply = await reader.read()
        writer.close()
        await writer.wait_closed()
        return reply == b"echo: " + message

    async def main():
        server = await asyncio.start_server(handle_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            results = await asyncio.gather(*(client(port, i) for i in range(200)))
        return results

    assert run(loop, main()) == [True] * 200


def test_unix_echo(loop, tmp_path):
    path = str(tmp_path / "echo.sock")

    async def main():
        server = await asyncio.start_unix_server(handle_client, path)
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"over unix")
            reply = await reader.read()
            writer.close()
            await writer.wait_closed()
        return reply

    assert run(loop, main()) == b"echo: over unix"


def test_connection_refused(loop):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError):
        run(loop, asyncio.open_connection("127.0.0.1", port))


class Recorder(asyncio.Protocol):
    def __init__(self):
        self.lost = []
        self.paused = self.resumed = 0
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def connection_lost(self, exc):
        self.lost.append(exc)
        if not self.done.done():
            self.done.set_result(None)


def test_peer_reset_reports_connection_lost_once(loop):
    async def main():
        accepted = loop.create_future()

        async def on_client(reader, writer):
            accepted.set_result(writer)

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        writer = await accepted
        sock = writer.get_extra_info("socket")
        # SO_LINGER 0: close sends RST, so our side sees a reset, not a clean EOF.
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        raw.close()
        writer.transport.abort()
        for _ in range(20):
            transport.write(b"x" * 65536)
            await asyncio.sleep(0.01)
            if proto.done.done():
                break
        await proto.done
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return proto.lost

    lost = run(loop, main())
    assert len(lost) == 1
    assert isinstance(lost[0], (ConnectionResetError, BrokenPipeError))


def test_writes_after_peer_is_gone_are_logged_not_raised(loop, caplog):
    async def main():
        accepted = loop.create_future()
        server = await loop.create_server(lambda: Recorder(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        class Client(Recorder):
            pass

        transport, proto = await loop.create_connection(Client, "127.0.0.1", port)
        transport.abort()
        await proto.done
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(10):
                transport.write(b"late")
        server.close()
        await server.wait_closed()
        del accepted

    run(loop, main())
    assert "socket.send() raised exception." in caplog.text


def test_ten_mib_to_a_slow_reader_arrives_complete_with_flow_control(loop):
    payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)

    async def main():
        received = bytearray()
        finished = loop.create_future()

        class SlowReader(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                received.extend(data)
                # Read slowly: stop now and then, so the writer's buffer fills up.
                self.transport.pause_reading()
                loop.call_later(0.001, self.transport.resume_reading)

            def eof_received(self):
                finished.set_result(None)

        server = await loop.create_server(SlowReader, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        transport.set_write_buffer_limits(high=64 * 1024)
        transport.write(payload)
        transport.write_eof()
        await finished
        transport.close()
        await proto.done
        server.close()
        await server.wait_closed()
        return bytes(received), proto

    received, proto = run(loop, main(), timeout=60)
    assert received == payload
    assert proto.paused >= 1 and proto.resumed >= 1
    assert proto.lost == [None]


def test_5000_connections_leave_no_fd_behind(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        for _ in range(5):
            conns = await asyncio.gather(*(
                loop.create_connection(asyncio.Protocol, "127.0.0.1", port) for _ in range(1000)))
            for transport, _ in conns:
                transport.close()
            await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.1)

    before = open_fds()
    run(loop, main(), timeout=120)
    assert open_fds() - before == set()


EMFILE_SCRIPT = textwrap.dedent("""
    import asyncio, resource, socket, sys
    factory = None
    if sys.argv[1] == 'ferroloop':
        import ferroloop
        factory = ferroloop.new_event_loop

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda l, c: print('handler:', c['message'], flush=True))
        served = 0

        def factory():
            nonlocal served
            served += 1
            return asyncio.Protocol()

        server = await loop.create_server(factory, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        # Client sockets first: connecting them later needs no new fd, accepting does.
        clients = [socket.socket() for _ in range(3)]
        for c in clients:
            c.setblocking(False)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        hogs = []
        try:
            while True:
                hogs.append(socket.socket())
        except OSError:
            pass
        await asyncio.gather(*(loop.sock_connect(c, ('127.0.0.1', port)) for c in clients))
        await asyncio.sleep(0.3)
        before = served
        for h in hogs[:20]:
            h.close()
        await asyncio.sleep(1.5)  # asyncio retries accept after ACCEPT_RETRY_DELAY (1 s)
        after = served
        for s in clients + hogs[20:]:
            s.close()
        server.close()
        await server.wait_closed()
        print('served before', before, 'after', after, flush=True)

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
""")


def out_of_fds(mode):
    """The EMFILE script's exception handler calls, after checking that it recovered."""
    proc = subprocess.run([sys.executable, "-c", EMFILE_SCRIPT, mode], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "served before 0 after 3", proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("handler:")]


def test_accept_out_of_fds_pauses_recovers_and_reports_as_asyncio_does():
    # asyncio goes on with its accept batch after EMFILE, so every attempt of the batch
    # fails and calls the exception handler: the same number of times on both loops.
    stdlib, ours = out_of_fds("asyncio"), out_of_fds("ferroloop")
    assert set(stdlib) == {"handler: socket.accept() out of system resource"}
    assert len(stdlib) > 1
    assert ours == stdlib
