"""ferroloop.Loop: the native core (scheduling, timers, polling, fd registration) joined
with CPython's own SelectorEventLoop for everything that is not on the hot path.

The native ``LoopCore`` comes first in the MRO, so its methods win; the rest (create_task,
run_until_complete, the exception handler, async generator hooks, the default executor,
signals, and, for now, sockets, pipes and subprocesses) is the running CPython's code,
so it matches that version's behaviour exactly and follows it when it changes.
"""

import asyncio
import errno
import gc
import inspect
import ipaddress
import logging
import os
import selectors
import socket
import weakref

from . import _compat, _ferroloop, _otel
from ._transports import SocketTransport, _raw_type


class _Registrations(selectors.BaseSelector):
    """A read-only, selector-shaped view of the loop's fd registrations.

    CPython's transports read ``loop._selector.get_key(fd).events`` for their reprs; the
    registrations themselves change only through ``_add_reader``/``_add_writer``.
    """

    def __init__(self, loop):
        self._loop = loop

    def _keys(self):
        keys = {}
        for fd, fileobj, reader, writer in self._loop._io_registrations():
            events = (selectors.EVENT_READ if reader is not None else 0) | (
                selectors.EVENT_WRITE if writer is not None else 0)
            keys[fd] = selectors.SelectorKey(fd if fileobj is None else fileobj, fd, events,
                                             (reader, writer))
        return keys

    def get_map(self):
        return self._keys()

    def get_key(self, fileobj):
        try:
            return self._keys()[self._loop._registered_fd(fileobj)]
        except (KeyError, OverflowError):  # an int past any fd is not registered either
            raise KeyError(f"{fileobj!r} is not registered") from None

    def register(self, fileobj, events, data=None):
        raise RuntimeError("ferroloop registers fds through loop.add_reader()/add_writer()")

    def unregister(self, fileobj):
        raise RuntimeError("ferroloop unregisters fds through loop.remove_reader()/remove_writer()")

    def select(self, timeout=None):
        raise RuntimeError("ferroloop polls natively; its selector view cannot select()")

    def close(self):
        self._loop = None


def _is_numeric(host, port):
    """Whether getaddrinfo(host, port) needs no lookup: an IP literal (or None) and a
    numeric port (or None), which the C library answers without touching the network."""
    if isinstance(port, str):
        if not port.isdigit():
            return False
    elif port is not None and not isinstance(port, int):
        return False
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode('ascii')
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.partition('%')[0])
    except ValueError:
        return False
    return True


# The errors sock.connect() raises as BlockingIOError or InterruptedError, which asyncio
# answers by waiting for the socket to be writable.
_CONNECT_PENDING = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY,
                              errno.EWOULDBLOCK, errno.EINTR})

_AF_INET = int(socket.AF_INET)
_STREAM_NONBLOCK = int(socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
# The (family, type, proto) of the sockets create_connection's short path makes.
_STREAM_KINDS = {
    family: (family, _STREAM_NONBLOCK, socket.IPPROTO_TCP)
    for family in (socket.AF_INET, socket.AF_INET6)
}
_connect_stream = _ferroloop._connect_stream
_numeric_family = _ferroloop._numeric_family
_sock_recv = _ferroloop._sock_recv
_sock_sendall = _ferroloop._sock_sendall


# create_connection's keyword-only options on the running CPython, with their defaults.
_CONNECTION_OPTIONS = {
    name: param.default
    for name, param in inspect.signature(
        asyncio.BaseEventLoop.create_connection).parameters.items()
    if param.kind is param.KEYWORD_ONLY
}


def _only_defaults(options):
    return all(name in _CONNECTION_OPTIONS and value == _CONNECTION_OPTIONS[name]
               for name, value in options.items())


def _transport_on_fd(loop, fd, protocol, waiter=None, extra=None, server=None, *,
                     sock_args, context=None):
    """A transport on a bare fd made by a subclass's _make_socket_transport, which takes a
    socket object. If it raises, the fd is still the caller's to close."""
    sock = socket.socket(*sock_args, fd)
    try:
        # `context=` only where CPython passes it (3.15), for overrides written for it.
        options = {} if context is None else {'context': context}
        return loop._make_socket_transport(sock, protocol, waiter, extra=extra, server=server,
                                           **options)
    except BaseException:
        sock.detach()
        raise


def _run_if_not_cancelled(handle):
    if not handle._cancelled:
        handle._run()


# The loop hides the handles it alone holds from the cycle collector (see
# src/py/handles/queued.rs). A queued handle that something else also holds is invisible
# too until it leaves the queue; before each full collection those are shown again, so a
# dropped, unclosed loop is still collected as the stdlib's is.
_open_loops = weakref.WeakSet()


def _before_full_collection(phase, info):
    if phase == "start" and info.get("generation") == 2:
        for loop in list(_open_loops):
            loop._reveal_shared_handles()


gc.callbacks.append(_before_full_collection)


def _watchdog_from_environment():
    value = os.environ.get("FERROLOOP_WATCHDOG", "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"FERROLOOP_WATCHDOG must be a number of seconds, not {value!r}") \
            from None


class Loop(_ferroloop.LoopCore, asyncio.SelectorEventLoop):
    """asyncio's event loop, with its core in Rust. Subclass it like any event loop.

    ``watchdog``: seconds a callback may run before a native thread logs what blocks the
    loop, and where (default: ``$FERROLOOP_WATCHDOG``; 0 or unset: off). ``monitor``: a
    Unix socket path for ``python -m ferroloop monitor PATH`` (default:
    ``$FERROLOOP_MONITOR``), in which ``{pid}`` becomes the process id; a path another
    running loop answers on is left to it, with a warning.
    """

    def __init__(self, *, watchdog=None, monitor=None):
        super().__init__(_Registrations(self))
        # asyncio's WeakValueDictionary, natively: a connection registers and leaves
        # without running Python frames for it.
        self._transports = _ferroloop.TransportRegistry()
        _open_loops.add(self)
        _otel.register(self)
        if watchdog is None:
            watchdog = _watchdog_from_environment()
        if watchdog == 0:
            watchdog = None
        if monitor is None:
            monitor = os.environ.get("FERROLOOP_MONITOR") or None
        if monitor is not None:
            # "{pid}" in the path tells the processes of one program apart (they inherit
            # the environment).
            monitor = os.fspath(monitor).replace("{pid}", str(os.getpid()))
        if watchdog is not None or monitor is not None:
            try:
                self._watch_or_warn(watchdog, monitor)
            except BaseException:
                self.close()
                raise

    def _watch_or_warn(self, watchdog, monitor):
        try:
            self._watch(watchdog, monitor)
        except OSError as exc:
            if monitor is None or exc.errno != errno.EADDRINUSE:
                raise
            # Another loop (of this process or another) answers there: a loop runs
            # unmonitored rather than not at all.
            logging.getLogger("asyncio").warning(
                "ferroloop monitor: %s is in use by a running loop; this loop is not "
                "monitored (a path with {pid} gives each process its own)", monitor)
            if watchdog is not None:
                self._watch(watchdog, None)

    def _ensure_fd_no_transport(self, fd):
        # An fd no transport holds, the usual case, is answered here: asyncio's own check
        # raises and catches a KeyError for it, which costs more than the sock_* call or
        # the connect it guards. Anything else gets asyncio's check and its error.
        if type(fd) is int and self._transports.get(fd) is None:
            return
        super()._ensure_fd_no_transport(fd)

    def _make_self_pipe(self):
        super()._make_self_pipe()
        # The self-pipe carries only signal wake-ups (call_soon_threadsafe has an eventfd),
        # and only once a signal handler is added; until then a busy loop need not poll it
        # on every pass.
        self._set_internal_fd(self._ssock.fileno(), True)

    def add_signal_handler(self, sig, callback, *args):
        super().add_signal_handler(sig, callback, *args)
        # With a handler, a signal is seen on the pass after it arrived, as asyncio sees
        # it: a program that signals itself may count the passes until its handler runs.
        self._set_internal_fd(self._ssock.fileno(), False)

    def remove_signal_handler(self, sig):
        removed = super().remove_signal_handler(sig)
        # close() removes the handlers after closing the self-pipe.
        if not self._signal_handlers and self._ssock is not None:
            self._set_internal_fd(self._ssock.fileno(), True)
        return removed

    # sock_recv and sock_sendall: asyncio's steps natively (src/py/sock_ops.rs) for a
    # plain non-blocking socket and bytes; anything else is asyncio's own coroutine.
    async def sock_recv(self, sock, n):
        data = _sock_recv(self, sock, n)
        if data is NotImplemented:
            return await super().sock_recv(sock, n)
        if data.__class__ is bytes:
            return data
        return await data

    async def sock_sendall(self, sock, data):
        sent = _sock_sendall(self, sock, data)
        if sent is NotImplemented:
            return await super().sock_sendall(sock, data)
        if sent is not None:
            await sent

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        # A numeric host resolves without a lookup, so it skips the executor round trip.
        # Debug mode keeps asyncio's path, which logs and times each call.
        if not self._debug and _is_numeric(host, port):
            return socket.getaddrinfo(host, port, family, type, proto, flags)
        return await super().getaddrinfo(host, port, family=family, type=type,
                                         proto=proto, flags=flags)

    async def create_connection(self, protocol_factory, host=None, port=None, **options):
        # The common cases, a numeric address or a connected `sock=` with every other
        # option at its default, skip the general path (which resolves the address twice
        # and keeps per-address bookkeeping); they do what it does for them, step for
        # step. Anything else, and debug mode (which logs), is asyncio's own code.
        sock = options.pop('sock', None)
        family = None
        if (not self._debug and (not options or _only_defaults(options))
                and _compat.SOCKETS_OF.socket is socket):
            if sock is None:
                if type(host) is str and type(port) is int and '%' not in host:
                    # asyncio's _ipaddr_info for the usual types, natively: inet_pton
                    # decides, IPv4 first.
                    family = _numeric_family(host)
                else:
                    info = _compat.ipaddr_info(host, port, 0, socket.SOCK_STREAM, 0)
                    if info is not None:
                        family, (host, port) = info[0], info[4][:2]
            elif (host is None and port is None and issubclass(type(sock), socket.socket)
                  and _raw_type(sock) == socket.SOCK_STREAM):
                _compat.check_ssl_socket(sock)
                return await self._create_connection_transport(
                    sock, protocol_factory, None, None)
        if family is None:
            if sock is not None:
                options['sock'] = sock
            return await super().create_connection(protocol_factory, host, port, **options)
        # A bare non-blocking fd (socket.socket() plus connect_ex(), natively): a connect
        # in progress is the common outcome, and as an exception (BlockingIOError, its
        # message decoded from strerror) it would cost more than the rest of the call.
        kind = _STREAM_KINDS[family]
        fd, err = _connect_stream(family, kind[2], host, port)
        address = (host, port) if family == _AF_INET else (host, port, 0, 0)
        # The writer callback makes the protocol and transport as soon as the socket
        # connects and wakes the caller once, with both (src/py/connect.rs); natively, a
        # SocketTransport, unless a subclass makes its own.
        native = type(self)._make_socket_transport is Loop._make_socket_transport
        connecting = _ferroloop.Connector(self, fd, kind, address, protocol_factory,
                                          None if native else _transport_on_fd)
        try:
            if err in _CONNECT_PENDING:
                self._ensure_fd_no_transport(fd)  # as sock_connect does
                self._add_writer(fd, connecting)
            elif err:
                raise OSError(err, os.strerror(err))
            else:
                connecting.start()
            return await connecting.fut
        except BaseException:
            connecting.abandon()
            raise

    def _make_socket_transport(self, sock, protocol, waiter=None, *,
                               extra=None, server=None, context=None):
        return SocketTransport(self, sock, protocol, waiter, extra, server, context=context)

    def _start_serving(self, protocol_factory, sock, sslcontext=None, server=None,
                       backlog=100, *ssl_timeouts, **context):
        # Without TLS, connections are accepted natively (src/py/server.rs); TLS keeps
        # asyncio's per-connection Task, which runs the handshake. `context` is 3.15's
        # server context, which asyncio's own retry passes positionally.
        serving_args = (protocol_factory, sock, sslcontext, server, backlog, *ssl_timeouts)
        if sslcontext is not None or not _ferroloop.Acceptor.supports(sock):
            return super()._start_serving(*serving_args, **context)
        serving_args = _compat.serving_args(serving_args, context)
        if type(self)._make_socket_transport is Loop._make_socket_transport:
            make_transport = None  # a SocketTransport, natively
        else:
            def make_transport(fd, protocol, waiter, extra, server, sockname, sock_args,
                               context):
                return _transport_on_fd(self, fd, protocol, waiter, extra, server,
                                        sock_args=sock_args, context=context)
        self._add_reader(sock.fileno(), _ferroloop.Acceptor(
            self, serving_args, make_transport, _compat.serving_context(serving_args)))

    def _accept_exhausted(self, exc, serving_args):
        # What _accept_connection does when accept() runs out of fds or memory: Linux
        # keeps reporting the listener ready, so stop watching it and retry later.
        sock = serving_args[1]
        self.call_exception_handler({
            'message': 'socket.accept() out of system resource',
            'exception': exc,
            'socket': _compat.TransportSocket(sock),
        })
        self._remove_reader(sock.fileno())
        self.call_later(_compat.ACCEPT_RETRY_DELAY, self._start_serving, *serving_args)

    def _add_callback(self, handle):
        # Signal handlers arrive as asyncio Handles; they run through our ready queue.
        if not handle._cancelled:
            self.call_soon(_run_if_not_cancelled, handle)

    def run_forever(self):
        # The running CPython's own set-up and clean-up around the native run loop.
        _compat.run_forever(self)

    def close(self):
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            super().close()
        finally:
            self._close_native()
            _open_loops.discard(self)

    def stats(self):
        """Counters since the loop was created: passes, callbacks, timers, polls, the
        loop's lag (how late due timers ran), pass durations, the longest callback and
        how many took ``slow_callback_duration`` or longer. Times are in seconds;
        histograms map each bucket's upper bound to its count."""
        return self._stats()
