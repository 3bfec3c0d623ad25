"""add_signal_handler / remove_signal_handler."""

import asyncio
import os
import signal


def test_signal_handler_runs_in_loop(loop):
    got = []

    def handler(arg):
        got.append(arg)
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler, "usr1")
    loop.call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert got == ["usr1"]
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_wakes_a_loop_blocked_in_poll(loop):
    got = []
    loop.add_signal_handler(signal.SIGUSR2, lambda: (got.append(loop.time()), loop.stop()))

    import threading
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR2)).start()
    start = loop.time()
    loop.call_later(10, loop.stop)
    loop.run_forever()
    assert got and got[0] - start < 2
    loop.remove_signal_handler(signal.SIGUSR2)


def test_close_removes_signal_handlers(loop_factory):
    lp = loop_factory()
    lp.add_signal_handler(signal.SIGUSR1, print)
    lp.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_signal_sent_to_self_is_handled_three_passes_later(loop):
    # asyncio polls its self-pipe on every pass: the pass after os.kill reads the signal's
    # byte and queues the handler, the next one runs it. So three sleep(0)s always see it,
    # busy loop or not, and a program may count on that.
    got = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, 1)

    async def spin():
        while True:
            await asyncio.sleep(0)

    async def main():
        spinner = asyncio.ensure_future(spin())  # the ready queue is never empty
        for i in range(60):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(3):
                await asyncio.sleep(0)
            assert len(got) == i + 1, f"signal {i} not handled after three passes"
            for _ in range(i % 7):  # a different phase each time
                await asyncio.sleep(0)
        spinner.cancel()

    loop.run_until_complete(main())
    loop.remove_signal_handler(signal.SIGUSR1)


def test_a_busy_loop_polls_its_self_pipe_only_while_a_signal_handler_is_set():
    import ferroloop

    loop = ferroloop.new_event_loop()
    try:
        def polls_in_a_chain(passes=200):
            left = [passes]

            def step():
                left[0] -= 1
                if left[0]:
                    loop.call_soon(step)
                else:
                    loop.stop()

            before = loop.stats()["nonblocking_polls"]
            loop.call_soon(step)
            loop.run_forever()
            return loop.stats()["nonblocking_polls"] - before

        assert polls_in_a_chain() < 20
        loop.add_signal_handler(signal.SIGUSR1, print)
        assert polls_in_a_chain() >= 199
        loop.remove_signal_handler(signal.SIGUSR1)
        assert polls_in_a_chain() < 20
    finally:
        loop.close()
