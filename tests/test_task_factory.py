"""create_task's keywords and task factories, on both loops: 3.14 passes a task factory
exactly the keywords create_task was given, and Task takes `eager_start`."""

import asyncio
import contextvars
import gc
import sys
import weakref

import pytest

from test_transports import run

needs_314 = pytest.mark.skipif(sys.version_info < (3, 14), reason="3.14's create_task(**kwargs)")


def recording_factory(calls):
    def factory(loop, coro, **kwargs):
        calls.append(sorted(kwargs))
        return asyncio.Task(coro, loop=loop, **kwargs)
    return factory


def test_a_task_factory_gets_exactly_the_keywords_given(loop):
    calls = []

    async def child():
        return 1

    async def main():
        loop.set_task_factory(recording_factory(calls))
        try:
            assert await loop.create_task(child()) == 1
            assert await loop.create_task(child(), name="n") == 1
            assert await loop.create_task(child(), name=None) == 1
            assert await asyncio.ensure_future(child()) == 1
        finally:
            loop.set_task_factory(None)

    run(loop, main())
    if sys.version_info >= (3, 14):
        # Nothing is added: neither name=None nor context=None when not given.
        assert calls == [[], ["name"], ["name"], []]
    else:
        # Up to 3.13 a factory takes (loop, coro) (plus context= when one is given) and
        # the name is set afterwards.
        assert calls == [[], [], [], []]


@needs_314
def test_extra_keywords_reach_the_task_factory(loop):
    calls = []
    ctx = contextvars.copy_context()

    async def child():
        return asyncio.current_task().get_name()

    async def main():
        loop.set_task_factory(recording_factory(calls))
        try:
            task = loop.create_task(child(), name="eager", eager_start=True, context=ctx)
            # Eager: it ran to completion inside create_task.
            assert task.done() and task.result() == "eager"
        finally:
            loop.set_task_factory(None)

    run(loop, main())
    assert calls == [["context", "eager_start", "name"]]


@needs_314
@pytest.mark.parametrize("eager", [True, False])
def test_eager_start(loop, eager):
    steps = []

    async def child():
        steps.append("child started")
        await asyncio.sleep(0)
        steps.append("child resumed")
        return "done"

    async def main():
        task = loop.create_task(child(), eager_start=eager)
        steps.append("create_task returned")
        assert await task == "done"

    run(loop, main())
    if eager:
        assert steps == ["child started", "create_task returned", "child resumed"]
    else:
        assert steps == ["create_task returned", "child started", "child resumed"]


@needs_314
def test_eager_start_false_overrides_the_eager_task_factory(loop):
    steps = []

    async def child(tag):
        steps.append(tag)

    async def main():
        loop.set_task_factory(asyncio.eager_task_factory)
        try:
            lazy = loop.create_task(child("lazy"), eager_start=False)
            eager = loop.create_task(child("eager"))
            steps.append("returned")
            await asyncio.gather(lazy, eager)
        finally:
            loop.set_task_factory(None)

    run(loop, main())
    assert steps == ["eager", "returned", "lazy"]


@needs_314
def test_unknown_keywords_fail_as_on_asyncio(loop):
    async def child():
        pass

    async def main():
        coro = child()
        with pytest.raises(TypeError) as raised:
            loop.create_task(coro, loop=loop)
        coro.close()
        return str(raised.value)

    message = run(loop, main())
    assert "multiple values for keyword argument 'loop'" in message


def test_the_task_factory_attribute_is_what_create_task_uses(loop):
    """asyncio's create_task reads `_task_factory` on each call: set through
    set_task_factory or assigned directly, then cleared, each is honoured, and
    get_task_factory answers with it."""
    made = []

    def factory(loop_, coro, **kwargs):
        made.append(coro)
        return asyncio.Task(coro, loop=loop_, **kwargs)

    async def child():
        return 1

    async def main():
        assert loop.get_task_factory() is None and loop._task_factory is None
        loop.set_task_factory(factory)
        assert loop._task_factory is factory and loop.get_task_factory() is factory
        assert await loop.create_task(child()) == 1
        loop._task_factory = None
        assert await loop.create_task(child()) == 1
        loop._task_factory = factory
        assert await loop.create_task(child()) == 1
        loop.set_task_factory(None)
        assert await loop.create_task(child()) == 1

    run(loop, main())
    assert len(made) == 2


def test_a_task_factory_holding_its_loop_is_collected_with_it(loop_factory):
    """The loop keeps the factory natively, so it must show the collector the reference:
    a closed loop whose factory refers back to it is garbage, as on asyncio."""
    class HoldsItsLoop:
        def __init__(self, loop_):
            self.loop = loop_

        def __call__(self, loop_, coro, **kwargs):
            return asyncio.Task(coro, loop=loop_, **kwargs)

    probe = loop_factory()
    probe.set_task_factory(HoldsItsLoop(probe))
    probe.close()
    gone = weakref.ref(probe)
    del probe
    gc.collect()
    assert gone() is None
