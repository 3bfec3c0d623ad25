"""The load rows of `make bench`: a server (bench/servers.py) on one loop in a process of its
own, loaded from another process, and the server's CPU time per request.

Echo rows (asyncio.Protocol, streams, sock_*; TCP and Unix; 1 and 100 KiB), connection churn
(1 KiB on a new connection per request) and a websockets echo are loaded by the Rust load
generator (bench/loadgen), eight connections each with one request in flight; the HTTP rows
(an httptools Protocol, aiohttp.web, uvicorn with a plain ASGI app) by wrk, keep-alive.
"""

import json
import os
import signal
import subprocess
import sys
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(os.path.dirname(HERE), "target", "release", "loadgen")


class LoadRow(NamedTuple):
    name: str
    kind: str  # the server: bench/servers.py's KIND
    family: str
    client: str  # "echo", "reconnect", "websocket" (loadgen) or "http" (wrk)
    size: int = 1024


ROWS = [
    *(LoadRow(f"{family} {kind} {size // 1024} KiB", kind, family, "echo", size)
      for family in ("tcp", "unix") for kind in ("protocol", "streams", "sock")
      for size in (1024, 100 * 1024)),
    *(LoadRow(f"tcp {kind} new conn", kind, "tcp", "reconnect")
      for kind in ("protocol", "streams")),
    LoadRow("tcp websockets 1 KiB", "websockets", "tcp", "websocket"),
    *(LoadRow(f"http {kind}", kind, "tcp", "http") for kind in ("httptools", "aiohttp", "uvicorn")),
]


class Failed(Exception):
    """A loop could not serve a row: the row shows n/a for it."""


def serve_and_load(loop_name, row, load, wrapper=(), timeout=15):
    """Runs the row's server on `loop_name` (under `wrapper`, a command prefix), applies
    `load(address, pid)` (a dict with "requests"), and adds the server's CPU time ("cpu")
    and its kernel part ("sys")."""
    server = subprocess.Popen(
        [*wrapper, sys.executable, os.path.join(HERE, "servers.py"), loop_name, row.kind,
         row.family], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise Failed(f"the server did not start: {last_line(server.stderr.read())}")
        result = load(ready[1], server.pid)
        server.send_signal(signal.SIGTERM)
        try:
            out, err = server.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failed("the server did not stop on SIGTERM") from None
        if server.returncode != 0:
            raise Failed(f"the server failed: {last_line(err)}")
        result.update(json.loads(out.strip().splitlines()[-1]))
        return result
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else "no output"


def checked(cmd, what, timeout):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"{what} timed out") from None
    if proc.returncode != 0:
        raise Failed(f"{what} failed: {last_line(proc.stderr)}")
    return proc.stdout


def parse_wrk(text):
    """Requests, requests/s and the 50th/99th latency percentiles (us) from `wrk --latency`."""
    unit = {"us": 1, "ms": 1e3, "s": 1e6}
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            value = parts[1]
            suffix = "us" if value.endswith("us") else "ms" if value.endswith("ms") else "s"
            out["p50_us" if parts[0] == "50%" else "p99_us"] = (
                float(value[:-len(suffix)]) * unit[suffix])
        elif "requests in" in line:
            out["requests"] = int(parts[0])
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(parts[1])
        elif line.startswith(("Socket errors:", "Non-2xx")):
            raise Failed(f"wrk saw errors: {line.strip()}")
    if not {"requests", "rps", "p50_us", "p99_us"} <= out.keys():
        raise Failed(f"could not read wrk's output: {last_line(text)}")
    return out


def client_command(row, address, duration):
    """The load for `row` against a server at `address`, for `duration` seconds."""
    if row.client == "http":
        return ["wrk", "-t1", "-c32", f"-d{max(1, round(duration))}s", "--latency",
                f"http://127.0.0.1:{address}/"]
    target = ["--unix", address] if row.family == "unix" else ["--tcp", address]
    mode = {"echo": [], "reconnect": ["--reconnect"], "websocket": ["--websocket"]}
    return [LOADGEN, *target, "--size", str(row.size), "--conns", "8",
            "--duration", str(duration), *mode[row.client]]


def sample(loop_name, row, duration):
    """One measurement of `row` on `loop_name`: a fresh server, loaded for `duration` s."""
    def load(address, pid):
        out = checked(client_command(row, address, duration), row.client, duration + 10)
        return parse_wrk(out) if row.client == "http" else json.loads(out)

    result = serve_and_load(loop_name, row, load)
    if not result["requests"]:
        raise Failed("no request was answered")
    return result
