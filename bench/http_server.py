"""An HTTP/1.1 keep-alive hello-world for the HTTP rows of `make bench`.

    python bench/http_server.py LOOP MODE

LOOP is asyncio, uvloop or ferroloop; MODE is httptools (an asyncio.Protocol parsing with
httptools) or aiohttp (aiohttp.web). Prints `READY <port>` once listening on 127.0.0.1; on
SIGTERM prints the CPU time it used since then, as JSON, and exits.
"""

import asyncio
import json
import signal
import sys
import time

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


async def serve(mode):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    if mode == "httptools":
        server = await loop.create_server(HttpToolsProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cleanup = server.close
    else:
        from aiohttp import web

        async def hello(request):
            return web.Response(body=BODY, content_type="text/plain")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        cleanup = None
    cpu0 = time.process_time()
    print("READY", port, flush=True)
    await stop
    cpu = time.process_time() - cpu0
    if cleanup:
        cleanup()
    else:
        await runner.cleanup()
    print(json.dumps({"cpu": cpu}), flush=True)


def main():
    loop_name, mode = sys.argv[1:3]
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
        loop.run_until_complete(serve(mode))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
