"""How long a full collection takes while a running loop holds N queued callbacks.

    python bench/gc_pause.py N ROUNDS BUILD_OR_LOOP[,BUILD_OR_LOOP...]

A callback queues N `call_soon(int)` and times `gc.collect()` before they run: what a
collection costs a busy loop, as a pause of the loop. Builds and loops are named as for
`bench/ab.py`, whose fresh processes and rotating order this shares; the figure is the
pause in ms, less that of the same collection with nothing queued.
"""

import sys

import ab
import instructions

PAUSE = instructions.CHILD_START + r"""
import gc, time
loop = ferroloop.new_event_loop()
pauses = []

def collect_with(count):
    for _ in range(count):
        loop.call_soon(int)
    start = time.perf_counter_ns()
    gc.collect()
    pauses.append(time.perf_counter_ns() - start)

loop.call_soon(collect_with, 0)
loop.call_soon(collect_with, n)
loop.call_soon(loop.stop)
loop.run_forever()
loop.close()
print((pauses[1] - pauses[0]) / 1e6)
"""


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    n, rounds, builds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    # The warm-up before the body is a small call_soon batch.
    ab.report(ab.interleaved(builds, rounds,
                             lambda build: ab.sample(build, "call_soon_batch", n, PAUSE)),
              "ms")


if __name__ == "__main__":
    main()
