"""The public API: Loop, new_event_loop, run, EventLoopPolicy, install, Runner."""

import asyncio
import sys


import ferroloop


def test_loop_is_an_abstract_event_loop():
    loop = ferroloop.new_event_loop()
    try:
        assert isinstance(loop, ferroloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert repr(loop) == "<Loop running=False closed=False debug=False>"
    finally:
        loop.close()


def test_run_returns_result_and_uses_ferroloop():
    async def main():
        return type(asyncio.get_running_loop())

    assert ferroloop.run(main()) is ferroloop.Loop


def test_run_debug():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert ferroloop.run(main(), debug=True) is True
    assert ferroloop.run(main(), debug=False) is False


def test_runner_with_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=ferroloop.new_event_loop) as runner:
        assert runner.run(main()) is ferroloop.Loop
        assert isinstance(runner.get_loop(), ferroloop.Loop)


def test_stats_count_the_loops_work():
    loop = ferroloop.new_event_loop()
    try:
        loop.run_until_complete(asyncio.sleep(0.01))
        stats = loop.stats()
        assert stats["iterations"] >= 2 and stats["callbacks"] >= 2
        assert stats["timers_fired"] == 1 and stats["blocking_polls"] >= 1
    finally:
        loop.close()


def test_handles_that_have_run_are_refilled():
    # A callback rescheduling itself: from the second pass on, each call_soon refills the
    # handle that ran before it (on every supported CPython; the check that a handle is
    # unobserved reads the weak-reference list, whose layout is the type's).
    loop = ferroloop.new_event_loop()
    try:
        left = [100]

        def again():
            left[0] -= 1
            if left[0]:
                loop.call_soon(again)
            else:
                loop.stop()

        loop.call_soon(again)
        loop.run_forever()
        assert loop.stats()["handles_reused"] >= 98
        loop.set_debug(True)
        before = loop.stats()["handles_reused"]
        left[0] = 10
        loop.call_soon(again)
        loop.run_forever()
        assert loop.stats()["handles_reused"] == before, "debug handles record their origin"
    finally:
        loop.close()



def burst_then_burst(loop, schedule, n):
    """Two passes of n callbacks each, the second queued by the first, with every other
    handle of the second cancelled: checks what ran, and returns the loop's stats."""
    ran = []

    def first():
        for i in range(n):
            schedule(ran.append, i)
        schedule(second)

    def second():
        handles = [schedule(ran.append, n + i) for i in range(n)]
        for handle in handles[::2]:
            handle.cancel()
        schedule(loop.stop)

    loop.call_soon(first)
    loop.run_forever()
    assert ran == list(range(n)) + list(range(n + 1, 2 * n, 2))
    return loop.stats()


def test_handles_stay_small():
    """A flood or a heap of timers holds tens of thousands of handles in memory the process
    faults in as it goes: what debug mode records lives apart, and a TimerHandle's flags sit
    in its Handle's. Sizes on a 64-bit build, before the collector's header."""
    from ferroloop import _ferroloop

    handle = _ferroloop.Handle.__basicsize__
    assert handle <= 80
    if sys.version_info >= (3, 14):
        assert _ferroloop._ThreadSafeHandle.__basicsize__ <= handle + 16
    assert _ferroloop.TimerHandle.__basicsize__ <= handle + 16


def test_a_bursts_handles_refill_the_next_burst_and_then_are_let_go():
    # A burst's handles wait, emptied, for the next pass's callbacks (beyond the 64 the
    # loop keeps whatever the traffic), and the first pass that runs fewer lets them go.
    loop = ferroloop.new_event_loop()
    try:
        n = 1000
        stats = burst_then_burst(loop, loop.call_soon, n)
        assert stats["handles_reused"] >= n
        assert stats["spare_handles"] >= n
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert loop.stats()["spare_handles"] <= 64
    finally:
        loop.close()


def test_thread_safe_handles_are_refilled_as_their_own_kind():
    # On 3.14+ call_soon_threadsafe's handles are asyncio's _ThreadSafeHandle: a refilled
    # one is still that, and still cancellable; call_soon's stay plain Handles.
    loop = ferroloop.new_event_loop()
    try:
        assert burst_then_burst(loop, loop.call_soon_threadsafe, 500)["handles_reused"] >= 500
        expected = "_ThreadSafeHandle" if sys.version_info >= (3, 14) else "Handle"
        for schedule, kind in [(loop.call_soon_threadsafe, expected), (loop.call_soon, "Handle")]:
            handle = schedule(print)
            assert handle.__class__.__name__ == kind
            handle.cancel()
    finally:
        loop.close()

def test_ready_and_scheduled_are_visible_to_debuggers():
    loop = ferroloop.new_event_loop()
    try:
        h = loop.call_soon(print)
        t2 = loop.call_later(20, print)
        t1 = loop.call_later(10, print)
        assert loop._ready == [h]
        assert loop._scheduled == [t1, t2]
        assert loop._selector.get_key(loop._ssock.fileno()).events == 1
    finally:
        loop.close()


def test_closed_loop_releases_its_fds():
    import os

    before = set(os.listdir("/proc/self/fd"))
    for _ in range(20):
        loop = ferroloop.new_event_loop()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    assert set(os.listdir("/proc/self/fd")) == before
