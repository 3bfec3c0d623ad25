"""ferroloop's event loop policy, made on first use.

asyncio's policy system is deprecated in 3.14 and removed in 3.16, so `import ferroloop`
never touches it: `ferroloop.EventLoopPolicy` and `ferroloop.install()` are built when
first asked for, warn on 3.14+ as asyncio's own policy functions do, and do not exist on a
CPython without policies. `loop_factory=ferroloop.new_event_loop` needs none of this.
"""

import functools
import warnings

from . import _compat


def warn_deprecated(name):
    """The DeprecationWarning asyncio's policy API gives on 3.14+, for ferroloop's, aimed
    at the caller of the deprecated name."""
    if _compat.VERSION >= (3, 14):
        warnings.warn(f"'ferroloop.{name}' is deprecated and slated for removal in Python 3.16",
                      DeprecationWarning, stacklevel=3)


@functools.cache
def policy_class():
    """asyncio's default Unix policy (its event loop per thread), creating ferroloop loops."""
    from ._loop import Loop

    class EventLoopPolicy(_compat.default_policy_class()):
        """asyncio's default policy, creating ferroloop loops."""

        def new_event_loop(self):
            return Loop()

    EventLoopPolicy.__module__ = "ferroloop"
    return EventLoopPolicy


def install():
    """Makes asyncio create ferroloop loops (sets ferroloop's event loop policy)."""
    warn_deprecated("install")
    _compat.set_policy_quietly(policy_class()())
