"""ferroloop.format_tasks(loop): the loop's tasks as a tree of who awaits whom.

Who awaits whom comes from asyncio.capture_call_graph on 3.14+, which knows gather() and
TaskGroup; on 3.11-3.13, from the future each task waits for (a task, or gather()'s
tasks), which misses TaskGroup's children: they are drawn as roots there. Each line names the task and where each coroutine in its
chain is, innermost last.
"""

import asyncio
import os

from . import _compat


def _chain(task):
    """`(name, file, line)` of each coroutine the task's own coroutine awaits through,
    outermost first."""
    chain = []
    coro = task.get_coro() if hasattr(task, "get_coro") else None
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append((frame.f_code.co_name, frame.f_code.co_filename, frame.f_lineno))
        awaited = getattr(coro, "cr_await", None)
        coro = awaited if awaited is not None else getattr(coro, "gi_yieldfrom", None)
    return chain


def _children(tasks):
    """Each task's parent (the task awaiting it), or no entry for a root."""
    parent = {}
    if _compat.HAS_CALL_GRAPH:
        for task in tasks:
            graph = asyncio.capture_call_graph(task, limit=0)
            awaiting = [g.future for g in graph.awaited_by if g.future in tasks]
            if awaiting:
                parent[task] = awaiting[0]
        return parent
    for task in tasks:
        awaited = _compat.awaited_future(task)
        for child in (awaited, *_compat.gathering_children(awaited)):
            if child in tasks and child is not task:
                parent.setdefault(child, task)
    return parent


def _line(task):
    chain = _chain(task)
    name = task.get_name() if hasattr(task, "get_name") else repr(task)
    if not chain:
        coro = task.get_coro() if hasattr(task, "get_coro") else None
        qualname = getattr(coro, "__qualname__", None)
        return f"{name}: {qualname}() (done)" if qualname else f"{name} (no coroutine)"
    where = " > ".join(f"{fn}()" for fn, _, _ in chain)
    _, filename, line = chain[-1]
    return f"{name}: {where} at {os.path.basename(filename)}:{line}"


def describe_task(task):
    """A task as the watchdog names it: its name, and where its coroutines are."""
    return f"<Task {_line(task)}>"


def format_tasks(loop):
    """The loop's unfinished tasks as a tree, one task per line, each under the task that
    awaits it; the task running now is marked with '*'."""
    tasks = set(asyncio.all_tasks(loop))
    parent = _children(tasks)
    children = {}
    for child, owner in parent.items():
        children.setdefault(owner, []).append(child)
    current = asyncio.current_task(loop)
    order = sorted(tasks, key=lambda t: t.get_name() if hasattr(t, "get_name") else "")
    lines = []

    def draw(task, prefix, last, depth, seen):
        branch = "" if depth == 0 else ("`-- " if last else "|-- ")
        mark = "* " if task is current else ""
        lines.append(f"{prefix}{branch}{mark}{_line(task)}")
        seen.add(task)
        kids = [t for t in order if t in children.get(task, ()) and t not in seen]
        inner = prefix if depth == 0 else prefix + ("    " if last else "|   ")
        for i, kid in enumerate(kids):
            draw(kid, inner, i == len(kids) - 1, depth + 1, seen)

    seen = set()
    for task in order:
        if task not in parent:
            draw(task, "", True, 0, seen)
    # A cycle of awaits has no root: show what is left.
    for task in order:
        if task not in seen:
            draw(task, "", True, 0, seen)
    return "\n".join(lines)
