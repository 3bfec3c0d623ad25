"""`python -m ferroloop script.py args...` behaves as `python script.py args...`."""

import os
import textwrap

from conftest import run_python


def write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_script_runs_on_ferroloop_with_argv_and_main(tmp_path):
    script = write(tmp_path, "prog.py", """
        import asyncio, sys, os
        async def main():
            loop = asyncio.get_running_loop()
            print(type(loop).__module__, __name__, sys.argv, os.path.basename(sys.path[0]))
        asyncio.run(main())
    """)
    proc = run_python("-m", "ferroloop", script, "a", "--b")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"ferroloop._loop __main__ {[script, 'a', '--b']!r} {tmp_path.name}\n"


def test_exit_code_and_exception_as_python_would(tmp_path):
    script = write(tmp_path, "exit3.py", "import sys; sys.exit(3)\n")
    assert run_python("-m", "ferroloop", script).returncode == 3
    script = write(tmp_path, "boom.py", "raise ValueError('boom')\n")
    proc = run_python("-m", "ferroloop", script)
    assert proc.returncode == 1
    assert "ValueError: boom" in proc.stderr


def test_imports_from_script_directory(tmp_path):
    write(tmp_path, "helper.py", "VALUE = 7\n")
    script = write(tmp_path, "main.py", "import helper; print(helper.VALUE)\n")
    proc = run_python("-m", "ferroloop", script, cwd="/")
    assert proc.stdout == "7\n", proc.stderr


def test_run_module(tmp_path):
    write(tmp_path, "mymod.py", """
        import asyncio, sys
        async def main():
            print(type(asyncio.get_running_loop()).__name__, sys.argv[1:])
        asyncio.run(main())
    """)
    proc = run_python("-m", "ferroloop", "-m", "mymod", "x", cwd=str(tmp_path),
                      env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loop ['x']\n"


def test_missing_script():
    proc = run_python("-m", "ferroloop", "/nonexistent/script.py")
    assert proc.returncode == 2
    assert "can't open file" in proc.stderr


def test_script_from_stdin_and_pipe():
    code = "import asyncio\nasync def m(): print(type(asyncio.get_running_loop()).__name__)\nasyncio.run(m())\n"
    for arg in ("-", "/dev/stdin"):
        proc = run_python("-m", "ferroloop", arg, input=code)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "Loop\n"


def test_demo_runs_the_scenarios_then_the_side_by_side():
    # `python -m ferroloop` with no script; a short budget keeps it to its three rounds.
    proc = run_python("-c", "import ferroloop._demo as d; raise SystemExit(d.main(budget=0.1))",
                      timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "running loop: ferroloop._loop.Loop" in out
    assert "create_task: 0.1 s task finished first" in out
    for name in ("call_soon chain", "tasks doing sleep(0)", "future ping-pong",
                 "call_later, half cancelled", "TCP echo, 1 KiB round trips"):
        line = next(l for l in out.splitlines() if l.strip().startswith(name))
        assert line.rstrip().endswith("x"), line
