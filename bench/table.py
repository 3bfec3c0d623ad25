"""The statistics and tables of `make bench`.

Every figure is a ratio within a round: the loops of a round run one row back to back, so a
slow stretch of this shared machine weighs on both sides of each ratio, where it would skew
a ratio of separate medians. A row's ratio is the median over rounds.
"""

import statistics

# The target: the share of the way from uvloop to the bound ferroloop must cover.
PROGRESS_TARGET = 0.75
WATCH_COST_LIMIT = 3.0


def per_round(samples, row, base, other, cost):
    """cost(base) / cost(other) in each round where both ran: >1 means `other` is faster."""
    return [cost(b) / cost(o) for b, o in zip(samples[(row, base)], samples[(row, other)])
            if b is not None and o is not None and cost(b) > 0 and cost(o) > 0]


def ratio(samples, row, base, other, cost):
    """The median of `per_round`; None where `base`'s median cost is not above zero: a
    sleeper uvloop woke early has no lateness to compare, and the rounds it happened to
    wake a microsecond late would make any other loop look a hundred times slower."""
    base_costs = [cost(b) for b in samples[(row, base)] if b is not None]
    if base_costs and statistics.median(base_costs) <= 0:
        return None
    ratios = per_round(samples, row, base, other, cost)
    return statistics.median(ratios) if ratios else None


def medians(samples, row, loops, value):
    """Each loop's median of `value` over the rounds it ran; None where it never did."""
    out = {}
    for loop in loops:
        got = [value(s) for s in samples[(row, loop)] if s is not None]
        out[loop] = statistics.median(got) if got else None
    return out


def noise(samples, row, loop, cost, rounds=None):
    """Half the range of `loop`'s own cost over the run's first `rounds` rounds (all, if
    None), relative to its median: how far the same loop on the same row moved within this
    run."""
    costs = [cost(s) for s in samples[(row, loop)][:rounds] if s is not None]
    if len(costs) < 2:
        return 0.0
    return (max(costs) - min(costs)) / 2 / statistics.median(costs)


def progress(vs_uvloop, bound):
    """How far ferroloop has come from uvloop (1.0x) towards the bound. Where the bound is
    below uvloop (a row whose order of events asyncio fixes, and uvloop does not follow),
    no loop that keeps asyncio's order can pass uvloop: then it is ferroloop's share of
    its bound."""
    if vs_uvloop is None or bound is None:
        return None
    if bound <= 1.0:
        return vs_uvloop / bound
    return (vs_uvloop - 1.0) / (bound - 1.0)


def ahead(samples, row, loops, cost, rounds=None):
    """The rivals whose median lead over ferroloop, over every round both ran, is larger
    than the noise of the run's first `rounds` rounds. Rounds added to settle a lead
    (`run.settle`) move the median only: the noise bar stays the one the run set, which
    more rounds would only widen."""
    row_noise = noise(samples, row, "ferroloop", cost, rounds)
    return [l for l in loops if l not in ("ferroloop", "ferroloop+watch")
            and (r := ratio(samples, row, l, "ferroloop", cost)) is not None
            and 1 / r > 1 + row_noise]


def summarize(samples, row, loops, cost, bound_of_ferroloop, rounds=None, settled_from=(),
              departures=None):
    """One row's figures: every loop's speed against uvloop's, ferroloop's bound and the
    progress towards it, the rivals ahead of ferroloop beyond the noise of the first
    `rounds` rounds, and of those, what each leaves out of the row's asyncio behaviour
    (`departures`: {loop: what}, from `behaviour.departures`), the watch cost, how many
    rounds ferroloop ran, and the rivals found ahead before more rounds settled the row
    (`run.settle`)."""
    vs_uv = {l: ratio(samples, row, "uvloop", l, cost) for l in loops}
    row_noise = noise(samples, row, "ferroloop", cost, rounds)
    watch = ratio(samples, row, "ferroloop+watch", "ferroloop", cost)
    bound = bound_of_ferroloop(vs_uv["ferroloop"]) if vs_uv["ferroloop"] else None
    leading = ahead(samples, row, loops, cost, rounds)
    return {"vs_uvloop": vs_uv, "bound": bound, "progress": progress(vs_uv["ferroloop"], bound),
            "bound_below_uvloop": bound is not None and bound <= 1.0,
            "noise": row_noise, "ahead": leading,
            "ahead_leaving_out": {l: departures[l] for l in leading if l in (departures or {})},
            "rounds": sum(s is not None for s in samples[(row, "ferroloop")]),
            "settled_from": list(settled_from),
            "watch_cost_percent": None if watch is None else (watch - 1) * 100}


def print_table(title, unit, rows, loops):
    """`rows`: (name, uvloop's absolute figure, summary). Ratios are uvloop's cost over each
    loop's, so higher is faster; n/a where a loop could not run the row."""
    shown = [l for l in loops if l != "ferroloop+watch"]
    header = (f"{title:<34}{unit:>12}" + "".join(f"{short(l):>10}" for l in shown) +
              f"{'bound':>8}{'progress':>10}{'noise':>7}{'watch':>9}  ahead of ferroloop")
    print()
    print(header)
    print("-" * len(header))
    for name, absolute, s in rows:
        cells = "".join(f"{'n/a':>10}" if s["vs_uvloop"][l] is None
                        else f"{s['vs_uvloop'][l]:>9.2f}x" for l in shown)
        bound = f"{s['bound']:>7.2f}x" if s["bound"] else f"{'n/a':>8}"
        done = s["progress"]
        mark = " " if done is None or done >= PROGRESS_TARGET else "*"
        limit = "L" if s["bound_below_uvloop"] else " "
        done = f"{done:>7.0%}{limit}{mark} " if done is not None else f"{'n/a':>10}"
        watch = s["watch_cost_percent"]
        watch = (f"{watch:>+7.1f}%" + ("!" if watch > WATCH_COST_LIMIT else " ")
                 if watch is not None else f"{'n/a':>9}")
        settled = (f" (settled over {s['rounds']} rounds: {', '.join(s['settled_from'])} "
                   "ahead before)" if s["settled_from"] else "")
        leading = [f"{l} ({s['ahead_leaving_out'][l]})" if l in s["ahead_leaving_out"] else l
                   for l in s["ahead"]]
        print(f"{name:<34}{absolute:>12}{cells}{bound}{done}{s['noise']:>6.0%}{watch}  "
              f"{', '.join(leading) or '-'}{settled}")


def short(loop):
    return {"asyncio": "stdlib"}.get(loop, loop)


def legend(what):
    print(f"({what}; bound = ferroloop's ratio were its own code free; progress = the share "
          f"of the way from uvloop to the bound, * below {PROGRESS_TARGET:.0%}, L where the "
          f"bound is below uvloop and the figure is ferroloop's share of it; noise = half "
          f"the range of ferroloop's own figure over the rounds; watch = what the watchdog and "
          f"monitor cost ferroloop, ! over {WATCH_COST_LIMIT:.0f} %; a rival is named ahead when "
          f"its median lead over ferroloop exceeds the noise, with what it leaves out of the "
          f"row's asyncio behaviour, if anything; a row where one was ran more rounds of "
          f"ferroloop and those rivals, and says so)")
