"""loop.stats() as OpenTelemetry metrics, in a program that uses OpenTelemetry (the
`ferroloop[otel]` extra installs its API). The core never needs it.

Every ferroloop loop registers itself. If the program has imported `opentelemetry` by
then, the instruments are made (once, on the meter "ferroloop" of the global meter
provider) and observe each open loop, told apart by the attribute `ferroloop.loop` (a
number per loop). ferroloop never imports OpenTelemetry itself: a program that does not
use it should not carry its modules (every full collection walks them).
"""

import itertools
import sys
import weakref

_loops = weakref.WeakValueDictionary()
_numbers = itertools.count(1)
_metrics = None  # the opentelemetry.metrics module, False if it fails to import, else None


def _api():
    global _metrics
    if _metrics is None:
        if "opentelemetry" not in sys.modules:
            return None  # not in use (yet): look again for the next loop
        try:
            from opentelemetry import metrics
        except ImportError:
            metrics = False
        _metrics = metrics
        if metrics:
            _make_instruments(metrics.get_meter("ferroloop"))
    return _metrics


def register(loop):
    """Observes `loop` from now on, if the program uses OpenTelemetry."""
    if _api():
        _loops[next(_numbers)] = loop


def _observe(read):
    """A callback yielding `read(stats)` for every open loop."""
    from opentelemetry.metrics import Observation

    def callback(options):
        for number, loop in list(_loops.items()):
            if not loop.is_closed():
                for value, extra in read(loop.stats()):
                    yield Observation(value, {"ferroloop.loop": number, **extra})

    return callback


def _spans(key):
    """A span series' sum, maximum, and its histogram as a count per bucket, each bucket
    named by its upper bound in seconds."""
    return (
        lambda s: [(s[key]["sum"], {})],
        lambda s: [(s[key]["max"], {})],
        lambda s: [(count, {"upper_bound": str(bound)})
                   for bound, count in s[key]["histogram"].items()],
    )


def _make_instruments(meter):
    counters = {
        "ferroloop.loop.passes": ("{pass}", "Passes of the loop",
                                  lambda s: [(s["iterations"], {})]),
        "ferroloop.loop.callbacks": ("{callback}", "Callbacks run",
                                     lambda s: [(s["callbacks"], {})]),
        "ferroloop.loop.slow_callbacks": (
            "{callback}", "Callbacks that took slow_callback_duration or longer",
            lambda s: [(s["slow_callbacks"], {})]),
    }
    gauges = {}
    for key, what in (("lag", "How late due timers ran"),
                      ("pass_duration", "Time a pass spent running its callbacks")):
        total, largest, histogram = _spans(key)
        counters[f"ferroloop.loop.{key}.sum"] = ("s", f"{what}: the sum", total)
        counters[f"ferroloop.loop.{key}.buckets"] = (
            "1", f"{what}: how many in the bucket up to `upper_bound`", histogram)
        gauges[f"ferroloop.loop.{key}.max"] = ("s", f"{what}: the longest", largest)
    gauges["ferroloop.loop.longest_callback"] = (
        "s", "The longest single callback so far",
        lambda s: [(s["longest_callback"]["seconds"], {})] if s["longest_callback"] else [])
    for name, (unit, description, read) in counters.items():
        meter.create_observable_counter(name, [_observe(read)], unit=unit,
                                        description=description)
    for name, (unit, description, read) in gauges.items():
        meter.create_observable_gauge(name, [_observe(read)], unit=unit,
                                      description=description)
