#!/usr/bin/env python3
"""Inclusive cost under a symbol in a `perf record -g` profile.

    scripts/perf-children.py perf.data 'Gate::phases' [DEPTH]

Prints the share of all samples whose stack holds a frame matching the
pattern (a substring), then, for the frames directly below it, their
inclusive shares (DEPTH levels deep, default 1). Needs frame-pointer
call stacks (RUSTFLAGS="-C force-frame-pointers=yes").
"""
import collections, subprocess, sys

data, pattern = sys.argv[1], sys.argv[2]
depth = int(sys.argv[3]) if len(sys.argv) > 3 else 1
out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"], capture_output=True, text=True).stdout
total, hit = 0, 0
below = collections.Counter()
for block in out.split("\n\n"):
    frames = [l.split(None, 1)[1].rsplit(" (", 1)[0] if len(l.split(None, 1)) > 1 else "?" for l in block.strip().splitlines()]
    if not frames:
        continue
    total += 1
    # frames[0] is the leaf; find the outermost matching frame
    idx = [i for i, f in enumerate(frames) if pattern in f]
    if not idx:
        continue
    hit += 1
    top = idx[-1]
    path = tuple(frames[max(top - depth, 0):top][::-1]) or ("(self)",)
    below[" > ".join(path)] += 1
print(f"{pattern}: {100 * hit / max(total, 1):.2f}% of {total} samples")
for name, n in below.most_common(40):
    print(f"  {100 * n / total:6.2f}%  {name[:200]}")
