"""Seed 9: a user subclass of the loop class that overrides a method and runs tasks."""
import asyncio
import sys

if len(sys.argv) > 1 and sys.argv[1] == "asyncio":
    Base = asyncio.SelectorEventLoop
else:
    import ferroloop
    Base = ferroloop.Loop


class CountingLoop(Base):
    def __init__(self):
        super().__init__()
        self.tasks_created = 0

    def create_task(self, coro, **kwargs):
        self.tasks_created += 1
        return super().create_task(coro, **kwargs)


async def child(i):
    await asyncio.sleep(0.01)
    return i


async def main():
    return await asyncio.gather(*(asyncio.create_task(child(i)) for i in range(3)))


loop = CountingLoop()
print(loop.run_until_complete(main()), "tasks created:", loop.tasks_created)
print(isinstance(loop, asyncio.AbstractEventLoop))
loop.close()
