"""loop.stats() as OpenTelemetry metrics (the ferroloop[otel] extra). Each test runs in a
child process: OpenTelemetry's global meter provider can be set only once per process."""

import json
import textwrap

from conftest import run_python

READ_METRICS = """
import asyncio, json, time
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
import ferroloop

async def main():
    await asyncio.sleep(0.01)
    time.sleep(0.02)

loop = ferroloop.new_event_loop()
loop.run_until_complete(main())
stats = loop.stats()
seen = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            seen[m.name] = [(p.value, dict(p.attributes)) for p in m.data.data_points]
loop.close()
print(json.dumps({"seen": seen, "iterations": stats["iterations"],
                  "callbacks": stats["callbacks"], "longest": stats["longest_callback"]}))
"""


def test_counters_are_metrics():
    proc = run_python("-c", textwrap.dedent(READ_METRICS))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    seen = out["seen"]
    (passes, attrs), = seen["ferroloop.loop.passes"]
    assert passes == out["iterations"] and "ferroloop.loop" in attrs
    assert seen["ferroloop.loop.callbacks"][0][0] == out["callbacks"]
    assert seen["ferroloop.loop.longest_callback"][0][0] == out["longest"]["seconds"] >= 0.02
    assert seen["ferroloop.loop.lag.sum"][0][0] > 0
    buckets = {a["upper_bound"]: v for v, a in seen["ferroloop.loop.pass_duration.buckets"]}
    assert list(buckets) == ["0.0001", "0.001", "0.01", "0.1", "1.0", "inf"]
    assert sum(buckets.values()) == out["iterations"]
    assert buckets["0.1"] >= 1
    assert seen["ferroloop.loop.pass_duration.max"][0][0] >= 0.02
    assert seen["ferroloop.loop.slow_callbacks"][0][0] == 0


def test_a_program_that_does_not_use_opentelemetry_does_not_load_it():
    # Installed (the dev requirements have it), but not imported by the program.
    proc = run_python("-c", textwrap.dedent("""
        import sys, asyncio, ferroloop
        ferroloop.run(asyncio.sleep(0))
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_core_never_needs_opentelemetry():
    proc = run_python("-c", textwrap.dedent("""
        import sys
        sys.modules["opentelemetry"] = None  # as if not installed
        import asyncio, ferroloop
        print(ferroloop.run(asyncio.sleep(0, "ran")))
        print("opentelemetry.metrics" in sys.modules)
    """))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ran", "False"]
