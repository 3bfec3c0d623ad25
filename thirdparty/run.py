"""Third-party test suites, each run on the stdlib loop and on ferroloop in one environment.

Each suite's tests come from its source distribution on PyPI (pinned below); the library
itself is the pinned wheel installed in the suite's own virtualenv, with ferroloop's
development build on its path. ferroloop_plugin.py puts the loop under test in place and
records the class of every loop each test made.

A test that fails on ferroloop and passes on the stdlib loop is a failure of this run,
unless known_differences.txt lists it with its reason. Such a test is first run once more
on ferroloop, and reported as flaky if it then passes.

    python thirdparty/run.py [--ci] [--suites aiohttp,httpx,httpcore] [--keep-going]

--ci runs the part CI runs: the suites' networking tests (SUITES[...]["ci"]); without it,
every test of every suite (run before each release).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(ROOT, ".thirdparty")

SUITES = {
    "aiohttp": {
        "sdist": ("aiohttp", "3.14.5"),
        "requirements": "requirements-aiohttp.txt",
        # pytest.ini's addopts ask for coverage and xdist; the markers are its own default.
        "options": ["-o", "addopts=", "-m", "not dev_mode and not autobahn and not internal",
                    "--ignore-glob=tests/test_benchmarks_*"],
        "ci": ["tests/test_client_functional.py", "tests/test_web_functional.py",
               "tests/test_client_ws_functional.py", "tests/test_web_websocket_functional.py",
               "tests/test_web_sendfile_functional.py", "tests/test_run_app.py",
               "tests/test_streams.py", "tests/test_test_utils.py", "tests/test_loop.py",
               "tests/test_web_server.py", "tests/test_proxy_functional.py",
               "tests/test_helpers.py"],
    },
    "httpx": {
        "sdist": ("httpx", "0.29.0"),
        "requirements": "requirements-httpx.txt",
        # The network-marked tests reach the internet.
        "options": ["-m", "not network"],
        "ci": None,  # all of it
    },
    "httpcore": {
        "sdist": ("httpcore", "1.0.9"),
        "requirements": "requirements-httpx.txt",
        "options": [],
        "ci": None,
    },
}
LOOPS = ("asyncio", "ferroloop")


def log(message):
    print(message, flush=True)


def venv_for(suite, python):
    """The suite's virtualenv for this CPython (shared by suites with one requirements
    file)."""
    requirements = os.path.join(HERE, SUITES[suite]["requirements"])
    version = "%d.%d" % sys.version_info[:2]
    name = os.path.splitext(SUITES[suite]["requirements"])[0]
    venv = os.path.join(WORK, f"venv-{name}-{version}")
    stamp = os.path.join(venv, ".requirements")
    wanted = open(requirements).read()
    if not (os.path.exists(stamp) and open(stamp).read() == wanted):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", venv], check=True)
        pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["--upgrade", "pip"], check=True)
        subprocess.run(pip + ["-r", requirements], check=True)
        with open(stamp, "w") as f:
            f.write(wanted)
    # ferroloop's development build (make build), not a copy of it.
    site = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, "ferroloop.pth"), "w") as f:
        f.write(os.path.join(ROOT, "python") + "\n")
    return os.path.join(venv, "bin", "python")


def source_of(suite, python):
    """The suite's unpacked source distribution, its package moved aside so that the tests
    import the installed wheel."""
    name, version = SUITES[suite]["sdist"]
    tree = os.path.join(WORK, f"{name}-{version}")
    if os.path.isdir(tree):
        return tree
    downloads = os.path.join(WORK, "sdists")
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    f"{name}=={version}", "-d", downloads], check=True)
    archive = os.path.join(downloads, f"{name}-{version}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(WORK, filter="data")
    os.rename(os.path.join(tree, name), os.path.join(tree, name + ".source"))
    return tree


def run_suite(suite, python, tree, loop, tests):
    report = os.path.join(WORK, f"{suite}-{loop}.xml")
    proof = os.path.join(WORK, f"{suite}-{loop}.proof.json")
    env = dict(os.environ, PYTHONPATH=HERE, FERROLOOP_THIRDPARTY_LOOP=loop,
               FERROLOOP_THIRDPARTY_PROOF=proof)
    command = [python, "-m", "pytest", "-p", "ferroloop_plugin", "-p", "no:cacheprovider",
               "-q", f"--junitxml={report}", *tests]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if not os.path.exists(report):
        raise SystemExit(f"{suite} on {loop}: pytest ran no tests\n{proc.stdout[-3000:]}"
                         f"{proc.stderr[-3000:]}")
    with open(proof) as f:
        made = json.load(f)
    return outcomes(report), made, time.monotonic() - started


def outcomes(report):
    """test id -> passed, failed, skipped (xfail counts as skipped, xpass as passed)."""
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            results[test] = "failed"
        elif "skipped" in kinds:
            results[test] = "skipped"
        else:
            results[test] = "passed"
    return results


def node_id(tree, test):
    """A junit test id (dotted module and class) as pytest's node id (a path)."""
    dotted, _, name = test.partition("::")
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        path = "/".join(parts[:i]) + ".py"
        if os.path.exists(os.path.join(tree, path)):
            return "::".join([path, *parts[i:], name])
    return test


def known_differences():
    known = {}
    path = os.path.join(HERE, "known_differences.txt")
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            test, _, reason = line.partition("  # ")
            known[test.strip()] = reason.strip()
    return known


def counts(results):
    return {kind: sum(1 for r in results.values() if r == kind)
            for kind in ("passed", "failed", "skipped")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ci", action="store_true", help="the part CI runs")
    parser.add_argument("--suites", default=",".join(SUITES))
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    known = known_differences()
    failed = False
    started = time.monotonic()
    for suite in args.suites.split(","):
        python = venv_for(suite, sys.executable)
        tree = source_of(suite, python)
        options = SUITES[suite]["options"]
        paths = (args.ci and SUITES[suite]["ci"]) or ["tests"]
        results, made = {}, {}
        for loop in LOOPS:
            results[loop], made[loop], seconds = run_suite(suite, python, tree, loop,
                                                           options + paths)
            c = counts(results[loop])
            log(f"{suite} on {loop}: {c['passed']} passed, {c['failed']} failed, "
                f"{c['skipped']} skipped ({seconds:.0f} s)")
        # Proof: the tests that made a loop made ferroloop's, apart from those that build a
        # loop class of their own (named).
        with_loop = {t: m for t, m in made["ferroloop"].items() if m}
        other = sorted(t for t, m in with_loop.items() if set(m) != {"ferroloop"})
        log(f"{suite} proof: {len(with_loop)} tests made a loop on the ferroloop run, "
            f"{len(with_loop) - len(other)} only ferroloop's")
        for test in other:
            log(f"    also made {sorted(set(made['ferroloop'][test]))}: {test}")
        if not with_loop:
            log(f"FAIL {suite}: no test made a ferroloop loop")
            failed = True
        differences = sorted(t for t, r in results["ferroloop"].items()
                             if r == "failed" and results["asyncio"].get(t) == "passed")
        unlisted = [t for t in differences if f"{suite} {t}" not in known]
        if unlisted:
            rerun = options + [node_id(tree, t) for t in unlisted]
            again = run_suite(suite, python, tree, "ferroloop", rerun)[0]
            for test in unlisted:
                if again.get(test) == "passed":
                    log(f"    flaky (passed on ferroloop when run again): {test}")
                else:
                    log(f"FAIL {suite}: fails on ferroloop, passes on asyncio: {test}")
                    failed = True
        for test in differences:
            if f"{suite} {test}" in known:
                log(f"    known difference: {test}: {known[f'{suite} {test}']}")
    log(f"thirdparty {'failed' if failed else 'passed'} in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
