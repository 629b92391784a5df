#!/usr/bin/env python3
"""Prints the longest Rust functions under the given folders, longest first:
lines (from the `fn` line to its closing brace), file:line, name.

    scripts/longest-functions.py image-builder/src kiosk/src [--top N] [--max L]

With --max L it exits 1 when a function is longer than L lines. Strings (also raw
and multi-line ones), character literals and comments are skipped when braces
are counted.
"""
import argparse
import os
import re
import sys

FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def code_only(text):
    """The text with strings, chars and comments blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'" and (m := re.compile(r"'(\\.[^']*|[^'\\])'").match(text, i)):
            out.append(" " * (m.end() - i))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    code = code_only(open(path, encoding="utf-8").read())
    for m in FN.finditer(code):
        start = m.start()
        i, depth = m.end(), 0
        while i < len(code) and code[i] not in "{;":
            i += 1
        if i >= len(code) or code[i] == ";":
            continue  # a declaration without a body
        while i < len(code):
            if code[i] == "{":
                depth += 1
            elif code[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        first = code.count("\n", 0, start) + 1
        last = code.count("\n", 0, i) + 1
        yield last - first + 1, f"{path}:{first}", m.group(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--max", type=int)
    args = parser.parse_args()
    found = []
    for folder in args.folders:
        if not os.path.isdir(folder):
            sys.exit(f"{folder}: not a folder")
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                if name.endswith(".rs"):
                    found.extend(functions(os.path.join(root, name)))
    found.sort(key=lambda f: -f[0])
    for lines, where, name in found[: args.top]:
        print(f"{lines:5}  {where}  {name}")
    if args.max is not None:
        over = [f for f in found if f[0] > args.max]
        if over:
            sys.exit(f"{len(over)} function(s) longer than {args.max} lines")


if __name__ == "__main__":
    main()
