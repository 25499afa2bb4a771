"""Semantic-core benchmarks: explain per request, diff of 30-statement policies, a batch of
2,000 typical edits in one process.

    python bench/bench_semantics.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, bench_env, print_table, summary, time_call, verdict
from policies import edited, policy

BATCH = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from permgen.policy.model import parse_policy
from permgen.semantics import diff_policies
changed = 0
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    old, new = json.loads(path.read_text())
    if not diff_policies([parse_policy(old)], [parse_policy(new)]).equivalent:
        changed += 1
print(changed, time.perf_counter() - start)
"""


def main() -> int:
    from permgen.policy.model import parse_policy
    from permgen.semantics import Evaluator, Request, diff_policies

    rows = []
    old = parse_policy(policy(1))
    ev = Evaluator([old])
    requests = [
        Request(
            "oss:GetObject",
            f"acs:oss:*:1234567890123456:team-1-data-{i % 4}/raw/{i % 20}/x",
            {"acs:SecureTransport": "true", "acs:SourceVpc": "vpc-1"},
        )
        for i in range(1000)
    ]
    times = time_call(lambda: [ev.decide(r) for r in requests], runs=10)
    med, _, _ = summary(times)
    rows.append(
        (
            "explain: decide one request (30 statements, library)",
            f"{med / len(requests) * 1e6:.1f} us",
            "<= 50 us",
            verdict(med / len(requests), 50e-6),
        )
    )
    # every pair is new to the process: no cache is warmed by the same pair
    pairs = [
        (parse_policy(policy(1000 + i)), parse_policy(edited(policy(1000 + i), i)))
        for i in range(60)
    ]
    per = []
    for a, b in pairs:
        start = time.perf_counter()
        diff_policies([a], [b])
        per.append(time.perf_counter() - start)
    med, p90, _ = summary(per)
    rows.append(
        (
            "diff: two 30-statement policies (library, 60 different pairs)",
            f"median {med * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms",
            "<= 50 ms",
            verdict(med, 0.05),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2000):
            (Path(tmp) / f"pair-{i:04d}.json").write_text(
                json.dumps([policy(i), edited(policy(i), i)])
            )
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", BATCH, tmp],
            env=bench_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        total = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"batch failed: {out.stderr[-2000:]}")
    changed, inner = out.stdout.split()
    rows.append(
        (
            "diff: 2,000 typical edits, one file per pair, whole process",
            f"{total:.2f} s ({float(inner):.2f} s after start-up; {changed} non-equivalent)",
            "<= 10 s",
            verdict(total, 10),
        )
    )
    print_table("semantics", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
