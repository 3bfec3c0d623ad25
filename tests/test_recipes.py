"""The README's recipes for running other tools on ferroloop, each run as a user would:
uvicorn's `--loop ferroloop:new_event_loop`, pytest-asyncio's loop factory hook and
anyio's backend option. Each runs under `-W error`: no deprecation noise."""

import http.client
import signal
import socket
import subprocess
import sys
import textwrap

from conftest import run_python

ASGI_APP = textwrap.dedent("""
    import asyncio

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        loop = type(asyncio.get_running_loop())
        body = f"{loop.__module__}.{loop.__qualname__}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
""")


def test_uvicorn_serves_on_ferroloop(tmp_path):
    (tmp_path / "app.py").write_text(ASGI_APP)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "uvicorn", "app:app",
         "--loop", "ferroloop:new_event_loop", "--fd", str(listener.fileno())],
        cwd=tmp_path, pass_fds=[listener.fileno()], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    listener.close()
    try:
        log = []
        for line in server.stdout:  # until it says it serves
            log.append(line)
            if "Uvicorn running" in line:
                break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"ferroloop._loop.Loop"
        conn.close()
    finally:
        server.send_signal(signal.SIGTERM)  # uvicorn's own handler shuts it down
        out, _ = server.communicate(timeout=30)
    # A clean shutdown, after which uvicorn re-raises the signal it caught.
    assert "Application shutdown complete" in out, "".join(log) + out
    assert server.returncode == -signal.SIGTERM, "".join(log) + out


PYTEST_ASYNCIO_CONFTEST = textwrap.dedent("""
    import ferroloop

    def pytest_asyncio_loop_factories(config, item):
        return {"ferroloop": ferroloop.new_event_loop}
""")

PYTEST_ASYNCIO_TEST = textwrap.dedent("""
    import asyncio
    import pytest
    import ferroloop

    @pytest.mark.asyncio
    async def test_on_ferroloop():
        assert isinstance(asyncio.get_running_loop(), ferroloop.Loop)
        await asyncio.sleep(0)
""")

ANYIO_CONFTEST = textwrap.dedent("""
    import pytest
    import ferroloop

    @pytest.fixture
    def anyio_backend():
        return "asyncio", {"loop_factory": ferroloop.new_event_loop}
""")

ANYIO_TEST = textwrap.dedent("""
    import asyncio
    import anyio
    import pytest
    import ferroloop

    @pytest.mark.anyio
    async def test_on_ferroloop():
        assert isinstance(asyncio.get_running_loop(), ferroloop.Loop)
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep, 0)

    def test_anyio_run():
        async def main():
            await anyio.sleep(0)
            return type(asyncio.get_running_loop())

        options = {"loop_factory": ferroloop.new_event_loop}
        assert anyio.run(main, backend_options=options) is ferroloop.Loop
""")


def run_pytest_project(path, conftest, test, *options):
    (path / "conftest.py").write_text(conftest)
    (path / "test_it.py").write_text(test)
    (path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return run_python("-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider", *options,
                      cwd=path, timeout=120)


def test_pytest_asyncio_runs_tests_on_ferroloop(tmp_path):
    proc = run_pytest_project(tmp_path, PYTEST_ASYNCIO_CONFTEST, PYTEST_ASYNCIO_TEST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_anyio_runs_on_ferroloop(tmp_path):
    proc = run_pytest_project(tmp_path, ANYIO_CONFTEST, ANYIO_TEST, "-p", "no:asyncio")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
