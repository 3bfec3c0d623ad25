"""A soak that loses nothing: one server process per loop under load from a client process
on the same loop, on 127.0.0.1, each phase bounded in time.

Phases, in order:
  concurrent  N connections open at once, each echoing messages checked end to end
  resets      connections that reset (RST) while the server writes a large reply
  slow        slow readers receiving SIZE bytes each, checked byte for byte
  emfile      the server runs out of fds while connections arrive, then recovers
  requests    one million request/response round trips through one server; the
              server's RSS is sampled half-way and at the end

It prints a table with a column per loop (requests, bytes checked, errors by type, peak and
final RSS, fds before and after) and exits 1 if any byte was lost or corrupted, RSS grew by
more than 5 % over the second half of the requests, an fd or task was left behind, or a
phase did not finish in time (the loop stopped serving).

    python soak/run.py [--short] [--loops asyncio,ferroloop]
"""

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = dict(concurrent=10_000, messages=4, resets=1_000, slow=16, slow_size=10 << 20,
            emfile=50, requests=1_000_000, request_conns=50)
SHORT = dict(concurrent=1_000, messages=4, resets=200, slow=4, slow_size=10 << 20,
             emfile=20, requests=100_000, request_conns=20)
PHASE_TIMEOUT = 120
MESSAGE = 1024   # bytes per message in the concurrent phase
REQUEST = 64     # bytes per request in the requests phase
RESET_REPLY = b"r" * (4 << 20)
RSS_GROWTH_LIMIT = 0.05
# The first byte of a connection says what it wants from the server.
ECHO, SLOW, RESET = b"E", b"S", b"R"
PATTERN = bytes(range(256)) * 4096  # 1 MiB; the slow readers' stream repeats it


def new_loop(name):
    if name == "ferroloop":
        import ferroloop
        return ferroloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# The server: the process whose loop is under test.

class ServerProtocol(asyncio.Protocol):
    """Echoes, streams the pattern to a slow reader with flow control, or answers with a
    large write that the peer resets in the middle of."""

    def __init__(self, server):
        self.server = server
        self.mode = None
        self.can_write = None

    def connection_made(self, transport):
        self.transport = transport
        self.server.open += 1
        self.server.peak = max(self.server.peak, self.server.open)

    def data_received(self, data):
        if self.mode is None:
            self.mode, data = data[:1], data[1:]
            if self.mode == SLOW:
                self.can_write = asyncio.Event()
                self.can_write.set()
                self.server.tasks.add(asyncio.ensure_future(self.stream(data)))
                return
            if self.mode == RESET:
                self.transport.write(RESET_REPLY)
                return
        if self.mode == ECHO and data:
            self.server.echoed += len(data)
            self.transport.write(data)

    async def stream(self, header):
        size = struct.unpack("!Q", header[:8])[0]
        sent = 0
        while sent < size and not self.transport.is_closing():
            await self.can_write.wait()
            chunk = PATTERN[: min(len(PATTERN), size - sent)]
            self.transport.write(chunk)
            sent += len(chunk)
        self.transport.close()

    def pause_writing(self):
        if self.can_write is not None:
            self.can_write.clear()

    def resume_writing(self):
        if self.can_write is not None:
            self.can_write.set()

    def connection_lost(self, exc):
        self.server.open -= 1
        if exc is not None:
            self.server.errors[type(exc).__name__] = self.server.errors.get(
                type(exc).__name__, 0) + 1
        if self.can_write is not None:
            self.can_write.set()


class SoakServer:
    def __init__(self):
        self.open = self.peak = self.echoed = 0
        self.errors = {}
        self.tasks = set()
        self.handler_messages = {}

    def handle(self, loop, context):
        message = context.get("message", "")
        self.handler_messages[message] = self.handler_messages.get(message, 0) + 1


class Client:
    """The client process, driven by one command per line on stdin."""

    def __init__(self, loop_name):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "client", loop_name], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)

    def command(self, *words):
        self.process.stdin.write(" ".join(map(str, words)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the client exited during {words[0]}")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


async def serve(loop_name, scale):
    loop = asyncio.get_running_loop()
    state = SoakServer()
    loop.set_exception_handler(state.handle)
    raise_fd_limit()
    gc.collect()
    report = {"fds_before": open_fds(), "phases": {}}
    server = await loop.create_server(lambda: ServerProtocol(state), "127.0.0.1", 0,
                                      backlog=4096)
    port = server.sockets[0].getsockname()[1]
    client = Client(loop_name)
    rss_peak = rss_bytes()

    async def phase(name, *words, during=None):
        nonlocal rss_peak
        started = time.monotonic()
        pending = loop.run_in_executor(None, client.command, name, port, *words)
        if during is not None:
            await during
        try:
            result = await asyncio.wait_for(pending, PHASE_TIMEOUT)
        except asyncio.TimeoutError:
            result = {"timed_out": True}
        result["seconds"] = round(time.monotonic() - started, 1)
        report["phases"][name] = result
        rss_peak = max(rss_peak, rss_bytes())
        return result

    await phase("concurrent", scale["concurrent"], scale["messages"])
    report["peak_open"] = state.peak
    await phase("resets", scale["resets"])
    await phase("slow", scale["slow"], scale["slow_size"])
    await phase("emfile", scale["emfile"], during=starve_fds(loop))

    # The requests phase: RSS half-way (by bytes echoed) and at the end.
    total = scale["requests"] * REQUEST
    start_echoed = state.echoed
    rss = {}

    async def sample_half_way():
        while state.echoed - start_echoed < total // 2:
            await asyncio.sleep(0.05)
        rss["half"] = rss_bytes()

    sampler = asyncio.ensure_future(sample_half_way())
    await phase("requests", scale["requests"], scale["request_conns"])
    sampler.cancel()
    rss["end"] = rss_bytes()
    rss_peak = max(rss_peak, rss["end"])

    client.close()
    server.close()
    await server.wait_closed()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    await asyncio.sleep(0.1)
    gc.collect()
    report.update(
        rss_half=rss.get("half"), rss_end=rss["end"], rss_peak=rss_peak,
        fds_after=open_fds(), open_connections=state.open, server_errors=state.errors,
        handler=state.handler_messages,
        tasks_left=len(asyncio.all_tasks(loop) - {asyncio.current_task()}))
    return report


async def starve_fds(loop):
    """Lowers the fd limit to what is open now, so the next accept fails with EMFILE, then
    restores it: the server must pause accepting and recover."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_fds() + 1, hard))
    try:
        await asyncio.sleep(1.0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# The client: a second process on the same loop, which checks every byte it gets back.

class Checker:
    def __init__(self):
        self.requests = self.bytes_checked = 0
        self.errors = {}
        self.corrupt = 0

    def error(self, exc):
        self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1

    def result(self, **more):
        return dict(requests=self.requests, bytes_checked=self.bytes_checked,
                    corrupt=self.corrupt, errors=self.errors, **more)


class EchoClient(asyncio.Protocol):
    """Sends `count` messages one after the other, each checked when its echo is whole."""

    def __init__(self, checker, messages, done):
        self.checker, self.messages, self.done = checker, messages, done
        self.index, self.received = 0, bytearray()

    def connection_made(self, transport):
        self.transport = transport

    def start(self):
        self.transport.write(ECHO + self.messages[0])

    def data_received(self, data):
        self.received += data
        expected = self.messages[self.index]
        if len(self.received) < len(expected):
            return
        if self.received != expected:
            self.checker.corrupt += 1
        self.checker.requests += 1
        self.checker.bytes_checked += len(expected)
        self.received.clear()
        self.index += 1
        if self.index == len(self.messages):
            self.done.set_result(None)
        else:
            self.transport.write(self.messages[self.index])

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before its echoes"))


def messages_for(conn, count, size):
    # Distinct bytes per connection and message, so a crossed or stale reply is caught.
    return [struct.pack("!II", conn, i) * (size // 8) for i in range(count)]


async def connect_all(loop, checker, count, messages, size, batch=500):
    clients = []
    for first in range(0, count, batch):
        pending = []
        for conn in range(first, min(count, first + batch)):
            done = loop.create_future()
            protocol = EchoClient(checker, messages_for(conn, messages, size), done)
            pending.append(loop.create_connection(lambda p=protocol: p, "127.0.0.1",
                                                  PORT[0]))
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                checker.error(outcome)
            else:
                clients.append(outcome[1])
    return clients


async def finish(clients, checker):
    for outcome in await asyncio.gather(*(c.done for c in clients), return_exceptions=True):
        if isinstance(outcome, BaseException):
            checker.error(outcome)
    for c in clients:
        c.transport.close()
    await asyncio.sleep(0)


async def concurrent(loop, count, messages):
    checker = Checker()
    clients = await connect_all(loop, checker, int(count), int(messages), MESSAGE)
    opened = len(clients)
    for c in clients:
        c.start()
    await finish(clients, checker)
    expected = int(count) * int(messages) * MESSAGE
    return checker.result(open_at_once=opened, expected_bytes=expected)


async def requests(loop, total, conns):
    checker = Checker()
    total, conns = int(total), int(conns)
    clients = await connect_all(loop, checker, conns, total // conns, REQUEST)
    for c in clients:
        c.start()
    await finish(clients, checker)
    return checker.result(expected_bytes=total // conns * conns * REQUEST)


async def resets(loop, count):
    """Each connection asks for a large reply, reads a little of it, then resets."""
    checker = Checker()

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT[0])
        writer.write(RESET)
        got = await reader.readexactly(1024)
        if got != b"r" * 1024:
            checker.corrupt += 1
        checker.requests += 1
        checker.bytes_checked += len(got)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    # A few at a time: each leaves the server a large reply to buffer until the reset.
    for first in range(0, int(count), 20):
        for outcome in await asyncio.gather(*(one() for _ in range(first, min(int(count),
                                                                            first + 20))),
                                            return_exceptions=True):
            if isinstance(outcome, BaseException):
                checker.error(outcome)
    return checker.result(expected_bytes=int(count) * 1024)


async def slow(loop, count, size):
    """Readers that take their stream a piece at a time, checked against the pattern."""
    checker = Checker()
    size = int(size)

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT[0], limit=1 << 16)
        writer.write(SLOW + struct.pack("!Q", size))
        offset = 0
        pattern = memoryview(PATTERN)
        while offset < size:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            start = offset % len(PATTERN)
            while chunk:
                piece = chunk[: len(PATTERN) - start]
                if pattern[start:start + len(piece)] != piece:
                    checker.corrupt += 1
                chunk = chunk[len(piece):]
                offset += len(piece)
                start = 0
            await asyncio.sleep(0.005)  # slower than the server can write
        checker.bytes_checked += offset
        checker.requests += 1
        writer.close()
        await writer.wait_closed()

    for outcome in await asyncio.gather(*(one() for _ in range(int(count))),
                                        return_exceptions=True):
        if isinstance(outcome, BaseException):
            checker.error(outcome)
    return checker.result(expected_bytes=int(count) * size)


async def emfile(loop, count):
    """Connections that arrive while the server has no fd to accept them with."""
    await asyncio.sleep(0.2)  # the server lowers its limit first
    checker = Checker()
    clients = await connect_all(loop, checker, int(count), 2, MESSAGE)
    for c in clients:
        c.start()
    await finish(clients, checker)
    return checker.result(expected_bytes=int(count) * 2 * MESSAGE)


PORT = [0]
PHASES = dict(concurrent=concurrent, requests=requests, resets=resets, slow=slow,
              emfile=emfile)


def client_main(loop_name):
    raise_fd_limit()
    loop = new_loop(loop_name)
    for line in sys.stdin:
        name, port, *words = line.split()
        PORT[0] = int(port)
        result = loop.run_until_complete(PHASES[name](loop, *words))
        print(json.dumps(result), flush=True)
    loop.close()


# The orchestrator.

def run_loop(loop_name, scale):
    proc = subprocess.run([sys.executable, __file__, "serve", loop_name, json.dumps(scale)],
                          capture_output=True, text=True, timeout=PHASE_TIMEOUT * 6)
    if proc.returncode != 0:
        raise SystemExit(f"{loop_name}: the soak server failed\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def problems(report, scale):
    found = []
    for name, phase in report["phases"].items():
        if phase.get("timed_out"):
            found.append(f"{name}: did not finish in {PHASE_TIMEOUT} s (the loop stopped)")
            continue
        if phase["corrupt"]:
            found.append(f"{name}: {phase['corrupt']} corrupted replies")
        if phase["bytes_checked"] != phase["expected_bytes"]:
            found.append(f"{name}: {phase['bytes_checked']} bytes checked of "
                         f"{phase['expected_bytes']}")
        if phase["errors"]:
            found.append(f"{name}: client errors {phase['errors']}")
    if report["peak_open"] < scale["concurrent"]:
        found.append(f"only {report['peak_open']} connections were open at once")
    growth = report["rss_end"] / report["rss_half"] - 1
    if growth > RSS_GROWTH_LIMIT:
        found.append(f"RSS grew {growth:.1%} over the second half of the requests")
    if report["fds_after"] != report["fds_before"]:
        found.append(f"fds: {report['fds_before']} before, {report['fds_after']} after")
    if report["tasks_left"] or report["open_connections"]:
        found.append(f"left: {report['tasks_left']} tasks, "
                     f"{report['open_connections']} connections")
    unexpected = set(report["server_errors"]) - {"ConnectionResetError", "BrokenPipeError"}
    if unexpected:
        found.append(f"server errors {report['server_errors']}")
    handler = dict(report["handler"])
    if not handler.pop("socket.accept() out of system resource", 0):
        found.append("the server never ran out of fds")
    if handler:
        found.append(f"exception handler calls {handler}")
    return found


def table(reports, loop_names):
    rows = []
    for name in ("concurrent", "resets", "slow", "emfile", "requests"):
        rows.append((f"{name}: requests", [r["phases"][name].get("requests") for r in reports]))
        rows.append((f"{name}: bytes checked",
                     [r["phases"][name].get("bytes_checked") for r in reports]))
        rows.append((f"{name}: seconds", [r["phases"][name]["seconds"] for r in reports]))
    mib = 1 << 20
    rows += [
        ("connections open at once", [r["peak_open"] for r in reports]),
        ("server errors by type", [", ".join(f"{k} {v}" for k, v in
                                             sorted(r["server_errors"].items())) or "-"
                                   for r in reports]),
        ("client errors", [sum(sum(p.get("errors", {}).values())
                               for p in r["phases"].values()) for r in reports]),
        ("accept out of fds (handler)", [r["handler"].get(
            "socket.accept() out of system resource", 0) for r in reports]),
        ("RSS peak, MiB", [round(r["rss_peak"] / mib, 1) for r in reports]),
        ("RSS half-way, MiB", [round(r["rss_half"] / mib, 1) for r in reports]),
        ("RSS final, MiB", [round(r["rss_end"] / mib, 1) for r in reports]),
        ("fds before / after", [f"{r['fds_before']} / {r['fds_after']}" for r in reports]),
        ("tasks left", [r["tasks_left"] for r in reports]),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  " + "  ".join(f"{n:>16}" for n in loop_names))
    for label, values in rows:
        print(f"{label:{width}}  " + "  ".join(f"{v!s:>16}" for v in values))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="the shorter run CI makes")
    parser.add_argument("--loops", default="asyncio,ferroloop")
    args = parser.parse_args()
    scale = SHORT if args.short else FULL
    names = args.loops.split(",")
    started = time.monotonic()
    reports = [run_loop(name, scale) for name in names]
    table(reports, names)
    failed = False
    for name, report in zip(names, reports):
        for problem in problems(report, scale):
            print(f"FAIL {name}: {problem}")
            failed = True
    print(f"soak {'failed' if failed else 'passed'} in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        loop = new_loop(sys.argv[2])
        try:
            print(json.dumps(loop.run_until_complete(serve(sys.argv[2],
                                                          json.loads(sys.argv[3])))))
        finally:
            loop.close()
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2])
    else:
        sys.exit(main())
