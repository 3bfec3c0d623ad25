"""The Python half of ferroloop's stream transports.

``SocketTransport`` is an ``asyncio.Transport`` (uvloop's transports are not, and CPython's
tests notice). Its state and hot paths live in the native ``_ferroloop.StreamTransport``,
which the loop calls directly when the socket is ready and which owns the fd; the native
methods are bound onto each instance, so ``transport.write(data)`` runs no Python frame.
What is left here is what asyncio's ``_SelectorSocketTransport`` does rarely (set-up,
``_fatal_error``, repr, finalization), written as it writes it.
"""

import _socket
import asyncio
import selectors
import socket

from . import _compat, _ferroloop
_ATTACH = _compat.SERVER_ATTACH
_SERVER_TRACKS_TRANSPORTS = _compat.SERVER_TRACKS_TRANSPORTS

# What the native half answers, with no Python frame (src/py/transports/native_method.rs):
# a method, bound to an instance on first use; an attribute, read at each access.
_Native = _ferroloop.NativeMethod
_NativeAttr = _ferroloop.NativeAttribute

_new_transport_socket = object.__new__

# The raw ints behind socket.py's enum-converting `family` and `type` properties.
_raw_family = _socket.socket.family.__get__
_raw_type = _socket.socket.type.__get__


def _closed_socket(sock_args):
    """A closed socket object of the given kind: what a closed transport that never made
    its socket object answers for get_extra_info('socket'), as asyncio's would."""
    sock = socket.socket(*sock_args)
    sock.close()
    return sock


def _set_nodelay(sock):
    """asyncio's ``_set_nodelay``, without building two enums per connection."""
    if not issubclass(type(sock), _socket.socket):  # (a mock's __class__ may claim it is)
        return _compat.set_nodelay(sock)
    if (sock.proto == socket.IPPROTO_TCP and _raw_type(sock) == socket.SOCK_STREAM
            and _raw_family(sock) in (socket.AF_INET, socket.AF_INET6)):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SocketTransport(_compat.FlowControlMixin, asyncio.Transport):
    """A TCP or Unix stream transport.

    It derives from asyncio's flow-control mixin as ``_SelectorSocketTransport`` does
    (``loop.sendfile``'s fallback insists on it), but flow control itself is native.
    """

    max_size = 256 * 1024  # the most one read takes, as asyncio's
    _start_tls_compatible = True
    _sendfile_compatible = _compat.SENDFILE_TRY_NATIVE

    write = _Native()
    write_eof = _Native()
    can_write_eof = _Native()
    close = _Native()
    abort = _Native()
    is_closing = _Native()
    is_reading = _Native()
    pause_reading = _Native()
    resume_reading = _Native()
    get_write_buffer_size = _Native()
    get_write_buffer_limits = _Native()
    get_protocol = _Native()
    set_protocol = _Native()
    _force_close = _Native()
    _make_empty_waiter = _Native()
    _call_connection_lost = _Native()
    _reset_empty_waiter = _Native()
    if _compat.WRITELINES_BUFFERED:
        # 3.12's selector transport buffers each item; earlier ones join them and write().
        writelines = _Native("_writelines_buffered")

    # Read by __del__ and repr, which can run even if __init__ failed early.
    _native = None

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None,
                 context=None):
        # A transport on a socket object. One on a connection the loop connected or
        # accepted natively starts from a bare fd, and is set up natively, without this
        # frame (src/py/transports/shell.rs, which does what this does).
        #
        # Not the mixin's __init__: the native half owns the flow-control state. What
        # BaseTransport.__init__ and TransportSocket.__init__ do, inline: two Python frames
        # fewer per connection.
        self._extra = extra = {} if extra is None else extra
        fd = sock.fileno()
        transport_socket = _new_transport_socket(_compat.TransportSocket)
        transport_socket._sock = sock
        extra['socket'] = transport_socket
        # A plain socket's names are looked up natively where the family allows.
        names = _ferroloop._socket_names(fd) if type(sock) is socket.socket else None
        if names is not None:
            extra['sockname'], peername = names
            extra.setdefault('peername', peername)
        else:
            try:
                extra['sockname'] = sock.getsockname()
            except OSError:
                extra['sockname'] = None
            if 'peername' not in extra:
                try:
                    extra['peername'] = sock.getpeername()
                except socket.error:
                    extra['peername'] = None
        self._loop = loop
        self._server = server
        # `context`: 3.15's, in which every callback of the transport runs.
        native = self._native = loop._stream_transport(fd, protocol, self, sock, None,
                                                       context)
        if server is not None:
            attach = getattr(server, _ATTACH)
            attach(self) if _SERVER_TRACKS_TRANSPORTS else attach()
        loop._transports[fd] = self
        # Disable the Nagle algorithm: small writes go out without waiting for an ACK.
        _set_nodelay(sock)
        # asyncio's three call_soon: connection_made, then reading, then the waiter (only
        # once connection_made() has been called); queued natively, without Handles.
        native._schedule_connection_made(protocol, waiter)

    @property
    def _sock(self):
        """The socket object, as asyncio's transports keep it (None once closed); for a
        transport set up on a bare fd, made on first request."""
        return None if self._native is None else self._native._sock

    def get_extra_info(self, name, default=None):
        extra = self._extra
        if name == 'socket' and 'socket' not in extra and self._native is not None:
            native = self._native
            sock = native._sock
            if sock is None:
                sock = _closed_socket(native._sock_args)
            extra['socket'] = _compat.TransportSocket(sock)
        return extra.get(name, default)

    # asyncio's transport state, as the attributes its loop and tests read: the native
    # half's, which alone holds them (the fd included).
    _sock_fd = _NativeAttr()
    _protocol = _NativeAttr()
    _closing = _NativeAttr()
    _conn_lost = _NativeAttr()
    _paused = _NativeAttr()
    _eof = _NativeAttr()
    _protocol_paused = _NativeAttr()
    _empty_waiter = _NativeAttr()
    _low_water = _NativeAttr()
    _high_water = _NativeAttr()

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._native is None or not self._native._socket_open:
            info.append('closed')
        elif self._closing:
            info.append('closing')
        fd = None if self._native is None else self._native._sock_fd
        info.append(f'fd={fd}')
        if fd is not None and self._loop is not None and not self._loop.is_closed():
            for event, name in ((selectors.EVENT_READ, 'read'),
                                (selectors.EVENT_WRITE, 'write')):
                try:
                    polling = bool(self._loop._selector.get_key(fd).events & event)
                except KeyError:
                    polling = False
                state = 'polling' if polling else 'idle'
                if name == 'read':
                    info.append(f'read={state}')
                else:
                    info.append(f'write=<{state}, bufsize={self.get_write_buffer_size()}>')
        return '<{}>'.format(' '.join(info))

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(
                f'high ({high!r}) must be >= low ({low!r}) must be >= 0')
        self._native._set_write_buffer_limits(high, low)

    def _fatal_error(self, exc, message='Fatal error on transport'):
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                _compat.transport_logger().debug("%r: %s", self, message, exc_info=exc)
        else:
            self._loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self,
                'protocol': self._protocol,
            })
        self._force_close(exc)


# `__del__`: the native method warns about, and closes, a transport dropped unclosed, as
# asyncio's transports do, without a Python frame at every transport's death. The loop
# sets up the transports of the connections it makes natively, of this class.
_ferroloop._install_socket_transport(SocketTransport)
