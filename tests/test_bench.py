"""`make bench` must keep working: one round of one micro workload on all three loops."""

import json
import os

from conftest import ROOT, run_python


def test_bench_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_python(os.path.join(ROOT, "bench", "run.py"), "--rounds", "1", "--no-net",
                      "--only", "call_soon chain", "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "call_soon chain" in proc.stdout and "geomean vs uvloop" in proc.stdout
    report = json.loads(out.read_text())
    row = report["call_soon chain"]
    assert set(row["rate"]) == {"asyncio", "uvloop", "ferroloop"}
    assert row["vs_uvloop"] > 0
