"""Seed 8: Ctrl-C. `forever` mode: KeyboardInterrupt out of run_forever, then close.
`run` mode: asyncio.run cancels the main task and raises KeyboardInterrupt."""
import asyncio
import sys

mode = sys.argv[1]

if mode == "forever":
    loop = asyncio.new_event_loop()
    loop.call_soon(lambda: print("ready", flush=True))
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        print("KeyboardInterrupt out of run_forever")
    loop.close()
    print("closed", loop.is_closed())
else:
    async def main():
        print("ready", flush=True)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            print("main task cancelled")
            raise

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("KeyboardInterrupt out of asyncio.run")
