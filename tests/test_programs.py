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
import asyncio.events, atexit, runpy, signal, sys
# The examples rely on Ctrl-C raising KeyboardInterrupt, which a runner started in the
# background or under nohup passes on as ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
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


# The tests that stop a child with a signal, each of which must set (or have the child
# set) the disposition it relies on.
SIGNALLING_TESTS = [
    "tests/test_programs.py::test_sigint",
    "tests/test_aiohttp.py::test_run_app_serves_on_ferroloop",
    "tests/test_introspection.py::test_asyncio_ps_and_pstree_list_the_tasks_of_a_running_program",
    "tests/test_recipes.py::test_uvicorn_serves_on_ferroloop",
]


def ignore_what_background_runners_ignore():
    # A shell's background job ignores SIGINT; nohup ignores SIGHUP. Children inherit both.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def test_signalling_tests_pass_under_a_runner_that_ignores_sigint_and_sighup():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SIGNALLING_TESTS],
        cwd=ROOT, preexec_fn=ignore_what_background_runners_ignore, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout, proc.stdout[-2000:]


def test_demo_runs():
    # The demo is what `make run` shows; it must run to the end and print its table.
    proc = run_python("-c", "import sys, ferroloop._demo as d; sys.exit(d.main(budget=0.5))",
                      cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "running loop: ferroloop._loop.Loop" in proc.stdout
    assert "call_soon chain" in proc.stdout and "ratio" in proc.stdout
