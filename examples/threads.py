"""Seed 5: one event loop per thread, several threads at once."""
import asyncio
import threading

results = {}


async def work(n):
    await asyncio.sleep(0.05 * (n % 3))
    return n * n


def thread_main(n):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        results[n] = (loop.run_until_complete(work(n)), asyncio.get_event_loop() is loop)
    finally:
        loop.close()


threads = [threading.Thread(target=thread_main, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(results.items()))
