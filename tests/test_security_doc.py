"""docs/security.md's table of limits says what the code enforces: every documented value is
the value of the named constant, found in the package's modules of that row's component."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import permgen

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"

# which modules a row's "where" column can mean: a pattern over the module's dotted name
# below permgen (module paths may move; the component words stay)
WHERE = {
    "serve": r"(.*\.)?(serve|service|oidc|fleet)",
    "emulator": r"emulator(\..*)?",
    "token `--exec`": r"(.*\.)?childproc",
    "review": r"review(\..*)?",
    "user templates": r"(.*\.)?template\w*",
    "diff": r"(.*\.)?(diff|glob|automata|risk|regions|classes)",
    "explain": r"(.*\.)?(evaluate|explain)",
    "policies": r"(.*\.)?safejson",
    "audit": r"account\.audit",
    "bucket cells": r"semantics\.bucket_cells",
    "conditions": r"semantics\.conditions",
    "usage": r"usage(\..*)?",
    "token `--refresh`": r"(.*\.)?refresh",
    "bucket policies": r"(.*\.)?bucket_policy",
    "specs and callers files": r"(.*\.)?spec(\..*)?",
}
UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024 * 1024, "s": 1, "minutes": 60, "bits": 1}


def _modules() -> list[ModuleType]:
    out = []
    for info in pkgutil.walk_packages(permgen.__path__, "permgen."):
        if ".tools" in info.name or info.name.endswith("__main__"):
            continue
        out.append(importlib.import_module(info.name))
    return out


def _number(text: str) -> float:
    m = re.match(r"([0-9][0-9,]*(?:\.[0-9]+)?)\s*([A-Za-z]+)?", text.strip())
    assert m, text
    return float(m.group(1).replace(",", "")) * UNITS.get(m.group(2) or "", 1)


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[3].startswith("`"):
            rows.append(cells)
    return rows


def _lookup(modules: list[ModuleType], where: str, name: str) -> Any:
    (words,) = [w for key, w in WHERE.items() if where.startswith(key)]
    found = [
        vars(m)[name]
        for m in modules
        if name in vars(m) and re.fullmatch(words, m.__name__.removeprefix("permgen."))
    ]
    assert found, f"{name} is not defined in a module of {where!r}"
    return found[0]


def test_every_documented_limit_is_the_constant_in_force() -> None:
    modules = _modules()
    rows = _rows()
    assert len(rows) >= 25
    for where, _bound, value, constants, _past in rows:
        names = re.findall(r"`([A-Za-z_]+)`", constants)
        if where == "serve" and names == ["SERVER_LIMITS"]:
            limits = _lookup(modules, where, "SERVER_LIMITS")
            concurrency, keep_alive, head = (_number(v) for v in value.split(";"))
            assert limits["limit_concurrency"] == concurrency
            assert limits["timeout_keep_alive"] == keep_alive
            assert limits["h11_max_incomplete_event_size"] == head
            continue
        parts = value.split(";")
        if len(parts) == len(names) > 1:  # "5 s; 30 s" for two constants, in order
            for name, part in zip(names, parts, strict=True):
                assert _lookup(modules, where, name) == _number(part), (where, name, value)
            continue
        expected = _number(value.removeprefix("at most "))
        for name in names:
            assert _lookup(modules, where, name) == expected, (where, name, value)
