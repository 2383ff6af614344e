#!/usr/bin/env python3
"""Watches lb's /metrics during scripts/soak.sh: one scrape a second until TERM, then a
timeline of the POST backlog and, per backend, where the copies owed to it spent their
time and how long its copies took to be delivered.

Where the time went is the sum over scrapes of lb_fanout_backend_copies_owed{place} (a
copy counted in a scrape stood there for about a second), divided by the copies delivered:
seconds per delivered copy in flight, in backoff, waiting in the lane, parked while lb could
not reach the backend. Only the admin address given is contacted.
"""

import argparse
import collections
import re
import signal
import time
import urllib.request

SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
PLACES = ("in_flight", "backoff", "waiting", "parked")


def scrape(url):
    """{(name, frozenset(labels)): value} of one scrape, or None if lb did not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = frozenset(LABEL.findall(m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def get(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def backends(s):
    return sorted({dict(l)["backend"] for (n, l) in s if n == "lb_backend_up"})


def quantile(s, backend, q):
    """The bucket bound at or above the q quantile of lb_fanout_delivery_seconds."""
    buckets = sorted((float(dict(l)["le"]), v) for (n, l), v in s.items()
                     if n == "lb_fanout_delivery_seconds_bucket" and dict(l)["backend"] == backend)
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    return next(le for le, v in buckets if v >= rank)


def report(samples):
    first, last = samples[0][1], samples[-1][1]
    print("t(s)  owed  oldest(s)  503s | per backend: up in_flight/backoff/waiting/parked")
    for t, s in samples[::max(1, len(samples) // 30)]:
        cols = " | ".join(
            f"{int(get(s, 'lb_backend_up', backend=b))} "
            + "/".join(str(int(get(s, 'lb_fanout_backend_copies_owed', backend=b, place=p)))
                       for p in PLACES)
            for b in backends(s))
        print(f"{t:4.0f} {int(get(s, 'lb_fanout_writes_owed')):5} "
              f"{get(s, 'lb_fanout_oldest_owed_seconds'):9.1f} "
              f"{int(get(s, 'lb_local_responses_total', code='5xx')):6} | {cols}")
    print(f"peak owed {max(int(get(s, 'lb_fanout_writes_owed')) for _, s in samples)}, "
          f"oldest {max(get(s, 'lb_fanout_oldest_owed_seconds') for _, s in samples):.1f} s")
    dt = (samples[-1][0] - samples[0][0]) / max(1, len(samples) - 1)
    for b in backends(last):
        delivered = (get(last, "lb_fanout_copies_total", backend=b, result="delivered")
                     - get(first, "lb_fanout_copies_total", backend=b, result="delivered"))
        retried = (get(last, "lb_fanout_copies_total", backend=b, result="retried")
                   - get(first, "lb_fanout_copies_total", backend=b, result="retried"))
        up = sum(get(s, "lb_backend_up", backend=b) for _, s in samples) / len(samples)
        spent = collections.OrderedDict(
            (p, dt * sum(get(s, "lb_fanout_backend_copies_owed", backend=b, place=p)
                         for _, s in samples)) for p in PLACES)
        per_copy = ", ".join(f"{p} {v / max(delivered, 1):.3f}" for p, v in spent.items())
        qs = ", ".join(f"p{int(q * 100)} <= {quantile(last, b, q)}" for q in (0.5, 0.9, 0.99))
        print(f"{b}: up {up:.0%} of scrapes, {int(delivered)} delivered, {int(retried)} retried; "
              f"seconds per delivered copy: {per_copy}; delivery {qs}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--admin", required=True, help="lb's admin address, host:port")
    p.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args()
    url = f"http://{args.admin}/metrics"
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    samples, start = [], time.monotonic()
    while not stop:
        s = scrape(url)
        if s is not None:
            samples.append((time.monotonic() - start, s))
        time.sleep(args.interval)
    if len(samples) >= 2:
        report(samples)


if __name__ == "__main__":
    main()
