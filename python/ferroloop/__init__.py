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

from . import _compat, _policy
from ._ferroloop import Handle, TimerHandle, __version__, build_profile
from ._loop import Loop

__all__ = ("Loop", "Handle", "TimerHandle", "new_event_loop", "run", "__version__",
           "build_profile")


def new_event_loop():
    """A new ferroloop event loop."""
    return Loop()


def run(main, *, debug=None):
    """Runs the coroutine ``main`` on a new ferroloop loop, as ``asyncio.run`` does."""
    with _asyncio.Runner(loop_factory=new_event_loop, debug=debug) as runner:
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
