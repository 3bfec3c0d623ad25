"""What seeing into the loop costs: asyncio's debug mode against ferroloop's watchdog and
monitor, on a few of `make bench`'s micro rows (the README's comparison).

    python bench/debug_cost.py [--rounds 5]

Each run is a fresh process; the configurations run back to back in rotating order, and
each ratio is the median over rounds of that round's time per operation over the same
loop's time with nothing on.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ("10k tasks x sleep(0)", "gather 10k coroutines", "future ping-pong",
        "call_soon chain")
# name: (loop, what is on, the configuration it is compared with)
CONFIGS = {
    "asyncio": ("asyncio", None, None),
    "asyncio debug": ("asyncio", "debug", "asyncio"),
    "ferroloop": ("ferroloop", None, None),
    "ferroloop debug": ("ferroloop", "debug", "ferroloop"),
    "ferroloop watch": ("ferroloop", "watch", "ferroloop"),
}


def worker(config, row):
    import asyncio
    sys.path.insert(0, HERE)
    from workloads import WORKLOADS
    loop_name, on, _ = CONFIGS[config]
    if loop_name == "asyncio":
        loop = asyncio.SelectorEventLoop()
    else:
        import ferroloop
        monitor = os.path.join(tempfile.gettempdir(), f"ferroloop-cost-{os.getpid()}.sock")
        loop = (ferroloop.Loop(watchdog=0.1, monitor=monitor) if on == "watch"
                else ferroloop.Loop())
    loop.set_debug(on == "debug")
    asyncio.set_event_loop(loop)
    start = time.perf_counter()
    ops = WORKLOADS[row](loop)
    took = time.perf_counter() - start
    loop.close()
    print(json.dumps(took / ops))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", nargs=2)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    names = list(CONFIGS)
    samples = {(row, c): [] for row in ROWS for c in names}
    for r in range(args.rounds):
        for i, row in enumerate(ROWS):
            turn = (r + i) % len(names)
            for config in names[turn:] + names[:turn]:
                out = subprocess.run([sys.executable, __file__, "--worker", config, row],
                                     capture_output=True, text=True, timeout=600, check=True)
                samples[(row, config)].append(float(out.stdout))
    compared = [c for c in names if CONFIGS[c][2]]
    print(f"{'workload':<24}" + "".join(f"{c:>18}" for c in compared))
    for row in ROWS:
        cells = []
        for config in compared:
            base = CONFIGS[config][2]
            ratio = statistics.median(
                on / off for on, off in zip(samples[(row, config)], samples[(row, base)]))
            cells.append(f"{(ratio - 1) * 100:>+17.1f}%")
        print(f"{row:<24}" + "".join(cells))
    print("(time per operation with it on, over the same loop with nothing on)")


if __name__ == "__main__":
    sys.exit(main())
