"""The source tree's shape, as docs/ARCHITECTURE.md draws it: small files, each folder
saying what it owns, `src/runtime/` free of Python, and no import circles in `src/py/`."""

import os
import re

import pytest

from conftest import ROOT

SRC = os.path.join(ROOT, "src")
PY = os.path.join(SRC, "py")
MAX_LINES = 500


def rust_files(root):
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(folder, name)


def module_of(path):
    """`src/py/a/b.rs` -> ("a", "b"); `src/py/a/mod.rs` -> ("a",)."""
    parts = os.path.relpath(path, PY)[:-3].split(os.sep)
    return tuple(parts[:-1]) if parts[-1] == "mod" else tuple(parts)


def imported_paths(source):
    """Each path a `use crate::py::...` or `use super::...` names, braces expanded; the
    code under `#[cfg(test)]` is left out (its `use super::*` is the module's own)."""
    source = source.split("#[cfg(test)]")[0]
    for root, rest in re.findall(r"\buse (crate::py::|super::|[a-z_]+::)([^;]+);", source):
        rest = re.sub(r"\s+", "", rest)
        grouped = re.fullmatch(r"(.*?)\{(.*)\}", rest)
        items = ([grouped.group(1) + item for item in grouped.group(2).split(",") if item]
                 if grouped else [rest])
        for item in items:
            yield root, item.split("::{")[0]


def import_graph():
    modules = {module_of(p): p for p in rust_files(PY)}

    def resolve(parts):
        for n in range(len(parts), 0, -1):
            if tuple(parts[:n]) in modules:
                return tuple(parts[:n])
        return None

    graph = {}
    for module, path in modules.items():
        with open(path) as f:
            source = f.read()
        is_folder = path.endswith("mod.rs")
        # `super` is the parent of the module, whose own path ends at its name.
        parent = list(module[:-1])
        for root, item in imported_paths(source):
            if root == "crate::py::":
                target = resolve(item.split("::"))
            elif root == "super::":
                target = resolve(parent + item.split("::"))
            elif is_folder:  # `use child::...` in a folder's mod.rs
                target = resolve(list(module) + [root[:-2]] + item.split("::"))
            else:
                continue
            if target and target != module:
                graph.setdefault(module, set()).add(target)
    return modules, graph


def test_the_import_graph_is_read():
    # The reader must find the edges it is there to check.
    _, graph = import_graph()
    assert ("handles",) in graph[("event_loop", "run_once")]
    assert ("transports",) in graph[("event_loop", "queues")]
    assert ("event_loop",) in graph[("fastcall", "arguments")]


def test_no_import_circles_in_src_py():
    _, graph = import_graph()

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    circles = sorted({tuple(sorted(("/".join(a), "/".join(b))))
                      for a in graph for b in graph[a] if reaches(b, a)})
    assert circles == []


@pytest.mark.parametrize("lower", ["handles", "transports"])
def test_lower_layers_do_not_name_the_loop(lower):
    for path in rust_files(os.path.join(PY, lower)):
        with open(path) as f:
            assert "event_loop" not in f.read().split("#[cfg(test)]")[0], path


def test_files_are_small():
    long = {os.path.relpath(p, ROOT): n for p in rust_files(SRC)
            if (n := sum(1 for _ in open(p))) > MAX_LINES}
    assert long == {}


def test_every_folder_says_what_it_owns():
    for folder, _, files in os.walk(SRC):
        if folder == SRC:
            continue
        with open(os.path.join(folder, "mod.rs")) as f:
            assert f.readline().startswith("//!"), folder


def test_runtime_is_python_free():
    for path in rust_files(os.path.join(SRC, "runtime")):
        with open(path) as f:
            assert not re.search(r"\bpyo3::|use pyo3\b", f.read()), path
