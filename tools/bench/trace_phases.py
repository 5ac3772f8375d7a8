#!/usr/bin/env python3
"""Where a step's time goes, from facetrain's own --profile traces (trainer/step_profiler.h).

Reads RUN_DIR/profile/rank-R.trace.json files (or merged.trace.json) and prints, per rank, the median time per
step of each of facetrain's phases (the named ranges on the training thread), their share of the step, the
rest (between phases: the step's own bookkeeping), how long each gradient bucket's all-reduce ran from launch
to completion, and the LibTorch operators with the most time of their own. Standard library only.

Usage: tools/bench/trace_phases.py RUN_DIR/profile/rank-0.trace.json [more traces...]
"""
import collections
import json
import statistics
import sys

PHASES = ["data wait", "host-to-device copy", "forward", "backward", "gradient sync wait", "optimizer",
          "checkpoint pause"]


def per_rank(events):
    ranks = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            ranks[e["pid"]].append(e)
    return ranks


def self_times(events):
    """Each event's own time (its duration less its children's), by nesting on its thread."""
    own = {}
    by_tid = collections.defaultdict(list)
    for i, e in enumerate(events):
        by_tid[e["tid"]].append(i)
    for indices in by_tid.values():
        indices.sort(key=lambda i: (events[i]["ts"], -events[i]["dur"]))
        stack = []
        for i in indices:
            e = events[i]
            while stack and events[stack[-1]]["ts"] + events[stack[-1]]["dur"] <= e["ts"]:
                stack.pop()
            own[i] = e["dur"]
            if stack:
                own[stack[-1]] -= e["dur"]
            stack.append(i)
    return own


def report(rank, events):
    steps = sorted((e for e in events if e["name"].startswith("step ")), key=lambda e: e["ts"])
    if not steps:
        print(f"rank {rank}: no step ranges")
        return
    per_phase = collections.defaultdict(list)
    buckets = collections.defaultdict(list)
    step_ms = []
    for s in steps:
        lo, hi, tid = s["ts"], s["ts"] + s["dur"], s["tid"]
        inside = [e for e in events if e["tid"] == tid and lo <= e["ts"] and e["ts"] + e["dur"] <= hi + 1]
        for p in PHASES:
            per_phase[p].append(sum(e["dur"] for e in inside if e["name"] == p) / 1e3)
        for e in events:
            if e["name"].startswith("all-reduce: ") and lo <= e["ts"] <= hi:
                buckets[e["name"][len("all-reduce: "):]].append(e["dur"] / 1e3)
        step_ms.append(s["dur"] / 1e3)
    step = statistics.median(step_ms)
    names = ", ".join(s["name"] for s in steps)
    print(f"rank {rank}: {names}; median step {step:.2f} ms")
    accounted = 0.0
    for p in PHASES:
        ms = statistics.median(per_phase[p])
        if ms == 0 and p == "checkpoint pause":
            continue
        accounted += ms
        print(f"  {p:<20} {ms:9.2f} ms  {100 * ms / step:5.1f} %")
    print(f"  {'(between phases)':<20} {step - accounted:9.2f} ms  {100 * (step - accounted) / step:5.1f} %")
    for name, durations in sorted(buckets.items()):
        print(f"  {name}: launch to completion {statistics.median(durations):.2f} ms (median of {len(durations)})")
    # LibTorch operators by their own time over the profiled steps (the profiler's view of the GEMM share).
    own = self_times(events)
    window = sum(step_ms) * 1e3
    by_op = collections.Counter()
    for i, e in enumerate(events):
        if e["name"].startswith("aten::") and any(s["ts"] <= e["ts"] <= s["ts"] + s["dur"] for s in steps):
            by_op[e["name"]] += own[i]
    top = ", ".join(f"{name} {100 * t / window:.1f} %" for name, t in by_op.most_common(8))
    print(f"  operators' own time, share of the steps: {top}")


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[-1])
        return 2
    for path in paths:
        with open(path) as f:
            trace = json.load(f)
        for rank, events in sorted(per_rank(trace["traceEvents"]).items()):
            report(rank, events)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
