"""ferroloop: a drop-in replacement for asyncio's event loop, written in Rust.

    import ferroloop
    ferroloop.run(main())                       # like asyncio.run, on ferroloop
    asyncio.Runner(loop_factory=ferroloop.new_event_loop)
    ferroloop.install()                         # asyncio.run() etc. now use ferroloop
"""

import asyncio as _asyncio
import sys as _sys

from ._ferroloop import Handle, TimerHandle, __version__, build_profile
from ._loop import Loop
from ._policy import EventLoopPolicy

__all__ = ("Loop", "EventLoopPolicy", "Handle", "TimerHandle", "new_event_loop", "run",
           "install", "__version__")


def new_event_loop():
    """A new ferroloop event loop."""
    return Loop()


def install():
    """Makes asyncio create ferroloop loops (sets ferroloop's event loop policy)."""
    _asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main, *, debug=None):
    """Runs the coroutine ``main`` on a new ferroloop loop, as ``asyncio.run`` does."""
    if _sys.version_info >= (3, 11):
        with _asyncio.Runner(loop_factory=new_event_loop, debug=debug) as runner:
            return runner.run(main)
    old_policy = _asyncio.get_event_loop_policy()
    _asyncio.set_event_loop_policy(EventLoopPolicy())
    try:
        return _asyncio.run(main, debug=debug)
    finally:
        _asyncio.set_event_loop_policy(old_policy)
