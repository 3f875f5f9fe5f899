#!/usr/bin/env python3
"""Per-request costs from a callgrind dump, inline files merged into their symbol.

    scripts/callgrind-cost.py DUMP REQUESTS self [TOP]          # self cost per symbol
    scripts/callgrind-cost.py DUMP REQUESTS inclusive REGEX      # self + calls out
    scripts/callgrind-cost.py DUMP REQUESTS callees REGEX [TOP]  # what REGEX's symbols call

callgrind_annotate splits a symbol by the file each inlined line came
from; this adds them up, which is what a comparison of two proxies needs.
"""
import collections
import re
import sys


def parse(path):
    names, self_cost, calls = {}, collections.Counter(), collections.Counter()
    fn = cfn = None
    in_call = False

    def name(line, key):
        m = re.match(key + r"=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
        if not m:
            return line[len(key) + 1:].strip()
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), m.group(1))

    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn = name(line, "fn")
        elif line.startswith("cfn="):
            cfn = name(line, "cfn")
        elif line.startswith("calls="):
            in_call = True
        elif line[:1].isdigit() or line[:1] in ("+", "-", "*"):
            parts = line.split()
            if len(parts) < 2 or fn is None:
                continue
            if in_call:
                in_call = False
                if cfn != fn:
                    calls[(fn, cfn)] += int(parts[1])
            else:
                self_cost[fn] += int(parts[1])
    return self_cost, calls


def main():
    path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    self_cost, calls = parse(path)
    if mode == "self":
        top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
        print(f"{sum(self_cost.values()) / n:8.0f}  total per request")
        for f, c in self_cost.most_common(top):
            print(f"{c / n:8.0f}  {f[:150]}")
    elif mode == "inclusive":
        pat = re.compile(sys.argv[4])
        incl = collections.Counter(self_cost)
        for (caller, _), c in calls.items():
            incl[caller] += c
        for f, c in incl.most_common():
            if pat.search(f):
                print(f"{c / n:8.0f}  {f[:150]}")
    elif mode == "callees":
        pat = re.compile(sys.argv[4])
        top = int(sys.argv[5]) if len(sys.argv) > 5 else 30
        picked = collections.Counter({k: c for k, c in calls.items() if pat.search(k[0])})
        for (caller, callee), c in picked.most_common(top):
            print(f"{c / n:8.0f}  {caller[:50]}  ->  {callee[:110]}")
    else:
        sys.exit(f"unknown mode {mode}: self, inclusive or callees")


if __name__ == "__main__":
    main()
