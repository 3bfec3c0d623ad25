"""Seed 6: in debug mode a callback that blocks 200 ms draws a warning naming it."""
import asyncio
import logging
import time

logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")


def slow_callback():
    time.sleep(0.2)


async def main():
    asyncio.get_running_loop().call_soon(slow_callback)
    await asyncio.sleep(0.3)
    print("done")


asyncio.run(main(), debug=True)
