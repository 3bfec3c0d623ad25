"""Seed 7: asyncio.all_tasks() with names and done()."""
import asyncio


async def worker(delay):
    await asyncio.sleep(delay)


async def main():
    tasks = [asyncio.create_task(worker(0.01 * i), name=f"worker-{i}") for i in range(3)]
    await tasks[0]
    for t in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        if t is not asyncio.current_task():
            print(t.get_name(), t.done())
    await asyncio.gather(*tasks)
    print(sorted(t.get_name() for t in asyncio.all_tasks()) == [asyncio.current_task().get_name()])


asyncio.run(main())
