"""Instructions per operation of `make bench`'s micro workloads, counted by callgrind.

    python bench/instructions.py [--own] WORKLOAD[,WORKLOAD...] N [BUILD_DIR,...]
    python bench/instructions.py --table

`--table` prints the counts recorded for the README and the closing notes (TABLE below),
so that figures live here rather than in code comments.

Timings on a shared 2-core VM swing by tens of percent; instruction counts do not, so an
A/B of two builds is decided here, then confirmed in `make bench`. A BUILD_DIR holds a
`ferroloop` package with its built extension (copy `python/ferroloop` after `make build`);
without one, the installed ferroloop is measured. In place of a BUILD_DIR, `asyncio` measures
the stdlib loop and any other name a loop module of that name (`uvloop`, `zuvloop`, ...), for
exact ratios the timings cannot give. Each count is (run of N ops - run of 0 ops) / N, so
start-up cancels out. Needs valgrind.

`--own` adds, beside each count, the part that ran in the loop's own native module(s) (the
shared objects in its package's directory): what the bound column counts as ferroloop's, measured
for every loop alike. A loop's Python (the stdlib loop's, or a rival's Python parts) runs
in the interpreter and counts as not its own, so a loop written partly in Python reads
leaner here than it is. rsloop does not run under valgrind (its io_uring driver waits
forever there).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bounds  # noqa: E402
import workloads  # noqa: E402

# A child's start, shared with `ab.py`: argv is (workload, n, bench dir, loop), the loop
# `asyncio`, a loop module's name, or `ferroloop` (from PYTHONPATH for a build directory);
# it leaves `ferroloop` (the loop's module), `workload` and `n` defined, and a warm-up run.
CHILD_START = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[3])
import importlib
import workloads
if sys.argv[4] == "asyncio":
    class ferroloop:
        new_event_loop = asyncio.SelectorEventLoop
else:
    ferroloop = importlib.import_module(sys.argv[4])
workload = getattr(workloads, sys.argv[1])
if "n" not in workload.__code__.co_varnames:
    raise SystemExit(f"{sys.argv[1]} takes no n=")
n = int(sys.argv[2])
loop = ferroloop.new_event_loop()
asyncio.set_event_loop(loop)
workload(loop, n=200)  # warm-up: imports, caches, first allocations
loop.close()
"""

CHILD = CHILD_START + r"""
loop = ferroloop.new_event_loop()
asyncio.set_event_loop(loop)
if n:
    workload(loop, n=n)
loop.close()
"""


def child_command(build, workload, n, body):
    """The command and environment that run `body` after `CHILD_START` on `build`: a
    directory holding a ferroloop package, a loop module's name, or "" for the installed
    ferroloop."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    loop = "ferroloop" if not build or os.path.isdir(build) else build
    if build and loop == "ferroloop":
        env["PYTHONPATH"] = build
    return [sys.executable, "-c", body, workload, str(n), HERE, loop], env, loop


def check_workloads(names):
    """Exits naming any of `names` that is not a workload of bench/workloads.py."""
    known = [function.__name__ for function in workloads.WORKLOADS.values()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"no such workload: {', '.join(unknown)} "
                         f"(bench/workloads.py has {', '.join(known)})")


def instructions(build, workload, n):
    """(all instructions, those in the loop's own native modules) of a run of n ops."""
    command, env, loop = child_command(build, workload, n, CHILD)
    try:
        by_object = bounds.callgrind(command, env, workload)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    # The package's own directory, not any directory of that name on the way to it (a
    # checkout named ferroloop holds the virtualenv with every rival).
    own = sum(count for path, count in by_object.items()
              if os.path.basename(os.path.dirname(path)) == loop)
    return sum(by_object.values()), own


# Instructions per operation on CPython 3.11, release builds, measured with this script in
# one run of both builds (`python bench/instructions.py WORKLOAD N BEFORE,AFTER`):
# (workload, N, before, after) for the last change that recorded them.
TABLE_CHANGE = ("issue 16's twelfth session (the pass and a handle's run keep their rare "
                "paths out of line, which saved time, not instructions; a connect hands its "
                "fd to the transport, which saves a system call, not instructions): 3832955 "
                "(before) and 5e81e4e (after), 3.11")
TABLE = [
    ("call_soon_chain", 20000, 2_061, 2_039),
    ("call_soon_batch", 20000, 2_583, 2_587),
    ("call_later_half_cancelled", 20000, 3_469, 3_473),
    ("threadsafe_throughput", 20000, 2_300, 2_215),
    ("future_ping_pong", 20000, 10_511, 10_461),
    ("connection_churn", 1000, 52_013, 52_300),
]


def print_table():
    print(f"instructions/op, {TABLE_CHANGE}")
    print(f"{'workload':28} {'N':>7} {'before':>9} {'after':>9} {'change':>8}")
    for name, n, before, after in TABLE:
        print(f"{name:28} {n:>7,} {before:>9,} {after:>9,} {after / before - 1:>+8.2%}")


def main():
    if sys.argv[1:] == ["--table"]:
        return print_table()
    args = sys.argv[1:]
    own = args[:1] == ["--own"]
    if own:
        args = args[1:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    names = args[0].split(",")
    check_workloads(names)
    n = int(args[1])
    builds = args[2].split(",") if len(args) > 2 else [""]
    for name in names:
        counts = []
        for build in builds:
            (run, run_own), (idle, idle_own) = (instructions(build, name, count)
                                                for count in (n, 0))
            counts.append(((run - idle) / n, (run_own - idle_own) / n))
        cells = "  ".join(
            f"{b or 'installed'}: {c:,.0f}" + (f" (own {o:,.0f})" if own else "")
            for b, (c, o) in zip(builds, counts))
        ratio = f"  last/first {counts[-1][0] / counts[0][0]:.3f}" if len(counts) > 1 else ""
        print(f"{name:28} {cells} instructions/op{ratio}", flush=True)


if __name__ == "__main__":
    main()
