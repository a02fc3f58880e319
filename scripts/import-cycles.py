#!/usr/bin/env python3
"""Import circles between livehub's top-level modules (issue 21).

For each crate (the library in src/, the load tester in loadtest/src/) this lists, per top-level
module (`src/hub.rs`, or `src/room/` with everything under it), the other top-level modules its
code names through `crate::...` paths: `use crate::clock::now_ms;`, `use crate::{a, b::C};` and
inline paths such as `crate::metrics::X`. Comments are not code and are skipped, so a doc link
to another module is not an arrow. The crate roots (lib.rs, main.rs) declare the modules and
are left out.

It then looks for cycles (a module that reaches itself through these arrows), prints every one
it finds and exits 1; with no cycle it prints the arrows and exits 0, so it can run in the suite:

    python3 scripts/import-cycles.py          # the arrows, then "no import cycles"
    python3 scripts/import-cycles.py --quiet  # only cycles (and the exit status)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = [("livehub", ROOT / "src", {"lib.rs", "main.rs"}), ("loadtest", ROOT / "loadtest" / "src", {"main.rs"})]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments(text):
    """The source without comments, string literals kept as empty quotes (a `crate::` inside a
    string is not a path)."""
    out = []
    i, n = 0, len(text)
    depth = 0
    while i < n:
        if depth:
            if text.startswith("/*", i):
                depth += 1
                i += 2
            elif text.startswith("*/", i):
                depth -= 1
                i += 2
            else:
                i += 1
            continue
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth = 1
            i += 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            # A char literal ('"' would otherwise open a string); a lifetime has no closing quote.
            i += len(re.match(r"'(\\.|[^\\'])'", text[i:]).group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def group_heads(body):
    """The first segment of each path in a `{...}` use group (nested groups skipped)."""
    heads, depth, part = [], 0, ""
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if depth == 0 and c == ",":
            heads.append(part)
            part = ""
        elif depth == 0:
            part += c
    heads.append(part)
    names = []
    for h in heads:
        m = re.match(r"\s*(" + IDENT + ")", h)
        if m:
            names.append(m.group(1))
    return names


def matching_brace(text, start):
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text)


def named_modules(code):
    """Top-level module names a file's code reaches through `crate::`."""
    names = set()
    for m in re.finditer(r"(?<![$A-Za-z0-9_])crate\s*::\s*(\{|" + IDENT + ")", code):
        if m.group(1) == "{":
            end = matching_brace(code, m.start(1))
            names.update(group_heads(code[m.start(1) + 1 : end]))
        else:
            names.add(m.group(1))
    return names


def graph(src, roots):
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if len(rel.parts) == 1 and rel.name in roots:
            continue
        top = rel.parts[0][:-3] if len(rel.parts) == 1 else rel.parts[0]
        modules.setdefault(top, set())
    edges = {m: {} for m in modules}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if len(rel.parts) == 1 and rel.name in roots:
            continue
        top = rel.parts[0][:-3] if len(rel.parts) == 1 else rel.parts[0]
        for name in named_modules(strip_comments(path.read_text())):
            if name in modules and name != top:
                edges[top].setdefault(name, set()).add(str(rel))
    return edges


def cycles(edges):
    """Every elementary cycle, each listed once, starting from its smallest name."""
    found = []
    nodes = sorted(edges)

    def walk(start, node, path, seen):
        for nxt in sorted(edges[node]):
            if nxt == start:
                found.append(path + [start])
            elif nxt > start and nxt not in seen:
                walk(start, nxt, path + [nxt], seen | {nxt})

    for start in nodes:
        walk(start, start, [start], {start})
    return found


def main():
    quiet = "--quiet" in sys.argv[1:]
    bad = False
    for crate, src, roots in CRATES:
        edges = graph(src, roots)
        if not quiet:
            print(f"# {crate} ({src.relative_to(ROOT)}): module -> modules it imports")
            for m in sorted(edges):
                print(f"{m} -> {', '.join(sorted(edges[m])) or '(leaf)'}")
        found = cycles(edges)
        for c in found:
            bad = True
            print(f"CYCLE in {crate}: {' -> '.join(c)}")
            for a, b in zip(c, c[1:]):
                print(f"    {a} -> {b}: {', '.join(sorted(edges[a][b]))}")
        if not quiet:
            print()
    if bad:
        return 1
    print("no import cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
