#!/usr/bin/env python3
"""p50 / p90 / p99 (bucket upper bounds) and the mean of Prometheus histograms in a /metrics dump.

usage: histogram-quantiles.py METRICS_FILE NAME [NAME...]   (one line per label set)
"""
import re
import sys
from collections import defaultdict

path, names = sys.argv[1], sys.argv[2:]
buckets = defaultdict(list)
sums, counts = {}, {}
line_re = re.compile(r'^(\w+?)(_bucket|_sum|_count)\{?([^}]*)\}?\s+([0-9.eE+-]+|\+Inf)$')
for line in open(path, encoding="utf-8"):
    m = line_re.match(line.strip())
    if not m or m.group(1) not in names:
        continue
    name, kind, labels, value = m.groups()
    labels = ",".join(l for l in labels.split(",") if l and not l.startswith("le="))
    key = (name, labels)
    if kind == "_bucket":
        le = re.search(r'le="([^"]+)"', line).group(1)
        buckets[key].append((float("inf") if le == "+Inf" else float(le), float(value)))
    elif kind == "_sum":
        sums[key] = float(value)
    else:
        counts[key] = float(value)
for key in sorted(counts):
    n = counts[key]
    if n == 0:
        continue
    bs = sorted(buckets[key])
    def q(p):
        for le, c in bs:
            if c >= p * n:
                return le
        return float("inf")
    name, labels = key
    print(f"  {name}{{{labels}}} n={n:.0f} mean={sums[key] / n:.4g} p50<={q(0.5)} p90<={q(0.9)} p99<={q(0.99)}")
