"""`make bench`: the stdlib loop, uvloop and ferroloop side by side, in one run.

Rounds interleave the loops (A B C, then B C A, ...), each round a fresh process per loop
running every workload; the table gives per-workload medians of throughput, the spread
(max-min over median), CPU time per operation, and ferroloop's ratio to uvloop (and to
the stdlib loop). It refuses to time a debug build of ferroloop.

    python bench/run.py [--rounds 5] [--only "call_soon chain,future ping-pong"] [--json out.json]
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPS = ("asyncio", "uvloop", "ferroloop")


def new_loop(name):
    if name == "asyncio":
        import asyncio
        return asyncio.new_event_loop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    import ferroloop
    return ferroloop.new_event_loop()


def worker(loop_name, names):
    sys.path.insert(0, HERE)
    import asyncio
    from workloads import WORKLOADS

    results = {}
    for name in names:
        workload = WORKLOADS[name]
        # A short warm-up pass on a separate loop: imports, caches, the executor's threads.
        warm = new_loop(loop_name)
        asyncio.set_event_loop(warm)
        workload(warm, **({"n": 1000} if "n" in workload.__code__.co_varnames else {}))
        warm.run_until_complete(warm.shutdown_default_executor())
        warm.close()

        loop = new_loop(loop_name)
        asyncio.set_event_loop(loop)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        ops = workload(loop)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(None)
        results[name] = {"ops": ops, "wall": wall, "cpu": cpu}
    json.dump(results, sys.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="")
    parser.add_argument("--json", default="")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    sys.path.insert(0, HERE)
    from workloads import TARGETS, WORKLOADS
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(WORKLOADS)

    if args.worker:
        worker(args.worker, names)
        return 0

    import ferroloop
    import uvloop
    if ferroloop.build_profile != "release":
        print("refusing to time a debug build of ferroloop: build with "
              "`maturin develop --release` (make bench does)", file=sys.stderr)
        return 1
    if args.rounds < 5:
        print("note: fewer than 5 rounds; medians are less trustworthy", file=sys.stderr)

    print(f"Python {sys.version.split()[0]}, uvloop {uvloop.__version__}, "
          f"ferroloop {ferroloop.__version__} ({ferroloop.build_profile}); "
          f"{args.rounds} interleaved rounds, {os.cpu_count()} cpus")
    samples = {(n, l): [] for n in names for l in LOOPS}
    for r in range(args.rounds):
        order = LOOPS[r % 3:] + LOOPS[:r % 3]
        for loop_name in order:
            sys.stderr.write(f"\r  round {r + 1}/{args.rounds}: {loop_name:<10}")
            sys.stderr.flush()
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--worker", loop_name,
                 "--only", ",".join(names)],
                capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                sys.stderr.write(out.stderr)
                raise SystemExit(f"the {loop_name} worker failed")
            for name, res in json.loads(out.stdout).items():
                samples[(name, loop_name)].append(res)
    sys.stderr.write("\r" + " " * 40 + "\r")

    def med(name, loop_name, key):
        return statistics.median(s[key] / s["ops"] for s in samples[(name, loop_name)])

    def spread(name, loop_name):
        rates = [s["ops"] / s["wall"] for s in samples[(name, loop_name)]]
        return (max(rates) - min(rates)) / statistics.median(rates) * 100

    header = (f"{'workload':<33}" + "".join(f"{l + ' ops/s':>17}" for l in LOOPS) +
              f"{'vs uvloop':>11}{'target':>8}{'vs asyncio':>12}"
              f"{'cpu us/op a/u/f':>22}{'spread % a/u/f':>17}")
    print(header)
    print("-" * len(header))
    ratios, report = [], {}
    for name in names:
        rate = {l: 1 / med(name, l, "wall") for l in LOOPS}
        cpu = {l: med(name, l, "cpu") * 1e6 for l in LOOPS}
        vs_uv = rate["ferroloop"] / rate["uvloop"]
        vs_aio = rate["ferroloop"] / rate["asyncio"]
        ratios.append(vs_uv)
        target = TARGETS.get(name, 1.0)
        mark = "" if vs_uv >= target else " *"
        print(f"{name:<33}" + "".join(f"{rate[l]:>17,.0f}" for l in LOOPS) +
              f"{vs_uv:>10.2f}x{target:>7.1f}x{vs_aio:>11.2f}x"
              f"{'/'.join(f'{cpu[l]:.2f}' for l in LOOPS):>22}"
              f"{'/'.join(f'{spread(name, l):.0f}' for l in LOOPS):>17}{mark}")
        report[name] = {"rate": rate, "cpu_us_per_op": cpu, "vs_uvloop": vs_uv,
                        "vs_asyncio": vs_aio, "target": target}
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"geomean vs uvloop: {geomean:.2f}x   (* = below the issue's target)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": report, "geomean_vs_uvloop": geomean}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
