"""Rewrite the expected findings of the lint golden corpus (``tests/lint_corpus``).

    python -m permgen.tools.update_golden

Each ``<case>.json`` gets a ``<case>.expected.json`` with the findings permgen reports now.
Read every changed file before committing it: the corpus is only worth something when a
person has checked that the expected findings are right.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "lint_corpus"


def expected_for(path: Path) -> list[dict[str, Any]]:
    from permgen.lint.engine import lint_files

    report = lint_files([path])
    out = []
    for f in report.findings:
        row: dict[str, Any] = {
            "rule": f.rule_id,
            "severity": f.severity,
            "path": f.path,
            "message": f.message,
        }
        if f.line is not None:
            row["line"] = f.line
        out.append(row)
    return out


def cases() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*.json") if not p.name.endswith(".expected.json"))


def main() -> int:
    for case in cases():
        target = case.with_name(case.name[: -len(".json")] + ".expected.json")
        target.write_text(json.dumps(expected_for(case), indent=2) + "\n")
        print(f"wrote {target.relative_to(CORPUS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
