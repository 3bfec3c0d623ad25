"""Seed 2: two tasks sleeping 2 s and 1 s; the 1 s one finishes first, ~2 s in all."""
import asyncio
import time


async def sleeper(name, delay, order):
    await asyncio.sleep(delay)
    order.append(name)
    print(f"{name} done after {delay}s")


async def main():
    order = []
    started = time.monotonic()
    t1 = asyncio.create_task(sleeper("slow", 2, order))
    t2 = asyncio.create_task(sleeper("fast", 1, order))
    await t1
    await t2
    elapsed = time.monotonic() - started
    print("order", order)
    print("total about 2s:", 1.9 < elapsed < 2.6)


asyncio.run(main())
