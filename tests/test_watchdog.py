"""The watchdog: a native thread that logs what blocks the loop, and where, while it
blocks (at the threshold, then each time the time doubles), and a summary once the
callback returns. ferroloop's own feature, so these tests run on ferroloop alone."""

import asyncio
import logging
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ferroloop

THRESHOLD = 0.05


class Records(logging.Handler):
    """The watchdog's records, and an event set at its first report."""

    def __init__(self):
        super().__init__()
        self.records = []
        self.reported = threading.Event()
        self.on_report = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("ferroloop watchdog"):
            self.records.append(message)
            if " blocked: " in message:
                self.reported.set()
                for action in self.on_report:
                    action()

    def reports(self):
        return [r for r in self.records if " blocked: " in r]

    def summaries(self):
        return [r for r in self.records if "running again" in r]


@pytest.fixture
def records():
    handler = Records()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def run(coro, **watch):
    return ferroloop.run(coro, watchdog=watch.get("watchdog", THRESHOLD))


def spin_until_reported(handler, limit=10.0):
    """Pure Python: the interpreter hands the GIL to the watchdog's thread now and then."""
    deadline = time.monotonic() + limit
    while not handler.reported.is_set():
        assert time.monotonic() < deadline, "the watchdog did not report in time"


def test_a_busy_loop_is_reported_while_it_runs(records):
    async def main():
        await asyncio.sleep(0)
        spin_until_reported(records)
        return len(records.reports())

    async def outer():
        return await asyncio.create_task(main(), name="cruncher")

    # The coroutine saw the report before it returned: it was logged while it ran.
    assert run(outer()) == 1
    report = records.reports()[0]
    assert "<Task cruncher: main() at test_watchdog.py:" in report
    assert re.search(r"has run for 0\.\d+ seconds", report)
    stack = report.split("innermost last):\n", 1)[1].rstrip().splitlines()
    # The innermost frame comes last, with its file, line and function: the spin, or
    # what it calls (Event.is_set).
    assert stack[-2].strip().startswith('File "')
    innermost = "\n".join(stack[-4:])
    assert "in spin_until_reported" in innermost, innermost
    text = "\n".join(stack)
    assert text.index("in main") < text.index("in spin_until_reported")
    assert len(records.summaries()) == 1


def test_a_blocking_socket_read_is_reported_while_it_waits(records):
    reader, writer = socket.socketpair()
    # The report unblocks the read: a read that ends proves the report came during it.
    records.on_report.append(lambda: writer.send(b"x"))

    def read_blocking():
        reader.settimeout(10)
        return reader.recv(1)

    async def main():
        await asyncio.sleep(0)
        return read_blocking()

    try:
        assert run(main()) == b"x"
    finally:
        reader.close()
        writer.close()
    report = records.reports()[0]
    assert "in read_blocking" in report.splitlines()[-2]
    assert "GIL" not in report


def test_time_sleep_reports_at_doubling_intervals_then_a_summary(records):
    def block():
        time.sleep(THRESHOLD * 9)

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_soon(lambda: (block(), done.set_result(None)))
        await done

    run(main())
    times = [float(re.search(r"has run for (\d+\.\d+)", r).group(1))
             for r in records.reports()]
    # At 1, 2, 4 and 8 thresholds: the ninth is not reached.
    assert len(times) == 4, records.records
    for i, t in enumerate(times):
        assert THRESHOLD * 2 ** i <= t < THRESHOLD * 2 ** i + 0.2, times
    assert "still blocked" in records.reports()[1]
    # A callback that is not a Task step is named by its repr.
    assert "<Handle test_time_sleep_reports" in records.reports()[0]
    summary, = records.summaries()
    total = float(re.search(r"returned after (\d+\.\d+) seconds", summary).group(1))
    assert THRESHOLD * 9 <= total < THRESHOLD * 9 + 0.5


BACKTRACKING = re.compile(r"(a+)+$")


def slow_regex_input():
    """A subject on which `(a+)+$` backtracks for a good fraction of a second."""
    n = 16
    while True:
        start = time.perf_counter()
        BACKTRACKING.match("a" * n + "b")
        if time.perf_counter() - start > 0.03:
            return "a" * (n + 4) + "b"
        n += 1


def test_a_c_call_holding_the_gil_is_reported_when_it_returns(records):
    subject = slow_regex_input()

    def match():
        BACKTRACKING.match(subject)
        spin_until_reported(records)
        return True

    async def main():
        await asyncio.sleep(0)
        return match()

    assert run(main())
    report = records.reports()[0]
    assert "held the GIL" in report and "could not be read while it blocked" in report
    assert "now that the call has returned" in report
    # Read once the call returned: the frame that made it, on its line or the next.
    assert "in match" in report.splitlines()[-2]
    assert "BACKTRACKING.match(subject)" in report.splitlines()[-1] \
        or "spin_until_reported(records)" in report.splitlines()[-1]


def test_off_by_default(records, monkeypatch):
    monkeypatch.delenv("FERROLOOP_WATCHDOG", raising=False)

    async def main():
        time.sleep(0.2)

    ferroloop.run(main())
    assert records.records == []


def test_loop_argument_and_a_bad_threshold(monkeypatch):
    before = native_threads()
    loop = ferroloop.Loop(watchdog=0.5)
    assert native_threads() == before + 1
    loop.close()
    with pytest.raises(ValueError, match="watchdog threshold"):
        ferroloop.Loop(watchdog=-1)
    # Zero is off, from the argument or the environment.
    monkeypatch.setenv("FERROLOOP_WATCHDOG", "0")
    for loop in (ferroloop.Loop(watchdog=0), ferroloop.Loop()):
        assert native_threads() == before
        loop.close()


BLOCKING_SCRIPT = """
import asyncio, time
async def main():
    await asyncio.sleep(0)
    time.sleep(0.3)
asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["environment", "option"])
def test_enabled_from_the_command_line(tmp_path, how):
    script = tmp_path / "blocker.py"
    script.write_text(BLOCKING_SCRIPT)
    env = {"PATH": "/usr/bin:/bin"}
    args = [sys.executable, "-m", "ferroloop", str(script)]
    if how == "environment":
        env["FERROLOOP_WATCHDOG"] = "0.1"
    else:
        args[3:3] = ["--watchdog", "0.1"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ferroloop watchdog: the event loop is blocked: <Task Task-1: main() at " \
        "blocker.py:5>" in proc.stderr
    assert 'blocker.py", line 5, in main' in proc.stderr
    assert "running again" in proc.stderr


def test_bad_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv("FERROLOOP_WATCHDOG", "soon")
    with pytest.raises(ValueError, match="FERROLOOP_WATCHDOG"):
        ferroloop.new_event_loop()


def native_threads():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_watchdog_thread_ends_with_the_loop():
    before = native_threads()
    loop = ferroloop.Loop(watchdog=0.1)
    assert native_threads() == before + 1
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    assert native_threads() == before


def test_command_line_usage_errors():
    for args in (["--watchdog"], ["monitor"], ["monitor", "a", "b"]):
        proc = subprocess.run([sys.executable, "-m", "ferroloop", *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "usage:" in proc.stderr, (args, proc.stderr)


def test_monitor_option_reaches_the_script(tmp_path):
    path = tmp_path / "m.sock"
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent("""
        import asyncio, os, sys
        from ferroloop import _monitor
        async def main():
            report = _monitor.fetch(os.environ["FERROLOOP_MONITOR"])
            print(report["pid"] == os.getpid(), report["running"] is not None)
        asyncio.run(main())
    """))
    proc = subprocess.run([sys.executable, "-m", "ferroloop", f"--monitor={path}",
                           str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]
    assert not path.exists()


def test_reports_race_with_callbacks_ending_and_finalizers_letting_go_of_the_gil(records):
    # The watchdog looks at the running entry only while the loop still publishes it;
    # here callbacks end just past a tiny threshold and each leaves a finalizer that
    # sleeps (lets the GIL go) as its Handle is dropped. Nothing may crash.
    class Sleepy:
        def __del__(self):
            time.sleep(0.001)

    def step(garbage):
        time.sleep(0.004)

    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(150):
            loop.call_soon(step, Sleepy())
            await asyncio.sleep(0)

    ferroloop.run(main(), watchdog=0.003)
    assert records.reports(), "the watchdog never reported"
