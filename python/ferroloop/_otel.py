"""loop.stats() as OpenTelemetry metrics, when opentelemetry-api is installed (the
`ferroloop[otel]` extra). The core never needs it: without it, `register` does nothing.

Every ferroloop loop registers itself; the instruments, made once on the meter
"ferroloop" of the global meter provider, observe each open loop, told apart by the
attribute `ferroloop.loop` (a number per loop).
"""

import itertools
import weakref

_loops = weakref.WeakValueDictionary()
_numbers = itertools.count(1)
_metrics = None  # the opentelemetry.metrics module, False if missing, None before a look


def _api():
    global _metrics
    if _metrics is None:
        try:
            from opentelemetry import metrics
        except ImportError:
            metrics = False
        _metrics = metrics
        if metrics:
            _make_instruments(metrics.get_meter("ferroloop"))
    return _metrics


def register(loop):
    """Observes `loop` from now on, if OpenTelemetry's API is installed."""
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
