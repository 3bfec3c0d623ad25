"""A loop dropped without close(): collected with asyncio's ResourceWarning, even when
pending callbacks form a cycle back to it, and its fds are released."""

import asyncio
import gc
import socket
import weakref

import pytest

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


def test_unclosed_loop_in_a_cycle_with_its_handles_is_collected(loop_factory):
    gc.collect()
    before = open_fds()
    a, b = socket.socketpair()

    def make():
        loop = loop_factory()
        loop.call_soon(loop.stop)
        loop.call_later(10, loop.stop)
        loop.add_reader(a, loop.stop)
        return weakref.ref(loop)

    collect(make())
    a.close()
    b.close()
    assert open_fds() == before


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
