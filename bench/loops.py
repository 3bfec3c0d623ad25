"""The loops `make bench` times, how each is made, and how the rivals are installed.

    python bench/loops.py install    # installs what is missing; a failure is reported, not fatal
    python bench/loops.py status     # each rival: available, or UNAVAILABLE and why

A rival that cannot be installed or cannot make a loop here is UNAVAILABLE: the bench shows
it so and goes on. rsloop publishes no Linux wheel, and its sdist pins a nightly toolchain;
it builds with the stable one when told to accept the one unstable feature it uses. That
build takes minutes, so its wheel is cached, outside the checkout, for the next virtualenv.
"""

import importlib
import importlib.util
import json
import os
import subprocess
import sys

# Module name -> pinned requirement. Each exposes new_event_loop().
RIVALS = {
    "uvloop": "uvloop==0.23.0",
    "rloop": "rloop==0.5.0",
    "rsloop": "rsloop==0.1.66",
    "loopmini": "loopmini==0.2.3",
    "zuvloop": "zuvloop==0.0.17",
}
# Built from source, with these settings, into the wheel cache.
FROM_SOURCE = {
    "rsloop": {"RUSTUP_TOOLCHAIN": "stable", "RUSTC_BOOTSTRAP": "1",
               "RUSTFLAGS": "-Zcrate-attr=feature(allocator_api)"},
}
WHEEL_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ferroloop-bench", "wheels")
# Written next to the virtualenv's interpreter, so that each virtualenv knows its own.
STATUS_FILE = os.path.join(sys.prefix, "ferroloop-bench-rivals.json")

# In the order of the tables. ferroloop runs twice: as is, and with its watchdog and monitor
# on ("ferroloop+watch"), to measure what those cost.
LOOPS = ("asyncio", *RIVALS, "ferroloop", "ferroloop+watch")
# The watched loop's settings: a threshold no healthy callback reaches, and a socket.
WATCHDOG = 0.1


def new_loop(name):
    if name == "asyncio":
        import asyncio
        return asyncio.new_event_loop()
    if name in RIVALS:
        return importlib.import_module(name).new_event_loop()
    import ferroloop
    if name == "ferroloop+watch":
        import tempfile
        monitor = os.path.join(tempfile.gettempdir(), f"ferroloop-bench-{os.getpid()}.sock")
        return ferroloop.Loop(watchdog=WATCHDOG, monitor=monitor)
    return ferroloop.new_event_loop()


PROBE = "import asyncio, importlib, sys; loop = importlib.import_module(sys.argv[1]).new_event_loop(); " \
        "loop.run_until_complete(asyncio.sleep(0)); loop.close()"


def probe(name):
    """None if `name` makes a loop that runs in a fresh interpreter, else why not."""
    proc = subprocess.run([sys.executable, "-c", PROBE, name], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"


def pip(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args],
                          capture_output=True, text=True, env=env, timeout=1800)


def install_one(name):
    """Installs the pinned rival; returns None, or the reason it is unavailable."""
    requirement = RIVALS[name]
    if name not in FROM_SOURCE:
        proc = pip("--only-binary", ":all:", requirement)
        return None if proc.returncode == 0 else last_line(proc.stderr)
    os.makedirs(WHEEL_CACHE, exist_ok=True)
    if pip("--no-index", "--find-links", WHEEL_CACHE, requirement).returncode == 0:
        return None
    sys.stderr.write(f"  building {requirement} from source (minutes; cached afterwards)\n")
    env = dict(os.environ, **FROM_SOURCE[name])
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-binary", name,
         "-w", WHEEL_CACHE, requirement], capture_output=True, text=True, env=env, timeout=3600)
    if built.returncode != 0:
        return "build failed: " + last_line(built.stderr)
    proc = pip("--no-index", "--find-links", WHEEL_CACHE, requirement)
    return None if proc.returncode == 0 else last_line(proc.stderr)


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip().removeprefix("ERROR: ")[:200] if lines else "no output"


def install():
    status = {}
    for name in RIVALS:
        why = None
        if importlib.util.find_spec(name) is None:
            why = install_one(name)
        status[name] = why or probe(name)
        print(f"{name:10} {'available' if status[name] is None else 'UNAVAILABLE: ' + status[name]}")
    with open(STATUS_FILE, "w") as f:
        json.dump(status, f, indent=1)


def unavailable():
    """Rival -> why it is unavailable, for those that are; probed again where the install
    step left no record (a virtualenv set up by hand)."""
    try:
        with open(STATUS_FILE) as f:
            status = json.load(f)
    except FileNotFoundError:
        status = {}
    for name in RIVALS:
        if name not in status:
            status[name] = probe(name) if importlib.util.find_spec(name) else "not installed"
    return {name: why for name, why in status.items() if why}


def main():
    if sys.argv[1:] == ["install"]:
        install()
    elif sys.argv[1:] == ["status"]:
        missing = unavailable()
        for name in RIVALS:
            print(f"{name:10} {'UNAVAILABLE: ' + missing[name] if name in missing else 'available'}")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
