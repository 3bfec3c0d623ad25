"""A transport's set-up and tear-down steps (connection_made, the start of reading, waking
the waiter, connection_lost), on both loops. asyncio queues each as a Handle; ferroloop
queues them natively, and these tests pin down what a program can see of them: order,
contexts, errors and debug reports."""

import asyncio
import contextvars
import logging
import sys

import pytest

from test_transports import Peer, connected_pair, run, shut

var = contextvars.ContextVar("var", default="unset")


class Tracing(Peer):
    """Records the context variable each callback sees, and what runs when."""

    trace = None

    def connection_made(self, transport):
        self.trace.append(("made", var.get()))
        var.set("set in connection_made")
        asyncio.get_running_loop().call_soon(self.trace.append, ("soon", var.get()))
        super().connection_made(transport)

    def data_received(self, data):
        self.trace.append(("data", var.get()))
        super().data_received(data)

    def connection_lost(self, exc):
        self.trace.append(("lost", var.get()))
        super().connection_lost(exc)


def test_order_and_contexts_of_the_steps(loop):
    trace = []
    Tracing.trace = trace

    async def main():
        var.set("creator")
        server, srv, client = await connected_pair(loop, client_factory=Tracing)
        trace.append(("returned", var.get()))
        srv.transport.write(b"x")
        await client.wait_for_data(1)
        var.set("closer")
        client.transport.close()
        await client.lost
        srv.transport.close()
        await srv.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    if sys.version_info >= (3, 15):
        # 3.15: every callback of a client transport runs in one context, a copy of the
        # creator's, so what connection_made sets is seen by the rest.
        later = [("data", "set in connection_made"), ("lost", "set in connection_made")]
    else:
        # Reading started in a copy taken before connection_made ran, and connection_lost
        # runs in a copy of the context close() was called in.
        later = [("data", "creator"), ("lost", "closer")]
    assert trace == [
        # connection_made runs in a copy of the creator's context...
        ("made", "creator"),
        # ...and what it schedules runs before the caller resumes, as asyncio's waiter is
        # woken by a Handle queued before it.
        ("soon", "set in connection_made"),
        ("returned", "creator"),
        *later,
    ]


class FailingMade(Peer):
    def connection_made(self, transport):
        super().connection_made(transport)
        raise ZeroDivisionError("in connection_made")


def test_error_in_connection_made_reaches_the_handler_and_the_rest_runs(loop):
    async def main():
        server, srv, client = await connected_pair(loop, client_factory=FailingMade)
        # Reading started regardless, and create_connection returned.
        srv.transport.write(b"ping")
        await client.wait_for_data(4)
        await shut(server, srv, client)
        return bytes(client.data)

    assert run(loop, main()) == b"ping"
    calls, loop.handler_calls = loop.handler_calls, []
    assert len(calls) == 1
    context = calls[0]
    assert isinstance(context["exception"], ZeroDivisionError)
    assert context["message"].startswith("Exception in callback FailingMade.connection_made(")
    assert "FailingMade.connection_made" in repr(context["handle"])


class SlowMade(Peer):
    def connection_made(self, transport):
        import time
        time.sleep(0.12)
        super().connection_made(transport)


def test_slow_connection_made_is_named_in_debug_mode(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1

    async def main():
        server, srv, client = await connected_pair(loop, client_factory=SlowMade)
        await shut(server, srv, client)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(loop, main())
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert any("SlowMade.connection_made" in m for m in slow), slow


class InterruptingMade(Peer):
    interrupted = False

    def connection_made(self, transport):
        if not InterruptingMade.interrupted:
            InterruptingMade.interrupted = True
            self.transport = transport
            raise KeyboardInterrupt
        super().connection_made(transport)


def test_keyboard_interrupt_in_connection_made_leaves_the_rest_queued(loop):
    InterruptingMade.interrupted = False

    async def main():
        return await connected_pair(loop, client_factory=InterruptingMade)

    task = loop.create_task(main())
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(task)
    # The steps after connection_made are still queued and run when the loop runs again:
    # the caller gets its transport, and reading works.
    server, srv, client = run(loop, task)
    assert client.events == []  # connection_made itself did not finish

    async def finish():
        srv.transport.write(b"late")
        await client.wait_for_data(4)
        await shut(server, srv, client)
        return bytes(client.data)

    assert run(loop, finish()) == b"late"
