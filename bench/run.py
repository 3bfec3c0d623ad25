"""`make bench`: the stdlib loop, uvloop and ferroloop side by side, in one run.

ferroloop runs twice: as is, and with its watchdog and monitor on ("ferroloop+watch");
the "watch" column is what they cost, the median over rounds of each round's ratio of the
two, in percent (the issue allows 3; "!" marks a row over it).

Each round runs every workload on the three loops back to back (A B C, then B C A, ...), each
in a fresh process; the table gives per-workload medians of throughput, the spread (max-min
over median), CPU time per operation, and ferroloop's ratio to uvloop (and to the stdlib
loop): the median over rounds of the ratio within each round. It refuses to time a debug
build of ferroloop.

The network rows run an echo server (asyncio.Protocol, streams, sock_*; TCP and Unix;
1, 10 and 100 KiB; and 1 KiB on a new connection per request) in its own process, loaded
by the Rust load generator in another (bench/loadgen), and report requests/s, p50/p99 latency and the server's CPU time per
request; the ratio to uvloop is of CPU time per request. The HTTP rows serve a keep-alive
hello-world (an httptools Protocol, and aiohttp.web) loaded by wrk.

    python bench/run.py [--rounds 5] [--only "call_soon chain,future ping-pong"]
                        [--net-rounds 3] [--net-duration 1.0] [--no-net] [--no-micro]
                        [--json out.json]
"""

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPS = ("asyncio", "uvloop", "ferroloop", "ferroloop+watch")
# The watched loop's settings: a threshold no healthy callback reaches, and a socket.
WATCHDOG = 0.1
WATCH_COST_LIMIT = 3.0
LOADGEN = os.path.join(os.path.dirname(HERE), "target", "release", "loadgen")
NET_ROWS = [(family, mode, size)
            for family in ("tcp", "unix")
            for mode in ("protocol", "streams", "sock")
            for size in (1024, 10 * 1024, 100 * 1024)]
# The targets for the network rows: ratio of uvloop's CPU time per request to ours.
NET_TARGETS = {"protocol": 1.3, "streams": 1.15, "sock": 1.15}
# Connection churn: every 1 KiB request on a connection of its own, so accepting and
# setting up a connection is what is measured.
CONNECT_ROWS = [("tcp", "protocol"), ("tcp", "streams")]


def serve_and_load(loop_name, kind, family, load):
    """Runs `kind`'s server (bench/servers.py) on `loop_name` in its own process, applies
    `load(address)` (which returns a dict with "requests"), and adds the server's CPU time."""
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "servers.py"), loop_name, kind, family],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise SystemExit(f"{loop_name} {kind} server did not start: {server.stderr.read()}")
        result = load(ready[1])
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
        result.update(json.loads(out.strip().splitlines()[-1]))
        return result
    finally:
        if server.poll() is None:
            server.kill()


def checked(cmd, what, timeout):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed: {proc.stderr}")
    return proc.stdout


def net_sample(loop_name, family, mode, size, duration, reconnect=False):
    """One echo measurement: a fresh server process, loaded by loadgen for `duration` s."""
    def load(address):
        target = ["--unix", address] if family == "unix" else ["--tcp", address]
        return json.loads(checked(
            [LOADGEN, *target, "--size", str(size), "--conns", "8", "--duration", str(duration),
             *(["--reconnect"] if reconnect else [])],
            f"loadgen against {loop_name} {mode}", duration + 60))

    return serve_and_load(loop_name, mode, family, load)


HTTP_ROWS = ("httptools", "aiohttp")
# The target for httptools: uvloop's CPU time per request over ours.
HTTP_TARGETS = {"httptools": 1.3, "aiohttp": 1.0}


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
    if not {"requests", "rps", "p50_us", "p99_us"} <= out.keys():
        raise SystemExit(f"could not read wrk's output:\n{text}")
    return out


def http_sample(loop_name, mode, duration):
    """One HTTP measurement: a fresh server process, loaded by wrk."""
    seconds = max(1, round(duration))
    return serve_and_load(loop_name, mode, "tcp", lambda port: parse_wrk(checked(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
        f"wrk against {loop_name} {mode}", seconds + 60)))


def print_load_table(title, rows, samples, targets, report):
    header = (f"{title:<24}" + "".join(f"{l + ' req/s':>16}" for l in LOOPS) +
              f"{'cpu us/req a/u/f/w':>26}{'vs uvloop':>11}{'target':>8}{'watch':>9}"
              f"{'uv kernel':>10}{'p50 us a/u/f/w':>22}{'p99 us a/u/f/w':>24}")
    print()
    print(header)
    print("-" * len(header))
    for name, row in rows:
        med = {l: {k: statistics.median(s[k] for s in samples[(row, l)])
                   for k in ("rps", "p50_us", "p99_us")} for l in LOOPS}
        cpu = {l: statistics.median(s["cpu"] / s["requests"] * 1e6 for s in samples[(row, l)])
               for l in LOOPS}
        vs_uv = paired_ratio(samples, row, "uvloop", "ferroloop",
                             lambda s: s["cpu"] / s["requests"])
        # The kernel's part (syscalls, the TCP/Unix stack) of uvloop's server CPU: what no
        # loop's own code can save, though batching moves it from run to run.
        kernel = statistics.median(s["sys"] / s["cpu"] for s in samples[(row, "uvloop")])
        target = targets[row]
        watch = watch_cost(samples, row, lambda s: s["cpu"] / s["requests"])
        print(f"{name:<24}" + "".join(f"{med[l]['rps']:>16,.0f}" for l in LOOPS) +
              f"{'/'.join(f'{cpu[l]:.1f}' for l in LOOPS):>26}{vs_uv:>10.2f}x{target:>7.2f}x"
              f"{watch_mark(watch)}{kernel:>9.0%}"
              f"{'/'.join(str(int(med[l]['p50_us'])) for l in LOOPS):>22}"
              f"{'/'.join(str(int(med[l]['p99_us'])) for l in LOOPS):>24}"
              f"{'' if vs_uv >= target else ' *'}")
        report[name] = {"rps": {l: med[l]["rps"] for l in LOOPS}, "cpu_us_per_req": cpu,
                        "watch_cost_percent": watch,
                        "p50_us": {l: med[l]["p50_us"] for l in LOOPS},
                        "p99_us": {l: med[l]["p99_us"] for l in LOOPS},
                        "vs_uvloop_cpu": vs_uv, "target": target, "uvloop_kernel_share": kernel}
    print("(ratio = uvloop's server CPU time per request / ferroloop's, the median over rounds "
          "of each round's ratio; * = below the target; uv kernel = the kernel's share of "
          "uvloop's server CPU)")


def paired_ratio(samples, row, base, other, cost):
    """The median over rounds of `cost(base) / cost(other)` within each round. The loops
    of a round run back to back, so a slow stretch of this shared machine weighs on both
    sides of each ratio, where it would skew a ratio of separate medians."""
    pairs = zip(samples[(row, base)], samples[(row, other)])
    return statistics.median(cost(b) / cost(o) for b, o in pairs)


def interleave(rounds, rows, name, sample):
    """`sample(loop, row)` for every row and loop, `rounds` times, rotating the loops' order
    from row to row and round to round so no loop always runs first."""
    samples = {(row, l): [] for row in rows for l in LOOPS}
    for r in range(rounds):
        for i, row in enumerate(rows):
            sys.stderr.write(f"\r  round {r + 1}/{rounds}: {name(row):<28}")
            sys.stderr.flush()
            turn = (r + i) % len(LOOPS)
            for loop_name in LOOPS[turn:] + LOOPS[:turn]:
                samples[(row, loop_name)].append(sample(loop_name, row))
    sys.stderr.write("\r" + " " * 60 + "\r")
    return samples


def net_row_name(family, mode, size):
    return f"{family} {mode} {size // 1024} KiB"


def run_http(rounds, duration, report, only=()):
    import shutil
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does it)")
    chosen = [row for row in HTTP_ROWS if not only or f"http {row}" in only]
    if not chosen:
        return
    samples = interleave(rounds, chosen, lambda row: f"http {row}",
                         lambda loop_name, row: http_sample(loop_name, row, duration))
    print_load_table("http hello (wrk -c32)", [(f"http {row}", row) for row in chosen],
                     samples, HTTP_TARGETS, report)


def run_net(rounds, duration, report, only=()):
    if not os.path.exists(LOADGEN):
        raise SystemExit(f"{LOADGEN} is missing: cargo build --release -p ferroloop-loadgen "
                         "(make bench does it)")
    chosen = [row for row in NET_ROWS if not only or net_row_name(*row) in only]
    if not chosen:
        return
    samples = interleave(rounds, chosen, lambda row: net_row_name(*row),
                         lambda loop_name, row: net_sample(loop_name, *row, duration))

    rows = [(net_row_name(*row), row) for row in chosen]
    targets = {row: NET_TARGETS[row[1]] if row[2] == 1024 else 1.0 for row in chosen}
    print_load_table("echo (8 connections)", rows, samples, targets, report)


def connect_row_name(family, mode):
    return f"{family} {mode} new conn"


def run_connect(rounds, duration, report, only=()):
    chosen = [row for row in CONNECT_ROWS if not only or connect_row_name(*row) in only]
    if not chosen:
        return
    samples = interleave(rounds, chosen, lambda row: connect_row_name(*row),
                         lambda loop_name, row: net_sample(loop_name, *row[:2], 1024, duration,
                                                           reconnect=True))
    print_load_table("1 KiB, new conn each (8)", [(connect_row_name(*row), row) for row in chosen],
                     samples, {row: 1.0 for row in chosen}, report)


def new_loop(name):
    if name == "asyncio":
        import asyncio
        return asyncio.new_event_loop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    import ferroloop
    if name == "ferroloop+watch":
        import tempfile
        monitor = os.path.join(tempfile.gettempdir(), f"ferroloop-bench-{os.getpid()}.sock")
        return ferroloop.Loop(watchdog=WATCHDOG, monitor=monitor)
    return ferroloop.new_event_loop()


def watch_cost(samples, row, cost):
    """What the watchdog and monitor add to ferroloop's cost, in percent."""
    return (paired_ratio(samples, row, "ferroloop+watch", "ferroloop", cost) - 1) * 100


def watch_mark(cost):
    return f"{cost:>+7.1f}%" + ("!" if cost > WATCH_COST_LIMIT else " ")


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
    parser.add_argument("--net-rounds", type=int, default=3)
    parser.add_argument("--net-duration", type=float, default=1.0)
    parser.add_argument("--no-net", action="store_true", help="skip the network rows")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro rows")
    parser.add_argument("--net-only", default="",
                        help="comma-separated network rows to run, e.g. 'tcp protocol 1 KiB,http aiohttp'")
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
    report = {}
    if not args.no_micro:
        report["geomean_vs_uvloop"] = run_micro(names, args.rounds, TARGETS, report)
    if not args.no_net:
        only = {n.strip() for n in args.net_only.split(",") if n.strip()}
        run_net(args.net_rounds, args.net_duration, report, only)
        run_connect(args.net_rounds, args.net_duration, report, only)
        run_http(args.net_rounds, max(args.net_duration, 1.0), report, only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def run_micro(names, rounds, TARGETS, report):
    def sample(loop_name, name):
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", loop_name, "--only", name],
            capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            raise SystemExit(f"the {loop_name} worker failed on {name}")
        return json.loads(out.stdout)[name]

    samples = interleave(rounds, names, str, sample)

    def med(name, loop_name, key):
        return statistics.median(s[key] / s["ops"] for s in samples[(name, loop_name)])

    def spread(name, loop_name):
        rates = [s["ops"] / s["wall"] for s in samples[(name, loop_name)]]
        return (max(rates) - min(rates)) / statistics.median(rates) * 100

    header = (f"{'workload':<33}" + "".join(f"{l + ' ops/s':>17}" for l in LOOPS) +
              f"{'vs uvloop':>11}{'target':>8}{'vs asyncio':>12}{'watch':>9}"
              f"{'cpu us/op a/u/f/w':>26}{'spread % a/u/f/w':>19}")
    print(header)
    print("-" * len(header))
    ratios = []
    for name in names:
        rate = {l: 1 / med(name, l, "wall") for l in LOOPS}
        cpu = {l: med(name, l, "cpu") * 1e6 for l in LOOPS}
        vs_uv = paired_ratio(samples, name, "uvloop", "ferroloop",
                             lambda s: s["wall"] / s["ops"])
        vs_aio = paired_ratio(samples, name, "asyncio", "ferroloop",
                              lambda s: s["wall"] / s["ops"])
        watch = watch_cost(samples, name, lambda s: s["wall"] / s["ops"])
        ratios.append(vs_uv)
        target = TARGETS.get(name, 1.0)
        mark = "" if vs_uv >= target else " *"
        print(f"{name:<33}" + "".join(f"{rate[l]:>17,.0f}" for l in LOOPS) +
              f"{vs_uv:>10.2f}x{target:>7.1f}x{vs_aio:>11.2f}x{watch_mark(watch)}"
              f"{'/'.join(f'{cpu[l]:.2f}' for l in LOOPS):>26}"
              f"{'/'.join(f'{spread(name, l):.0f}' for l in LOOPS):>19}{mark}")
        report[name] = {"rate": rate, "cpu_us_per_op": cpu, "vs_uvloop": vs_uv,
                        "vs_asyncio": vs_aio, "target": target, "watch_cost_percent": watch}
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"geomean vs uvloop: {geomean:.2f}x   (ratios: median over rounds of each round's "
          f"ratio; * = below the issue's target; watch = the cost of watchdog and monitor, "
          f"! = over {WATCH_COST_LIMIT:.0f} %)")
    return geomean


if __name__ == "__main__":
    sys.exit(main())
