"""An echo server for the network rows of `make bench`, in a process of its own.

    python bench/net_server.py LOOP MODE FAMILY

LOOP is asyncio, uvloop or ferroloop; MODE is protocol (asyncio.Protocol), streams
(start_server) or sock (loop.sock_*); FAMILY is tcp (127.0.0.1) or unix (a temporary
path). It prints `READY <address>` once listening; on SIGTERM it prints the CPU time it
used since then, as JSON, and exits.
"""

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time

CHUNK = 256 * 1024


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_stream(reader, writer):
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    writer.close()


async def echo_sock(loop, conn):
    with conn:
        while data := await loop.sock_recv(conn, CHUNK):
            await loop.sock_sendall(conn, data)


async def serve(mode, family):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    path = os.path.join(tempfile.mkdtemp(), "echo.sock") if family == "unix" else None

    if mode == "protocol":
        server = await (loop.create_unix_server(EchoProtocol, path) if path else
                        loop.create_server(EchoProtocol, "127.0.0.1", 0))
        listener = server.sockets[0]
    elif mode == "streams":
        server = await (asyncio.start_unix_server(echo_stream, path) if path else
                        asyncio.start_server(echo_stream, "127.0.0.1", 0))
        listener = server.sockets[0]
    else:
        listener = socket.socket(socket.AF_UNIX if path else socket.AF_INET)
        listener.bind(path if path else ("127.0.0.1", 0))
        listener.listen(128)
        listener.setblocking(False)
        server = None
        clients = set()

        async def accept_loop():
            while True:
                conn, _ = await loop.sock_accept(listener)
                if not path:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                task = loop.create_task(echo_sock(loop, conn))
                clients.add(task)
                task.add_done_callback(clients.discard)

        acceptor = loop.create_task(accept_loop())

    address = path if path else "127.0.0.1:%d" % listener.getsockname()[1]
    cpu0 = time.process_time()
    print("READY", address, flush=True)
    await stop
    cpu = time.process_time() - cpu0
    if server is not None:
        server.close()
    else:
        acceptor.cancel()
        listener.close()
    print(json.dumps({"cpu": cpu}), flush=True)


def main():
    loop_name, mode, family = sys.argv[1:4]
    if loop_name == "uvloop":
        import uvloop
        factory = uvloop.new_event_loop
    elif loop_name == "ferroloop":
        import ferroloop
        factory = ferroloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    loop = factory()
    try:
        loop.run_until_complete(serve(mode, family))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
