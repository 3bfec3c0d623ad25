"""The event loop policy that makes asyncio create ferroloop loops."""

import asyncio

from ._loop import Loop


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio's default Unix policy (child watchers included), creating ferroloop loops."""

    def _loop_factory(self):
        return Loop()
