"""Which of asyncio's behaviours each loop keeps, where a row depends on one.

    python bench/behaviour.py [LOOP ...]    # each loop's checks (every loop, if none named)

A rival that leads ferroloop on a row leads on asyncio's terms only if it does what asyncio
does there. Each check is a short program on asyncio's public API that the stdlib loop
passes, run in a fresh process per loop (a rival may change asyncio when imported), and
names the rows that depend on it. The tables then say, beside a rival ahead, which of the
row's behaviours it leaves out, so that a run tells such a lead from one on equal terms.
"""

import asyncio
import contextvars
import json
import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import load  # noqa: E402
import workloads  # noqa: E402
from loops import LOOPS, new_loop  # noqa: E402


def writes_at_once(loop):
    """A transport's write is on the wire when it returns (nothing was buffered), as
    asyncio's is: a peer reading a blocking socket in the same callback sees it."""
    listener = socket.create_server(("127.0.0.1", 0))

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, *listener.getsockname())
        peer, _ = listener.accept()
        peer.settimeout(1.0)
        try:
            transport.write(b"ping")
            return peer.recv(4) == b"ping"
        except TimeoutError:
            return False
        finally:
            transport.close()
            peer.close()

    try:
        return loop.run_until_complete(main())
    finally:
        listener.close()


def asyncio_streams(loop):
    """`asyncio.open_connection` gives asyncio's own StreamReader and StreamWriter."""
    async def main():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.close()
        server.close()
        await server.wait_closed()
        return (isinstance(reader, asyncio.StreamReader)
                and isinstance(writer, asyncio.StreamWriter))

    return loop.run_until_complete(main())


def threadsafe_context(loop):
    """`call_soon_threadsafe` runs its callback in a copy of the calling thread's context."""
    var = contextvars.ContextVar("var", default="none")

    async def main():
        seen = loop.create_future()

        def other_thread():
            var.set("caller's")
            loop.call_soon_threadsafe(lambda: seen.set_result(var.get()))

        thread = threading.Thread(target=other_thread)
        thread.start()
        try:
            return await asyncio.wait_for(seen, 5) == "caller's"
        finally:
            thread.join()

    return loop.run_until_complete(main())


def sleep_never_early(loop):
    """`asyncio.sleep(0.001)` beside a few busy tasks (the lateness rows' workload, lightly
    loaded: passes shorter than the sleep, so that a timer taken early shows) never returns
    before its delay: asyncio takes a timer at most its clock's resolution early."""
    return workloads.sleep_lateness(loop, n=200, busy=10)["early"] == 0


# name -> (the check, what a loop failing it leaves out, the rows that depend on it)
CHECKS = {
    "writes_at_once": (writes_at_once, "holds writes",
                       {row.name for row in load.ROWS if row.kind != "sock"}),
    "asyncio_streams": (asyncio_streams, "own streams",
                        {row.name for row in load.ROWS if row.kind == "streams"}),
    "threadsafe_context": (threadsafe_context, "drops the context",
                           {"call_soon_threadsafe flood", "call_soon_threadsafe round trip"}),
    "sleep_never_early": (sleep_never_early, "wakes early",
                          {"sleep(1 ms) lateness p50", "sleep(1 ms) lateness p99"}),
}


def run_checks(make_loop):
    """{check: True, False, or why it could not run} on loops from `make_loop`, a fresh
    loop for each check."""
    results = {}
    for name, (check, _, _) in CHECKS.items():
        loop = make_loop()
        asyncio.set_event_loop(loop)
        try:
            results[name] = bool(check(loop))
        except Exception as exc:  # a loop that cannot run the check: not known either way
            results[name] = f"{type(exc).__name__}: {exc}"
        finally:
            loop.close()
            asyncio.set_event_loop(None)
    return results


def check_loops(loop_names, timeout=60):
    """{loop: run_checks' results}, each loop in a fresh process; a process that fails
    leaves every check unknown, with its reason."""
    out = {}
    for name in loop_names:
        try:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name],
                                  capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(load.last_line(proc.stderr))
            out[name] = json.loads(proc.stdout.splitlines()[-1])
        except (RuntimeError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
            out[name] = dict.fromkeys(CHECKS, f"the check process failed: {exc}")
    return out


def departures(results, row):
    """{loop: what it leaves out of `row`'s behaviour}, for the loops that failed a check
    the row depends on (a check that could not run says nothing)."""
    out = {}
    for loop_name, checks in results.items():
        left_out = [label for name, (_, label, rows) in CHECKS.items()
                    if row in rows and checks.get(name) is False]
        if left_out:
            out[loop_name] = ", ".join(left_out)
    return out


def describe(results):
    """One line per loop: the behaviours it leaves out, or that it keeps them all."""
    lines = []
    for loop_name, checks in results.items():
        failed = [CHECKS[name][1] for name, ok in checks.items() if ok is False]
        unknown = {name: ok for name, ok in checks.items() if isinstance(ok, str)}
        if len(unknown) == len(checks) and len(set(unknown.values())) == 1:
            text = f"not checked: {next(iter(unknown.values()))}"
        else:
            text = "; ".join([*failed, *(f"{name} not checked: {why}"
                                         for name, why in unknown.items())]) or "keeps all"
        lines.append(f"  {loop_name:16} {text}")
    return lines


def main():
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(run_checks(lambda: new_loop(sys.argv[2]))))
        return 0
    results = check_loops(sys.argv[1:] or [l for l in LOOPS if l != "ferroloop+watch"])
    print("\n".join(describe(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
