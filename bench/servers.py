"""The servers of `make bench`'s load rows, each run in a process of its own.

    python bench/servers.py LOOP KIND FAMILY

LOOP is one of loops.LOOPS. KIND is an echo server, through `protocol` (asyncio.Protocol),
`streams` (start_server), `sock` (loop.sock_*) or `websockets` (the websockets package, one
message answered by the same message); or an HTTP/1.1 keep-alive hello-world, through
`httptools` (an asyncio.Protocol parsing with httptools), `aiohttp` (aiohttp.web) or
`uvicorn` (uvicorn serving a plain ASGI app). FAMILY is tcp (127.0.0.1) or unix (a temporary
path; echo only). It prints `READY <address>` once listening; on SIGTERM it prints the CPU
time it used since then, as JSON, and exits.
"""

import asyncio
import json
import os
import resource
import signal
import socket
import sys
import tempfile
import time

from loops import new_loop

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


HTTP_KINDS = ("httptools", "aiohttp", "uvicorn")
BODY = b"Hello, world!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class HttpToolsProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        import httptools

        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except Exception:
            self.transport.close()

    def on_message_complete(self):
        self.transport.write(RESPONSE)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def start_echo(mode, path):
    """Starts an echo server; returns its address and a coroutine function that stops it."""
    loop = asyncio.get_running_loop()
    if mode in ("protocol", "streams"):
        if mode == "protocol":
            server = await (loop.create_unix_server(EchoProtocol, path) if path else
                            loop.create_server(EchoProtocol, "127.0.0.1", 0))
        else:
            server = await (asyncio.start_unix_server(echo_stream, path) if path else
                            asyncio.start_server(echo_stream, "127.0.0.1", 0))
        listener = server.sockets[0]

        async def stop():
            server.close()
    elif mode == "websockets":
        from websockets.asyncio.server import serve as serve_websockets, unix_serve

        server = await (unix_serve(websocket_echo, path, compression=None) if path else
                        serve_websockets(websocket_echo, "127.0.0.1", 0, compression=None))
        listener = next(iter(server.sockets))

        async def stop():
            server.close()
            await server.wait_closed()
    else:
        listener = socket.socket(socket.AF_UNIX if path else socket.AF_INET)
        listener.bind(path if path else ("127.0.0.1", 0))
        listener.listen(128)
        listener.setblocking(False)
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

        async def stop():
            acceptor.cancel()
            listener.close()
    return (path or "127.0.0.1:%d" % listener.getsockname()[1]), stop


async def asgi_hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": BODY})


async def websocket_echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def start_uvicorn():
    """uvicorn as it runs in production, through Server.serve(), less its logging."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        asgi_hello, host="127.0.0.1", port=0, http="httptools", ws="none", lifespan="off",
        access_log=False, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise SystemExit("uvicorn stopped before it started")
        await asyncio.sleep(0.01)

    async def stop():
        server.should_exit = True
        await serving
    return server.servers[0].sockets[0].getsockname()[1], stop


async def start_http(mode):
    """Starts an HTTP server; returns its port and a coroutine function that stops it."""
    loop = asyncio.get_running_loop()
    if mode == "uvicorn":
        return await start_uvicorn()
    if mode == "httptools":
        server = await loop.create_server(HttpToolsProtocol, "127.0.0.1", 0)

        async def stop():
            server.close()
        return server.sockets[0].getsockname()[1], stop
    from aiohttp import web

    async def hello(request):
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner.addresses[0][1], runner.cleanup


async def serve(kind, family):
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    # uvicorn catches SIGTERM itself, then raises it again once it has stopped: the second
    # delivery finds the future done.
    loop.add_signal_handler(signal.SIGTERM, lambda: stopped.done() or stopped.set_result(None))
    if kind in HTTP_KINDS:
        address, stop = await start_http(kind)
    else:
        path = os.path.join(tempfile.mkdtemp(), "echo.sock") if family == "unix" else None
        address, stop = await start_echo(kind, path)
    cpu0, sys0 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_stime
    print("READY", address, flush=True)
    await stopped
    cpu = time.process_time() - cpu0
    kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0
    await stop()
    print(json.dumps({"cpu": cpu, "sys": kernel}), flush=True)


def main():
    loop_name, kind, family = sys.argv[1:4]
    loop = new_loop(loop_name)
    try:
        loop.run_until_complete(serve(kind, family))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
