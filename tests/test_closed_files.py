"""File objects that are closed, closed after registration, detached, or whose fd number was
reused: every loop method that takes one answers as asyncio's does, value for value.

asyncio's selector remembers the object an fd was registered by, and finds a socket
closed since by the object itself: libraries close a socket and then unregister it (a
task cancelled in the middle of a receive), and expect that to work.
"""

import asyncio
import errno
import gc
import os
import re
import socket

import pytest

from conftest import LOOP_FACTORIES


def nothing():
    pass


def nonblocking_pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


# The case, and its neighbours, with asyncio's answers written out.

def test_remove_reader_of_a_socket_closed_after_add_reader(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    a.close()
    assert loop.remove_reader(a) is True
    # Unregistered, the closed socket is no longer known by the object.
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)
    b.close()


def test_remove_writer_of_a_socket_closed_after_add_writer(loop):
    a, b = nonblocking_pair()
    loop.add_writer(a, nothing)
    a.close()
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is True
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_writer(a)
    b.close()


def test_a_closed_socket_never_registered_is_invalid(loop):
    a, b = nonblocking_pair()
    a.close()
    for method in (loop.remove_reader, loop.remove_writer):
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            method(a)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_reader(a, nothing)
    b.close()


def reader_of(loop, fileobj):
    return loop._selector.get_key(fileobj).data[0]


def test_replacing_the_reader_of_a_closed_socket_makes_no_epoll_call(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    first = reader_of(loop, a)
    a.close()
    loop.add_reader(a, nothing)
    second = reader_of(loop, a)
    assert first.cancelled() and not second.cancelled()
    assert loop.remove_reader(a) is True
    assert second.cancelled()
    b.close()


def test_a_failed_epoll_change_forgets_the_fd(loop):
    # Adding a writer changes the interest: epoll refuses the closed fd, and the selector
    # drops its key, leaving the reader uncancelled.
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    reader = reader_of(loop, a)
    a.close()
    with pytest.raises(OSError) as raised:
        loop.add_writer(a, nothing)
    assert raised.value.errno == errno.EBADF
    assert not reader.cancelled()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)
    b.close()


def test_a_detached_socket_is_found_by_the_object(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    fd = a.detach()
    loop.add_writer(a, nothing)
    assert loop.remove_reader(a) is True
    assert loop.remove_writer(a) is True
    os.close(fd)
    b.close()


def reuse_fd_of(old):
    """A new connected socket under the number of `old` (closed here)."""
    fd = old.fileno()
    old.close()
    c, d = nonblocking_pair()
    if c.fileno() != fd:  # the kernel gives the lowest free number, usually this one
        os.dup2(c.fileno(), fd)
        c.close()
        c = socket.socket(fileno=fd)
    return c, d


def test_a_reused_fd_number(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    c, d = reuse_fd_of(a)
    # The number is still registered, by the old object: epoll dropped it when it closed,
    # so a change of interest fails as asyncio's does.
    with pytest.raises(FileNotFoundError):
        loop.add_writer(c, nothing)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)
    assert loop.remove_reader(c) is False
    for s in (b, c, d):
        s.close()


def test_the_selector_keeps_the_registered_object(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    key = loop._selector.get_key(a)
    assert key.fileobj is a and key.fd == a.fileno()
    a.close()
    assert loop._selector.get_key(a).fileobj is a
    loop.remove_reader(a)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop._selector.get_key(a)
    b.close()


def test_task_cancelled_waiting_for_a_socket_that_its_cleanup_closes(loop):
    # The library pattern (anyio's wait_readable, for one): the waiting task is cancelled,
    # and its cleanup closes the socket before unregistering it.
    a, b = nonblocking_pair()
    removed = []

    async def wait_readable():
        readable = loop.create_future()
        loop.add_reader(a, readable.set_result, None)
        try:
            await readable
        finally:
            a.close()
            removed.append(loop.remove_reader(a))

    async def main():
        task = loop.create_task(wait_readable())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(main())
    assert removed == [True]
    b.close()


# Every method that takes a file object, in every state, on both loops: the outcomes must be
# equal. Each state builds (object, things to close) on a loop.

def closed(loop):
    a, b = nonblocking_pair()
    a.close()
    return a, [b]


def registered_then_closed(direction):
    def state(loop):
        a, b = nonblocking_pair()
        getattr(loop, f"add_{direction}")(a, nothing)
        a.close()
        return a, [b]
    return state


def registered_by_number_then_closed(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a.fileno(), nothing)
    a.close()
    return a, [b]


def detached(loop):
    a, b = nonblocking_pair()
    return a, [b, a.detach()]


def registered_then_detached(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    return a, [b, a.detach()]


def reused_seen_by_new_object(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    c, d = reuse_fd_of(a)
    return c, [b, d, a]


def reused_seen_by_old_object(loop):
    a, b = nonblocking_pair()
    loop.add_reader(a, nothing)
    c, d = reuse_fd_of(a)
    return a, [b, c, d]


def closed_number(loop):
    a, b = nonblocking_pair()
    fd = a.fileno()
    a.close()
    return fd, [b]


def registered_number_then_closed(loop):
    a, b = nonblocking_pair()
    fd = a.fileno()
    loop.add_reader(fd, nothing)
    a.close()
    return fd, [b]


def closed_file(loop):
    r, w = os.pipe()
    f = open(r, "rb", buffering=0)
    f.close()
    return f, [w]


def registered_then_closed_file(loop):
    r, w = os.pipe()
    f = open(r, "rb", buffering=0)
    loop.add_reader(f, nothing)
    f.close()
    return f, [w]


STATES = {
    "closed": closed,
    "reader_then_closed": registered_then_closed("reader"),
    "writer_then_closed": registered_then_closed("writer"),
    "reader_by_number_then_closed": registered_by_number_then_closed,
    "detached": detached,
    "reader_then_detached": registered_then_detached,
    "reused_new_object": reused_seen_by_new_object,
    "reused_old_object": reused_seen_by_old_object,
    "closed_number": closed_number,
    "reader_number_then_closed": registered_number_then_closed,
    "closed_file": closed_file,
    "reader_then_closed_file": registered_then_closed_file,
}

async def sock_sendfile_of_this_file(loop, sock):
    with open(__file__, "rb") as file:
        return await loop.sock_sendfile(sock, file)


CALLS = {
    "add_reader": lambda loop, obj: loop.add_reader(obj, nothing),
    "add_writer": lambda loop, obj: loop.add_writer(obj, nothing),
    "remove_reader": lambda loop, obj: loop.remove_reader(obj),
    "remove_writer": lambda loop, obj: loop.remove_writer(obj),
    "add_writer_remove_reader": lambda loop, obj: (loop.add_writer(obj, nothing),
                                                   loop.remove_reader(obj)),
    "sock_recv": lambda loop, obj: loop.sock_recv(obj, 10),
    "sock_recv_into": lambda loop, obj: loop.sock_recv_into(obj, bytearray(10)),
    "sock_recvfrom": lambda loop, obj: loop.sock_recvfrom(obj, 10),
    "sock_sendall": lambda loop, obj: loop.sock_sendall(obj, b"x"),
    "sock_sendto": lambda loop, obj: loop.sock_sendto(obj, b"x", ("127.0.0.1", 9)),
    "sock_connect": lambda loop, obj: loop.sock_connect(obj, ("127.0.0.1", 9)),
    "sock_accept": lambda loop, obj: loop.sock_accept(obj),
    "sock_sendfile": lambda loop, obj: sock_sendfile_of_this_file(loop, obj),
    "create_connection": lambda loop, obj: loop.create_connection(asyncio.Protocol, sock=obj),
    "create_unix_connection": lambda loop, obj: loop.create_unix_connection(
        asyncio.Protocol, sock=obj),
    "connect_accepted_socket": lambda loop, obj: loop.connect_accepted_socket(
        asyncio.Protocol, obj),
    "create_server": lambda loop, obj: loop.create_server(asyncio.Protocol, sock=obj),
    "create_unix_server": lambda loop, obj: loop.create_unix_server(asyncio.Protocol, sock=obj),
    "create_datagram_endpoint": lambda loop, obj: loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, sock=obj),
    "connect_read_pipe": lambda loop, obj: loop.connect_read_pipe(asyncio.Protocol, obj),
    "connect_write_pipe": lambda loop, obj: loop.connect_write_pipe(asyncio.Protocol, obj),
}


def describe(value, opened):
    """A value as comparable across loops: kinds, not identities; what it opened is kept
    to be closed."""
    if isinstance(value, tuple):
        return tuple(describe(v, opened) for v in value)
    if isinstance(value, (asyncio.BaseTransport, asyncio.AbstractServer)):
        opened.append(value)
        return "Server" if isinstance(value, asyncio.AbstractServer) else "Transport"
    if isinstance(value, asyncio.Handle):
        return "Handle"
    if isinstance(value, (asyncio.BaseProtocol, socket.socket)):
        return type(value).__name__
    return value


def outcome(loop, call, opened):
    try:
        result = call()
        if asyncio.iscoroutine(result):
            result = loop.run_until_complete(asyncio.wait_for(result, 0.2))
        return ("ok", describe(result, opened))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome compared
        message = re.sub(r"fd=-?\d+", "fd=N", str(exc))
        message = re.sub(r"<\w*SocketTransport ", "<Transport ", message)
        return (type(exc).__name__, getattr(exc, "errno", None), message)


def run_case(loop_factory, state, call):
    gc.collect()
    loop = loop_factory()
    opened = []
    try:
        obj, to_close = STATES[state](loop)
        result = outcome(loop, lambda: CALLS[call](loop, obj), opened)
        # Then what removing everything by the same object says.
        after = outcome(loop, lambda: (loop.remove_reader(obj), loop.remove_writer(obj)),
                        opened)
        for thing in opened:
            thing.close()
        loop.run_until_complete(asyncio.sleep(0))
        for thing in to_close:
            if isinstance(thing, int):
                try:
                    os.close(thing)
                except OSError:
                    pass  # a transport that took the fd closed it
            else:
                thing.close()
        return result, after
    finally:
        loop.close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("state", sorted(STATES))
def test_same_outcome_as_asyncio(state, call):
    expected = run_case(LOOP_FACTORIES["asyncio"], state, call)
    assert run_case(LOOP_FACTORIES["ferroloop"], state, call) == expected


@pytest.mark.parametrize("loop_name", sorted(LOOP_FACTORIES))
def test_the_cases_reach_the_selector(loop_name):
    # The outcomes compared above are not all errors raised before the selector is asked.
    results = {
        (state, call): run_case(LOOP_FACTORIES[loop_name], state, call)
        for state in ("reader_then_closed", "reader_then_detached", "reused_old_object")
        for call in ("remove_reader", "add_reader", "add_writer")
    }
    assert results[("reader_then_closed", "remove_reader")][0] == ("ok", True)
    assert results[("reader_then_closed", "add_reader")][0] == ("ok", None)
    assert results[("reader_then_closed", "add_writer")][0][:2] == ("OSError", errno.EBADF)
    assert results[("reader_then_detached", "add_writer")] == (
        ("ok", None), ("ok", (True, True)))
    assert results[("reused_old_object", "add_writer")][0][:2] == (
        "FileNotFoundError", errno.ENOENT)


@pytest.mark.parametrize("fd, error", [(2**40, KeyError), (10**30, KeyError), (-1, ValueError),
                                       (999, KeyError)])
def test_the_selector_view_refuses_what_asyncio_refuses(loop, fd, error):
    with pytest.raises(error):
        loop._selector.get_key(fd)
