"""python -m ferroloop monitor PATH: a live view of a loop started with
FERROLOOP_MONITOR=PATH (or monitor=PATH). The loop's native thread answers without the
GIL, so the view keeps updating while the loop is blocked. Ctrl-C quits."""

import json
import signal
import socket
import sys
import time

CLEAR = "\033[H\033[2J"


def fetch(path, timeout=2.0):
    """One report from the loop's monitor socket, as a dict."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


def _ms(seconds):
    return f"{seconds * 1e3:.2f} ms"


def render(report, previous=None, interval=None):
    """The screen for one report; rates come from the previous report."""
    lines = [f"ferroloop monitor: pid {report['pid']}"]
    if previous is not None and interval:
        passes = (report["passes"] - previous["passes"]) / interval
        callbacks = (report["callbacks"] - previous["callbacks"]) / interval
        lines.append(f"passes/s {passes:,.0f}   callbacks/s {callbacks:,.0f}")
    else:
        lines.append(f"passes {report['passes']:,}   callbacks {report['callbacks']:,}")
    lag = report["lag"]
    mean = lag["sum"] / lag["count"] if lag["count"] else 0.0
    lines.append(f"loop lag: mean {_ms(mean)}, max {_ms(lag['max'])} "
                 f"over {lag['count']:,} timers")
    passes = report["pass"]
    lines.append(f"pass duration: max {_ms(passes['max'])}")
    lines.append(f"slow callbacks: {report['slow_callbacks']:,}")
    longest = report["longest"]
    if longest["what"]:
        lines.append(f"longest callback: {_ms(longest['seconds'])} in {longest['what']}")
    running = report["running"]
    if running is None:
        lines.append("now: waiting for events")
    elif running["seconds"] >= 0.1:
        what = running["what"] or "a callback (not yet described)"
        lines.append(f"now: BLOCKED for {running['seconds']:.1f} s in {what}")
    else:
        lines.append(f"now: running a callback ({_ms(running['seconds'])})")
    tasks = report["tasks"]
    lines.append(f"tasks: {tasks['count']}")
    if tasks["tree"]:
        lines.extend("  " + line for line in tasks["tree"].splitlines())
    return "\n".join(lines)


def main(path, *, interval=1.0, count=None, out=sys.stdout):
    """Redraws the view every `interval` seconds (`count` times, or until Ctrl-C)."""
    # Ctrl-C quits, even when started from a shell or runner that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = None
    shown = 0
    try:
        while count is None or shown < count:
            try:
                report = fetch(path)
            except OSError as exc:
                out.write(f"{CLEAR}ferroloop monitor: cannot reach {path}: {exc}\n")
                previous = None
            else:
                out.write(CLEAR + render(report, previous, interval) + "\n")
                previous = report
            out.flush()
            shown += 1
            if count is None or shown < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0
