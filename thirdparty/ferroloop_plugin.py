"""A pytest plugin that runs a third-party suite on the loop FERROLOOP_THIRDPARTY_LOOP names
("asyncio" or "ferroloop"), and records which loops each test made.

With "ferroloop", every loop made through asyncio's public ways of making one
(``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner()``, and so the
suites' own fixtures) is a ferroloop loop: the event loop policy is ferroloop's. The
package of each loop's class, per test, goes to the JSON file FERROLOOP_THIRDPARTY_PROOF
names, for run.py to check.
"""

import asyncio
import json
import os
import warnings

import pytest

LOOP = os.environ.get("FERROLOOP_THIRDPARTY_LOOP", "asyncio")
_made = []
_per_test = {}


def _record_loops():
    original = asyncio.BaseEventLoop.__init__

    def init(self, *args, **kwargs):
        _made.append(type(self).__module__.split(".")[0])
        original(self, *args, **kwargs)

    asyncio.BaseEventLoop.__init__ = init


def pytest_configure(config):
    _record_loops()
    if LOOP == "ferroloop":
        import ferroloop

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.14's policy API
            asyncio.set_event_loop_policy(ferroloop.EventLoopPolicy())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    del _made[:]
    try:
        return (yield)
    finally:
        module, _, rest = item.nodeid.partition("::")
        test = module[:-3].replace("/", ".") + "::" + rest
        _per_test[test] = list(_made)


def pytest_unconfigure(config):
    path = os.environ.get("FERROLOOP_THIRDPARTY_PROOF")
    if path:
        with open(path, "w") as f:
            json.dump(_per_test, f)
