"""call_soon_threadsafe's handles, on both loops. Since 3.14 asyncio promises that a
handle cancelled from another thread while its callback runs waits for the callback to
finish (the handle holds a lock while it runs), and that the callback may cancel its own
handle without effect."""

import asyncio
import gc
import sys
import threading
import time
import weakref

import pytest

from ferroloop import _compat

THREAD_TIMEOUT = 10
needs_314 = pytest.mark.skipif(sys.version_info < (3, 14),
                               reason="thread-safe handles are 3.14's promise")


def run_with_thread(loop, target):
    """Runs the loop until `target`, on its own thread, has called loop.stop."""
    errors = []

    def body():
        try:
            target()
        except BaseException as exc:  # reported on the test's thread
            errors.append(exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=body)
    thread.start()
    loop.run_forever()
    thread.join(THREAD_TIMEOUT)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


def slow_callback():
    """A callback that runs for 0.3 s, and the events it sets as it starts and ends."""
    started, finished = threading.Event(), threading.Event()

    def callback():
        started.set()
        time.sleep(0.3)
        finished.set()

    return callback, started, finished


def test_the_handle_is_an_asyncio_handle(loop):
    handle = loop.call_soon_threadsafe(print)
    handle.cancel()
    assert isinstance(handle, asyncio.Handle)
    if _compat.ThreadSafeHandle is not None:
        assert isinstance(handle, _compat.ThreadSafeHandle)
    assert isinstance(loop.call_soon(print), asyncio.Handle)
    assert isinstance(loop.call_later(1, print), asyncio.TimerHandle)
    loop.call_later(1, print).cancel()
    loop.run_until_complete(asyncio.sleep(0))


@needs_314
@pytest.mark.parametrize("ask", ["cancel", "cancelled"])
def test_another_thread_waits_for_the_running_callback(loop, ask):
    callback, started, finished = slow_callback()

    def other_thread():
        handle = loop.call_soon_threadsafe(callback)
        assert started.wait(THREAD_TIMEOUT)
        if ask == "cancel":
            handle.cancel()
        else:
            assert handle.cancelled() is False
        # The callback had started, so the call returned only once it had finished.
        assert finished.is_set()

    run_with_thread(loop, other_thread)


@needs_314
@pytest.mark.parametrize("reach", ["weak reference", "collector"])
def test_a_thread_that_let_go_of_the_handle_and_finds_it_again_waits_too(loop, reach):
    """ferroloop runs the callback of a handle only the loop can reach without its lock:
    not one another thread can still get back, by a weak reference or from the collector
    once Python code has seen the ready queue."""
    callback, started, finished = slow_callback()
    queued = threading.Event()

    def other_thread():
        handle = loop.call_soon_threadsafe(callback)
        if reach == "weak reference":
            find = weakref.ref(handle)
        else:
            assert any(h is handle for h in loop._ready)
            key = id(handle)

            def find():
                return next(o for o in gc.get_objects() if id(o) == key)
        del handle
        queued.set()
        assert started.wait(THREAD_TIMEOUT)
        find().cancel()
        assert finished.is_set()

    # The loop is busy until the other thread has let go of the handle.
    loop.call_soon(queued.wait, THREAD_TIMEOUT)
    run_with_thread(loop, other_thread)


def test_a_callback_cancelling_its_own_handle_runs_to_the_end(loop):
    results = []
    handles = []
    ready = threading.Event()

    def callback():
        ready.wait(THREAD_TIMEOUT)
        handles[0].cancel()
        results.append("ran to the end")

    def other_thread():
        handles.append(loop.call_soon_threadsafe(callback))
        ready.set()

    run_with_thread(loop, other_thread)
    assert results == ["ran to the end"]
    assert handles[0].cancelled()


def test_cancelled_before_it_runs_it_never_runs(loop):
    results = []
    gate = threading.Event()

    def other_thread():
        handle = loop.call_soon_threadsafe(results.append, "ran")
        handle.cancel()
        assert handle.cancelled()
        gate.set()

    # The loop is busy until the other thread has queued and cancelled the callback.
    loop.call_soon(gate.wait, THREAD_TIMEOUT)
    run_with_thread(loop, other_thread)
    assert results == []


FLOOD = 100_000


def flood(loop, loop_waits=False):
    """A thread queues FLOOD callbacks with call_soon_threadsafe; returns, in the order the
    callbacks ran, each one's number and how many the thread had queued by then. With
    `loop_waits`, the loop's first callback waits, the GIL let go, until the thread is
    done."""
    queued = 0
    ran = []
    done = threading.Event()

    def callback(i):
        ran.append((i, queued))

    def producer():
        nonlocal queued
        for i in range(FLOOD):
            queued += 1
            loop.call_soon_threadsafe(callback, i)
        done.set()

    thread = threading.Thread(target=producer)
    loop.call_soon(thread.start)
    if loop_waits:
        loop.call_soon(done.wait, THREAD_TIMEOUT)

    async def until_all_ran():
        while len(ran) < FLOOD:
            await asyncio.sleep(0.001)

    loop.run_until_complete(asyncio.wait_for(until_all_ran(), THREAD_TIMEOUT))
    thread.join(THREAD_TIMEOUT)
    assert done.is_set()
    return ran


def test_a_thread_that_floods_the_loop_keeps_only_a_few_thousand_queued(loop):
    # The stdlib loop lets the GIL go in every call_soon_threadsafe (its self-pipe write),
    # and its thread keeps up: a few thousand queued at most. ferroloop's call keeps the
    # GIL, and stops every few thousand for the loop to run; before it did, the thread
    # ran a whole switch interval ahead (tens of thousands).
    ran = flood(loop)
    assert [i for i, _ in ran] == list(range(FLOOD))
    backlog = max(queued - i for i, queued in ran)
    assert backlog < 20_000


def test_a_thread_that_floods_a_loop_waiting_for_it_finishes(loop):
    # The loop cannot move on until the thread is done: the thread's first stop for it
    # runs out, and the thread must go on to the end.
    ran = flood(loop, loop_waits=True)
    assert [i for i, _ in ran] == list(range(FLOOD))
    assert all(queued == FLOOD for _, queued in ran)
