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
