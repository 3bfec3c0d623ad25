"""The always-on counters of loop.stats() (lag, pass durations, the longest callback, the
slow-callback count), and ferroloop.format_tasks, which works on any asyncio loop and so
runs on both."""

import asyncio
import sys
import time

import pytest

import ferroloop


@pytest.fixture
def floop():
    loop = ferroloop.new_event_loop()
    yield loop
    loop.close()


def histogram_total(spans):
    return sum(spans["histogram"].values())


def test_loop_lag_counts_how_late_timers_ran(floop):
    def block():
        time.sleep(0.05)

    async def main():
        loop = asyncio.get_running_loop()
        fired = loop.create_future()
        loop.call_later(0.01, fired.set_result, None)
        loop.call_soon(block)  # the timer comes due while this runs
        await fired

    floop.run_until_complete(main())
    lag = floop.stats()["lag"]
    assert lag["count"] >= 1
    assert 0.03 <= lag["max"] < 1.0
    assert lag["sum"] >= lag["max"]
    assert histogram_total(lag) == lag["count"]
    # The late timer is in the bucket up to 100 ms.
    assert lag["histogram"][0.1] >= 1
    assert list(lag["histogram"]) == [0.0001, 0.001, 0.01, 0.1, 1.0, float("inf")]


def test_pass_duration_and_the_longest_callback(floop):
    def slowpoke():
        time.sleep(0.03)

    floop.call_soon(slowpoke)
    floop.call_soon(floop.stop)
    floop.run_forever()
    stats = floop.stats()
    passes = stats["pass_duration"]
    assert passes["count"] == stats["iterations"]
    assert histogram_total(passes) == passes["count"]
    assert 0.03 <= passes["max"] < 1.0
    longest = stats["longest_callback"]
    assert 0.03 <= longest["seconds"] <= passes["max"]
    assert "slowpoke" in longest["callback"]


def test_the_longest_callback_names_its_task(floop):
    async def crunch():
        time.sleep(0.02)

    async def main():
        await asyncio.create_task(crunch(), name="cruncher")

    floop.run_until_complete(main())
    assert floop.stats()["longest_callback"]["callback"].startswith("<Task cruncher: ")


def test_slow_callbacks_are_counted_without_debug_mode(floop):
    assert floop.slow_callback_duration == 0.1
    floop.slow_callback_duration = 0.01
    assert floop.slow_callback_duration == 0.01
    for pause in (0.015, 0.0, 0.015):
        floop.call_soon(time.sleep, pause)
    floop.call_soon(floop.stop)
    floop.run_forever()
    assert floop.stats()["slow_callbacks"] == 2
    # Anything that is not a number of seconds is kept, and no callback reaches it.
    floop.slow_callback_duration = "never"
    assert floop.slow_callback_duration == "never"
    floop.call_soon(time.sleep, 0.015)
    floop.call_soon(floop.stop)
    floop.run_forever()
    assert floop.stats()["slow_callbacks"] == 2


def test_counters_are_read_while_the_loop_runs_elsewhere():
    # Another thread reads them mid-run, without stopping the loop.
    import threading

    loop = ferroloop.new_event_loop()
    seen = []

    async def main():
        for _ in range(20):
            await asyncio.sleep(0.005)

    def reader():
        while not seen or seen[-1]["iterations"] < 10:
            seen.append(loop.stats())
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        loop.run_until_complete(main())
    finally:
        thread.join(10)
        loop.close()
    assert [s["iterations"] for s in seen] == sorted(s["iterations"] for s in seen)
    assert seen[-1]["iterations"] >= 10


async def worker(event):
    await event.wait()


async def gathered(loop_tree):
    event = asyncio.Event()

    async def inspector():
        await asyncio.sleep(0)
        loop_tree.append(ferroloop.format_tasks(asyncio.get_running_loop()))
        event.set()

    async def main():
        await asyncio.gather(
            asyncio.create_task(worker(event), name="w1"),
            asyncio.create_task(worker(event), name="w2"),
            asyncio.create_task(inspector(), name="inspector"),
        )

    async def parent():
        await asyncio.create_task(main(), name="main")

    await asyncio.create_task(parent(), name="parent")


def test_format_tasks_draws_who_awaits_whom(loop):
    tree = []
    loop.run_until_complete(gathered(tree))
    lines = tree[0].splitlines()
    # The outermost task is the one run_until_complete made.
    assert lines[0].startswith("Task-") and "gathered() at test_counters.py:" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == [
        "`-- parent", "    `-- main", "        |-- * inspector", "        |-- w1",
        "        `-- w2"]
    assert "main() at test_counters.py:" in lines[2]
    # Each line ends where the innermost coroutine is.
    assert lines[-1].endswith(f"w2: worker() > wait() at locks.py:"
                              f"{lines[-1].rsplit(':', 1)[1]}")


def test_format_tasks_of_an_idle_loop(loop):
    assert ferroloop.format_tasks(loop) == ""
