"""What the watchdog and the monitor say of the loop. The native threads decide when to
speak (src/runtime/watchdog.rs); these functions, called on their threads with the GIL,
decide what to say."""

import asyncio
import logging
import sys
import traceback

from ._tasks import describe_task, format_tasks

logger = logging.getLogger("asyncio")

# The kinds of entry the loop runs (src/py/event_loop/watch.rs).
HANDLE, READING, WRITING, STEP, WAKE = range(5)

# How many lines of the task tree the monitor shows.
TASK_LINES = 12


def _task_of(callback):
    owner = getattr(callback, "__self__", None)
    return owner if asyncio.isfuture(owner) and hasattr(owner, "get_coro") else None


def describe(loop, obj, kind):
    """What an entry of the ready queue is: its Task, or the callback's repr."""
    if kind == HANDLE:
        task = _task_of(obj._callback)
        return describe_task(task) if task is not None else repr(obj)
    if kind == READING:
        return f"reading for {obj!r}"
    if kind == WRITING:
        return f"writing for {obj!r}"
    if kind == STEP:
        return f"connection set-up or tear-down of {obj!r}"
    return f"waking {obj!r}"


def _gil_held_for(waited):
    # A thread waiting for the GIL gets it within a few switch intervals, unless the
    # holder runs C code that never lets go of it.
    return waited > max(0.05, 10 * sys.getswitchinterval())


def blocked(loop, obj, kind, elapsed, report, waited, earlier, log):
    """One report of a callback that has run `elapsed` seconds. `obj` is None when it
    returned before the GIL could be had (`waited` seconds). Returns what it runs."""
    what = describe(loop, obj, kind) if obj is not None else earlier
    if what is None:
        what = "a callback"
    if not log:
        return what
    still = "still " if report else ""
    lines = [f"ferroloop watchdog: the event loop is {still}blocked: "
             f"{what} has run for {elapsed:.3f} seconds"]
    if _gil_held_for(waited):
        lines.append(
            f"The loop thread held the GIL for {waited:.3f} seconds without letting go "
            f"(a C call that does not release it, such as a long regular expression "
            f"match), so its stack could not be read while it blocked.")
    if obj is None:
        lines.append("It returned before its stack could be read.")
    else:
        frame = sys._current_frames().get(loop._thread_id)
        if frame is not None:
            if _gil_held_for(waited):
                lines.append("This is its stack now that the call has returned "
                             "(innermost last):")
            else:
                lines.append("Stack of the loop thread (innermost last):")
            lines.append("".join(traceback.format_stack(frame)).rstrip("\n"))
    logger.warning("\n".join(lines))
    return what


def returned(loop, what, total):
    """The summary line, once the blocking callback has returned."""
    took = "" if total is None else f" after {total:.3f} seconds"
    logger.warning("ferroloop watchdog: the event loop is running again: %s returned%s",
                   what or "the blocking callback", took)


def tasks_summary(loop):
    """`(count, tree)` for the monitor: how many tasks, and the top of their tree."""
    tasks = asyncio.all_tasks(loop)
    lines = format_tasks(loop).splitlines()
    if len(lines) > TASK_LINES:
        lines = lines[:TASK_LINES] + [f"... {len(lines) - TASK_LINES} more"]
    return len(tasks), "\n".join(lines)
