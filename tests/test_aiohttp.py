"""aiohttp on the loop: a ClientSession gathering pages from a local aiohttp.web server,
and web.run_app serving requests under `python -m ferroloop`."""

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import aiohttp
from aiohttp import web


def test_client_session_gathers_pages_from_web_server(loop):
    async def page(request):
        size = int(request.match_info["size"])
        return web.Response(body=b"x" * size)

    async def main():
        app = web.Application()
        app.router.add_get("/page/{size}", page)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                async def fetch(size):
                    async with session.get(f"http://127.0.0.1:{port}/page/{size}") as resp:
                        return resp.status, len(await resp.read())

                sizes = [0, 1, 1000, 65536, 1_000_000]
                return sizes, await asyncio.gather(*(fetch(s) for s in sizes))
        finally:
            await runner.cleanup()

    sizes, results = loop.run_until_complete(asyncio.wait_for(main(), 30))
    assert results == [(200, s) for s in sizes]


RUN_APP = textwrap.dedent("""
    import asyncio, signal, sys
    from aiohttp import web

    # The test stops the server with Ctrl-C, whatever disposition the runner passed on.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    async def hello(request):
        loop = type(asyncio.get_running_loop())
        return web.Response(text=f"hello from {loop.__module__}")

    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
    print("run_app returned", flush=True)
""")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_app_serves_on_ferroloop(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(RUN_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ferroloop", str(script), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    bodies = [resp.read().decode()]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        for _ in range(5):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                bodies.append(resp.read().decode())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert bodies == ["hello from ferroloop._loop"] * 6
    assert proc.returncode == 0, err
    assert "run_app returned" in out
