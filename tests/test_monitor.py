"""The live view: a loop started with monitor=PATH (or FERROLOOP_MONITOR) answers on a
Unix socket from a native thread, without the GIL, so `python -m ferroloop monitor PATH`
keeps updating while the loop is blocked. The view itself is tested in tmux."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import ferroloop
from ferroloop import _monitor

HEALTHY = """
import asyncio, sys, ferroloop

async def ticker():
    while True:
        await asyncio.sleep(0.01)

async def main():
    for i in range(3):
        asyncio.create_task(ticker(), name=f"ticker-{i}")
    print("ready", flush=True)
    await asyncio.sleep(60)  # the test ends it sooner

ferroloop.run(main(), monitor=sys.argv[1])
"""

STUCK = """
import asyncio, re, sys, time, ferroloop

BACKTRACKING = re.compile(r"(a+)+$")

def hold_the_gil(seconds):
    # A regular expression that backtracks for about `seconds`, without letting go of
    # the GIL.
    n = 16
    while True:
        start = time.perf_counter()
        BACKTRACKING.match("a" * n + "b")
        took = time.perf_counter() - start
        if took > seconds / 16:
            break
        n += 1
    print("ready", flush=True)
    BACKTRACKING.match("a" * (n + 4) + "b")

async def stuck(how):
    await asyncio.sleep(0.05)
    if how == "sleep":
        print("ready", flush=True)
        time.sleep(60)  # the test ends it sooner
    else:
        hold_the_gil(3.0)

async def main():
    await asyncio.create_task(stuck(sys.argv[2]), name="stuck")

ferroloop.run(main(), monitor=sys.argv[1])
"""


def ignore_what_background_runners_ignore():
    # The child is ended with SIGTERM, whatever a background runner passed on.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Program:
    """A child program with a monitor socket, ended when the test ends."""

    def __init__(self, tmp_path, source, *args):
        self.path = str(tmp_path / "monitor.sock")
        script = tmp_path / "program.py"
        script.write_text(textwrap.dedent(source))
        self.proc = subprocess.Popen(
            [sys.executable, str(script), self.path, *args], stdout=subprocess.PIPE,
            text=True, preexec_fn=ignore_what_background_runners_ignore)
        assert self.proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            assert time.monotonic() < deadline, "no monitor socket"
            time.sleep(0.01)

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


@pytest.fixture
def program(tmp_path):
    started = []

    def start(source, *args):
        started.append(Program(tmp_path, source, *args))
        return started[-1]

    yield start
    for p in started:
        p.close()


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)


def test_a_healthy_loop_reports_its_counters_and_tasks(program):
    p = program(HEALTHY)
    first = _monitor.fetch(p.path)
    time.sleep(0.3)
    second = _monitor.fetch(p.path)
    assert second["pid"] == p.proc.pid
    assert second["callbacks"] > first["callbacks"] and second["passes"] > first["passes"]
    assert second["lag"]["count"] > first["lag"]["count"]
    # The task tree is refreshed while a monitor watches.
    report = wait_for(lambda: (r := _monitor.fetch(p.path))["tasks"]["count"] == 4 and r)
    tree = report["tasks"]["tree"].splitlines()
    assert tree[0].startswith("Task-1: main() > sleep() at tasks.py:")
    assert [line.split(":")[0] for line in tree[1:]] == ["ticker-0", "ticker-1", "ticker-2"]
    screen = _monitor.render(report, first, 1.0)
    assert "passes/s" in screen and "tasks: 4" in screen


@pytest.mark.parametrize("how", ["sleep", "gil"])
def test_a_blocked_loop_still_answers(program, how):
    p = program(STUCK, how)
    first = wait_for(lambda: (r := _monitor.fetch(p.path))["running"] and r)
    time.sleep(0.5)
    second = _monitor.fetch(p.path)
    # The loop ran nothing in between, yet the monitor answered and its clock moved on.
    assert second["callbacks"] == first["callbacks"]
    assert second["running"]["seconds"] >= first["running"]["seconds"] + 0.4
    if how == "sleep":
        # The GIL is free: the watchdog's thread has said what runs.
        report = wait_for(lambda: (r := _monitor.fetch(p.path))["running"]["what"] and r)
        assert report["running"]["what"].startswith("<Task stuck: stuck() at program.py:")
        assert "BLOCKED for" in _monitor.render(report)


def test_the_socket_is_removed_with_the_loop(tmp_path, caplog):
    path = tmp_path / "m.sock"
    loop = ferroloop.Loop(monitor=str(path))
    assert path.exists()
    report = _monitor.fetch(str(path))
    assert report["pid"] == os.getpid() and report["running"] is None
    # A live socket is not taken over: the second loop runs unmonitored, and says so.
    second = ferroloop.Loop(monitor=str(path), watchdog=1.0)
    assert "is in use by a running loop" in caplog.text
    assert second.run_until_complete(asyncio.sleep(0, "runs")) == "runs"
    second.close()
    assert _monitor.fetch(str(path))["pid"] == os.getpid()
    loop.close()
    assert not path.exists()
    # One left behind by a process that is gone is.
    import socket
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    loop = ferroloop.Loop(monitor=str(path))
    assert _monitor.fetch(str(path))["pid"] == os.getpid()
    loop.close()


def test_pid_in_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("FERROLOOP_MONITOR", str(tmp_path / "m-{pid}.sock"))
    loop = ferroloop.new_event_loop()
    path = tmp_path / f"m-{os.getpid()}.sock"
    assert _monitor.fetch(str(path))["pid"] == os.getpid()
    loop.close()
    assert not path.exists()


class Tmux:
    """A private tmux server with one 100x40 pane running sh."""

    def __init__(self, tmp_path):
        self.name = f"ferroloop-{os.getpid()}-{time.monotonic_ns()}"
        self.tmux("new-session", "-d", "-s", "view", "-x", "100", "-y", "40", "sh")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.name, *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def type(self, line):
        self.tmux("send-keys", "-t", "view", line, "Enter")

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "view")

    def close(self):
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True,
                       timeout=10)


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: `make pytest` installs it")
    t = Tmux(tmp_path)
    yield t
    t.close()


def view(tmux, path):
    tmux.type(f"{sys.executable} -m ferroloop monitor {path}")


def quit_view(tmux):
    tmux.tmux("send-keys", "-t", "view", "C-c")
    tmux.type("echo view-exited-$?")
    wait_for(lambda: "view-exited-0" in tmux.screen())


def test_the_view_of_a_healthy_loop(program, tmux):
    p = program(HEALTHY)
    view(tmux, p.path)
    screen = wait_for(lambda: (s := tmux.screen()) and "ticker-2" in s and s)
    assert f"ferroloop monitor: pid {p.proc.pid}" in screen
    assert "passes/s" in screen and "callbacks/s" in screen
    assert "loop lag:" in screen and "tasks: 4" in screen
    quit_view(tmux)


def test_the_view_of_a_stuck_loop_keeps_updating(program, tmux):
    p = program(STUCK, "sleep")
    view(tmux, p.path)

    def blocked_for():
        for line in tmux.screen().splitlines():
            if line.startswith("now: BLOCKED for ") and "<Task stuck: " in line:
                return float(line.split()[3])
        return None

    first = wait_for(blocked_for)
    # The view redraws every second while the loop stays blocked.
    wait_for(lambda: (later := blocked_for()) is not None and later >= first + 1.5)
    quit_view(tmux)
