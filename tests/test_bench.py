"""`make bench` must keep working: its rows on every loop, its statistics, its bounds."""

import asyncio
import contextvars
import json
import math
import os
import shutil
import sys

import pytest

import ferroloop
from conftest import ROOT, run_python

sys.path.insert(0, os.path.join(ROOT, "bench"))
import behaviour  # noqa: E402
import bounds  # noqa: E402
import instructions  # noqa: E402
import load  # noqa: E402
import loops  # noqa: E402
import table  # noqa: E402
import workloads  # noqa: E402
from run import interleave, settle  # noqa: E402

sys.path.pop(0)

BENCH = os.path.join(ROOT, "bench", "run.py")


def test_bench_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_python(BENCH, "--rounds", "1", "--no-net", "--no-bound", "--only",
                      "call_soon chain,sleep(1 ms) lateness p99", "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "call_soon chain" in proc.stdout and "geometric mean" in proc.stdout
    report = json.loads(out.read_text())
    # Every rival is either timed or said to be unavailable, with the reason.
    for name in loops.LOOPS:
        assert (name in report["loops"]) != (name in report["unavailable"]), name
        assert name in proc.stdout
    for name, why in report["unavailable"].items():
        assert f"{name:16} UNAVAILABLE: {why}" in proc.stdout
    row = report["call_soon chain"]
    assert {"asyncio", "uvloop", "ferroloop", "ferroloop+watch"} <= set(row["rate"])
    assert row["vs_uvloop"]["uvloop"] == 1.0 and row["vs_uvloop"]["ferroloop"] > 0
    # The watched run is a measurement of its own, not a copy of the plain one (one round
    # on a busy machine says nothing of its cost).
    assert row["rate"]["ferroloop+watch"] != row["rate"]["ferroloop"]
    assert math.isfinite(row["watch_cost_percent"])
    late = report["sleep(1 ms) lateness p99"]["late_p99"]
    assert all(0 < late[l] < 0.5 for l in ("asyncio", "uvloop", "ferroloop")), late
    # Each loop ran the behaviour checks, and the run says what each leaves out.
    assert set(report["behaviour"]) == set(report["loops"]) - {"ferroloop+watch"}
    assert all(ok is True for ok in report["behaviour"]["ferroloop"].values())
    assert "ferroloop        keeps all" in proc.stdout
    # Not counted with --no-bound.
    assert row["user_share"] is None


def test_load_rows_run_servers_in_their_own_process(tmp_path):
    out = tmp_path / "bench.json"
    rows = "unix sock 1 KiB,tcp websockets 1 KiB,http httptools,http uvicorn"
    proc = run_python(BENCH, "--no-micro", "--no-bound", "--net-rounds", "1",
                      "--net-duration", "0.3", "--only", rows, "--json", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for name in rows.split(","):
        row = report[name]
        for loop in ("asyncio", "uvloop", "ferroloop"):
            assert row["rps"][loop] > 0 and row["cpu_us_per_req"][loop] > 0, (name, loop)
        assert 0 < row["kernel_share"] < 1, name
        assert row["bound"] is None and row["own_share"] is None, "--no-bound counted"


def test_user_share_tells_a_connect_from_a_chain():
    # The bound's correction where it matters: a connection's set-up and teardown is
    # mostly the kernel's work, so ferroloop's own code can only be part of the rest; a
    # chain of callbacks is all user space.
    assert bounds.user_share("connection_churn", seconds=0.5) < 0.8
    assert bounds.user_share("call_soon_chain", seconds=0.5) > 0.8


def test_an_unknown_row_is_refused():
    proc = run_python(BENCH, "--only", "no such row")
    assert proc.returncode != 0 and "no such row" in proc.stderr


def test_a_loop_that_fails_a_row_shows_na_and_the_run_goes_on(capsys):
    def sample(loop_name, row):
        if loop_name == "rloop" and row == "b":
            raise load.Failed("the server did not start")
        return {"wall": {"uvloop": 2.0, "ferroloop": 1.0}.get(loop_name, 4.0), "ops": 1}

    failures = {}
    names = ["uvloop", "rloop", "ferroloop", "ferroloop+watch"]
    samples = interleave(3, ["a", "b"], names, sample, failures)
    assert failures == {("rloop", "b"): "the server did not start"}
    assert samples[("b", "rloop")] == [None] * 3

    def cost(s):
        return s["wall"] / s["ops"]

    summary = table.summarize(samples, "b", names, cost, lambda r: r * 2)
    assert summary["vs_uvloop"]["rloop"] is None
    assert summary["vs_uvloop"]["ferroloop"] == 2.0
    assert summary["bound"] == 4.0 and summary["progress"] == pytest.approx(1 / 3)
    table.print_table("row", "uvloop", [("b", "1/s", summary)], names)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.split()[2:5] == ["1.00x", "n/a", "2.00x"], line
    assert "33% *" in line


def test_progress_towards_a_bound_below_uvloop_is_the_share_of_the_bound():
    # uvloop wakes a sleeper a pass earlier than asyncio's order allows: a bound at 0.4x
    # uvloop, reached to 90 %, is 90 % of the way.
    assert table.progress(0.36, 0.4) == pytest.approx(0.9)
    assert table.progress(1.5, 2.0) == pytest.approx(0.5)
    assert table.progress(None, 2.0) is None


def test_a_rival_ahead_beyond_the_noise_is_named():
    def sample(loop_name, row):
        return {"wall": {"uvloop": 2.0, "rloop": 0.5, "ferroloop": 1.0}.get(loop_name, 1.01),
                "ops": 1}

    names = ["uvloop", "rloop", "ferroloop", "ferroloop+watch"]
    samples = interleave(3, ["a"], names, sample, {})
    summary = table.summarize(samples, "a", names, lambda s: s["wall"], lambda r: None)
    assert summary["ahead"] == ["rloop"]
    assert summary["watch_cost_percent"] == pytest.approx(1.0)


def settled(walls, rounds, extra_rounds):
    """A row "a" run `rounds` rounds, then settled: each loop's wall times in turn."""
    walls = {loop_name: iter(times) for loop_name, times in walls.items()}

    def sample(loop_name, row):
        return {"wall": next(walls[loop_name]) if loop_name in walls else 1.0, "ops": 1}

    names = ["uvloop", "rloop", "ferroloop", "ferroloop+watch"]
    samples = interleave(rounds, ["a"], names, sample, {})
    [before] = settle(samples, [("a", lambda s: s["wall"])], names, sample, {}, rounds,
                      extra_rounds)
    summary = table.summarize(samples, "a", names, lambda s: s["wall"], lambda r: None, rounds,
                              before)
    return {"a": dict.fromkeys(before)} if before else {}, samples, summary


def test_a_lead_within_a_few_rounds_is_settled_by_more():
    # rloop leads by 5 % in the run's two rounds, where ferroloop moved by 1 %, and trails
    # in most of the four that settle it: not ahead. uvloop is not run again.
    flagged, samples, summary = settled(
        {"uvloop": [2.0, 2.0], "rloop": [0.95, 0.96] + [1.05] * 4,
         "ferroloop": [1.0, 1.02] + [1.0, 1.0, 1.2, 1.0]}, 2, 4)
    assert flagged == {"a": {"rloop": None}}
    assert samples[("a", "uvloop")] == [{"wall": 2.0, "ops": 1}] * 2 + [None] * 4
    assert summary["ahead"] == [] and summary["rounds"] == 6
    # The noise is the run's (over all six rounds it would be 10 %).
    assert summary["noise"] == pytest.approx(0.01, rel=0.01)
    # The ratios to uvloop are the run's rounds'.
    assert summary["vs_uvloop"]["ferroloop"] == pytest.approx((2 + 2 / 1.02) / 2)


def test_a_lead_that_holds_stays_named_after_settling(capsys):
    flagged, _, summary = settled(
        {"uvloop": [2.0, 2.0], "rloop": [0.9] * 6, "ferroloop": [1.0, 1.02] + [1.0] * 4}, 2, 4)
    assert summary["ahead"] == ["rloop"]
    table.print_table("row", "uvloop", [("a", "1/s", summary)], ["uvloop", "rloop", "ferroloop"])
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "rloop (settled over 6 rounds: rloop ahead before)")
    # A row no rival leads runs no more rounds.
    flagged, samples, summary = settled(
        {"uvloop": [2.0, 2.0], "rloop": [1.5, 1.5], "ferroloop": [1.0, 1.0]}, 2, 4)
    assert flagged == {} and len(samples[("a", "ferroloop")]) == 2
    assert "settled" not in capsys.readouterr().out
    # --settle 0: the run's verdict stands, and the row does not say it was settled.
    flagged, samples, summary = settled(
        {"uvloop": [2.0, 2.0], "rloop": [0.9] * 2, "ferroloop": [1.0, 1.02]}, 2, 0)
    assert flagged == {} and summary["ahead"] == ["rloop"]


def test_each_figure_of_a_row_names_only_its_own_leads():
    # The lateness workload gives two rows: rloop leads on p99 alone; the row runs its
    # extra rounds once, and p50 says nothing of them.
    runs = {"uvloop": 0, "rloop": 0, "ferroloop": 0}

    def sample(loop_name, row):
        runs[loop_name] = runs.get(loop_name, 0) + 1
        return {"p50": 1.0, "p99": 0.5 if loop_name == "rloop" else 1.0}

    names = ["uvloop", "rloop", "ferroloop", "ferroloop+watch"]
    samples = interleave(2, ["late"], names, sample, {})
    leads = settle(samples, [("late", lambda s: s["p50"]), ("late", lambda s: s["p99"])],
                   names, sample, {}, 2, 3)
    assert leads == [[], ["rloop"]]
    assert runs["rloop"] == runs["ferroloop"] == 5 and runs["uvloop"] == 2


def test_no_ratio_to_a_loop_whose_median_is_early():
    # uvloop's median sleeper woke early (negative lateness); one round it woke 1 us late.
    late = {"uvloop": iter([-5e-6, 1e-6, -4e-6]), "ferroloop": iter([1e-4, 1e-4, 1e-4])}

    def sample(loop_name, row):
        return {"late": next(late[loop_name]) if loop_name in late else 1e-4, "ops": 1}

    names = ["uvloop", "ferroloop", "ferroloop+watch"]
    samples = interleave(3, ["p50"], names, sample, {})
    summary = table.summarize(samples, "p50", names, lambda s: s["late"], lambda r: r)
    assert summary["vs_uvloop"]["ferroloop"] is None
    assert summary["ahead"] == []


def test_unavailable_rivals_are_reported_not_fatal(monkeypatch, tmp_path):
    monkeypatch.setattr(loops, "STATUS_FILE", str(tmp_path / "status.json"))
    monkeypatch.setitem(loops.RIVALS, "no_such_loop_module", "no-such-loop==1.0")
    missing = loops.unavailable()
    assert missing["no_such_loop_module"] == "not installed"
    assert "uvloop" not in missing
    # The probe, which also catches a rival that imports but cannot make a loop, says why.
    assert "ModuleNotFoundError" in loops.probe("no_such_loop_module")


@pytest.mark.parametrize("name", ["asyncio.Queue producer/consumer", "TaskGroup fan-out 10k",
                                  "sleep(1 ms) under load"])
@pytest.mark.parametrize("make", [asyncio.new_event_loop, ferroloop.new_event_loop],
                         ids=["asyncio", "ferroloop"])
def test_new_workloads_run_on_both_loops(name, make):
    loop = make()
    try:
        result = workloads.WORKLOADS[name](loop, n=100)
    finally:
        loop.close()
    ops = result["ops"] if isinstance(result, dict) else result
    assert ops >= 100
    if isinstance(result, dict):
        # The sleeper waits out a loaded pass: never early (as asyncio never fires a timer
        # early), and the 99th percentile is no lower than the median.
        assert 0 <= result["late_p50"] <= result["late_p99"]


def test_callgrind_output_is_split_by_object(tmp_path):
    # Names are given once, then referred to by number; a call's inclusive cost follows its
    # calls= line and is not the caller's own.
    path = tmp_path / "callgrind.out"
    path.write_text("events: Ir\n"
                    "ob=(1) /x/_ferroloop.cpython-311.so\nfn=(1) a\n10 100\n+2 5\n"
                    "cob=(2) /usr/lib/libpython.so\ncfn=(2) b\ncalls=1 0\n12 1000\n"
                    "ob=(2)\nfn=(2)\n3 40\n* 2\n")
    assert bounds.instructions_by_object(str(path)) == {
        "/x/_ferroloop.cpython-311.so": 105, "/usr/lib/libpython.so": 42}
    assert bounds.micro_bound(2.0, 0.5) == 4.0
    # Half the time in the kernel or waiting, half of the rest the loop's: 3/4 of the time
    # at best.
    assert bounds.micro_bound(2.0, 0.5, 0.5) == pytest.approx(8 / 3)
    # 10 us a request, 4 of them the kernel's, half of the rest the loop's: 7 us at best.
    assert bounds.load_bound(1.4, 10.0, 4.0, 0.5) == pytest.approx(2.0)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_own_share_counts_the_native_module():
    # The chain is a callback and call_soon per operation: the loop's part is real but not
    # all of it.
    share = bounds.own_share("call_soon_chain", n=3000)
    assert 0.05 < share < 0.95, share


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_own_share_of_a_server_under_load():
    # The echo server's own part is real (the transports are native) and not all of it
    # (the protocol's Python, libc's system call wrappers).
    row = next(r for r in load.ROWS if r.name == "unix protocol 1 KiB")
    share = bounds.server_own_share(row, duration=3.0)
    assert 0.05 < share < 0.9, share


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instruction_counts_for_ab_comparisons():
    # Enough operations that a garbage collection in one run and not the other does not
    # swamp the difference; the installed ferroloop against uvloop, by name, each with the
    # part that ran in its own native module (`--own`), which is some of it and not all.
    proc = run_python(os.path.join(ROOT, "bench", "instructions.py"), "--own",
                      "call_soon_chain", "3000", ",uvloop", timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("installed:", "uvloop:"):
        cell = proc.stdout.split(name)[1].split(")")[0]
        count, own = (float(word.replace(",", "")) for word in cell.split(" (own "))
        assert 100 < count < 100_000, proc.stdout
        assert 0.05 * count < own < 0.9 * count, proc.stdout


def test_timings_for_ab_comparisons():
    # The timing counterpart of instructions.py: the installed ferroloop and the stdlib
    # loop, each in fresh processes, two rounds, a median and the fastest of each.
    proc = run_python(os.path.join(ROOT, "bench", "ab.py"), "call_soon_chain", "2000", "2",
                      ",asyncio", timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["installed", "asyncio"], proc.stdout
    for line in lines:
        words = line.split()
        median, fastest = float(words[2]), float(words[4])
        assert 0 < fastest <= median < 1e6, line
        assert "(2 runs)" in line
    refused = run_python(os.path.join(ROOT, "bench", "ab.py"), "call_soon_chian", "10", "1",
                         "asyncio", timeout=60)
    assert refused.returncode != 0 and "no such workload: call_soon_chian" in refused.stderr


def test_gc_pause_of_a_running_loop_with_a_queue():
    # A collection timed inside a running loop, with N callbacks queued and with none: one
    # figure per loop, in ms, from fresh processes as ab.py takes them.
    proc = run_python(os.path.join(ROOT, "bench", "gc_pause.py"), "2000", "1", ",asyncio",
                      timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["installed", "asyncio"], proc.stdout
    for line in lines:
        words = line.split()
        assert abs(float(words[2])) < 1e4 and words[5] == "ms" and "(1 runs)" in line, line
    refused = run_python(os.path.join(ROOT, "bench", "gc_pause.py"), "10", timeout=60)
    assert refused.returncode != 0 and "gc_pause.py N ROUNDS" in refused.stderr


def test_instruction_table_names_real_workloads():
    # The recorded table (`bench/instructions.py --table`) must stay measurable: each row a
    # workload that takes n=.
    proc = run_python(os.path.join(ROOT, "bench", "instructions.py"), "--table")
    assert proc.returncode == 0, proc.stderr
    for name, *_ in instructions.TABLE:
        assert name in proc.stdout
        assert "n" in getattr(workloads, name).__code__.co_varnames, name


def test_every_workload_takes_n_and_is_counted():
    for function in workloads.WORKLOADS.values():
        assert "n" in function.__code__.co_varnames, function.__name__
        assert function.__name__ in bounds.COUNTED_N


def test_instruction_counts_refuse_an_unknown_workload():
    # A misspelt name once printed a count of -2 per operation (the child's traceback,
    # counted) instead of failing.
    proc = run_python(os.path.join(ROOT, "bench", "instructions.py"), "taskgroup_fanout",
                      "10", timeout=60)
    assert proc.returncode != 0
    assert "no such workload: taskgroup_fanout" in proc.stderr
    assert "taskgroup_fan_out" in proc.stderr


@pytest.mark.parametrize("make", [asyncio.SelectorEventLoop, ferroloop.new_event_loop],
                         ids=["asyncio", "ferroloop"])
def test_behaviour_checks_pass_on_asyncio_and_ferroloop(make):
    assert behaviour.run_checks(make) == dict.fromkeys(behaviour.CHECKS, True)


class DeferredWrites:
    """A transport whose writes go out a callback later (as a loop holding writes to the
    end of its iteration sends them)."""

    def __init__(self, transport):
        self._transport = transport

    def write(self, data):
        asyncio.get_running_loop().call_soon(self._transport.write, data)

    def __getattr__(self, name):
        return getattr(self._transport, name)


class HoldsWrites(asyncio.SelectorEventLoop):
    async def create_connection(self, *args, **kwargs):
        transport, protocol = await super().create_connection(*args, **kwargs)
        return DeferredWrites(transport), protocol


class DropsTheContext(asyncio.SelectorEventLoop):
    def call_soon_threadsafe(self, callback, *args, context=None):
        return super().call_soon_threadsafe(callback, *args, context=contextvars.Context())


class WakesEarly(asyncio.SelectorEventLoop):
    def call_at(self, when, callback, *args, context=None):
        return super().call_at(when - 0.0005, callback, *args, context=context)


@pytest.mark.parametrize("check, make", [("writes_at_once", HoldsWrites),
                                         ("threadsafe_context", DropsTheContext),
                                         ("sleep_never_early", WakesEarly),
                                         ("asyncio_streams", None)])
def test_each_behaviour_check_fails_on_a_loop_that_leaves_it_out(check, make, monkeypatch):
    if make is None:
        # A loop module that, like rsloop, puts its own streams in asyncio's place.
        class Reader:
            pass

        open_connection = asyncio.open_connection

        async def own_streams(*args, **kwargs):
            _, writer = await open_connection(*args, **kwargs)
            return Reader(), writer

        monkeypatch.setattr(asyncio, "open_connection", own_streams)
        make = asyncio.SelectorEventLoop
    results = behaviour.run_checks(make)
    assert results == dict(dict.fromkeys(behaviour.CHECKS, True), **{check: False})


def test_a_loop_whose_checks_cannot_run_says_why():
    [(name, results)] = behaviour.check_loops(["asyncio"], timeout=0.001).items()
    assert name == "asyncio"
    assert all("the check process failed" in why for why in results.values())
    # Not known either way: it leaves nothing out, and says it was not checked.
    assert behaviour.departures({name: results}, "sleep(1 ms) lateness p50") == {}
    assert behaviour.describe({name: results}) == [
        f"  {name:16} not checked: {results['writes_at_once']}"]


def test_a_rival_ahead_is_shown_with_what_it_leaves_out_of_the_row(capsys):
    checks = {"uvloop": dict.fromkeys(behaviour.CHECKS, True),
              "rloop": dict(dict.fromkeys(behaviour.CHECKS, True), threadsafe_context=False),
              "rsloop": dict(dict.fromkeys(behaviour.CHECKS, True), asyncio_streams=False)}
    flood = "call_soon_threadsafe flood"
    assert behaviour.departures(checks, flood) == {"rloop": "drops the context"}
    assert behaviour.departures(checks, "tcp streams 1 KiB") == {"rsloop": "own streams"}
    assert behaviour.departures(checks, "tcp sock 1 KiB") == {}

    def sample(loop_name, row):
        return {"wall": {"uvloop": 2.0, "rloop": 0.5, "rsloop": 0.6}.get(loop_name, 1.0),
                "ops": 1}

    names = ["uvloop", "rloop", "rsloop", "ferroloop", "ferroloop+watch"]
    samples = interleave(3, [flood], names, sample, {})
    summary = table.summarize(samples, flood, names, lambda s: s["wall"], lambda r: None,
                              departures=behaviour.departures(checks, flood))
    # Both are ahead; only rloop leaves out what the flood depends on.
    assert summary["ahead"] == ["rloop", "rsloop"]
    assert summary["ahead_leaving_out"] == {"rloop": "drops the context"}
    table.print_table("row", "uvloop", [(flood, "1/s", summary)], names)
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "rloop (drops the context), rsloop")
