"""python -m ferroloop [--watchdog SECONDS] [--monitor PATH] [script.py | - | -m module] [args ...]
python -m ferroloop monitor PATH

Runs a script (a file, `-` for standard input, or a module) with ferroloop as asyncio's
event loop: sys.argv, __main__, sys.path[0] and the exit code are as `python script.py`
would have them. With no arguments, runs the demo.

--watchdog SECONDS logs what blocks the loop for that long, while it blocks
(FERROLOOP_WATCHDOG); --monitor PATH serves a live view on that Unix socket
(FERROLOOP_MONITOR), which `python -m ferroloop monitor PATH` shows.
"""

import os
import runpy
import sys

USAGE = ("usage: python -m ferroloop [--watchdog SECONDS] [--monitor PATH] "
         "[script.py | - | -m module] [args ...]\n"
         "       python -m ferroloop monitor PATH")

# Options before the script, and the environment variable each sets for its loops.
OPTIONS = {"--watchdog": "FERROLOOP_WATCHDOG", "--monitor": "FERROLOOP_MONITOR"}


def _run_source(path, source):
    """Runs source read from a pipe (or `-`, stdin) as __main__, as `python -` does.
    runpy.run_path would first probe the path as a zip archive, consuming the pipe."""
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    exec(compile(source, path, "exec"), main.__dict__)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        from ._demo import main as demo
        return demo()
    if argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv[0] == "--version":
        from . import __version__
        print(f"ferroloop {__version__}")
        return 0
    if argv[0] == "monitor":
        if len(argv) != 2:
            print(USAGE, file=sys.stderr)
            return 2
        from ._monitor import main as monitor
        return monitor(argv[1])
    while argv and argv[0].split("=", 1)[0] in OPTIONS:
        option, _, value = argv.pop(0).partition("=")
        if not value:
            if not argv:
                print(USAGE, file=sys.stderr)
                return 2
            value = argv.pop(0)
        os.environ[OPTIONS[option]] = value
    if not argv:
        from ._demo import main as demo
        return demo()

    from . import _compat, _policy
    # asyncio.run() and new_event_loop() in the script make ferroloop loops; on 3.14+
    # without the DeprecationWarning the policy API gives, since the script did not ask.
    _compat.set_policy_quietly(_policy.policy_class()())
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0] == "-":
        sys.argv = argv
        sys.path[0] = ""
        _run_source("<stdin>", sys.stdin.read())
    else:
        script = argv[0]
        if not os.path.exists(script):
            print(f"{sys.executable}: can't open file {script!r}: "
                  f"[Errno 2] No such file or directory", file=sys.stderr)
            return 2
        sys.argv = argv
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        if os.path.isfile(script):
            runpy.run_path(script, run_name="__main__")
        else:
            with open(script, "rb") as f:
                _run_source(script, f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
