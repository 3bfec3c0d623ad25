"""ferroloop: a drop-in replacement for asyncio's event loop, written in Rust.

    import asyncio, ferroloop
    asyncio.run(main(), loop_factory=ferroloop.new_event_loop)
    asyncio.Runner(loop_factory=ferroloop.new_event_loop)
    ferroloop.run(main())                       # the same, shorter

While CPython still has event loop policies (deprecated in 3.14, gone in 3.16),
``ferroloop.install()`` makes asyncio create ferroloop loops everywhere, and
``ferroloop.EventLoopPolicy`` is the policy it sets.
"""

import asyncio as _asyncio
import functools as _functools

from . import _compat, _policy
from ._ferroloop import Handle, TimerHandle, __version__, build_profile
from ._loop import Loop
from ._tasks import format_tasks

__all__ = ("Loop", "Handle", "TimerHandle", "new_event_loop", "run", "format_tasks",
           "__version__", "build_profile")


def new_event_loop():
    """A new ferroloop event loop."""
    return Loop()


def run(main, *, debug=None, watchdog=None, monitor=None):
    """Runs the coroutine ``main`` on a new ferroloop loop, as ``asyncio.run`` does.

    ``watchdog`` (seconds) and ``monitor`` (a socket path) are ``Loop``'s: see
    "Finding what blocks your loop" in the README."""
    factory = new_event_loop
    if watchdog is not None or monitor is not None:
        factory = _functools.partial(Loop, watchdog=watchdog, monitor=monitor)
    with _asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        return runner.run(main)


def __getattr__(name):
    # The policy API exists only where asyncio's does, and is made when first used.
    if _compat.HAS_POLICIES:
        if name == "EventLoopPolicy":
            _policy.warn_deprecated(name)
            return _policy.policy_class()
        if name == "install":
            return _policy.install
    raise AttributeError(f"module 'ferroloop' has no attribute {name!r}")
