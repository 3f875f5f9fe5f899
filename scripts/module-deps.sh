#!/usr/bin/env bash
# Which top-level modules of the crate each top-level module uses, and a
# check that they point one way: prints the graph bottom-up (a module's
# line names the modules it uses, each printed above it) and exits non-zero
# on a cycle. References are `crate::<top>` paths (grouped `use crate::{a,
# b}` too) and `super::` chains that climb to the crate root, in code
# (comments and strings are left out), tests included; lib.rs and main.rs
# are the root and may use everything.
#
# `scripts/module-deps.pending` lists edges known to point the wrong way,
# each with the change that removes it; they are shown as `(pending)` and
# left out of the cycle check. A listed edge that no longer exists is an
# error too, so the list only shrinks.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys
from collections import defaultdict

def strip_code(text):
    """Drops comments, string and char literals (keeps line structure)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            i = n if j < 0 else j + 2
        elif c == 'r' and re.match(r'r#*"', text[i:]) and not (i and (text[i-1].isalnum() or text[i-1] == '_')):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            j = text.find('"' + hashes, i + 2 + len(hashes))
            i = n if j < 0 else j + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:]):
            i += len(re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).group(0))
        else:
            out.append(c)
            i += 1
    return ''.join(out)

def group_heads(body):
    """`a, b::c, d::{e, f}` -> [a, b, d]: the first name of each item."""
    heads, depth, item = [], 0, ''
    for ch in body + ',':
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
        if ch == ',' and depth == 0:
            m = re.match(r'\s*(\w+)', item)
            if m:
                heads.append(m.group(1))
            item = ''
        else:
            item += ch
    return heads

def braced(text, start):
    """The text inside the braces opening at `start`."""
    depth = 0
    for j in range(start, len(text)):
        depth += {'{': 1, '}': -1}.get(text[j], 0)
        if depth == 0:
            return text[start + 1:j]
    return ''

def references(code, path):
    """Top-level modules named by `crate::` and root-reaching `super::` paths."""
    found = []
    for m in re.finditer(r'\b(crate|(?:super::)+)(::)?\s*(\{|\w+)', code):
        if m.group(1) == 'crate':
            if not m.group(2):
                continue
        elif m.group(1).count('super::') < len(path):
            continue
        found += group_heads(braced(code, m.start(3))) if m.group(3) == '{' else [m.group(3)]
    return found

tops = sorted(e[:-3] if e.endswith('.rs') else e for e in os.listdir('src')
              if e not in ('lib.rs', 'main.rs') and (e.endswith('.rs') or os.path.isdir(os.path.join('src', e))))
edges = defaultdict(lambda: defaultdict(int))
for root, _, files in os.walk('src'):
    for f in files:
        rel = os.path.relpath(os.path.join(root, f), 'src')
        if not f.endswith('.rs') or rel in ('lib.rs', 'main.rs'):
            continue
        parts = rel[:-3].split(os.sep)
        if parts[-1] == 'mod':
            parts = parts[:-1]
        code = strip_code(open(os.path.join(root, f), encoding='utf-8').read())
        for name in references(code, parts):
            if name in tops and name != parts[0]:
                edges[parts[0]][name] += 1

pending, problems = set(), []
if os.path.exists('scripts/module-deps.pending'):
    for line in open('scripts/module-deps.pending'):
        line = line.split('#')[0].strip()
        if line:
            a, b = (s.strip() for s in line.split('->'))
            pending.add((a, b))
            if b not in edges[a]:
                problems.append(f'{a} -> {b} is listed as pending but no longer exists: remove it from the list')

graph = {t: sorted(b for b in edges[t] if (t, b) not in pending) for t in tops}
# Tarjan: strongly connected components; any with two or more modules is a cycle.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def connect(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in graph[v]:
        if w not in index:
            connect(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        scc = []
        while True:
            w = stack.pop(); on.discard(w); scc.append(w)
            if w == v:
                break
        sccs.append(sorted(scc))
sys.setrecursionlimit(10000)
for t in tops:
    if t not in index:
        connect(t)

# Tarjan emits components dependencies first: that is the bottom-up order.
for scc in sccs:
    for t in scc:
        uses = [f"{b}{' (pending)' if (t, b) in pending else ''}" for b in sorted(edges[t])]
        print(f"{t:<11} -> {', '.join(uses) if uses else '(nothing)'}")
def shortest_cycle(scc):
    """One cycle through the component's first module, shortest first (BFS)."""
    start, paths = scc[0], [[scc[0]]]
    while paths:
        path = paths.pop(0)
        for w in graph[path[-1]]:
            if w == start:
                return path + [start]
            if w in scc and w not in path:
                paths.append(path + [w])
for scc in sccs:
    if len(scc) > 1:
        problems.append(f"cycle among {', '.join(scc)}, e.g. {' -> '.join(shortest_cycle(scc))}")
for p in problems:
    print(f'module-deps: {p}', file=sys.stderr)
if problems:
    sys.exit(1)
print(f'module-deps: {len(tops)} top-level modules, no cycle' + (f' ({len(pending)} pending edge(s) left out)' if pending else ''))
PY
