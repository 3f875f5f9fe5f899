#!/usr/bin/env python3
"""Allocation sites from a dhat profile written by examples/alloc_count.rs
(ALLOC_SITES=FILE), most allocations first: for each site whose stack
runs through jwtgate's own code (not the example's client and upstream),
its count, bytes each, and the first frames past the allocator and std.

    scripts/alloc-sites.py sites.json [MIN_COUNT]   # default 1000
"""
import json
import os
import re
import sys

STD_FILES = re.compile(r"^((alloc|core|std)/src/|src/(raw_vec|vec|alloc|string|fmt|boxed|sync|slice|str)\b|dhat-)")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def ours(where):
    """A frame in jwtgate's own source (paths are relative to the crate)."""
    path = where.split(":", 1)[0]
    return path.startswith("src/") and os.path.exists(os.path.join(ROOT, path))


def frame(text):
    # "0xADDR: name (file:line:col)"
    body = text.split(": ", 1)[-1]
    name, _, where = body.partition(" (")
    return re.sub(r"<.*", "", name), where.rstrip(")")


def main():
    data = json.load(open(sys.argv[1]))
    minimum = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    table = data["ftbl"]
    total = 0
    for p in sorted(data["pps"], key=lambda p: -p["tbk"]):
        if p["tbk"] < minimum:
            continue
        stack = [frame(table[i]) for i in p["fs"]]
        if not any(ours(where) for _, where in stack):
            continue
        shown = [f"{n} ({w})" for n, w in stack if not STD_FILES.match(w) and n not in ("alloc", "{closure#0}")][:4]
        total += p["tbk"]
        print(f"{p['tbk']:>8} x {p['tb'] // max(p['tbk'], 1):>6} B  " + " < ".join(shown))
    print(f"{total:>8} allocations in the sites above")


if __name__ == "__main__":
    main()
