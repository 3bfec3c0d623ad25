"""Pass-by-pass ordering, against the stdlib loop.

A seeded random program schedules callbacks, timers that are already due, cancelled
handles, tasks that sleep(0), futures and their done callbacks, fd readers on socketpairs,
writes and pause/resume on a pair of socket transports, sock_recv and signals; each event
it sees schedules more. Nothing depends on time: data written on this machine's sockets is
readable when the write returns, and a signal raised by the loop's thread is pending when
`raise_signal` returns. So the stdlib loop logs one exact sequence per seed, and ferroloop
must log the same one (save for a rare run, below).
"""

import asyncio
import random
import signal
import socket

import pytest

import ferroloop


class Program:
    def __init__(self, loop, seed, budget=150):
        self.loop = loop
        self.seed = seed
        self.rng = random.Random(seed)
        self.left = budget
        self.log = []
        self.pairs = [socket.socketpair() for _ in range(2)]
        for r, w in self.pairs:
            r.setblocking(False)
            w.setblocking(False)
        self.reading = [False, False]
        self.peers = [Peer(self, 0), Peer(self, 1)]
        self.ended = [False, False]  # closed, aborted or shut for writing

    def spawn(self, tag):
        """One random operation, tagged by what led to it."""
        if self.left <= 0:
            return
        self.left -= 1
        loop, rng, log = self.loop, self.rng, self.log
        t = f"{tag}.{self.left}"
        op = rng.randrange(20)
        if op == 0:
            loop.call_soon(self.event, t + "soon")
        elif op == 1:
            loop.call_later(0, self.event, t + "later0")
        elif op == 2:
            loop.call_at(loop.time() - 1, self.event, t + "past")
        elif op == 3:
            handle = loop.call_soon(self.event, t + "ran")
            loop.call_soon(handle.cancel)
        elif op == 4:
            loop.create_task(self.sleeper(t + "task", rng.randrange(3)))
        elif op == 5:
            fut = loop.create_future()
            fut.add_done_callback(lambda f: self.event(t + "done"))
            loop.call_soon(fut.set_result, None)
        elif op == 6:
            i = rng.randrange(2)
            self.pairs[i][1].send(b"x")
            log.append(f"{t}send{i}")
        elif op == 7:
            i = rng.randrange(2)
            if not self.reading[i]:
                self.reading[i] = True
                loop.add_reader(self.pairs[i][0], self.readable, i)
                log.append(f"{t}add{i}")
        elif op == 8:
            i = rng.randrange(2)
            if self.reading[i]:
                self.reading[i] = False
                loop.remove_reader(self.pairs[i][0])
                log.append(f"{t}remove{i}")
        elif op == 9:
            fut = loop.create_future()
            loop.create_task(self.waiter(t + "waiter", fut))
            loop.call_soon(fut.set_result, 1)
        elif op == 10:
            loop.call_later(0, self.event, t + "never").cancel()
        elif op == 11:
            # CPython's call_soon_threadsafe writes to the self-pipe that also carries
            # signals, so a signal raised just after one is read a pass sooner there;
            # ferroloop wakes through an eventfd. Half the seeds use each.
            if self.seed % 2:
                loop.call_soon_threadsafe(self.event, t + "threadsafe")
            else:
                signal.raise_signal(signal.SIGUSR1)
                log.append(t + "raise")
        elif op in (12, 13):
            side = rng.randrange(2)
            transport = self.peers[side].transport
            if not self.ended[side]:
                transport.write(b"y" * rng.randrange(1, 50))
                log.append(f"{t}write{side}")
        elif op == 14:
            side = rng.randrange(2)
            transport = self.peers[side].transport
            if transport.is_reading():
                transport.pause_reading()
                log.append(f"{t}pause{side}")
            else:
                transport.resume_reading()
                log.append(f"{t}resume{side}")
        elif op == 15:
            loop.create_task(self.sock_recv(t + "sock"))
        elif op == 16:
            loop.call_soon(self.fail, t + "fail")
        elif op == 17 and rng.random() < 0.3:
            side = rng.randrange(2)
            transport = self.peers[side].transport
            how = rng.choice(["close", "abort", "write_eof"])
            if not self.ended[side]:
                self.ended[side] = True
                getattr(transport, how)()
                log.append(f"{t}{how}{side}")
        else:
            loop.call_soon(self.event, t + "soon")

    def event(self, tag):
        self.log.append(tag)
        for _ in range(self.rng.randrange(4)):
            self.spawn(tag)

    def fail(self, tag):
        self.log.append(tag)
        raise ValueError(tag)

    def exception_handler(self, loop, context):
        self.log.append(f"handler:{context['message'][:20]}:{context.get('exception')!r}")

    def readable(self, i):
        try:
            data = self.pairs[i][0].recv(100)
        except BlockingIOError:
            data = b""
        self.log.append(f"read{i}:{len(data)}")
        self.spawn(f"r{i}")

    async def sleeper(self, tag, n):
        self.log.append(tag + "+")
        for _ in range(n):
            await asyncio.sleep(0)
            self.log.append(tag + "~")
            self.spawn(tag)
        self.log.append(tag + "-")

    async def waiter(self, tag, fut):
        self.log.append(f"{tag}={await fut}")
        self.spawn(tag)

    async def sock_recv(self, tag):
        r, w = self.pairs[1]
        if self.reading[1]:
            return self.log.append(tag + ":skipped")
        w.send(b"z")
        self.log.append(f"{tag}:{len(await self.loop.sock_recv(r, 100))}")
        self.spawn(tag)

    async def main(self):
        loop = self.loop
        # Connection set-up is left out of the log: an accepted connection's
        # connection_made runs a pass sooner on ferroloop (README, deliberate differences).
        server = await loop.create_server(lambda: self.peers[1], "127.0.0.1", 0)
        await loop.create_connection(lambda: self.peers[0], *server.sockets[0].getsockname())
        while self.peers[1].transport is None:
            await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        loop.add_signal_handler(signal.SIGUSR1, self.event, "signal")
        loop.set_exception_handler(self.exception_handler)
        self.log.append("start")
        for _ in range(6):
            self.spawn("m")
        for _ in range(40):
            await asyncio.sleep(0)
        self.log.append("end")
        self.left = 0
        loop.remove_signal_handler(signal.SIGUSR1)
        for peer in self.peers:
            peer.transport.abort()
        server.close()
        await server.wait_closed()
        for _ in range(5):
            await asyncio.sleep(0)

    def run(self):
        try:
            self.loop.run_until_complete(self.main())
        finally:
            for i, (r, w) in enumerate(self.pairs):
                if self.reading[i]:
                    self.loop.remove_reader(r)
                r.close()
                w.close()
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()
        return self.log


class Peer(asyncio.Protocol):
    def __init__(self, program, side):
        self.program = program
        self.side = side
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.program.log.append(f"received{self.side}:{len(data)}")
        self.program.spawn(f"d{self.side}")

    def eof_received(self):
        self.program.log.append(f"eof{self.side}")

    def connection_lost(self, exc):
        self.program.log.append(f"lost{self.side}:{exc!r}")


# Runs of a seed that may disagree before it counts as a difference. Now and then the
# kernel does not finish its part within the call, and a program logs another sequence, on
# the stdlib loop as on ferroloop (seed 168 does, seldom); a real difference shows in
# every run.
ATTEMPTS = 4


@pytest.mark.parametrize("first_seed", range(0, 300, 50))
def test_seeded_programs_log_the_same_events_in_the_same_order(first_seed):
    events = 0
    for seed in range(first_seed, first_seed + 50):
        for _ in range(ATTEMPTS):
            expected = Program(asyncio.SelectorEventLoop(), seed).run()
            got = Program(ferroloop.new_event_loop(), seed).run()
            if got == expected:
                break
        assert got == expected, f"seed {seed}"
        events += len(expected)
    assert events > 50 * 30  # the programs did something
