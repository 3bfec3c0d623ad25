"""The seed programs: each runs unchanged on the stdlib loop and under
`python -m ferroloop`, with the same output; a probe proves which loop ran."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import EXAMPLES, ROOT, run_python

# Prints the class of every loop that ran, so the ferroloop run proves it used ferroloop.
PROBE = """
import asyncio.events, atexit, runpy, sys
seen = set()
original = asyncio.events._set_running_loop
def spy(loop):
    if loop is not None:
        seen.add(type(loop).__module__.split('.')[0])
    original(loop)
asyncio.events._set_running_loop = spy
atexit.register(lambda: print('LOOPS', sorted(seen), file=sys.stderr))
mode, script, *args = sys.argv[1:]
if mode == 'ferroloop':
    from ferroloop.__main__ import main
    sys.exit(main([script, *args]))
sys.argv = [script, *args]
runpy.run_path(script, run_name='__main__')
"""


def run_example(mode, name, *args, timeout=60):
    return run_python("-c", PROBE, mode, os.path.join(EXAMPLES, name), *args, timeout=timeout)


def loops_seen(stderr):
    line = [ln for ln in stderr.splitlines() if ln.startswith("LOOPS ")][-1]
    return eval(line[len("LOOPS "):])


@pytest.mark.parametrize("name", [
    "get_event_loop.py", "two_tasks.py", "gather.py", "executor.py", "threads.py",
    "all_tasks.py",
])
def test_program_same_output(name):
    stdlib = run_example("asyncio", name)
    ours = run_example("ferroloop", name)
    assert stdlib.returncode == 0, stdlib.stderr
    assert ours.returncode == 0, ours.stderr
    assert loops_seen(stdlib.stderr) == ["asyncio"]
    assert loops_seen(ours.stderr) == ["ferroloop"]
    assert ours.stdout == stdlib.stdout
    assert ours.stdout.strip()


def test_two_tasks_output():
    out = run_example("ferroloop", "two_tasks.py").stdout
    assert out.splitlines() == [
        "fast done after 1s", "slow done after 2s", "order ['fast', 'slow']",
        "total about 2s: True"]


def test_debug_slow_callback_warning_names_it():
    for mode in ("asyncio", "ferroloop"):
        proc = run_example(mode, "debug_slow_callback.py")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "done\n"
        warnings = [ln for ln in proc.stderr.splitlines() if "Executing" in ln]
        assert len(warnings) == 1, proc.stderr
        assert "slow_callback()" in warnings[0] and "took 0.2" in warnings[0], warnings
        assert warnings[0].startswith("WARNING asyncio: Executing <Handle slow_callback()")


def test_subclass_of_loop_runs_tasks():
    ours = run_python(os.path.join(EXAMPLES, "subclass.py"))
    stdlib = run_python(os.path.join(EXAMPLES, "subclass.py"), "asyncio")
    assert ours.returncode == 0, ours.stderr
    # run_until_complete wraps main() in a task too: 1 + 3.
    assert ours.stdout == stdlib.stdout == "[0, 1, 2] tasks created: 4\nTrue\n"


@pytest.mark.parametrize("mode", ["asyncio", "ferroloop"])
@pytest.mark.parametrize("scenario, expected", [
    ("forever", "ready\nKeyboardInterrupt out of run_forever\nclosed True\n"),
    ("run", "ready\nmain task cancelled\nKeyboardInterrupt out of asyncio.run\n"),
])
def test_sigint(mode, scenario, expected):
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE, mode, os.path.join(EXAMPLES, "sigint.py"), scenario],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert "ready\n" + out == expected, err
    assert loops_seen(err) == [mode]


def test_demo_runs():
    # The demo is what `make run` shows; it must run to the end and print its table.
    proc = run_python("-c", "import sys, ferroloop._demo as d; sys.exit(d.main(budget=0.5))",
                      cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "running loop: ferroloop._loop.Loop" in proc.stdout
    assert "call_soon chain" in proc.stdout and "ratio" in proc.stdout
