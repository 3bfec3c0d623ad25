"""A loop dropped without close(): collected with asyncio's ResourceWarning, even when
pending callbacks form a cycle back to it, and its fds are released."""

import asyncio
import contextvars
import gc
import socket
import weakref

import pytest

import ferroloop
from conftest import open_fds


def collect(ref):
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        for _ in range(3):
            gc.collect()
    assert ref() is None, "the loop was not collected"


def test_unclosed_loop_is_collected(loop_factory):
    gc.collect()
    before = open_fds()
    collect(weakref.ref(loop_factory()))
    assert open_fds() == before


def test_unclosed_loop_that_ran_callbacks_is_collected(loop_factory):
    # ferroloop keeps the objects of handles that have run, to refill them: they refer
    # to the loop, which must still be found to be garbage.
    def make():
        loop = loop_factory()
        for _ in range(100):
            loop.call_soon(int)
        loop.call_soon(loop.stop)
        loop.run_forever()
        return weakref.ref(loop)

    collect(make())


def test_unclosed_loop_in_a_cycle_with_its_handles_is_collected(loop_factory):
    gc.collect()
    before = open_fds()
    a, b = socket.socketpair()

    def make():
        loop = loop_factory()
        loop.call_soon(loop.stop)
        loop.call_soon_threadsafe(loop.stop)
        loop.call_later(10, loop.stop)
        loop.add_reader(a, loop.stop)
        return weakref.ref(loop)

    collect(make())
    a.close()
    b.close()
    assert open_fds() == before


def test_unclosed_loop_in_a_cycle_through_queued_arguments_and_contexts_is_collected(
        loop_factory):
    # A queued handle's arguments and its own context are visited when the collector
    # traverses the loop (the handles with none are skipped): a cycle through either is
    # found.
    held = contextvars.ContextVar("held")

    def make():
        loop = loop_factory()
        loop.call_soon(print, [loop])
        context = contextvars.copy_context()
        context.run(held.set, loop)
        loop.call_soon(print, context=context)
        loop.call_later(10, print, {"loop": loop})
        return weakref.ref(loop)

    collect(make())


def test_handle_cycles_are_collected(loop):
    class Owner:
        def on_timer(self):
            pass

    owner = Owner()
    owner.handle = loop.call_later(0, owner.on_timer)
    loop.run_until_complete(asyncio.sleep(0.01))
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None, "owner -> handle -> bound method -> owner was not collected"


def test_unclosed_loop_with_a_sleeping_task_is_collected(loop_factory):
    # The sleeping task's frame holds its timer handle while the loop's heap does too: a
    # queued handle with two owners, which ferroloop hides from the collector until a full
    # collection shows it again.
    gc.collect()
    before = open_fds()

    def make():
        loop = loop_factory()

        async def sleeper():
            await asyncio.sleep(100)

        loop.create_task(sleeper())
        loop.run_until_complete(asyncio.sleep(0.01))
        return weakref.ref(loop)

    collect(make())
    assert open_fds() == before


def test_handle_kept_past_its_run_is_collected_in_a_cycle(loop):
    class Owner:
        def on_soon(self):
            pass

    owner = Owner()
    owner.handle = loop.call_soon(owner.on_soon)
    loop.run_until_complete(asyncio.sleep(0))
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None, "owner -> handle -> bound method -> owner was not collected"


def test_cancelled_timer_kept_by_its_owner_is_collected_in_a_cycle(loop):
    class Owner:
        def on_timer(self):
            pass

    owner = Owner()
    owner.handle = loop.call_later(10, owner.on_timer)
    owner.args_cycle = loop.call_later(10, print, owner)
    owner.args_cycle.cancel()
    owner.handle.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None


SCHEDULERS = {
    "call_soon": lambda loop: loop.call_soon(int),
    # A subclass of Handle on 3.14, as asyncio's _ThreadSafeHandle is.
    "call_soon_threadsafe": lambda loop: loop.call_soon_threadsafe(int),
    "call_later": lambda loop: loop.call_later(0, int),
}


@pytest.mark.parametrize("schedule", SCHEDULERS.values(), ids=SCHEDULERS)
def test_queued_callbacks_add_nothing_for_the_collector_to_scan(schedule):
    # On the stdlib loop each call_soon adds two tracked objects (the Handle and its context
    # copy) that every collection rescans; ferroloop's queue hides both.
    loop = ferroloop.new_event_loop()
    try:
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(50_000):
            schedule(loop)
        added = len(gc.get_objects()) - before
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    assert added < 100, f"{added} more tracked objects after queuing 50k callbacks"


def test_handle_and_context_are_tracked_again_once_shared():
    loop = ferroloop.new_event_loop()
    try:
        handle = loop.call_soon(int)
        assert not gc.is_tracked(handle)
        context = handle.get_context()
        assert gc.is_tracked(context)
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert gc.is_tracked(handle), "a handle the caller kept must be tracked once run"
    finally:
        loop.close()


def test_what_a_running_loop_has_queued_survives_a_collection(loop):
    # Callbacks and timers queued during a run, their arguments in cycles nothing else
    # reaches, outlive a full collection made before they run, and go once they have run.
    # (ferroloop does not show the collector a running loop's queues: the stack that runs
    # the loop keeps the loop, and so all it holds, alive.)
    class Cycle:
        def __init__(self):
            self.me = self

    ran, refs = [], []

    def queue_then_collect():
        for _ in range(3):
            for schedule in (loop.call_soon, lambda *a: loop.call_later(0, *a),
                             loop.call_soon_threadsafe):
                cycle = Cycle()
                refs.append(weakref.ref(cycle))
                schedule(ran.append, cycle)
        del cycle
        gc.collect()
        assert all(ref() is not None for ref in refs), "a queued callback's argument was freed"

    loop.call_soon(queue_then_collect)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert len(ran) == 9
    ran.clear()
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_a_running_loop_shows_the_collector_none_of_its_queues():
    loop = ferroloop.new_event_loop()
    marker = ["queued"]
    try:
        loop.call_soon(len, marker)
        assert any(r is marker for r in gc.get_referents(loop)), "idle: the queue is visited"
        loop.call_soon(loop.stop)
        loop.run_forever()
        seen = []

        def queue_and_look():
            loop.call_soon(len, marker)
            loop.call_later(10, len, marker)
            seen.append(any(r is marker for r in gc.get_referents(loop)))
            loop.stop()

        loop.call_soon(queue_and_look)
        loop.run_forever()
        assert seen == [False], "running: the queues were visited"
        assert any(r is marker for r in gc.get_referents(loop)), "idle again: not visited"
    finally:
        loop.close()
