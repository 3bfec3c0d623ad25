"""Seed 3: gather returns both results, in argument order."""
import asyncio


async def coro1():
    await asyncio.sleep(0.05)
    return "one"


async def coro2():
    await asyncio.sleep(0.01)
    return "two"


async def main():
    print(await asyncio.gather(coro1(), coro2()))
    print(await asyncio.gather(*(asyncio.sleep(0.01, result=i) for i in range(5))))


asyncio.run(main())
