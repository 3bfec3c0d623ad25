"""Every behaviour test runs on the stdlib loop and on ferroloop: the stdlib run proves the
test encodes asyncio's behaviour, the ferroloop run that we match it.

The `loop` fixture's teardown fails a test that left an unexpected call to the exception
handler (tests that expect one take it from `loop.handler_calls`) or leaked an fd.
"""

import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
import warnings

import pytest

import ferroloop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

LOOP_FACTORIES = {
    "asyncio": asyncio.SelectorEventLoop,
    "ferroloop": ferroloop.new_event_loop,
}


def open_fds():
    return set(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def resource_warnings_collected():
    """Runs the block, then collects garbage, ignoring ResourceWarnings: for tests of
    connections asyncio leaves to the garbage collector."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield
        gc.collect()


def check_fd_reuse_is_safe():
    """Had an fd been closed twice, the second close (in a finalizer the collection runs)
    could hit the socket that now has its number."""
    probe = socket.socket()
    try:
        gc.collect()
        probe.getsockname()
    finally:
        probe.close()


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_name(request):
    return request.param


@pytest.fixture
def loop_factory(loop_name):
    return LOOP_FACTORIES[loop_name]


@pytest.fixture
def loop(loop_factory):
    gc.collect()
    fds_before = open_fds()
    loop = loop_factory()
    loop.handler_calls = []
    loop.set_exception_handler(lambda _loop, context: loop.handler_calls.append(context))
    yield loop
    if not loop.is_closed():
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    asyncio.set_event_loop(None)
    calls, loop.handler_calls = loop.handler_calls, []
    assert not calls, f"unexpected exception handler calls: {calls}"
    del loop
    gc.collect()
    leaked = open_fds() - fds_before
    assert not leaked, f"leaked fds: {leaked}"


def run_python(*args, timeout=60, **kwargs):
    """Runs `python *args`, returning the CompletedProcess (text mode)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
