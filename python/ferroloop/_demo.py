"""What `python -m ferroloop` (and `make run`) shows a newcomer: everyday asyncio programs
running unchanged on ferroloop, then a short side-by-side with the stdlib loop."""

import asyncio
import statistics
import sys
import threading
import time

import ferroloop


async def _scenarios():
    loop = asyncio.get_running_loop()
    print(f"  running loop: {type(loop).__module__}.{type(loop).__qualname__}")

    async def sleeper(name, delay):
        await asyncio.sleep(delay)
        return name

    started = time.monotonic()
    first = asyncio.create_task(sleeper("0.2 s task", 0.2))
    second = asyncio.create_task(sleeper("0.1 s task", 0.1))
    done, _ = await asyncio.wait([first, second], return_when=asyncio.FIRST_COMPLETED)
    print(f"  create_task: {done.pop().result()} finished first")
    await first
    print(f"  gather: {await asyncio.gather(sleeper('a', 0.01), sleeper('b', 0.02))}"
          f" in {time.monotonic() - started:.2f} s in all")

    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await loop.run_in_executor(None, time.sleep, 0.1)
    ticker.cancel()
    print(f"  run_in_executor: a blocking 0.1 s sleep ran in a thread; the loop ticked {ticks} times")

    workers = [asyncio.create_task(sleeper(f"worker-{i}", 0.01 * i), name=f"worker-{i}")
               for i in range(3)]
    await workers[0]
    listing = ", ".join(f"{t.get_name()} done={t.done()}"
                        for t in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()))
    print(f"  all_tasks: {listing}")
    await asyncio.gather(*workers)


def _threads():
    out = []

    def target(n):
        loop = ferroloop.new_event_loop()
        try:
            out.append(loop.run_until_complete(asyncio.sleep(0.01, result=n)))
        finally:
            loop.close()

    threads = [threading.Thread(target=target, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"  one loop per thread: results {sorted(out)}")


# --- the side-by-side: a few micro workloads, alternating loops -------------------------

def _call_soon_chain(loop, n=100_000):
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


def _sleep0_tasks(loop, n=2_000, rounds=10):
    async def task():
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(task() for _ in range(n)))

    loop.run_until_complete(main())
    return n * rounds


def _future_ping_pong(loop, n=50_000):
    async def main():
        for _ in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, None)
            await fut

    loop.run_until_complete(main())
    return n


def _timers(loop, n=20_000):
    async def main():
        handles = [loop.call_later(0.001 + (i % 100) * 1e-5, lambda: None) for i in range(n)]
        for h in handles[::2]:
            h.cancel()
        await asyncio.sleep(0.003)

    loop.run_until_complete(main())
    return n


class _Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class _Pinger(asyncio.Protocol):
    """Sends 1 KiB, waits for it to come back, `left` times."""

    def __init__(self, left, done):
        self.left, self.done, self.got = left, done, 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"x" * 1024)

    def data_received(self, data):
        self.got += len(data)
        if self.got < 1024:
            return
        self.got = 0
        self.left -= 1
        if self.left:
            self.transport.write(b"x" * 1024)
        else:
            self.done.set_result(None)


def _tcp_echo(loop, n=4_000, connections=4):
    """1 KiB request/reply over loopback TCP, server and clients on the same loop."""
    async def main():
        server = await loop.create_server(_Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        done = [loop.create_future() for _ in range(connections)]
        transports = []
        for fut in done:
            t, _ = await loop.create_connection(
                lambda fut=fut: _Pinger(n // connections, fut), "127.0.0.1", port)
            transports.append(t)
        await asyncio.gather(*done)
        for t in transports:
            t.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    return n


WORKLOADS = [
    ("call_soon chain", _call_soon_chain),
    ("tasks doing sleep(0)", _sleep0_tasks),
    ("future ping-pong", _future_ping_pong),
    ("call_later, half cancelled", _timers),
    ("TCP echo, 1 KiB round trips", _tcp_echo),
]


def _side_by_side(budget=10.0):
    factories = [("asyncio", asyncio.new_event_loop), ("ferroloop", ferroloop.new_event_loop)]
    samples = {(w, name): [] for w, _ in WORKLOADS for name, _ in factories}
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < budget or rounds < 3:
        rounds += 1
        for wname, workload in WORKLOADS:
            for name, factory in factories:
                loop = factory()
                try:
                    t0 = time.perf_counter()
                    ops = workload(loop)
                    samples[(wname, name)].append(ops / (time.perf_counter() - t0))
                finally:
                    loop.close()
        elapsed = time.monotonic() - started
        sys.stdout.write(f"\r  measuring: round {rounds}, {elapsed:4.1f} s of ~{budget:.0f} s ")
        sys.stdout.flush()
    print()
    print(f"  {'workload':<28}{'asyncio ops/s':>15}{'ferroloop ops/s':>17}{'ratio':>8}")
    for wname, _ in WORKLOADS:
        a = statistics.median(samples[(wname, "asyncio")])
        f = statistics.median(samples[(wname, "ferroloop")])
        print(f"  {wname:<28}{a:>15,.0f}{f:>17,.0f}{f / a:>7.1f}x")
    print(f"  (medians of {rounds} interleaved rounds; `make bench` compares with uvloop too)")


def main(budget=10.0):
    print(f"ferroloop {ferroloop.__version__} ({ferroloop.build_profile} build) on Python "
          f"{sys.version.split()[0]}")
    print("\n1. Everyday asyncio, unchanged, on ferroloop:")
    ferroloop.run(_scenarios())
    _threads()
    print("\n2. Side by side with the stdlib loop:")
    _side_by_side(budget)
    return 0
