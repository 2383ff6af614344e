"""Reads a /metrics scrape on stdin and checks it with prometheus_client's own parser.

Exit 0 when it parses and holds no series twice; 1 with the reason otherwise; 3 when
prometheus_client is not installed (pip install prometheus_client). Each argument names
a family that must be present.
"""
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("prometheus_client is not installed (pip install prometheus_client)")
    sys.exit(3)

text = sys.stdin.read()
seen = set()
families = set()
try:
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in seen:
                print(f"series twice: {key}")
                sys.exit(1)
            seen.add(key)
except Exception as e:  # the parser raises ValueError and friends on bad input
    print(f"prometheus_client cannot parse the scrape: {e!r}")
    sys.exit(1)

missing = [name for name in sys.argv[1:] if name not in families]
if missing:
    print(f"families missing: {missing}; present: {sorted(families)}")
    sys.exit(1)
print(f"ok: {len(families)} families, {len(seen)} series")
