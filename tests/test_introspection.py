"""Seeing a running program's tasks (3.14+): `asyncio.capture_call_graph`, its printing
and formatting, and `python -m asyncio ps` / `pstree` run from another process, which
read the program's memory (ptrace). Each on the stdlib loop and on ferroloop, with the
same result."""

import asyncio
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from test_transports import run

pytestmark = pytest.mark.skipif(sys.version_info < (3, 14),
                                reason="call graphs and `asyncio ps` are 3.14's")


def normalize(text):
    """Addresses, thread ids and the numbers of unnamed tasks vary from run to run."""
    text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
    text = re.sub(r"Task-\d+", "Task-N", text)
    return re.sub(r"^\d+ ", "TID ", text, flags=re.M)


def call_graph_of(loop):
    graphs = {}

    async def leaf():
        graphs["captured"] = asyncio.capture_call_graph()
        graphs["formatted"] = asyncio.format_call_graph()
        await asyncio.sleep(0)

    async def middle():
        await leaf()

    async def main():
        async with asyncio.TaskGroup() as group:
            group.create_task(middle(), name="middle")

    run(loop, main())
    return graphs


def test_call_graph_names_the_awaiting_tasks_and_coroutines(loop):
    graphs = call_graph_of(loop)
    graph = graphs["captured"]
    assert graph.future.get_name() == "middle"
    stack = [entry.frame.f_code.co_qualname for entry in graph.call_stack]
    assert stack == ["call_graph_of.<locals>.leaf", "call_graph_of.<locals>.middle"]
    # The task that awaits `middle` is the one running main(), through its TaskGroup.
    [awaiter] = graph.awaited_by
    awaiter_stack = [entry.frame.f_code.co_qualname for entry in awaiter.call_stack]
    assert awaiter_stack[:3] == ["TaskGroup._aexit", "TaskGroup.__aexit__",
                                 "call_graph_of.<locals>.main"]
    text = graphs["formatted"]
    assert text.startswith("* Task(name='middle', id=0x")
    assert "call_graph_of.<locals>.leaf()" in text and "call_graph_of.<locals>.middle()" in text


def test_call_graph_is_the_same_on_both_loops():
    import ferroloop
    graphs = []
    for factory in (ferroloop.new_event_loop, asyncio.SelectorEventLoop):
        loop = factory()
        try:
            graphs.append(normalize(call_graph_of(loop)["formatted"]))
        finally:
            loop.close()
    assert graphs[0] == graphs[1]


def test_print_call_graph_prints_the_graph(loop, capsys):
    async def main():
        async def inner():
            asyncio.print_call_graph()
        await asyncio.create_task(inner(), name="inner")

    run(loop, main())
    printed = capsys.readouterr().out
    assert printed.startswith("* Task(name='inner', id=0x")
    assert "in print_call_graph()" in printed
    assert "in async test_print_call_graph_prints_the_graph.<locals>.main.<locals>.inner()" \
        in printed


PROGRAM = textwrap.dedent("""
    import asyncio, signal, sys

    async def leaf():
        await asyncio.sleep(60)

    async def worker():
        async with asyncio.TaskGroup() as group:
            group.create_task(leaf(), name="leaf-a")
            group.create_task(leaf(), name="leaf-b")

    async def main():
        task = asyncio.create_task(worker(), name="worker")
        await asyncio.sleep(0)
        print("ready", flush=True)
        await task

    # The test stops this program with SIGTERM, whatever the runner passed on.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.argv[1] == "ferroloop":
        import ferroloop
        ferroloop.run(main())
    else:
        asyncio.run(main())
""")


def asyncio_tool(command, loop_name):
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, loop_name], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        tool = subprocess.run([sys.executable, "-m", "asyncio", command, str(proc.pid)],
                              capture_output=True, text=True, timeout=60)
        assert tool.returncode == 0, tool.stderr
        return tool.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_asyncio_ps_and_pstree_list_the_tasks_of_a_running_program(loop_name, command):
    out = asyncio_tool(command, loop_name)
    for name in ("Task-1", "worker", "leaf-a", "leaf-b"):
        assert name in out, out
    if command == "ps":
        rows = {line.split()[2]: line for line in out.splitlines()[2:]}
        assert "TaskGroup._aexit -> TaskGroup.__aexit__ -> worker" in rows["worker"]
        assert "sleep -> leaf" in rows["leaf-a"] and rows["leaf-a"].split()[-2] == "worker"
    else:
        assert re.search(r"\(T\) worker\n.*worker .*:\d+\n", out), out


@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_asyncio_ps_and_pstree_show_the_same_on_both_loops(command):
    assert normalize(asyncio_tool(command, "ferroloop")) == \
        normalize(asyncio_tool(command, "asyncio"))
