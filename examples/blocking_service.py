"""A service with a blocking call hidden in it: the README's "Finding what blocks your
loop" session runs it with ferroloop's watchdog and monitor on.

    python -m ferroloop --watchdog 0.25 --monitor /tmp/service.sock examples/blocking_service.py
    python -m ferroloop monitor /tmp/service.sock        # in another terminal

It runs unchanged on the stdlib loop (`python examples/blocking_service.py`), where the
block goes unreported.
"""

import asyncio
import hashlib
import time


def checksum_archive(rounds):
    """The culprit: synchronous, CPU-bound work called straight from a coroutine."""
    digest = b""
    end = time.monotonic() + rounds * 0.1
    while time.monotonic() < end:
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:12]


async def heartbeat(beats):
    for _ in range(beats):
        await asyncio.sleep(0.05)


async def nightly_report():
    await asyncio.sleep(0.2)
    return checksum_archive(rounds=12)


async def main():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(heartbeat(40), name="heartbeat")
        report = tg.create_task(nightly_report(), name="nightly-report")
    print("report", report.result())


if __name__ == "__main__":
    asyncio.run(main())
