"""The soak's verdict (soak/run.py, run by `make test` and `make soak`): a report that
lost or corrupted a byte, leaked an fd, a task or memory, or stopped serving fails it."""

import copy
import importlib.util
import os

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("soak", os.path.join(ROOT, "soak", "run.py"))
soak = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soak)

PHASE = {"requests": 10, "bytes_checked": 640, "expected_bytes": 640, "corrupt": 0,
         "errors": {}, "seconds": 1.0}
CLEAN = {
    "phases": {name: dict(PHASE) for name in ("concurrent", "resets", "slow", "emfile",
                                              "requests")},
    "peak_open": soak.SHORT["concurrent"], "rss_half": 100 << 20, "rss_end": 101 << 20,
    "rss_peak": 101 << 20, "fds_before": 8, "fds_after": 8, "tasks_left": 0,
    "open_connections": 0, "server_errors": {"ConnectionResetError": 3},
    "handler": {"socket.accept() out of system resource": 2},
}


def spoiled(path, value):
    report = copy.deepcopy(CLEAN)
    *parents, last = path
    target = report
    for key in parents:
        target = target[key]
    target[last] = value
    return report


def test_a_clean_report_passes():
    assert soak.problems(CLEAN, soak.SHORT) == []


@pytest.mark.parametrize("path, value, complaint", [
    (("phases", "requests", "bytes_checked"), 639, "bytes checked of"),
    (("phases", "slow", "corrupt"), 1, "corrupted"),
    (("phases", "concurrent", "errors"), {"ConnectionResetError": 1}, "client errors"),
    (("phases", "emfile"), {"timed_out": True, "seconds": 120}, "did not finish"),
    (("rss_end",), 106 << 20, "RSS grew"),
    (("fds_after",), 9, "fds"),
    (("tasks_left",), 1, "tasks"),
    (("open_connections",), 2, "connections"),
    (("peak_open",), 10, "open at once"),
    (("server_errors",), {"ValueError": 1}, "server errors"),
    (("handler",), {}, "never ran out of fds"),
    (("handler",), {"socket.accept() out of system resource": 1, "Unhandled error": 1},
     "exception handler calls"),
])
def test_each_loss_or_leak_fails_the_soak(path, value, complaint):
    found = soak.problems(spoiled(path, value), soak.SHORT)
    assert len(found) == 1 and complaint in found[0], found
