#!/usr/bin/env python3
"""Finds import circles between the modules of Rust crates: every `crate::a::b`
(and `super::x`) path outside `#[cfg(test)] mod tests` counts as "a uses b".
Prints the folder-level graph; exits 1 on any circle between modules or folders.

    scripts/module-cycles.py image-builder/src kiosk/src qemu-tests/src
"""
import os
import re
import sys


def modules(src):
    found = {}
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d != "bin"]
        for name in files:
            if not name.endswith(".rs"):
                continue
            parts = os.path.relpath(os.path.join(root, name), src)[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                continue
            text = open(os.path.join(root, name), encoding="utf-8").read()
            cut = text.find("#[cfg(test)]\nmod tests")
            found["::".join(parts)] = text if cut < 0 else text[:cut]
    return found


def edges(mods):
    out = {m: set() for m in mods}
    for mod, text in mods.items():
        refs = re.findall(r"crate::([a-z_][a-z0-9_:]*)", text)
        parent = mod.split("::")[:-1]
        refs += ["::".join(parent + [r]) for r in re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", text)]
        for ref in refs:
            parts = ref.split("::")
            for k in range(len(parts), 0, -1):
                target = "::".join(parts[:k])
                if target in mods:
                    if target != mod and not mod.startswith(target + "::"):
                        out[mod].add(target)
                    break
    return out


def cycles(graph):
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return result


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bad = False
    for src in sys.argv[1:]:
        if not os.path.isdir(src):
            sys.exit(f"{src}: not a folder")
        graph = edges(modules(src))
        top = lambda m: m.split("::")[0]
        folders = {}
        for mod, used in graph.items():
            folders.setdefault(top(mod), set())
            folders[top(mod)] |= {top(u) for u in used if top(u) != top(mod)}
        print(f"{src}:")
        for folder in sorted(folders):
            print(f"  {folder} -> {', '.join(sorted(folders[folder])) or '(nothing)'}")
        for kind, found in (("modules", cycles(graph)), ("folders", cycles(folders))):
            for circle in found:
                print(f"  CIRCLE between {kind}: {' <-> '.join(circle)}")
                bad = True
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
