"""ferroloop against the other young loops on `make bench`'s micro rows.

    python bench/rivals.py [--rounds 7] [--only "call_soon chain,..."] [LOOP ...]

LOOP names a module with `new_event_loop()` (default: uvloop ferroloop rloop loopmini);
loops that are not installed are skipped, so install the rivals first, e.g. into a
separate virtualenv with ferroloop on PYTHONPATH:

    python3 -m venv /tmp/rivals && /tmp/rivals/bin/pip install uvloop==0.23.0 rloop loopmini
    PYTHONPATH=python /tmp/rivals/bin/python bench/rivals.py

Each round runs every loop in a fresh process, pinned to one CPU, in rotating order; the
table gives median throughput as a ratio to uvloop. A workload a loop cannot run shows n/a.
"""

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(loop_name, names):
    import asyncio

    sys.path.insert(0, HERE)
    from workloads import WORKLOADS

    new_event_loop = importlib.import_module(loop_name).new_event_loop
    out = {}
    for name in names:
        workload = WORKLOADS[name]
        small = {"n": 200} if "n" in workload.__code__.co_varnames else {}
        try:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            workload(loop, **small)
            loop.close()
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            started = time.perf_counter()
            ops = workload(loop)
            out[name] = ops / (time.perf_counter() - started)
            loop.close()
        except Exception as exc:  # a rival that lacks a feature: report, go on
            print(f"{loop_name}: {name}: {exc!r}"[:300], file=sys.stderr)
            out[name] = None
        asyncio.set_event_loop(None)
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("loops", nargs="*", default=["uvloop", "ferroloop", "rloop", "loopmini"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    from workloads import WORKLOADS

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(WORKLOADS)
    if args.worker:
        worker(args.worker, names)
        return 0
    loops = [name for name in args.loops if importlib.util.find_spec(name)]
    if "uvloop" not in loops:
        raise SystemExit("uvloop is the yardstick: install it")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    rates = {(loop, name): [] for loop in loops for name in names}
    for r in range(args.rounds):
        for loop in loops[r % len(loops):] + loops[:r % len(loops)]:
            sys.stderr.write(f"\r  round {r + 1}/{args.rounds}: {loop:<12}")
            sys.stderr.flush()
            proc = subprocess.run(
                [*pin, sys.executable, os.path.abspath(__file__), "--worker", loop,
                 "--only", ",".join(names)], capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise SystemExit(f"{loop} failed:\n{proc.stderr}")
            if r == 0 and proc.stderr:
                sys.stderr.write("\n" + proc.stderr)
            for name, rate in json.loads(proc.stdout.splitlines()[-1]).items():
                if rate:
                    rates[(loop, name)].append(rate)
    sys.stderr.write("\r" + " " * 40 + "\r")
    print(f"{'workload (ops/s vs uvloop)':34}" + "".join(f"{loop:>12}" for loop in loops))
    for name in names:
        base = statistics.median(rates[("uvloop", name)])
        cells = [f"{statistics.median(rates[(loop, name)]) / base:>11.2f}x"
                 if rates[(loop, name)] else f"{'n/a':>12}" for loop in loops]
        print(f"{name:34}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
