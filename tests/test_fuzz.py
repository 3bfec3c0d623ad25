"""Fuzzed arguments: every public loop, transport and server method, called with generated
arguments (wrong types, negative and huge numbers, closed objects, None, str for bytes),
on the stdlib loop and on ferroloop. The outcome must be the same: the same exception
type, or success on both, and the same number of calls to the exception handler in the
pass that follows. A Rust panic would surface as a RuntimeError on ferroloop alone, so it
is a difference too.

FERROLOOP_FUZZ_EXAMPLES sets the number of examples per target (CI runs the default).
"""

import asyncio
import math
import os
import signal
import socket
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import LOOP_FACTORIES

pytestmark = [
    # call_soon(asyncio.sleep) makes a coroutine that nothing awaits, on both loops.
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
    # connect_read_pipe() given a bad pipe leaves CPython's half-made pipe transport, whose
    # __del__ then fails (on both loops: the pipe transports are CPython's).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

EXAMPLES = int(os.environ.get("FERROLOOP_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

# An argument is generated as a recipe and made once per loop, so that each loop gets
# objects of its own (a socket, a coroutine) in the same state.
# Small ints are fds as well as signals: 0-2 are open and 1000 closed for both loops (the
# numbers in between differ, since the two loops keep different fds of their own).
SCALARS = st.sampled_from([
    None, True, 0, 1, -1, 2, 1000, 2**31, -2**31 - 1, 2**63, 2**64, 10**100, 0.0, -0.5, 1e-9,
    1e300, math.inf, -math.inf, math.nan, "", "x", "127.0.0.1", b"", b"data", bytearray(b"ab"),
    [], [b"a", b"b"], ["a"], (), ("127.0.0.1", 0), {}, {"message": "m"}, object(),
])
MADE = st.sampled_from([
    "callable", "raising_callable", "coroutine", "coroutine_function", "open_socket",
    "closed_socket", "detached_socket", "udp_socket", "memoryview", "executor", "protocol",
    "closed_file",
])
ARGUMENT = st.one_of(SCALARS.map(lambda v: ("value", v)), MADE.map(lambda k: ("made", k)))
ARGUMENTS = st.lists(ARGUMENT, max_size=3)


class Made:
    """The objects one example made on one loop, closed after it."""

    def __init__(self, loop):
        self.loop = loop
        self.closing = []
        self.coroutines = []

    def make(self, recipe):
        kind, value = recipe
        if kind == "value":
            return value
        if value == "callable":
            return lambda *args: None
        if value == "raising_callable":
            def raising(*args):
                raise ZeroDivisionError
            return raising
        if value == "coroutine":
            coro = asyncio.sleep(0)
            self.coroutines.append(coro)
            return coro
        if value == "coroutine_function":
            return asyncio.sleep
        if value == "memoryview":
            return memoryview(b"view")
        if value == "protocol":
            return asyncio.Protocol()
        if value == "executor":
            import concurrent.futures
            executor = concurrent.futures.ThreadPoolExecutor(1)
            self.closing.append(lambda: executor.shutdown(wait=True))
            return executor
        if value == "closed_file":
            r, w = os.pipe()
            os.close(w)
            file = open(r, "rb")
            file.close()
            return file
        if value == "udp_socket":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self.closing.append(sock.close)
            return sock
        a, b = socket.socketpair()
        a.setblocking(False)
        self.closing += [a.close, b.close]
        if value == "closed_socket":
            a.close()
        elif value == "detached_socket":
            fd = a.detach()
            self.closing.append(lambda: os.close(fd))
        return a

    def close(self):
        for coro in self.coroutines:
            coro.close()
        for close in self.closing:
            try:
                close()
            except OSError:
                pass  # a transport took the socket and closed it


LOOP_METHODS = [
    "call_soon", "call_later", "call_at", "call_soon_threadsafe", "time", "create_future",
    "create_task", "run_until_complete", "stop", "is_running", "is_closed", "get_debug",
    "set_debug", "set_exception_handler", "get_exception_handler", "call_exception_handler",
    "default_exception_handler", "set_task_factory", "get_task_factory", "run_in_executor",
    "set_default_executor", "add_reader", "add_writer", "remove_reader", "remove_writer",
    "add_signal_handler", "remove_signal_handler", "sock_recv", "sock_recv_into",
    "sock_recvfrom", "sock_recvfrom_into", "sock_sendall", "sock_sendto", "sock_connect",
    "sock_accept", "sock_sendfile", "create_connection", "create_server",
    "create_unix_connection", "create_unix_server", "create_datagram_endpoint",
    "connect_accepted_socket", "connect_read_pipe", "connect_write_pipe", "getaddrinfo",
    "getnameinfo", "shutdown_asyncgens", "shutdown_default_executor", "sendfile",
    "start_tls", "subprocess_exec", "subprocess_shell",
]
TRANSPORT_METHODS = [
    "write", "writelines", "write_eof", "can_write_eof", "abort", "close", "is_closing",
    "pause_reading", "resume_reading", "is_reading", "set_write_buffer_limits",
    "get_write_buffer_size", "get_write_buffer_limits", "get_extra_info", "set_protocol",
    "get_protocol",
]
SERVER_METHODS = [
    method for method in ("close", "get_loop", "is_serving", "start_serving", "wait_closed",
                          "sockets", "close_clients", "abort_clients")
    if hasattr(asyncio.Server, method)  # the last two are 3.13's
]
# Arguments that could reach the network or start processes are kept local and harmless.
REFUSED = {
    ("getaddrinfo", str), ("getnameinfo", str), ("subprocess_shell", str),
    ("subprocess_exec", str), ("subprocess_exec", bytes),
}

# The signals an example may touch, restored after it (asyncio resets a removed one to
# SIG_DFL, which would change the runner's own disposition).
SIGNALS = (signal.SIGHUP, signal.SIGINT)


def known_difference(method, args):
    """What ferroloop answers where it differs from asyncio on purpose (README, "Where
    ferroloop differs"): call_soon and friends refuse a non-callable, and call_at a
    non-number, at the call, where asyncio fails later inside the loop."""
    schedules = {"call_soon": 0, "call_soon_threadsafe": 0, "call_later": 1, "call_at": 1}
    if method not in schedules or len(args) <= schedules[method]:
        return None
    if method == "call_at" and not isinstance(args[0], (int, float)):
        return "TypeError"
    if not callable(args[schedules[method]]):
        return "TypeError"
    return None


def call(loop, target, method, args):
    """Calls `method` on the target, then runs the loop for a pass; the outcome."""
    handler_calls = []
    loop.set_exception_handler(lambda _loop, context: handler_calls.append(context))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = getattr(target, method)
            if callable(result):
                result = result(*args)
            if asyncio.isfuture(result) or asyncio.iscoroutine(result):
                result = loop.run_until_complete(asyncio.wait_for(result, 0.05))
            outcome = "ok"
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the outcome
            result, outcome = None, type(exc).__name__
        close_results(loop, result)
        after = "closed"
        if not loop.is_closed():
            loop.set_exception_handler(lambda _loop, context: handler_calls.append(context))
            try:
                loop.run_until_complete(asyncio.sleep(0))
                after = "ok"
            except Exception as exc:  # noqa: BLE001 - what the next pass raised is compared
                after = type(exc).__name__
    return outcome, after, len(handler_calls)


def close_results(loop, result):
    for value in result if isinstance(result, tuple) else (result,):
        if isinstance(value, (asyncio.BaseTransport, asyncio.AbstractServer)):
            value.close()
        elif isinstance(value, socket.socket):
            value.close()
        elif isinstance(value, asyncio.Task):
            value.cancel()


def run_example(loop_name, target_name, method, recipes):
    loop = LOOP_FACTORIES[loop_name]()
    made = Made(loop)
    dispositions = {sig: signal.getsignal(sig) for sig in SIGNALS}
    try:
        target = make_target(loop, made, target_name)
        args = [made.make(r) for r in recipes]
        expected = known_difference(method, args) if loop_name == "ferroloop" else None
        outcome = call(loop, target, method, args)
        return expected, outcome
    finally:
        made.close()
        if not loop.is_closed():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    loop.run_until_complete(loop.shutdown_default_executor())
                except Exception:  # noqa: BLE001 - a loop the example broke (compared above)
                    pass
            loop.close()
        for sig, disposition in dispositions.items():
            signal.signal(sig, disposition)


def make_target(loop, made, target_name):
    if target_name == "loop":
        return loop
    if target_name == "transport":
        a, b = socket.socketpair()
        made.closing += [b.close]
        transport, _ = loop.run_until_complete(
            loop.create_connection(asyncio.Protocol, sock=a))
        made.closing.append(transport.abort)
        return transport
    server = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
    made.closing.append(server.close)
    return server


def check(target_name, method, recipes):
    for kind, value in recipes:
        if kind == "value" and (method, type(value)) in REFUSED:
            return
    _, stdlib = run_example("asyncio", target_name, method, recipes)
    expected, ours = run_example("ferroloop", target_name, method, recipes)
    if expected is not None:
        assert ours[0] == expected, (method, recipes, ours)
    else:
        assert ours == stdlib, (method, recipes, "ferroloop", ours, "asyncio", stdlib)


@FUZZ
@given(method=st.sampled_from(LOOP_METHODS), recipes=ARGUMENTS)
def test_loop_methods(method, recipes):
    check("loop", method, recipes)


@FUZZ
@given(method=st.sampled_from(TRANSPORT_METHODS), recipes=ARGUMENTS)
def test_transport_methods(method, recipes):
    check("transport", method, recipes)


@FUZZ
@given(method=st.sampled_from(SERVER_METHODS), recipes=ARGUMENTS)
def test_server_methods(method, recipes):
    check("server", method, recipes)
