"""Seed 4: a blocking function in the default executor; other tasks keep running."""
import asyncio
import time


def blocking_function():
    time.sleep(0.5)
    return "blocking done"


async def ticker(ticks):
    while True:
        await asyncio.sleep(0.05)
        ticks.append(1)


async def main():
    loop = asyncio.get_running_loop()
    ticks = []
    t = asyncio.create_task(ticker(ticks))
    print(await loop.run_in_executor(None, blocking_function))
    t.cancel()
    print("ticker kept running:", len(ticks) >= 5)


asyncio.run(main())
