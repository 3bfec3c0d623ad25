"""`make bench` must keep working: one round of one micro workload on every loop."""

import json
import math
import os
import shutil
import sys

import pytest

from conftest import ROOT, run_python


def test_bench_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_python(os.path.join(ROOT, "bench", "run.py"), "--rounds", "1", "--no-net",
                      "--only", "call_soon chain", "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "call_soon chain" in proc.stdout and "geomean vs uvloop" in proc.stdout
    report = json.loads(out.read_text())
    row = report["call_soon chain"]
    assert set(row["rate"]) == {"asyncio", "uvloop", "ferroloop", "ferroloop+watch"}
    assert row["vs_uvloop"] > 0
    # The watched run is a measurement of its own, not a copy of the plain one (one round
    # on a busy machine says nothing of its cost).
    assert row["rate"]["ferroloop+watch"] != row["rate"]["ferroloop"]
    assert math.isfinite(row["watch_cost_percent"])


def test_network_rows_run_servers_in_their_own_process(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_python(os.path.join(ROOT, "bench", "run.py"), "--no-micro", "--net-rounds", "1",
                      "--net-duration", "0.3", "--net-only", "unix sock 1 KiB,http httptools",
                      "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert set(report) == {"unix sock 1 KiB", "http httptools"}
    for row in report.values():
        assert all(rps > 0 for rps in row["rps"].values())
        assert all(cpu > 0 for cpu in row["cpu_us_per_req"].values())


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instruction_counts_for_ab_comparisons():
    # Enough operations that a garbage collection in one run and not the other does not
    # swamp the difference; the installed ferroloop against uvloop, by name.
    proc = run_python(os.path.join(ROOT, "bench", "instructions.py"), "call_soon_chain",
                      "3000", ",uvloop", timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("installed:", "uvloop:"):
        count = float(proc.stdout.split(name)[1].split()[0].replace(",", ""))
        assert 100 < count < 100_000, proc.stdout


def test_instruction_table_names_real_workloads():
    # The recorded table (`bench/instructions.py --table`) must stay measurable: each row a
    # workload that takes n=.
    proc = run_python(os.path.join(ROOT, "bench", "instructions.py"), "--table")
    assert proc.returncode == 0, proc.stderr
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import instructions
        import workloads
    finally:
        sys.path.pop(0)
    for name, *_ in instructions.TABLE:
        assert name in proc.stdout
        assert "n" in getattr(workloads, name).__code__.co_varnames, name
