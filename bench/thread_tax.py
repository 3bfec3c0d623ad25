"""The cost of a second thread to a loop doing socket I/O: Linux skips reference counting
on each file-descriptor system call only while a process's descriptor table has one user.

    python bench/thread_tax.py [--rounds 8]

A socket ping-pong (sock_sendall/sock_recv over a socketpair) on a ferroloop loop, with no
other thread, with an idle thread (blocked on an Event), and with an idle thread that has
unshared its descriptor table; each ratio is the median over rounds of CPU time against
the run with no other thread, in the same round.
"""

import argparse
import asyncio
import ctypes
import socket
import statistics
import threading
import time

import ferroloop

CLONE_FILES = 0x400


def ping_pong(n):
    loop = ferroloop.new_event_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def echo():
        while data := await loop.sock_recv(b, 1024):
            await loop.sock_sendall(b, data)

    async def main():
        task = loop.create_task(echo())
        for _ in range(n):
            await loop.sock_sendall(a, b"x" * 1024)
            await loop.sock_recv(a, 1024)
        a.shutdown(socket.SHUT_WR)
        await task

    start = time.process_time()
    loop.run_until_complete(main())
    took = time.process_time() - start
    loop.close()
    a.close()
    b.close()
    return took


def idle_thread(unshare):
    libc = ctypes.CDLL(None, use_errno=True)
    done = threading.Event()
    ready = threading.Event()

    def body():
        if unshare and libc.unshare(CLONE_FILES) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_FILES)")
        ready.set()
        done.wait()

    thread = threading.Thread(target=body)
    thread.start()
    ready.wait()
    return done, thread


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    configs = ("alone", "idle thread", "idle thread, own fd table")
    samples = {c: [] for c in configs}
    for r in range(args.rounds):
        for i in range(len(configs)):
            config = configs[(r + i) % len(configs)]
            helper = None if config == "alone" else idle_thread("own" in config)
            samples[config].append(ping_pong(args.n))
            if helper:
                helper[0].set()
                helper[1].join()
    for config in configs[1:]:
        ratio = statistics.median(t / a for t, a in zip(samples[config], samples["alone"]))
        print(f"{config:<28} {(ratio - 1) * 100:+.1f} % CPU time per ping-pong")


if __name__ == "__main__":
    main()
