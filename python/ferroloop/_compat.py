"""Every private asyncio name and signature ferroloop relies on, in one place.

Each CPython release may rename, re-sign or drop any of these, so ferroloop reaches them
only through this module (the native layer too: it looks its names up here, never in
asyncio). Where a name or signature differs between the supported versions, a small
adapter below hides the difference. ``DEPENDENCIES`` lists each one with the reason
ferroloop needs it; ``tests/test_compat.py`` checks every entry against the running
CPython and fails with a message that names it, so a new CPython breaks one clear test.
``MIRRORS`` names the CPython functions whose behaviour ferroloop re-implements natively;
the same test fingerprints them, so a release that changes one is noticed too.

Public APIs and the running CPython's own methods are used wherever they do the job;
what is here is what they cannot do. One dependency of that kind is native and lies
outside asyncio: the thread state's ``context`` field, which the native layer reads to see
the current context without copying it (``src/py/context.rs``, which finds the field on
import and copies where it cannot; ``tests/test_compat.py`` names it when a CPython moves
it).
"""

import asyncio
import sys
import warnings
from asyncio import (base_events, constants, events, format_helpers, futures,
                     selector_events, tasks, transports, trsock)
from typing import NamedTuple

VERSION = sys.version_info[:2]

# --- Names ferroloop calls or reads ------------------------------------------------------

# create_connection's short path decides as asyncio's general path does.
ipaddr_info = base_events._ipaddr_info
check_ssl_socket = base_events._check_ssl_socket
set_nodelay = base_events._set_nodelay
# Messages and reprs, word for word as the running CPython makes them.
format_handle = base_events._format_handle
extract_stack = format_helpers.extract_stack
handle_repr_info = events.Handle._repr_info
# The running loop, as CPython's C Task and Future see it.
get_running_loop = events._get_running_loop
# The namespace whose `socket` asyncio makes its sockets with. A test may replace that
# module there to watch or steer them; ferroloop then leaves connecting to asyncio's code
# rather than connecting natively in its place. Read as `SOCKETS_OF.socket is socket` on
# every create_connection, where a function of ours would cost a Python frame.
SOCKETS_OF = base_events


# Where ferroloop logs what asyncio's loop or transports log: the logger each asyncio
# module logs through, looked up at each use as asyncio's own code looks it up, so that a
# test patching it sees ferroloop's records too.
def loop_logger():
    return base_events.logger


def transport_logger():
    return selector_events.logger


# A transport's waiter is woken as asyncio's transports wake theirs.
set_result_unless_cancelled = futures._set_result_unless_cancelled
# The native transport's Python half is what CPython's sendfile and start_tls accept.
FlowControlMixin = transports._FlowControlMixin
TransportSocket = trsock.TransportSocket
SENDFILE_TRY_NATIVE = constants._SendfileMode.TRY_NATIVE
ACCEPT_RETRY_DELAY = constants.ACCEPT_RETRY_DELAY

if VERSION >= (3, 13):
    def format_callback_source(callback, args, debug):
        return format_helpers._format_callback_source(callback, args, debug=debug)
else:
    def format_callback_source(callback, args, debug):
        return format_helpers._format_callback_source(callback, args)

# A server counts the transports it serves through these two methods, which take the
# transport from 3.13 on (for close_clients()/abort_clients()); 3.13's transport __del__
# also detaches itself. Names rather than adapters: a connection's set-up and tear-down
# call them without a Python frame of ferroloop's own.
SERVER_ATTACH = "_attach"
SERVER_DETACH = "_detach"
SERVER_TRACKS_TRANSPORTS = VERSION >= (3, 13)

if VERSION >= (3, 14):
    # What call_soon_threadsafe returns: a Handle whose cancel() waits for a callback
    # running on another thread. ferroloop's such handles answer isinstance() for it.
    ThreadSafeHandle = events._ThreadSafeHandle
else:
    ThreadSafeHandle = None

# --- Behaviour that differs between the supported versions --------------------------------

# The message of the TypeError a stream transport's write() raises for a non-buffer.
if VERSION >= (3, 14):
    WRITE_TYPE_ERROR = "data argument must be a bytes, bytearray, or memoryview object, not {!r}"
else:
    WRITE_TYPE_ERROR = "data argument must be a bytes-like object, not {!r}"

# 3.14's accept loop takes backlog + 1 connections per readiness and discards one aborted
# before accept() instead of ending the batch.
ACCEPT_BACKLOG_PLUS_ONE = VERSION >= (3, 14)
# 3.14's transports count the connection lost when a close() waiting for the buffer to
# drain completes, so _call_connection_lost runs once and later writes are dropped.
FLUSHED_CLOSE_COUNTS_CONN_LOST = VERSION >= (3, 14)
# 3.12's stream transports buffer each item of writelines() and flush once; 3.11's
# join them and write().
WRITELINES_BUFFERED = VERSION >= (3, 12)
# 3.14's writelines drops data once the connection is lost (as write does), never buffers
# an empty chunk, and pauses the protocol past the high-water mark.
WRITELINES_LIKE_WRITE = VERSION >= (3, 14)
# 3.15's loop runs the timers due within max(clock resolution, ulp(now)) of now, so the
# window never vanishes on a clock that reads coarser than its resolution.
DUE_WITHIN_ULP = VERSION >= (3, 15)
# 3.15's servers capture a context at creation; each connection's protocol factory and
# every callback of its transport run in a copy of it. Client transports get a copy of
# the context current when create_connection made them.
TRANSPORT_CONTEXTS = VERSION >= (3, 15)


if TRANSPORT_CONTEXTS:
    import inspect
    _START_SERVING = inspect.signature(selector_events.BaseSelectorEventLoop._start_serving)

    def serving_args(args, keywords):
        """`_start_serving`'s arguments, all positional as asyncio's retry passes them:
        (protocol_factory, sock, sslcontext, server, backlog, ssl_handshake_timeout,
        ssl_shutdown_timeout, context)."""
        bound = _START_SERVING.bind(None, *args, **keywords)
        bound.apply_defaults()
        return tuple(bound.arguments.values())[1:]

    def serving_context(args):
        """The server context among `serving_args`."""
        return args[7]
else:
    def serving_args(args, keywords):
        if keywords:
            raise TypeError(f"_start_serving() got unexpected keyword arguments {keywords}")
        return args

    def serving_context(args):
        return None


# --- The run loop: the running version's own set-up and clean-up --------------------------

if VERSION >= (3, 13):
    # As 3.13.1 on: 3.13.0 also runs the clean-up when the set-up refuses a nested run,
    # which resets the running loop's state and deadlocks it (a CPython bug, fixed in
    # 3.13.1 by this order); ferroloop does not copy it.
    def run_forever(loop):
        loop._run_forever_setup()
        try:
            loop._run_until_stopped()
        finally:
            loop._run_forever_cleanup()
else:
    import threading

    def run_forever(loop):
        # 3.11 and 3.12 have no _run_forever_setup/_run_forever_cleanup: their
        # run_forever's own steps, around the native run loop.
        loop._check_closed()
        loop._check_running()
        loop._set_coroutine_origin_tracking(loop._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            loop._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook,
                                   finalizer=loop._asyncgen_finalizer_hook)
            events._set_running_loop(loop)
            loop._run_until_stopped()
        finally:
            loop._stopping = False
            loop._thread_id = None
            events._set_running_loop(None)
            loop._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)


# --- Event loop policies (deprecated in 3.14, gone in 3.16) -------------------------------

HAS_POLICIES = hasattr(events, "set_event_loop_policy")

# asyncio.capture_call_graph (3.14+) knows who awaits whom, gather() and TaskGroup included.
HAS_CALL_GRAPH = hasattr(asyncio, "capture_call_graph")


def awaited_future(task):
    """The future a task waits for, or None (3.11-3.13)."""
    return getattr(task, "_fut_waiter", None)


def gathering_children(future):
    """The futures a gather() future waits for (3.11-3.13), or () for any other future."""
    return getattr(future, "_children", ()) if isinstance(future, tasks._GatheringFuture) else ()


def default_policy_class():
    """asyncio's default policy class, without the DeprecationWarning 3.14 attaches to
    the name: ferroloop warns for its own policy API instead."""
    import asyncio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.DefaultEventLoopPolicy


def set_policy_quietly(policy):
    """``asyncio.set_event_loop_policy(policy)`` without 3.14's DeprecationWarning, for
    ``python -m ferroloop``, which must run a script as asyncio would without noise."""
    import asyncio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy)


def get_policy_quietly():
    import asyncio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_event_loop_policy()


# --- The list, checked by tests/test_compat.py --------------------------------------------

class Private(NamedTuple):
    """One private asyncio name ferroloop relies on.

    ``where``: its dotted path in the running CPython. ``use``: "calls" or "reads" (ferroloop
    uses CPython's), "overrides" (ferroloop.Loop replaces CPython's method, which CPython's
    own code calls), "provides" (an attribute CPython's code reads of ferroloop's objects).
    ``params``: for callables, the parameters ferroloop passes or accepts, as in CPython's
    signature on this version (None: not checked). ``why``: the reason. ``instance``: an
    attribute asyncio sets on each instance (of a loop, or of a future made with no
    children) rather than on its class.
    """
    where: str
    use: str
    why: str
    params: tuple = None
    instance: bool = False


_SSL_TIMEOUTS = ("ssl_handshake_timeout", "ssl_shutdown_timeout")
_CONTEXT = ("context",) if TRANSPORT_CONTEXTS else ()
_SEL = "asyncio.selector_events.BaseSelectorEventLoop"
_BASE = "asyncio.base_events.BaseEventLoop"

DEPENDENCIES = (
    # Called or read from CPython.
    Private("asyncio.base_events._ipaddr_info", "calls",
            "create_connection's short path resolves a numeric address as asyncio does",
            ("host", "port", "family", "type", "proto", "flowinfo", "scopeid")),
    Private("asyncio.base_events._check_ssl_socket", "calls",
            "create_connection(sock=) refuses an SSLSocket with asyncio's error", ("sock",)),
    Private("asyncio.base_events._set_nodelay", "calls",
            "a transport on a socket object that is not a plain socket sets TCP_NODELAY "
            "as asyncio's", ("sock",)),
    Private("asyncio.base_events._format_handle", "calls",
            "slow-callback warnings name the handle as asyncio's do", ("handle",)),
    Private("asyncio.format_helpers._format_callback_source", "calls",
            "the exception handler's message for a failing callback",
            ("func", "args", "debug") if VERSION >= (3, 13) else ("func", "args")),
    Private("asyncio.base_events.socket", "reads",
            "create_connection's short path steps aside when asyncio's socket module is "
            "replaced (tests watch it)"),
    Private("asyncio.base_events.logger", "reads",
            "slow-callback warnings go where asyncio's loop logs them"),
    Private("asyncio.selector_events.logger", "reads",
            "transport warnings and debug records go where asyncio's transports log them"),
    Private("asyncio.format_helpers.extract_stack", "calls",
            "a handle's _source_traceback in debug mode", ("f", "limit")),
    Private("asyncio.events.Handle._repr_info", "calls",
            "native handles' repr, word for word", ()),
    Private("asyncio.events._get_running_loop", "calls",
            "create_future/create_task skip loop= on the running loop", ()),
    Private("asyncio.events._set_running_loop", "calls",
            "run_forever on 3.11/3.12, which have no _run_forever_setup", ("loop",)),
    Private("asyncio.futures._set_result_unless_cancelled", "calls",
            "a transport's waiter is woken as asyncio's transports wake theirs",
            ("fut", "result")),
    Private("asyncio.transports._FlowControlMixin", "reads",
            "the transport's base class: sendfile's fallback insists on it"),
    Private("asyncio.trsock.TransportSocket", "reads",
            "get_extra_info('socket') wraps the socket as asyncio's transports do"),
    Private("asyncio.trsock.TransportSocket._sock", "provides",
            "the transport fills the wrapper's slot without a Python frame for __init__"),
    Private("asyncio.constants._SendfileMode", "reads",
            "the transport's _sendfile_compatible, which loop.sendfile reads"),
    Private("asyncio.constants.ACCEPT_RETRY_DELAY", "reads",
            "how long the native acceptor pauses after EMFILE, as asyncio's"),
    Private(f"{_BASE}._check_closed", "calls", "run_forever and the native core", ()),
    Private(f"{_BASE}._check_running", "calls", "run_forever on 3.11/3.12", ()),
    Private(f"{_BASE}._check_thread", "calls", "call_soon's thread check in debug mode", ()),
    Private(f"{_BASE}._check_callback", "calls",
            "call_soon's callback check in debug mode", ("callback", "method")),
    Private(f"{_BASE}._set_coroutine_origin_tracking", "calls",
            "run_forever on 3.11/3.12", ("enabled",)),
    Private(f"{_BASE}._asyncgen_firstiter_hook", "reads", "run_forever on 3.11/3.12"),
    Private(f"{_BASE}._asyncgen_finalizer_hook", "reads", "run_forever on 3.11/3.12"),
    Private(f"{_BASE}._task_factory", "reads",
            "create_task takes its native path only without a task factory; the loop keeps "
            "it natively, where BaseEventLoop's methods set and read it", instance=True),
    Private(f"{_SEL}._ssock", "reads",
            "the self-pipe's read end, polled only while a signal handler is set",
            instance=True),
    Private("asyncio.unix_events._UnixSelectorEventLoop._signal_handlers", "reads",
            "whether a signal handler is set", instance=True),
    Private("asyncio.events.Handle._cancelled", "reads",
            "signal handlers' Handles (asyncio's own) run through the native ready queue"),
    Private("asyncio.events.Handle._run", "calls",
            "signal handlers' Handles (asyncio's own) run through the native ready queue",
            ()),
    Private(f"{_BASE}._create_connection_transport", "calls",
            "create_connection(sock=) with every option at its default",
            ("sock", "protocol_factory", "ssl", "server_hostname", "server_side")
            + _SSL_TIMEOUTS + _CONTEXT),
    Private(f"{_SEL}._accept_connection", "calls",
            "the native acceptor hands debug mode (which logs) to asyncio's accept loop",
            ("protocol_factory", "sock", "sslcontext", "server", "backlog")
            + _SSL_TIMEOUTS + _CONTEXT),
    Private("asyncio.base_events.Server._attach", "calls",
            "a native transport registers with its server",
            ("transport",) if VERSION >= (3, 13) else ()),
    Private("asyncio.base_events.Server._detach", "calls",
            "a native transport leaves its server once closed",
            ("transport",) if VERSION >= (3, 13) else ()),
    # Replaced by ferroloop.Loop; CPython's own code calls them.
    Private(f"{_SEL}._make_socket_transport", "overrides",
            "stream connections get the native transport",
            ("sock", "protocol", "waiter", "extra", "server") + _CONTEXT),
    Private(f"{_SEL}._start_serving", "overrides",
            "listening sockets get the native acceptor",
            ("protocol_factory", "sock", "sslcontext", "server", "backlog")
            + _SSL_TIMEOUTS + _CONTEXT),
    Private(f"{_SEL}._ensure_fd_no_transport", "overrides",
            "answers the usual case (no transport) without raising and catching; the "
            "native sock_recv and sock_sendall call it when a transport holds the fd",
            ("fd",)),
    Private(f"{_SEL}._make_self_pipe", "overrides",
            "the self-pipe is polled only while a signal handler is set", ()),
    Private(f"{_SEL}._add_reader", "overrides", "native fd registration",
            ("fd", "callback", "args") + _CONTEXT),
    Private(f"{_SEL}._add_writer", "overrides", "native fd registration",
            ("fd", "callback", "args") + _CONTEXT),
    Private(f"{_SEL}._remove_reader", "overrides", "native fd registration", ("fd",)),
    Private(f"{_SEL}._remove_writer", "overrides", "native fd registration", ("fd",)),
    Private(f"{_BASE}._run_once", "overrides", "the native pass of the loop", ()),
    Private(f"{_BASE}._add_callback", "overrides",
            "signal handlers' Handles run through the native ready queue", ("handle",)),
    Private(f"{_BASE}._timer_handle_cancelled", "overrides",
            "cancelled timers are counted in the native heap", ("handle",)),
    Private(f"{_BASE}._run_forever_setup", "calls",
            "run_forever is the running version's own set-up, then the native run loop",
            ()) if VERSION >= (3, 13) else None,
    Private(f"{_BASE}._run_forever_cleanup", "calls",
            "run_forever is the running version's own clean-up after the native run loop",
            ()) if VERSION >= (3, 13) else None,
    Private("asyncio.tasks.Task._fut_waiter", "reads",
            "format_tasks on 3.11-3.13 finds the future each task waits for")
    if VERSION < (3, 14) else None,
    Private("asyncio.tasks._GatheringFuture._children", "reads",
            "format_tasks on 3.11-3.13 shows gather()'s tasks under the task awaiting them",
            instance=True) if VERSION < (3, 14) else None,
    Private("asyncio.events._ThreadSafeHandle", "reads",
            "call_soon_threadsafe's handles are instances of it, as on asyncio")
    if VERSION >= (3, 14) else None,
)
DEPENDENCIES = tuple(d for d in DEPENDENCIES if d is not None)

# Attributes of asyncio's loop that ferroloop's native core provides (as properties) in
# place of CPython's plain attributes, because CPython's code and debugging tools read them.
PROVIDED_LOOP_ATTRIBUTES = (
    "_ready", "_scheduled", "_stopping", "_closed", "_debug", "_clock_resolution",
    "_thread_id", "_current_handle", "_timer_cancelled_count", "_selector", "_transports",
)

# What CPython's code reads or calls of a stream transport (sendfile, start_tls, streams,
# the server, debugging tools), which ferroloop's transport provides in place of
# _SelectorSocketTransport's.
PROVIDED_TRANSPORT_ATTRIBUTES = (
    "_sock", "_sock_fd", "_loop", "_server", "_extra", "_protocol", "_closing", "_conn_lost",
    "_paused", "_eof", "_empty_waiter", "_protocol_paused", "_low_water", "_high_water",
    "_start_tls_compatible", "_sendfile_compatible", "_make_empty_waiter",
    "_reset_empty_waiter", "_force_close", "_call_connection_lost", "_fatal_error",
    "max_size",
)

# CPython functions whose behaviour ferroloop re-implements natively or in its own Python.
# Each was compared line by line with the versions fingerprinted in
# tests/cpython_mirrors.txt; a release that changes one fails tests/test_compat.py until
# ferroloop's copy is compared again (where it lives is named after the colon).
MIRRORS = {
    "asyncio.events.Handle.__init__": "src/py/handles/handle.rs",
    "asyncio.events.Handle.cancel": "src/py/handles/handle.rs",
    "asyncio.events.Handle._run": "src/py/handles/run.rs",
    "asyncio.events.TimerHandle.__init__": "src/py/handles/timer.rs",
    "asyncio.events.TimerHandle.cancel": "src/py/handles/timer.rs",
    "asyncio.events.TimerHandle.__eq__": "src/py/handles/timer.rs",
    f"{_BASE}.call_soon": "src/py/fastcall/arguments.rs, src/py/event_loop/scheduling.rs",
    f"{_BASE}._call_soon": "src/py/event_loop/scheduling.rs",
    f"{_BASE}.call_soon_threadsafe": "src/py/event_loop/scheduling.rs",
    f"{_BASE}.call_later": "src/py/event_loop/scheduling.rs",
    f"{_BASE}.call_at": "src/py/event_loop/scheduling.rs",
    f"{_BASE}.create_future": "src/py/event_loop/tasks.rs",
    f"{_BASE}.create_task": "src/py/event_loop/tasks.rs",
    f"{_BASE}.run_forever": "python/ferroloop/_compat.py (run_forever)",
    f"{_BASE}._run_once": "src/py/event_loop/run_once.rs, src/runtime/pass_plan.rs",
    f"{_BASE}.create_connection": "python/ferroloop/_loop.py, src/py/connect.rs",
    f"{_BASE}._create_connection_transport": "src/py/connect.rs",
    f"{_SEL}._add_reader": "src/py/event_loop/fds.rs, src/runtime/io_registry/mod.rs",
    f"{_SEL}._remove_reader": "src/py/event_loop/fds.rs, src/runtime/io_registry/mod.rs",
    f"{_SEL}.sock_recv": "python/ferroloop/_loop.py, src/py/sock_ops.rs",
    f"{_SEL}._sock_recv": "src/py/sock_ops.rs",
    f"{_SEL}._sock_read_done": "src/py/sock_ops.rs",
    f"{_SEL}.sock_sendall": "python/ferroloop/_loop.py, src/py/sock_ops.rs",
    f"{_SEL}._sock_sendall": "src/py/sock_ops.rs",
    f"{_SEL}._sock_write_done": "src/py/sock_ops.rs",
    f"{_SEL}._accept_connection": "src/py/server.rs",
    f"{_SEL}._accept_connection2": "src/py/server.rs",
    "asyncio.selector_events._SelectorTransport.__init__":
        "python/ferroloop/_transports.py, src/py/transports/shell.rs",
    "asyncio.selector_events._SelectorTransport.close": "src/py/transports/stream/close.rs",
    "asyncio.selector_events._SelectorTransport._force_close":
        "src/py/transports/stream/close.rs",
    "asyncio.selector_events._SelectorTransport._call_connection_lost":
        "src/py/transports/stream/close.rs",
    "asyncio.selector_events._SelectorTransport.pause_reading":
        "src/py/transports/stream/methods.rs",
    "asyncio.selector_events._SelectorTransport.resume_reading":
        "src/py/transports/stream/methods.rs",
    "asyncio.selector_events._SelectorSocketTransport.__init__":
        "python/ferroloop/_transports.py, src/py/transports/shell.rs, "
        "src/py/transports/stream/steps.rs",
    "asyncio.selector_events._SelectorSocketTransport._read_ready__get_buffer":
        "src/py/transports/stream/read.rs",
    "asyncio.selector_events._SelectorSocketTransport._read_ready__data_received":
        "src/py/transports/stream/read.rs",
    "asyncio.selector_events._SelectorSocketTransport._read_ready__on_eof":
        "src/py/transports/stream/read.rs",
    "asyncio.selector_events._SelectorSocketTransport.write":
        "src/py/transports/stream/write.rs",
    "asyncio.selector_events._SelectorSocketTransport._write_send":
        "src/py/transports/stream/write.rs",
    "asyncio.selector_events._SelectorSocketTransport.writelines":
        "src/py/transports/stream/write.rs",
    "asyncio.selector_events._SelectorSocketTransport.write_eof":
        "src/py/transports/stream/methods.rs",
    "asyncio.selector_events._SelectorSocketTransport._call_connection_lost":
        "src/py/transports/stream/close.rs",
    "asyncio.transports._FlowControlMixin._maybe_pause_protocol":
        "src/py/transports/stream/flow.rs",
    "asyncio.transports._FlowControlMixin._maybe_resume_protocol":
        "src/py/transports/stream/flow.rs",
    "asyncio.transports._FlowControlMixin.set_write_buffer_limits":
        "python/ferroloop/_transports.py",
    "asyncio.transports._FlowControlMixin._set_write_buffer_limits":
        "src/py/transports/stream/flow.rs (DEFAULT_HIGH_WATER in src/constants.rs)",
}
if VERSION >= (3, 14):
    MIRRORS["asyncio.events._ThreadSafeHandle.cancel"] = "src/py/handles/threadsafe.rs"
    MIRRORS["asyncio.events._ThreadSafeHandle._run"] = "src/py/handles/threadsafe.rs"
