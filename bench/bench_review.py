"""Review benchmark: a 100-role spec between two revisions that change 10 roles.

python bench/bench_review.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import permgen_argv, print_table, summary, time_process, verdict


def spec(changed: bool) -> str:
    lines = [
        "version: 1",
        "defaults:",
        '  account: "1234567890123456"',
        "  conditions: {source_vpc: [vpc-bench01], secure_transport: true}",
        "roles:",
    ]
    for i in range(100):
        template = ["reader", "writer", "temporary-uploader"][i % 3]
        lines.append(f"  role-{i:03d}:")
        lines.append(f"    template: {template}")
        prefixes = [f"team-{i}/in/", f"team-{i}/out/"]
        if changed and i % 10 == 0:
            prefixes.append(f"shared-{i}/")  # widened
        lines.append(f"    grants: [{{bucket: bucket-{i % 9}, prefixes: {prefixes}}}]")
        if template == "writer":
            delete = "true" if changed and i % 10 == 1 else "false"
            lines.append(f"    options: {{delete: {delete}}}")
    return "\n".join(lines) + "\n"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)

        def git(*args: str) -> None:
            subprocess.run(
                ["git", "-c", "user.email=b@example.invalid", "-c", "user.name=b", *args],
                cwd=repo,
                check=True,
                capture_output=True,
            )

        git("init", "-q", "-b", "main")
        (repo / "roles.yaml").write_text(spec(False))
        git("add", "roles.yaml")
        git("commit", "-q", "-m", "base")
        (repo / "roles.yaml").write_text(spec(True))
        med, p90, _ = summary(
            time_process(
                [
                    *permgen_argv(),
                    "review",
                    str(repo / "roles.yaml"),
                    "--base",
                    "main",
                    "--format",
                    "json",
                ],
                runs=7,
                warmup=1,
            )
        )
    print_table(
        "review",
        [
            (
                "`permgen review` of 100 roles, 10 changed (whole process)",
                f"median {med:.2f} s, p90 {p90:.2f} s",
                "<= 3 s",
                verdict(med, 3.0),
            )
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
