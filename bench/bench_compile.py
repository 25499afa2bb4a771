"""Compile benchmarks: CLI cold start, compiling the examples, and a 1,000-role spec.

    python bench/bench_compile.py            # prints a table

Whole-process times are medians over repeated runs of the installed ``permgen`` script,
with bytecode caching on (as after a normal install).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import permgen_argv, print_table, summary, time_process, verdict


def big_spec(n: int) -> str:
    lines = [
        "version: 1",
        "defaults:",
        '  account: "1234567890123456"',
        "  conditions: {source_vpc: [vpc-bench01], secure_transport: true}",
        "roles:",
    ]
    templates = ["reader", "writer", "temporary-uploader"]
    for i in range(n):
        t = templates[i % 3]
        lines.append(f"  role-{i:04d}:")
        lines.append(f"    template: {t}")
        lines.append(f"    description: Benchmark role {i}")
        lines.append(
            f"    grants: [{{bucket: bucket-{i % 17:02d}, prefixes: [team-{i}/in/, team-{i}/out/]}}]"
        )
        if t == "writer":
            lines.append("    options: {delete: false, versions: true}")
        lines.append(f'    attach: ["user:user-{i}"]')
    return "\n".join(lines) + "\n"


def main() -> int:
    pg = permgen_argv()
    rows = []
    med, p90, _mx = summary(time_process([*pg, "--help"], runs=21))
    rows.append(
        (
            "`permgen --help` (whole process)",
            f"median {med:.3f} s, p90 {p90:.3f} s",
            "<= 0.12 s",
            verdict(med, 0.12),
        )
    )
    med, p90, _mx = summary(time_process([*pg, "compile", "examples/platform.yaml"], runs=21))
    rows.append(
        (
            "`permgen compile examples/platform.yaml` (6 roles)",
            f"median {med:.3f} s, p90 {p90:.3f} s",
            "<= 0.2 s",
            verdict(med, 0.2),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "big.yaml"
        spec.write_text(big_spec(1000))
        med, p90, _mx = summary(time_process([*pg, "compile", str(spec)], runs=9))
        rows.append(
            (
                "`permgen compile` of 1,000 roles (whole process)",
                f"median {med:.3f} s, p90 {p90:.3f} s",
                "<= 0.6 s",
                verdict(med, 0.6),
            )
        )
        med, p90, _mx = summary(
            time_process([*pg, "compile", str(spec), "--out", str(Path(tmp) / "out")], runs=9)
        )
        rows.append(
            (
                "`permgen compile --out` of 1,000 roles",
                f"median {med:.3f} s, p90 {p90:.3f} s",
                "",
                "",
            )
        )
    print_table("compile", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
