"""CPython's own asyncio test suite, run on ferroloop.

Each module of ``test.test_asyncio`` runs in its own subprocess with a time limit, twice:
once on the stdlib loop (the baseline: what this CPython passes on this machine) and once
with ferroloop substituted. Substitution: the per-loop test classes' ``create_event_loop``
returns a ferroloop loop, the event loop policy is ferroloop's (also after a test resets
it), so ``asyncio.new_event_loop()``/``asyncio.run()`` create ferroloop loops. Inside the
run, each test records how many ferroloop loops it created and ran: that is the proof that
ferroloop, not the stdlib loop, was under test.

Per module it prints ``module: N passed, N failed, N skipped`` where "failed" counts
failures that are neither failures of the stdlib baseline nor listed in
known_failures.txt; then a total line. Exit status 1 when any such failure occurs.

A failing test is shown with its traceback and run again, alone, in fresh processes, as
CPython's own regrtest does with ``--rerun``: one that then passes every time is reported
as flaky, not failed. (Some of CPython's tests fail by chance: in
test_create_connection_local_addr_skip_different_family the kernel may hand the client
the free port it is meant to be refused on, and the socket connects to itself.)

    python conformance/run.py [--modules test_tasks,test_locks] [--timeout 900] [-v]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

IN_SCOPE = [
    # The loop core.
    "test_futures", "test_futures2", "test_tasks", "test_locks", "test_queues",
    "test_taskgroups", "test_timeouts", "test_waitfor", "test_runners", "test_context",
    "test_pep492", "test_threads", "test_events", "test_base_events",
    # Eager tasks and task factories (3.12+), staggered_race (3.12+), call-graph
    # introspection (3.14+), asyncio's thread-safety (3.14+), `asyncio ps` (3.14+).
    "test_eager_task_factory", "test_staggered", "test_graph", "test_free_threading",
    "test_tools", "test_transports",
    # Networking, pipes, subprocesses and TLS: today CPython's transports on ferroloop's
    # poller; the bar any native transport must keep.
    "test_streams", "test_sock_lowlevel", "test_server", "test_buffered_proto",
    "test_protocols", "test_unix_events", "test_sendfile", "test_subprocess", "test_ssl",
    "test_sslproto",
    # Server and transport contexts (3.15+).
    "test_server_context",
]

# Modules that create no loop at all; they run for completeness.
LOOP_FREE = {
    "test_protocols": "tests the Protocol base classes' default methods",
    "test_transports": "tests the Transport base classes with a mock loop",
    "test_tools": "tests `asyncio ps`/`pstree` formatting of recorded task data "
                  "(tests/test_introspection.py runs them against a live ferroloop program)",
}

# Modules of which some classes unit-test CPython's own loop classes (built directly, with
# mocked selectors) rather than any loop a program gets; those tests run, and count, but
# ran no ferroloop loop.
PARTLY_CPYTHONS_OWN = {
    "test_base_events": "BaseEventLoopTests and BaseLoopSockSendfileTests build "
                        "base_events.BaseEventLoop / BaseSelectorEventLoop themselves",
    "test_unix_events": "its pipe transport and child watcher tests use a fake-clock TestLoop",
}

# Modules left out, and why. They test CPython's private classes, not a loop's behaviour.
OUT_OF_SCOPE = {
    "test_selector_events": "unit-tests BaseSelectorEventLoop and _SelectorTransport, built "
                            "directly over mock selectors and mock sockets: the classes "
                            "ferroloop's native poller and transports replace",
    "test_proactor_events": "Windows proactor internals",
    "test_windows_events": "Windows only",
    "test_windows_utils": "Windows only",
}

# test_events runs its loop tests once per selector; ferroloop has one poller, so the
# epoll variant runs on ferroloop and the others, duplicates, are dropped.
DUPLICATE_CLASSES = {"test_events": ("PollEventLoopTests", "SelectEventLoopTests")}

# Modules whose tests take `asyncio.BaseEventLoop()` as their loop; they get ferroloop's.
BARE_BASE_EVENT_LOOP = ("test_pep492", "test_runners")

# Modules whose tests build `asyncio.SelectorEventLoop()` themselves; they get ferroloop's.
DIRECT_SELECTOR_LOOP = ("test_server", "test_buffered_proto", "test_unix_events",
                        "test_base_events")

# Modules whose fake-clock TestLoop tests assert on TestLoop's own bookkeeping
# (`loop.assert_reader`): they unit-test CPython's pipe transports, not a loop, and keep it.
KEEPS_TEST_LOOP = ("test_unix_events",)


def dropped(test_id):
    module, cls = test_id.split(".")[:2]
    return cls in DUPLICATE_CLASSES.get(module, ())


def load_known_failures():
    known = {}
    path = os.path.join(HERE, "known_failures.txt")
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, _, reason = line.partition(" ")
            reason = reason.strip().lstrip("#").strip()
            if not reason:
                raise SystemExit(f"known_failures.txt: {test_id} has no reason")
            known[test_id] = reason
    return known


# --- worker: runs one module in this process --------------------------------------------

def substitute_ferroloop():
    """Makes every loop a test creates through public means a ferroloop loop; returns the
    counters of loops created and run."""
    import asyncio
    import ferroloop

    created = {"loops": 0, "runs": 0}
    original_init = ferroloop.Loop.__init__
    original_run_forever = ferroloop.Loop.run_forever

    def counting_init(self, *args, **kwargs):
        created["loops"] += 1
        original_init(self, *args, **kwargs)

    def counting_run_forever(self):
        created["runs"] += 1
        return original_run_forever(self)

    ferroloop.Loop.__init__ = counting_init
    ferroloop.Loop.run_forever = counting_run_forever

    # A test that resets the policy (set_event_loop_policy(None), or 3.14's private
    # _set_event_loop_policy(None)) gets ferroloop's again: asyncio makes its default
    # policy from `asyncio.DefaultEventLoopPolicy` (3.13) or from unix_events (3.14+).
    from asyncio import unix_events
    from ferroloop import _compat
    policy = ferroloop._policy.policy_class()
    if hasattr(unix_events, "_DefaultEventLoopPolicy"):
        unix_events._DefaultEventLoopPolicy = policy
    else:
        asyncio.DefaultEventLoopPolicy = policy
    _compat.set_policy_quietly(policy())
    # Tests that name the default loop class (3.13's `asyncio.EventLoop`, as IsolatedAsyncioTestCase
    # loop_factory) get ferroloop's; the module is imported after this, so class bodies see it.
    asyncio.EventLoop = ferroloop.Loop

    probe = asyncio.new_event_loop()
    assert type(probe) is ferroloop.Loop, f"substitution failed: {type(probe)!r}"
    probe.close()
    created["loops"] = created["runs"] = 0
    return created


def substitute_in_module(module):
    """What a test module builds itself: its fake-clock loops, and loop classes it names."""
    import asyncio
    import ferroloop

    # TestLoop is a fake-clock loop; tests that drive its clock (a generator) keep it, the
    # others get a real loop: ferroloop.
    from test.test_asyncio import utils as test_utils
    fake_clock_loop = test_utils.TestCase.new_test_loop

    def new_test_loop(self, gen=None):
        if gen is not None:
            return fake_clock_loop(self, gen)
        loop = ferroloop.new_event_loop()
        self.set_event_loop(loop)
        return loop

    short_name = module.__name__.rsplit(".", 1)[-1]
    if short_name not in KEEPS_TEST_LOOP:
        test_utils.TestCase.new_test_loop = new_test_loop

    # Modules that construct loop classes themselves see ferroloop's under asyncio's names.
    if short_name in BARE_BASE_EVENT_LOOP or short_name in DIRECT_SELECTOR_LOOP:
        import types
        module.asyncio = types.SimpleNamespace(**vars(asyncio))
        if short_name in BARE_BASE_EVENT_LOOP:
            module.asyncio.BaseEventLoop = ferroloop.new_event_loop
        else:
            module.asyncio.SelectorEventLoop = ferroloop.Loop

    for name in DUPLICATE_CLASSES.get(module.__name__.rsplit(".", 1)[-1], ()):
        if hasattr(module, name):
            delattr(module, name)
    for obj in list(vars(module).values()):
        if isinstance(obj, type) and any("create_event_loop" in vars(k) for k in obj.__mro__):
            obj.create_event_loop = lambda self: ferroloop.new_event_loop()


def worker(module_name, use_ferroloop, out_path, test_ids=()):
    import importlib
    import signal
    import unittest

    # Tests interrupt themselves (test_runners); a runner started in the background or
    # under nohup passes SIGINT on as ignored, and such a test would then never end.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    if use_ferroloop:
        counters = substitute_ferroloop()
        module = importlib.import_module(f"test.test_asyncio.{module_name}")
        substitute_in_module(module)
    else:
        counters = None
        module = importlib.import_module(f"test.test_asyncio.{module_name}")

    outcomes = {}

    class Recorder(unittest.TestResult):
        # A skipped class reports addSkip without startTest (3.12), hence the default.
        _before = None

        def startTest(self, test):
            super().startTest(test)
            self._before = dict(counters) if counters else None

        def _record(self, test, status):
            test_id = test.id().replace("test.test_asyncio.", "")
            on_ferroloop = bool(counters and self._before and counters["runs"] > self._before["runs"])
            previous = outcomes.get(test_id)
            # A test with several outcomes (subTests, errors in cleanups) keeps the worst.
            if previous is None or previous[0] == "passed" or status in ("failed", "error"):
                outcomes[test_id] = (status, on_ferroloop)

        def addSuccess(self, test):
            super().addSuccess(test)
            self._record(test, "passed")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._record(test, "failed")
            sys.stderr.write(f"FAIL {test.id()}\n{self._exc_info_to_string(err, test)}\n")

        def addError(self, test, err):
            super().addError(test, err)
            self._record(test, "error")
            sys.stderr.write(f"ERROR {test.id()}\n{self._exc_info_to_string(err, test)}\n")

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            self._record(test, "skipped")

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._record(test, "passed")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._record(test, "failed")

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                failed = issubclass(err[0], test.failureException)
                self._record(test, "failed" if failed else "error")
                sys.stderr.write(f"SUBTEST {subtest.id()}\n{self._exc_info_to_string(err, test)}\n")

        def stopTest(self, test):
            super().stopTest(test)
            with open(out_path, "w") as f:
                json.dump(outcomes, f)

    loader = unittest.defaultTestLoader
    if test_ids:
        suite = unittest.TestSuite(loader.loadTestsFromName(test_id.split(".", 1)[1], module)
                                   for test_id in test_ids)
    else:
        suite = loader.loadTestsFromModule(module)
    suite.run(Recorder())
    with open(out_path, "w") as f:
        json.dump(outcomes, f)


# --- driver ------------------------------------------------------------------------------

RERUNS = 3
# More failures than this in one module is no chance event; they are not rerun.
MAX_RERUN = 10
TRACEBACK_LINES = 40


def failure_text(log_path, test_id):
    """The traceback the worker logged for test_id (the first, if several), cut to its
    last lines."""
    full_id = f"test.test_asyncio.{test_id}"
    with open(log_path, errors="replace") as f:
        lines = f.read().splitlines()
    heads = [i for i, line in enumerate(lines)
             if line.split(" ", 1)[0] in ("FAIL", "ERROR", "SUBTEST")]
    for n, i in enumerate(heads):
        if lines[i].split(" ")[1:2] == [full_id]:
            end = heads[n + 1] if n + 1 < len(heads) else len(lines)
            body = [line for line in lines[i + 1:end] if line.strip()]
            return "\n".join([lines[i]] + body[-TRACEBACK_LINES:])
    return f"(no traceback for {test_id} in {log_path})"


def flaky_among(module, failed, timeout, log_dir):
    """Those of `failed` that pass every one of RERUNS fresh runs on ferroloop."""
    flaky = set(failed)
    for attempt in range(1, RERUNS + 1):
        outcomes, _, _, _, _ = run_module(module, True, timeout, log_dir, sorted(flaky),
                                          tag=f"ferroloop.rerun{attempt}")
        flaky = {t for t in flaky if outcomes.get(t, ("missing",))[0] == "passed"}
        if not flaky:
            break
    return flaky


def run_module(module, use_ferroloop, timeout, log_dir, test_ids=(), tag=None):
    fd, out_path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    tag = tag or ("ferroloop" if use_ferroloop else "stdlib")
    log_path = os.path.join(log_dir, f"{module}.{tag}.log")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", module, "--out", out_path]
    if use_ferroloop:
        cmd.append("--ferroloop")
    if test_ids:
        cmd += ["--tests", ",".join(test_ids)]
    started = time.monotonic()
    timed_out = False
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
            crashed = proc.returncode not in (0,)
        except subprocess.TimeoutExpired:
            timed_out, crashed = True, False
    try:
        with open(out_path) as f:
            outcomes = json.load(f)
    except (OSError, ValueError):
        outcomes = {}
    os.unlink(out_path)
    return outcomes, time.monotonic() - started, timed_out, crashed, log_path


def indent(text):
    return "\n".join("    | " + line for line in text.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", default=",".join(IN_SCOPE))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the stdlib run (then every failure counts)")
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--ferroloop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tests", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(args.worker, args.ferroloop, args.out, [t for t in args.tests.split(",") if t])
        return 0

    import ferroloop
    known = load_known_failures()
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="ferroloop-conformance-")
    print(f"CPython {sys.version.split()[0]}, ferroloop {ferroloop.__version__} "
          f"({ferroloop.build_profile}); logs in {log_dir}", flush=True)
    for name, why in OUT_OF_SCOPE.items():
        print(f"  excluded {name}: {why}")

    totals = {"passed": 0, "failed": 0, "skipped": 0, "flaky": 0}
    bad = False
    # A module this CPython ships that is neither in scope nor left out with a reason is
    # new: it must be looked at, so it fails the run.
    import test.test_asyncio
    shipped = {name[:-3] for name in os.listdir(os.path.dirname(test.test_asyncio.__file__))
               if name.startswith("test_") and name.endswith(".py")}
    for module in sorted(shipped - set(IN_SCOPE) - set(OUT_OF_SCOPE)):
        print(f"  NEW MODULE {module}: neither in scope nor left out with a reason")
        bad = True
    import importlib.util
    for module in [m for m in args.modules.split(",") if m]:
        if importlib.util.find_spec(f"test.test_asyncio.{module}") is None:
            print(f"  {module}: not in CPython {sys.version.split()[0]}; skipped")
            continue
        baseline = {}
        if not args.no_baseline:
            baseline, _, _, _, _ = run_module(module, False, args.timeout, log_dir)
        outcomes, elapsed, timed_out, crashed, log_path = run_module(module, True, args.timeout, log_dir)
        passed = skipped = 0
        unexpected, known_hit, stdlib_fails = [], [], []
        on_ferroloop = 0
        for test_id, (status, used) in sorted(outcomes.items()):
            on_ferroloop += used
            if status == "passed":
                passed += 1
            elif status == "skipped":
                skipped += 1
            elif test_id in known:
                known_hit.append(test_id)
            elif baseline.get(test_id, ("passed",))[0] in ("failed", "error"):
                stdlib_fails.append(test_id)
            else:
                unexpected.append(test_id)
        missing = [t for t, (s, _) in baseline.items()
                   if s == "passed" and t not in outcomes and not dropped(t)]
        tracebacks = {t: failure_text(log_path, t) for t in unexpected}
        flaky = set()
        if unexpected and len(unexpected) <= MAX_RERUN and not timed_out:
            flaky = flaky_among(module, unexpected, args.timeout, log_dir)
            unexpected = [t for t in unexpected if t not in flaky]
            passed += len(flaky)
        failed = len(unexpected) + len(missing)
        print(f"{module}: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
        notes = [f"{on_ferroloop} ran a ferroloop loop", f"{elapsed:.0f}s"]
        if known_hit:
            notes.append(f"{len(known_hit)} known failures")
        if stdlib_fails:
            notes.append(f"{len(stdlib_fails)} fail on the stdlib loop too")
        if flaky:
            notes.append(f"{len(flaky)} flaky: failed, then passed {RERUNS} reruns")
        if timed_out:
            notes.append(f"TIMED OUT after {args.timeout:.0f}s")
        if crashed:
            notes.append("worker exited abnormally")
        print(f"  ({'; '.join(notes)})")
        for test_id in sorted(flaky):
            print(f"  FLAKY {test_id}: failed once, passed {RERUNS} reruns alone; it failed so:")
            print(indent(tracebacks[test_id]))
        for test_id in unexpected:
            print(f"  FAILED {test_id}")
            print(indent(tracebacks[test_id]))
        for test_id in missing[:20]:
            print(f"  NOT RUN {test_id} (passes on the stdlib loop)")
        if args.verbose:
            for test_id in known_hit:
                print(f"  known {test_id}: {known[test_id]}")
            for test_id in stdlib_fails:
                print(f"  stdlib-too {test_id}")
        if module in LOOP_FREE:
            print(f"  (creates no loop: {LOOP_FREE[module]})")
        if module in PARTLY_CPYTHONS_OWN:
            print(f"  (not on ferroloop: {PARTLY_CPYTHONS_OWN[module]})")
        if failed or timed_out or (crashed and not outcomes) or (on_ferroloop == 0 and module not in LOOP_FREE):
            bad = True
            if on_ferroloop == 0 and module not in LOOP_FREE:
                print("  no test ran a ferroloop loop: substitution did not take")
            print(f"  see {log_path}")
        totals["passed"] += passed
        totals["failed"] += failed
        totals["skipped"] += skipped
        totals["flaky"] += len(flaky)
    flaky_note = f" ({totals['flaky']} of them flaky)" if totals["flaky"] else ""
    print(f"conformance: {totals['passed']} passed{flaky_note}, {totals['failed']} failed, "
          f"{totals['skipped']} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
