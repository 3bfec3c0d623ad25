"""The bound column of `make bench`: how fast ferroloop would be were its own code free.

Micro rows: callgrind counts the instructions of a run of N operations and of a run of none
(start-up cancels out), split by the object they ran in. ferroloop's own part is what ran in
its native module; everything else (the interpreter running the workload's coroutines and
callbacks, CPython's C Task and Future, libc, the kernel's entry code) is what any loop
pays. callgrind sees user space only, and a row's time is not all user space: a connect
is mostly the kernel's work, a round trip between threads mostly waiting. So a timed run
(ferroloop's, the workload repeated for a second) measures the share of its wall time
spent in user code (getrusage, every thread), and at the same instructions per cycle a free
loop saves own / all of that share: the bound is ferroloop's ratio to uvloop over
1 - (own / all) x (user / wall). ferroloop's few Python lines count as what any loop pays,
which lowers the bound a little.

Load rows: the server runs under callgrind, its instrumentation turned on for the middle
of a load (start-up and shutdown are not counted), which gives the share of its user-space
instructions that ran in ferroloop's native module. A free loop would keep the server's
kernel time (getrusage) and the rest of its user time: the bound is ferroloop's ratio times
its CPU per request over that.

    python bench/bounds.py [WORKLOAD | LOAD ROW ...]   # prints ferroloop's own share of each
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import load

HERE = os.path.dirname(os.path.abspath(__file__))

# Operations per counted run: enough that the workload outweighs a stray collection.
COUNTED_N = {
    "call_soon_chain": 20_000, "call_soon_batch": 20_000, "call_later_half_cancelled": 10_000,
    "tasks_sleep0": 1_000, "gather_10k": 2_000, "future_ping_pong": 10_000,
    "threadsafe_throughput": 10_000, "threadsafe_round_trip": 2_000,
    "executor_round_trip": 1_000, "connection_churn": 300, "queue_producer_consumer": 10_000,
    "taskgroup_fan_out": 2_000, "sleep_lateness": 100,
}

CHILD = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[1])
import ferroloop, workloads
workload = getattr(workloads, sys.argv[2])
loop = ferroloop.new_event_loop()
asyncio.set_event_loop(loop)
workload(loop, n=min(200, int(sys.argv[3]) or 200))  # warm-up: imports, caches
loop.close()
loop = ferroloop.new_event_loop()
asyncio.set_event_loop(loop)
if int(sys.argv[3]):
    workload(loop, n=int(sys.argv[3]))
loop.close()
"""

USER_CHILD = r"""
import asyncio, resource, sys, time
sys.path.insert(0, sys.argv[1])
import ferroloop, workloads
workload = getattr(workloads, sys.argv[2])
loop = ferroloop.new_event_loop()
asyncio.set_event_loop(loop)
workload(loop, n=200)  # warm-up: imports, caches, the executor's threads
loop.run_until_complete(loop.shutdown_default_executor())
loop.close()
wall = user = 0.0
while wall < float(sys.argv[3]):
    loop = ferroloop.new_event_loop()
    asyncio.set_event_loop(loop)
    wall0, user0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
    workload(loop)
    wall += time.perf_counter() - wall0
    user += resource.getrusage(resource.RUSAGE_SELF).ru_utime - user0
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
print(user / wall)
"""

NAMED = re.compile(r"\((\d+)\)(?: (.*))?")


def instructions_by_object(path):
    """Self instructions per object file, from a callgrind output file (one event, Ir)."""
    names, totals = {}, {}
    current, skip_next = None, False
    with open(path) as f:
        for line in f:
            head = line[:1]
            if head.isdigit() or head in "+-*":
                if skip_next:  # the inclusive cost of the call just described
                    skip_next = False
                    continue
                totals[current] = totals.get(current, 0) + int(line.split()[-1])
            elif line.startswith(("ob=", "cob=")):
                found = NAMED.match(line.split("=", 1)[1].strip())
                if found.group(2):
                    names[found.group(1)] = found.group(2)
                if line.startswith("ob="):
                    current = found.group(1)
            elif line.startswith("calls="):
                skip_next = True
    out = {}
    for key, count in totals.items():
        name = names.get(key, "?")
        out[name] = out.get(name, 0) + count
    return out


def callgrind(argv, env, what):
    """Self instructions per object file of `valgrind --tool=callgrind ARGV`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"callgrind failed on {what}: {proc.stderr[-2000:]}")
        return instructions_by_object(out)


def counted(workload, n):
    return callgrind([sys.executable, "-c", CHILD, HERE, workload, str(n)],
                     dict(os.environ, PYTHONHASHSEED="0"), workload)


def own_share(workload, n=None):
    """The share of a micro workload's instructions per operation that ran in ferroloop's
    native module."""
    n = n or COUNTED_N[workload]
    run, idle = counted(workload, n), counted(workload, 0)
    delta = {name: run.get(name, 0) - idle.get(name, 0) for name in run}
    own = sum(count for name, count in delta.items() if "/_ferroloop." in name)
    return own / sum(delta.values())


def user_share(workload, seconds=1.0):
    """The share of ferroloop's wall time a micro workload spends running user-space code
    (of any thread), at most 1: the only time its own code can be part of. Timed over
    repeated runs, as the kernel splits CPU time between user and system by its ticks."""
    proc = subprocess.run([sys.executable, "-c", USER_CHILD, HERE, workload, str(seconds)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"timing {workload} failed: {proc.stderr[-500:]}")
    # Two threads in user space at once can read more than the wall time.
    return min(1.0, float(proc.stdout))


def server_own_share(row, duration=4.0):
    """The share of a ferroloop server's user-space instructions, under the row's load,
    that ran in ferroloop's native module."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")

        def measure(address, pid):
            def instrument(state):
                subprocess.run(["callgrind_control", "--instr=" + state, str(pid)],
                               capture_output=True, timeout=60, check=True)

            client = subprocess.Popen(load.client_command(row, address, duration),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1.0)
                instrument("on")
                time.sleep(duration - 2.0)
                instrument("off")
                client.wait(timeout=duration + 30)
            finally:
                if client.poll() is None:
                    client.kill()
            return {"requests": 0}

        load.serve_and_load(
            "ferroloop", row, measure, timeout=120,
            wrapper=["valgrind", "--tool=callgrind", "--instr-atstart=no",
                     f"--callgrind-out-file={out}"])
        split = instructions_by_object(out)
    total = sum(split.values())
    if not total:
        raise load.Failed("callgrind counted nothing under load")
    return sum(count for name, count in split.items() if "/_ferroloop." in name) / total


def micro_bound(vs_uvloop, share, user_share=1.0):
    """`share` of the user-space instructions are ferroloop's, and user space is
    `user_share` of the time."""
    return vs_uvloop / (1 - share * user_share)


def load_bound(vs_uvloop, cpu, kernel, share):
    """`cpu` and `kernel` per request; a free loop keeps the kernel's part and the rest of
    user space."""
    return vs_uvloop * cpu / (kernel + (cpu - kernel) * (1 - share))


def main():
    rows = {row.name: row for row in load.ROWS}
    for name in sys.argv[1:] or list(COUNTED_N):
        share = server_own_share(rows[name]) if name in rows else own_share(name)
        print(f"{name:28} {share:6.1%} of instructions in ferroloop's native module",
              flush=True)


if __name__ == "__main__":
    main()
