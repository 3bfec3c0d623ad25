"""`make bench`: ferroloop beside the stdlib loop, uvloop and the other loops, in one run.

The loops are bench/loops.py's: a rival that is not installed, or cannot make a loop here,
shows as UNAVAILABLE, and one that cannot run a row shows n/a there; neither stops the run.
ferroloop also runs with its watchdog and monitor on ("ferroloop+watch"), for their cost.

Each round runs every row on every loop back to back (A B C, then B C A, ...), each in a
fresh process. Micro rows time bench/workloads.py; load rows (bench/load.py) measure a
server's CPU time per request. A row's figures are ratios to uvloop (its cost over each
loop's, higher is faster), each the median over rounds of the ratio within a round; its
bound is what ferroloop would reach were its own code free (bench/bounds.py). It refuses
to time a debug build of ferroloop.

A row where a rival is ahead of ferroloop beyond the noise runs `--settle` more rounds of
ferroloop and those rivals alone, and the verdict is taken again over every round. Every loop
first runs bench/behaviour.py's checks, and a rival ahead on a row is shown with what it
leaves out of the asyncio behaviour that row depends on, if anything.

    python bench/run.py [--rounds 5] [--net-rounds 3] [--net-duration 1.0] [--settle 4]
                        [--only "call_soon chain,http uvicorn"] [--no-micro] [--no-net]
                        [--no-bound] [--json out.json]
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import behaviour  # noqa: E402
import bounds  # noqa: E402
import load  # noqa: E402
import table  # noqa: E402
from loops import LOOPS, new_loop  # noqa: E402
from loops import unavailable as unavailable_rivals  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

# (row, workload, figure): most rows are timed per operation; the lateness workload reports
# its own percentiles, one row each.
LATENESS = "sleep(1 ms) under load"
MICRO_ROWS = [*((name, name, "time") for name in WORKLOADS if name != LATENESS),
              ("sleep(1 ms) lateness p50", LATENESS, "late_p50"),
              ("sleep(1 ms) lateness p99", LATENESS, "late_p99")]
# The one target in absolute terms: the flood, with contextvars kept exact.
FLOOD_ROW, FLOOD_TARGET = "call_soon_threadsafe flood", 2.0


def worker(loop_name, name):
    """Runs one workload on one loop (a fresh process), after a short warm-up on another
    loop (imports, caches, the executor's threads); prints its timings as JSON."""
    import asyncio

    workload = WORKLOADS[name]
    warm = new_loop(loop_name)
    asyncio.set_event_loop(warm)
    workload(warm, n=200)
    warm.run_until_complete(warm.shutdown_default_executor())
    warm.close()

    loop = new_loop(loop_name)
    asyncio.set_event_loop(loop)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = workload(loop)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    asyncio.set_event_loop(None)
    out = result if isinstance(result, dict) else {"ops": result}
    json.dump(dict(out, wall=wall, cpu=cpu), sys.stdout)


def interleave(rounds, rows, loops, sample, failures):
    """`sample(loop, row)` for every row and loop, `rounds` times, rotating the loops' order
    from row to row and round to round so no loop always runs first. A failed sample is
    None, and the first failure of each loop on each row is kept in `failures`."""
    samples = {(row, l): [] for row in rows for l in loops}
    for r in range(rounds):
        for i, row in enumerate(rows):
            turn = (r + i) % len(loops)
            for loop_name in loops[turn:] + loops[:turn]:
                sys.stderr.write(f"\r  round {r + 1}/{rounds}: {row:<34} {loop_name:<16}")
                sys.stderr.flush()
                try:
                    result = sample(loop_name, row)
                except load.Failed as exc:
                    failures.setdefault((loop_name, row), str(exc))
                    result = None
                samples[(row, loop_name)].append(result)
    sys.stderr.write("\r" + " " * 80 + "\r")
    return samples


def settle(samples, costs, loops, sample, failures, rounds, extra_rounds):
    """Finds, for each of `costs` ((row, cost) pairs; a row once per figure), the rivals
    ahead of ferroloop beyond the noise of the run's `rounds` rounds, and runs
    `extra_rounds` more rounds of each row where any figure has one, by ferroloop and those
    rivals alone: a lead of a few per cent is decided by the median of a handful of rounds,
    and the load rows run only a few. The samples stay paired by round (the loops not run
    get None). Returns, for each of `costs`, its rivals as found before settling (none,
    with no more rounds to run)."""
    leads = [table.ahead(samples, row, loops, cost, rounds) if extra_rounds else []
             for row, cost in costs]
    flagged = {}
    for (row, _), rivals in zip(costs, leads):
        flagged.setdefault(row, {}).update(dict.fromkeys(rivals))
    for row, rivals in flagged.items():
        if not rivals:
            continue
        extra = interleave(extra_rounds, [row], ["ferroloop", *rivals], sample, failures)
        for loop_name in loops:
            samples[(row, loop_name)].extend(
                extra.get((row, loop_name), [None] * extra_rounds))
    return leads


def micro_cost(figure):
    """A micro row's cost: the time per operation, or the lateness its workload reports."""
    def cost(s):
        return s["wall"] / s["ops"] if figure == "time" else s[figure]
    return cost


def run_micro(args, loops, rows, report, failures, checks):
    names = sorted({workload for _, workload, _ in rows})

    def sample(loop_name, workload):
        try:
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--worker", loop_name,
                 "--only", workload], capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise load.Failed("timed out") from None
        if proc.returncode != 0:
            if loop_name.startswith("ferroloop"):
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"the {loop_name} worker failed on {workload}")
            raise load.Failed(load.last_line(proc.stderr))
        return json.loads(proc.stdout)

    samples = interleave(args.rounds, names, loops, sample, failures)
    leads = settle(samples, [(workload, micro_cost(figure)) for _, workload, figure in rows],
                   loops, sample, failures, args.rounds, args.settle)
    shares, busy = {}, {}
    timed = {workload for _, workload, figure in rows if figure == "time"}
    if not args.no_bound and shutil.which("valgrind"):
        for workload in names:
            sys.stderr.write(f"\r  counting instructions, timing user space: {workload:<32}")
            shares[workload] = bounds.own_share(WORKLOADS[workload].__name__)
            if workload in timed:
                busy[workload] = bounds.user_share(WORKLOADS[workload].__name__)
        sys.stderr.write("\r" + " " * 80 + "\r")

    printed = []
    for (name, workload, figure), settled_from in zip(rows, leads):
        cost = micro_cost(figure)
        share = shares.get(workload)
        # The lateness rows' figure is the loop's busy time itself.
        user = busy.get(workload) if figure == "time" else 1.0
        summary = table.summarize(
            samples, workload, loops, cost,
            lambda r, share=share, user=user: (bounds.micro_bound(r, share, user)
                                               if share is not None else None),
            args.rounds, settled_from, behaviour.departures(checks, name))
        summary["own_share"] = share
        summary["user_share"] = user if share is not None else None
        summary["rate"] = table.medians(samples, workload, loops, lambda s: s["ops"] / s["wall"])
        summary["cpu_us_per_op"] = table.medians(samples, workload, loops,
                                                 lambda s: s["cpu"] / s["ops"] * 1e6)
        if figure != "time":
            summary[figure] = table.medians(samples, workload, loops, cost)
        uv = table.medians(samples, workload, ["uvloop"], cost)["uvloop"]
        absolute = ("n/a" if uv is None else f"{1 / uv:,.0f}" if figure == "time"
                    else f"{uv * 1e6:,.0f} us")
        summary["uvloop"] = absolute
        report[name] = summary
        printed.append((name, absolute, summary))
    table.print_table("micro row", "uvloop", printed, loops)
    table.legend("ratio = uvloop's time per operation (or lateness) over each loop's")


def run_load(args, loops, rows, report, failures, checks):
    by_name = {row.name: row for row in rows}

    def sample(loop_name, name):
        return load.sample(loop_name, by_name[name], args.net_duration)

    samples = interleave(args.net_rounds, list(by_name), loops, sample, failures)

    def cost(s):
        return s["cpu"] / s["requests"]

    leads = dict(zip(by_name, settle(samples, [(name, cost) for name in by_name], loops, sample,
                                     failures, args.net_rounds, args.settle)))
    shares = {}
    if not args.no_bound and shutil.which("valgrind"):
        for name, row in by_name.items():
            sys.stderr.write(f"\r  counting instructions under load: {name:<34}")
            try:
                shares[name] = bounds.server_own_share(row)
            except load.Failed as exc:
                failures.setdefault(("ferroloop (callgrind)", name), str(exc))
        sys.stderr.write("\r" + " " * 80 + "\r")

    printed = []
    for name in by_name:
        ours = [s for s in samples[(name, "ferroloop")] if s is not None]
        cpu = statistics.median(cost(s) for s in ours) if ours else None
        kernel = statistics.median(s["sys"] / s["requests"] for s in ours) if ours else None
        share = shares.get(name)
        summary = table.summarize(
            samples, name, loops, cost,
            lambda r: bounds.load_bound(r, cpu, kernel, share) if share is not None else None,
            args.net_rounds, leads[name], behaviour.departures(checks, name))
        for key in ("rps", "p50_us", "p99_us"):
            summary[key] = table.medians(samples, name, loops, lambda s, key=key: s[key])
        summary["cpu_us_per_req"] = table.medians(samples, name, loops, lambda s: cost(s) * 1e6)
        summary["kernel_share"] = kernel / cpu if cpu else None
        summary["own_share"] = share
        uv = summary["rps"]["uvloop"]
        absolute = f"{uv:,.0f}/s" if uv else "n/a"
        summary["uvloop"] = absolute
        report[name] = summary
        printed.append((name, absolute, summary))
    table.print_table("load row (server CPU per request)", "uvloop", printed, loops)
    table.legend("ratio = uvloop's server CPU time per request over each loop's; uvloop = its "
                 "requests/s; p50/p99 latencies are in the JSON")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--net-rounds", type=int, default=3)
    parser.add_argument("--net-duration", type=float, default=1.0)
    parser.add_argument("--settle", type=int, default=4,
                        help="more rounds for a row where a rival is ahead (0: none)")
    parser.add_argument("--only", default="", help="comma-separated rows to run")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro rows")
    parser.add_argument("--no-net", action="store_true", help="skip the load rows")
    parser.add_argument("--no-bound", action="store_true",
                        help="skip the instruction counts behind the micro rows' bounds")
    parser.add_argument("--json", default="")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.only)
        return 0

    import ferroloop
    if ferroloop.build_profile != "release":
        print("refusing to time a debug build of ferroloop: build with "
              "`maturin develop --release` (make bench does)", file=sys.stderr)
        return 1
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    micro = [] if args.no_micro else [r for r in MICRO_ROWS if not only or r[0] in only]
    net = [] if args.no_net else [r for r in load.ROWS if not only or r.name in only]
    unknown = only - {r[0] for r in MICRO_ROWS} - {r.name for r in load.ROWS}
    if unknown:
        raise SystemExit(f"no such row: {', '.join(sorted(unknown))}")
    if net and not os.path.exists(load.LOADGEN):
        raise SystemExit(f"{load.LOADGEN} is missing: cargo build --release -p "
                         "ferroloop-loadgen (make bench does it)")
    if any(r.client == "http" for r in net) and shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does it)")

    missing = unavailable_rivals()
    if "uvloop" in missing:
        raise SystemExit(f"uvloop is the yardstick and is unavailable: {missing['uvloop']}")
    loops = [l for l in LOOPS if l not in missing]
    print(f"Python {sys.version.split()[0]}, ferroloop {ferroloop.__version__} "
          f"({ferroloop.build_profile}); {args.rounds} micro and {args.net_rounds} load rounds "
          f"interleaved; {os.cpu_count()} cpus")
    for name in LOOPS:
        print(f"  {name:16} {'UNAVAILABLE: ' + missing[name] if name in missing else 'timed'}")
    checks = behaviour.check_loops([l for l in loops if l != "ferroloop+watch"])
    print("What of asyncio's behaviour each loop keeps (bench/behaviour.py):")
    print("\n".join(behaviour.describe(checks)))
    report = {"python": sys.version.split()[0], "loops": loops, "unavailable": missing,
              "behaviour": checks}
    failures = {}
    if micro:
        run_micro(args, loops, micro, report, failures, checks)
    if net:
        run_load(args, loops, net, report, failures, checks)
    verdict(report, [r[0] for r in micro] + [r.name for r in net])
    for (loop_name, row), why in sorted(failures.items()):
        print(f"  n/a: {loop_name} on {row}: {why}")
    report["failures"] = {f"{l} on {r}": why for (l, r), why in failures.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def verdict(report, rows):
    """The issue's targets, checked on this run."""
    ratios = [report[r]["vs_uvloop"]["ferroloop"] for r in rows
              if (report[r]["vs_uvloop"]["ferroloop"] or 0) > 0]
    if not ratios:
        return
    behind = [f"{r} ({', '.join(report[r]['ahead'])})" for r in rows if report[r]["ahead"]]
    # Rows where every rival ahead leaves out the behaviour the row depends on.
    departing = [r for r in rows if report[r]["ahead"]
                 and set(report[r]["ahead"]) <= set(report[r]["ahead_leaving_out"])]
    short = [r for r in rows if report[r]["progress"] is not None
             and report[r]["progress"] < table.PROGRESS_TARGET]
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    report["geomean_vs_uvloop"] = geomean
    print(f"\nferroloop vs uvloop, geometric mean over {len(ratios)} rows: {geomean:.2f}x")
    print(f"rows where a rival is ahead beyond the noise: {len(behind)}"
          + (f": {'; '.join(behind)}" if behind else ""))
    print(f"  of them, led only by rivals that leave out the row's asyncio behaviour: "
          f"{len(departing)}" + (f": {', '.join(departing)}" if departing else ""))
    print(f"rows short of {table.PROGRESS_TARGET:.0%} of the way to the bound: {len(short)}"
          + (f": {', '.join(short)}" if short else ""))
    if FLOOD_ROW in report:
        flood = report[FLOOD_ROW]["vs_uvloop"]["ferroloop"]
        print(f"{FLOOD_ROW}: {flood:.2f}x uvloop (target {FLOOD_TARGET:.1f}x)")


if __name__ == "__main__":
    sys.exit(main())
