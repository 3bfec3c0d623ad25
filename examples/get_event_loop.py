"""Seed 1: the classic get_event_loop / run_until_complete / close."""
import asyncio


async def coro():
    print("start")
    await asyncio.sleep(1)
    print("slept 1s")
    return 42


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
loop = asyncio.get_event_loop()
print("result", loop.run_until_complete(coro()))
loop.close()
print("closed", loop.is_closed())
