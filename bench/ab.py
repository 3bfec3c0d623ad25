"""Time per operation of `make bench`'s micro workloads on builds or loops side by side.

    python bench/ab.py WORKLOAD N ROUNDS BUILD_OR_LOOP[,BUILD_OR_LOOP...]

Where `bench/instructions.py` counts instructions, this times: each sample a fresh process
(a warm-up of 200 operations, then N timed), the builds or loops taken in turn, rotating
which goes first from round to round, and the median and the fastest of the ROUNDS samples
printed for each, in ns per operation. A BUILD is a directory holding a `ferroloop`
package (an unpacked wheel); in place of one, `asyncio` is the stdlib loop and any other
name a loop module (`uvloop`, `zuvloop`, ...), and an empty name the installed ferroloop.
For a process held to one CPU, run it under `taskset -c 0`: its children inherit the CPU.
"""

import statistics
import subprocess
import sys

import instructions

TIMED = instructions.CHILD_START + r"""
import time
loop = ferroloop.new_event_loop()
asyncio.set_event_loop(loop)
start = time.perf_counter_ns()
result = workload(loop, n=n)
elapsed = time.perf_counter_ns() - start
loop.close()
ops = result["ops"] if isinstance(result, dict) else result
print(elapsed / ops)
"""


def sample(build, workload, n, body=TIMED):
    """The last number a child running `body` on `build` prints."""
    command, env, _ = instructions.child_command(build, workload, n, body)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{build} on {workload}: {proc.stderr.strip()[-2000:]}")
    return float(proc.stdout.split()[-1])


def interleaved(builds, rounds, measure):
    """`measure(build)` for each build, ROUNDS times, rotating which goes first."""
    samples = {build: [] for build in builds}
    for r in range(rounds):
        turn = r % len(builds)
        for build in builds[turn:] + builds[:turn]:
            samples[build].append(measure(build))
    return samples


def report(samples, unit):
    for build, values in samples.items():
        print(f"{build or 'installed':40} median {statistics.median(values):10.1f}  "
              f"fastest {min(values):10.1f} {unit}  ({len(values)} runs)")


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    workload, n, rounds, builds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    instructions.check_workloads([workload])
    report(interleaved(builds.split(","), rounds, lambda build: sample(build, workload, n)),
           "ns/op")


if __name__ == "__main__":
    main()
