"""Lint benchmarks: 2,000 realistic policies in the library and as one `permgen lint` process.

python bench/bench_lint.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import permgen_argv, print_table, summary, time_process, verdict
from policies import policy


def main() -> int:
    from permgen.lint import lint_policy

    docs = [json.dumps(policy(i, statements=12)) for i in range(2000)]
    start = time.perf_counter()
    findings = sum(1 for d in docs for _ in lint_policy(d))
    lib = time.perf_counter() - start
    rows = [
        (
            "lint 2,000 policies (12 statements each, library)",
            f"{lib:.2f} s ({findings} findings)",
            "",
            "",
        )
    ]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, d in enumerate(docs):
            p = Path(tmp) / f"p{i:04d}.json"
            p.write_text(d)
            paths.append(str(p))
        med, p90, _ = summary(
            time_process([*permgen_argv(), "lint", *paths, "--format", "json"], runs=5, warmup=1)
        )
        rows.append(
            (
                "`permgen lint` of 2,000 files (whole process, default --jobs: one per CPU)",
                f"median {med:.2f} s, p90 {p90:.2f} s",
                "<= 1.2 s",
                verdict(med, 1.2),
            )
        )
        med, p90, _ = summary(
            time_process(
                [*permgen_argv(), "lint", "--jobs", "1", *paths, "--format", "json"],
                runs=5,
                warmup=1,
            )
        )
        rows.append(
            (
                "`permgen lint --jobs 1` of 2,000 files (one process)",
                f"median {med:.2f} s, p90 {p90:.2f} s",
                "",
                "",
            )
        )
    print_table("lint", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
