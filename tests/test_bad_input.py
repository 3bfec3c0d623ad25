"""Bad input raises the exception asyncio raises; never a crash."""

import asyncio
import re
import signal
import socket
import threading

import pytest

import ferroloop


async def a_coroutine():
    pass


def test_call_soon_coroutine_in_debug_mode(loop):
    loop.set_debug(True)
    coro = a_coroutine()
    for method in (loop.call_soon, loop.call_soon_threadsafe):
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_soon"):
            method(coro)
    with pytest.raises(TypeError, match=r"coroutines cannot be used with call_at\(\)"):
        loop.call_later(1, a_coroutine)
    coro.close()


def test_non_callable_in_debug_mode(loop):
    loop.set_debug(True)
    with pytest.raises(TypeError, match=r"a callable object was expected by call_soon\(\), got 42"):
        loop.call_soon(42)


def test_ferroloop_refuses_non_callables_even_without_debug():
    # asyncio accepts these without debug mode and fails later, inside the loop, far from
    # the mistake; ferroloop raises the TypeError debug mode would raise, at the call.
    loop = ferroloop.new_event_loop()
    try:
        coro = a_coroutine()
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_soon\(\)"):
            loop.call_soon(coro)
        coro.close()
        with pytest.raises(TypeError, match=r"a callable object was expected by call_later|call_at"):
            loop.call_later(1, "not callable")
        with pytest.raises(TypeError, match="call_soon_threadsafe"):
            loop.call_soon_threadsafe(None)
    finally:
        loop.close()


def test_call_later_bad_delay(loop):
    with pytest.raises(TypeError):
        loop.call_later("x", print)
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)


def test_call_at_non_number_is_refused_at_the_call():
    # asyncio stores any `when` and its next pass dies comparing it with a float;
    # ferroloop raises the TypeError at the call instead.
    loop = ferroloop.new_event_loop()
    try:
        with pytest.raises(TypeError):
            loop.call_at("x", print)
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()


def test_closed_loop_refuses_everything(loop):
    loop.close()
    coro = a_coroutine()
    calls = [
        lambda: loop.call_soon(print),
        lambda: loop.call_soon_threadsafe(print),
        lambda: loop.call_later(1, print),
        lambda: loop.call_at(1, print),
        lambda: loop.run_forever(),
        lambda: loop.run_until_complete(coro),
        lambda: loop.create_task(coro),
        lambda: loop.run_in_executor(None, print),
        lambda: loop.add_reader(0, print),
        lambda: loop.add_writer(1, print),
        lambda: loop.add_signal_handler(signal.SIGUSR1, print),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    coro.close()
    assert loop.remove_reader(0) is False and loop.remove_writer(1) is False


def test_non_threadsafe_call_from_another_thread_in_debug(loop):
    loop.set_debug(True)
    errors = []

    def other():
        for call in (lambda: loop.call_soon(print), lambda: loop.call_later(1, print)):
            try:
                call()
            except RuntimeError as e:
                errors.append(str(e))
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(threading.Thread(target=other).start)
    loop.run_forever()
    assert errors == ["Non-thread-safe operation invoked on an event loop other than "
                      "the current one"] * 2


def test_signal_handler_errors(loop):
    with pytest.raises(RuntimeError, match="sig 9 cannot be caught"):
        loop.add_signal_handler(signal.SIGKILL, print)
    with pytest.raises(ValueError, match="invalid signal number 1000"):
        loop.add_signal_handler(1000, print)
    with pytest.raises(TypeError, match="sig must be an int"):
        loop.add_signal_handler("SIGINT", print)
    with pytest.raises(TypeError, match="coroutines cannot be used with add_signal_handler"):
        loop.add_signal_handler(signal.SIGUSR1, a_coroutine)
    errors = []

    def other():
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and "main thread" in errors[0]


def test_add_reader_on_closed_or_bad_fd(loop):
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError) as err:
        loop.add_reader(fd, print)
    assert err.value.errno == 9
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(object(), print)
    with pytest.raises(ValueError):
        loop.add_reader(-1, print)
    assert loop.remove_reader(fd) is False


def test_add_reader_on_regular_file(loop, tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    with open(path) as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f, print)


def test_rust_panic_surfaces_as_runtime_error():
    from ferroloop import _ferroloop

    with pytest.raises(RuntimeError, match="ferroloop internal error: panic boundary check"):
        _ferroloop._check_panic_boundary()
    # Not PanicException, which derives from BaseException.
    try:
        _ferroloop._check_panic_boundary()
    except Exception as e:
        assert type(e) is RuntimeError


def test_run_until_complete_with_a_non_awaitable(loop):
    with pytest.raises(TypeError):
        loop.run_until_complete(42)


NON_CONTEXT_SCRIPT = """
import asyncio, sys
if sys.argv[1] == 'ferroloop':
    import ferroloop
    loop = ferroloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
loop.set_exception_handler(lambda l, c: print(type(c['exception']).__name__, flush=True))
loop.call_soon(print, context=1)
loop.call_soon(print, context={})
loop.call_later(0, print, context=())
loop.call_soon_threadsafe(print, context='x')
loop.call_soon(loop.stop)
loop.run_forever()
loop.close()
print('closed', flush=True)
"""


@pytest.mark.parametrize("loop_name", ["asyncio", "ferroloop"])
def test_a_context_that_is_not_a_context(loop_name):
    """asyncio accepts any `context=` and fails only when the handle runs (`context.run`
    is missing): the loop reports that and lives on. ferroloop once crashed at exit here,
    re-tracking the int and str for the cycle collector as if they were contexts."""
    from conftest import run_python
    proc = run_python("-c", NON_CONTEXT_SCRIPT, loop_name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["AttributeError"] * 4 + ["closed"], proc.stdout + proc.stderr


def whole(method, message):
    """The whole of CPython's argument error for asyncio's `method`, as a match pattern:
    it names the method by its qualified name."""
    return "^" + re.escape(f"BaseEventLoop.{method}() {message}") + "$"


def test_call_soon_arguments(loop):
    """call_soon's hand-written argument parsing (ferroloop) against the stdlib's."""
    with pytest.raises(TypeError, match=whole(
            "call_soon", "missing 1 required positional argument: 'callback'")):
        loop.call_soon()
    with pytest.raises(TypeError, match=whole(
            "call_soon", "got an unexpected keyword argument 'when'")):
        loop.call_soon(print, when=1)
    seen = []
    loop.call_soon(seen.append, 1)
    loop.call_soon(lambda *a: seen.append(a), 1, 2, 3)
    loop.call_soon(seen.append, 2, context=None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [1, (1, 2, 3), 2]


@pytest.mark.parametrize("method", ["call_soon_threadsafe", "call_later", "call_at"])
def test_call_soon_kin_arguments(loop, method):
    """The same parsing for call_soon_threadsafe, call_later and call_at, whose leading
    arguments differ."""
    import contextvars

    call = getattr(loop, method)
    lead = () if method == "call_soon_threadsafe" else (0,) if method == "call_later" else (
        loop.time(),)
    with pytest.raises(TypeError, match=whole(
            method, "missing 1 required positional argument: 'callback'")):
        call(*lead)
    if lead:
        first = "delay" if method == "call_later" else "when"
        with pytest.raises(TypeError, match=whole(
                method, f"missing 2 required positional arguments: '{first}' and 'callback'")):
            call()
    with pytest.raises(TypeError, match=whole(
            method, "got an unexpected keyword argument 'ctx'")):
        call(*lead, print, ctx=None)
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    seen = []
    call(*lead, lambda *a: seen.append(a), 1, 2)
    call(*lead, lambda: seen.append(var.get()), context=ctx)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert seen == [(1, 2), "inner"]


@pytest.mark.parametrize("value", [0, 1, None, "yes", [], True, False])
def test_set_debug_takes_any_value_and_get_debug_returns_it(loop, value):
    # asyncio's set_debug stores what it is given (asyncio.run(debug=0) passes an int),
    # and debug mode follows its truth.
    loop.set_debug(value)
    assert loop.get_debug() is value
    assert loop._debug is value
    handle = loop.call_soon(print)
    assert (handle._source_traceback is not None) == bool(value)
    handle.cancel()
    loop.run_until_complete(asyncio.sleep(0))


@pytest.mark.parametrize("fd", [2**31, 2**70])
def test_fds_too_large_for_epoll(loop, fd):
    # asyncio looks such an fd up (absent: remove_* returns False) or hands it to epoll,
    # whose refusal is an OverflowError; an object whose fileno() gives it is the same.
    class FileLike:
        def fileno(self):
            return fd

    for fileobj in (fd, FileLike()):
        for add, remove in ((loop.add_reader, loop.remove_reader),
                            (loop.add_writer, loop.remove_writer)):
            with pytest.raises(OverflowError, match="Python int too large to convert to C int"):
                add(fileobj, print)
            assert remove(fileobj) is False
    with pytest.raises(ValueError, match=f"Invalid file descriptor: {-fd}"):
        loop.remove_reader(-fd)
