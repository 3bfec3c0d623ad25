"""The contexts a stream transport's callbacks run in, on both loops. Up to 3.14 each
callback runs in a copy of the context current when it was scheduled; from 3.15 a server
captures the context at creation and each connection runs every callback (the protocol
factory included) in one copy of it, and a client transport in one copy of its creator's."""

import asyncio
import contextvars
import sys

from test_transports import run

var = contextvars.ContextVar("var", default="default")
SHARED = sys.version_info >= (3, 15)


class Recording(asyncio.Protocol):
    """Records what `var` reads in each callback, and sets it in connection_made."""

    def __init__(self, log, tag):
        log.append((tag, "factory", var.get()))
        self.log, self.tag = log, tag
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.log.append((self.tag, "made", var.get()))
        var.set(f"set by {self.tag}")
        self.transport = transport

    def data_received(self, data):
        self.log.append((self.tag, "data", var.get()))
        self.transport.close()

    def connection_lost(self, exc):
        self.log.append((self.tag, "lost", var.get()))
        self.lost.set_result(None)


def test_server_and_client_callbacks_see_the_contexts_asyncio_gives(loop):
    log = []
    connections = []

    def server_protocol():
        protocol = Recording(log, f"server{len(connections)}")
        connections.append(protocol)
        return protocol

    async def main():
        var.set("at create_server")
        server = await loop.create_server(server_protocol, "127.0.0.1", 0)
        var.set("after create_server")
        port = server.sockets[0].getsockname()[1]
        for _ in range(2):
            transport, client = await loop.create_connection(
                lambda: Recording(log, "client"), "127.0.0.1", port)
            transport.write(b"x")
            await client.lost
            await connections[-1].lost
        server.close()
        await server.wait_closed()
        return var.get()

    assert run(loop, main()) == "after create_server"
    server_log = [entry for entry in log if entry[0].startswith("server")]
    client_log = [entry for entry in log if entry[0] == "client"]
    for n in range(2):
        tag = f"server{n}"
        calls = [entry[1:] for entry in server_log if entry[0] == tag]
        # The factory and connection_made see the server's context as it was when the
        # server started, never a later change, nor what another connection set.
        assert calls[:2] == [("factory", "at create_server"), ("made", "at create_server")]
        if SHARED:
            # One context per connection: what connection_made set is seen by the rest.
            assert calls[2:] == [("data", f"set by {tag}"), ("lost", f"set by {tag}")]
        else:
            assert calls[2:] == [("data", "at create_server"), ("lost", "at create_server")]
    # The client side: create_connection runs in main's context, as it stands then.
    calls = [entry[1:] for entry in client_log]
    assert calls[:2] == [("factory", "after create_server"), ("made", "after create_server")]
    if SHARED:
        assert calls[2] == ("lost", "set by client")
    else:
        assert calls[2] == ("lost", "after create_server")
