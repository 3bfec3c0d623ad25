"""The micro workloads of `make bench`. Each takes a fresh loop and returns how many
operations it performed (or a dict with "ops" and measurements of its own); the driver
times it (wall and CPU) in a process of its own. Each takes `n=`, so that
bench/instructions.py can count its instructions per operation."""

import asyncio
import concurrent.futures
import random
import statistics
import threading
import time


def call_soon_chain(loop, n=200_000):
    """One callback that reschedules itself: a pass per call."""
    left = n

    def cb():
        nonlocal left
        left -= 1
        if left:
            loop.call_soon(cb)
        else:
            loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    return n


def call_soon_batch(loop, n=200_000):
    """Many callbacks queued at once: one pass runs them all."""
    count = 0

    def cb():
        nonlocal count
        count += 1

    for _ in range(n):
        loop.call_soon(cb)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert count == n
    return n


def call_later_half_cancelled(loop, n=100_000):
    """Timers due within a few ms, half of them cancelled before they fire."""
    rng = random.Random(7)
    fired = 0

    def cb():
        nonlocal fired
        fired += 1

    handles = [loop.call_later(rng.random() * 0.005, cb) for _ in range(n)]
    for h in handles[::2]:
        h.cancel()
    loop.call_later(0.006, loop.stop)
    loop.run_forever()
    assert fired == n - len(handles[::2])
    return n


def tasks_sleep0(loop, n=10_000, steps=10):
    """10k tasks, each awaiting sleep(0) ten times."""
    async def task():
        for _ in range(steps):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(task() for _ in range(n)))

    loop.run_until_complete(main())
    return n * steps


def gather_10k(loop, n=10_000, repeat=5):
    """gather() of 10k coroutines (each wrapped in a Task), five times."""
    async def leaf(i):
        return i

    async def main():
        for _ in range(repeat):
            results = await asyncio.gather(*(leaf(i) for i in range(n)))
            assert results[-1] == n - 1

    loop.run_until_complete(main())
    return n * repeat


def future_ping_pong(loop, n=100_000):
    """Two tasks handing a turn back and forth through futures."""
    async def main():
        ping = loop.create_future()
        pong = None

        async def responder():
            nonlocal ping, pong
            for _ in range(n):
                await ping
                ping = loop.create_future()
                pong.set_result(None)

        r = loop.create_task(responder())
        for _ in range(n):
            pong = loop.create_future()
            ping.set_result(None)
            await pong
        await r

    loop.run_until_complete(main())
    return n


def threadsafe_throughput(loop, n=100_000):
    """Another thread floods call_soon_threadsafe; the loop counts them in."""
    count = 0
    done = loop.create_future()

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    def producer():
        for _ in range(n):
            loop.call_soon_threadsafe(cb)

    t = threading.Thread(target=producer)
    loop.call_soon(t.start)
    loop.run_until_complete(done)
    t.join()
    return n


def threadsafe_round_trip(loop, n=20_000):
    """Thread -> loop -> thread: call_soon_threadsafe and wait for the loop's answer."""
    async def main():
        def client():
            for _ in range(n):
                fut = concurrent.futures.Future()
                loop.call_soon_threadsafe(fut.set_result, None)
                fut.result()

        await loop.run_in_executor(None, client)

    loop.run_until_complete(main())
    return n


def executor_round_trip(loop, n=5_000):
    """await run_in_executor(None, f), one after another."""
    async def main():
        for _ in range(n):
            await loop.run_in_executor(None, int)

    loop.run_until_complete(main())
    return n


def connection_churn(loop, n=2_000):
    """create_connection to a server on the same loop, then close: both ends' set-up."""
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(n):
            transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            transport.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    return n


def queue_producer_consumer(loop, n=100_000):
    """A producer task puts n items through an asyncio.Queue(100) to a consumer task."""
    async def main():
        queue = asyncio.Queue(100)

        async def producer():
            for i in range(n):
                await queue.put(i)
            await queue.put(None)

        async def consumer():
            got = 0
            while await queue.get() is not None:
                got += 1
            return got

        _, got = await asyncio.gather(producer(), consumer())
        assert got == n

    loop.run_until_complete(main())
    return n


def taskgroup_fan_out(loop, n=10_000, repeat=5):
    """A TaskGroup of 10k tasks, each awaiting sleep(0) once, five times over."""
    async def leaf():
        await asyncio.sleep(0)

    async def main():
        for _ in range(repeat):
            async with asyncio.TaskGroup() as group:
                for _ in range(n):
                    group.create_task(leaf())

    loop.run_until_complete(main())
    return n * repeat


def sleep_lateness(loop, n=500, busy=300):
    """How late `await asyncio.sleep(0.001)` wakes while `busy` tasks keep the loop full
    (each step a little Python, then sleep(0)). A pass runs every task's step and lasts
    longer than the sleep, so the sleeper waits out the pass its timer fell due in and the
    next, and a loop's cost per step shows as lateness."""
    late = []

    async def spinner(stop):
        while not stop.is_set():
            sum(range(50))
            await asyncio.sleep(0)

    async def main():
        stop = asyncio.Event()
        spinners = [asyncio.ensure_future(spinner(stop)) for _ in range(busy)]
        await asyncio.sleep(0)
        for _ in range(n):
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            late.append(time.perf_counter() - started - 0.001)
        stop.set()
        await asyncio.gather(*spinners)

    loop.run_until_complete(main())
    late.sort()
    # A sleep that returned more than a microsecond before its delay: asyncio takes a timer
    # at most its clock's resolution early.
    early = sum(1 for x in late if x < -1e-6)
    return {"ops": n, "late_p50": statistics.median(late),
            "late_p99": late[min(len(late) - 1, round(0.99 * (len(late) - 1)))], "early": early}


WORKLOADS = {
    "call_soon chain": call_soon_chain,
    "call_soon batch": call_soon_batch,
    "call_later half-cancelled": call_later_half_cancelled,
    "10k tasks x sleep(0)": tasks_sleep0,
    "gather 10k coroutines": gather_10k,
    "future ping-pong": future_ping_pong,
    "call_soon_threadsafe flood": threadsafe_throughput,
    "call_soon_threadsafe round trip": threadsafe_round_trip,
    "run_in_executor round trip": executor_round_trip,
    "TCP connect + accept + close": connection_churn,
    "asyncio.Queue producer/consumer": queue_producer_consumer,
    "TaskGroup fan-out 10k": taskgroup_fan_out,
    "sleep(1 ms) under load": sleep_lateness,
}
