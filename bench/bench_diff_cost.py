"""The diff's cost with many condition keys: the search used to take the full product of
every key's condition classes (a 4.8 KB pair with 9 keys: 1.4 million combinations, refused
at the budget; unbounded before the budget, 107 s and 5.9 GB). Keys are now folded one at a
time and only combinations that change which statements apply are kept.
Targets: the cases below answered exactly in well under a second; a hostile case (every
statement ties all 9 keys with overlapping numeric ranges) answered or refused (exit 2)
within a few seconds and bounded memory.

    python bench/bench_diff_cost.py
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from _util import print_table, summary, time_call, verdict

A = "acs:oss:*:1234567890123456:"
ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:ListObjects"]
KEYS: list[tuple[str, str, Any]] = [
    ("IpAddress", "acs:SourceIp", lambda n: [f"10.{n}.0.0/16"]),
    ("Bool", "acs:SecureTransport", lambda n: ["true"]),
    ("DateLessThan", "acs:CurrentTime", lambda n: [f"2026-0{1 + n % 9}-01T00:00:00Z"]),
    ("StringLike", "oss:Prefix", lambda n: [f"in{n}/*"]),
    ("StringEquals", "oss:Delimiter", lambda n: [f"d{n}"]),
    ("StringEquals", "oss:x-oss-object-acl", lambda n: [f"acl{n}"]),
    ("StringEquals", "acs:SourceVpc", lambda n: [f"vpc-{n}a"]),
    ("NumericLessThanEquals", "oss:MaxKeys", lambda n: [str(100 * (n + 1))]),
    ("StringNotEquals", "acs:AccessId", lambda n: [f"LTAI{n}"]),
]


def spread(side: int, keys: int, statements: int, per: int, buckets: int) -> dict[str, Any]:
    """Statements with ``per`` condition keys each, taken in turn from ``keys`` keys; old
    (side 0) and new (side 1) differ in every constant."""
    out = []
    for s in range(statements):
        cond: dict[str, dict[str, list[str]]] = {}
        for j in range(per):
            op, key, values = KEYS[(s * per + j) % keys]
            cond.setdefault(op, {})[key] = values(s * 2 + side)
        out.append(
            {
                "Effect": "Deny" if s % 4 == 3 else "Allow",
                "Action": ACTIONS[: 1 + s % 4],
                "Resource": [A + f"data/t{s % buckets}/*", A + f"data/t{s % buckets}/x{side}/*"],
                "Condition": cond,
            }
        )
    return {"Version": "1", "Statement": out}


def tied(side: int, statements: int) -> dict[str, Any]:
    """Hostile for the folding: every statement ties 9 numeric keys, with thresholds that
    overlap from statement to statement (so many subsets of statements can apply)."""
    out = []
    for s in range(statements):
        limits = {f"test:n{k}": [str((s * (k + 3) + side * 7) % 23 + 1)] for k in range(9)}
        out.append(
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject"],
                "Resource": [A + "data/*"],
                "Condition": {"NumericLessThan": limits},
            }
        )
    return {"Version": "1", "Statement": out}


def _measure(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, float, str]:
    from permgen.policy.model import parse_policy
    from permgen.semantics import diff_policies
    from permgen.semantics.diff import DiffTooLarge

    o, n = parse_policy(json.dumps(old)), parse_policy(json.dumps(new))
    try:
        result = diff_policies([o], [n])
        outcome = (
            f"exact={result.exact}, {len(result.new_access)} new / "
            f"{len(result.removed_access)} removed, "
            f"{result.stats['context_classes']:,} context classes"
        )
    except DiffTooLarge:
        outcome = "refused (exit 2)"
    med, _, _ = summary(time_call(lambda: _try(o, n, diff_policies, DiffTooLarge), runs=3))
    size = len(json.dumps(old, indent=1)) + len(json.dumps(new, indent=1))
    return outcome, med, f"{size / 1000:.1f} KB"


def _try(o: Any, n: Any, fn: Any, exc: Any) -> None:
    with contextlib.suppress(exc):
        fn([o], [n])


def main() -> int:
    cases = [
        ("5 keys, 4 statements a side", spread(0, 5, 4, 2, 2), spread(1, 5, 4, 2, 2)),
        ("9 keys, 6 statements a side", spread(0, 9, 6, 3, 4), spread(1, 9, 6, 3, 4)),
        ("9 keys, 7 statements, 7 prefixes", spread(0, 9, 7, 2, 7), spread(1, 9, 7, 2, 7)),
        ("9 keys on every statement, 12 a side", tied(0, 12), tied(1, 12)),
        ("9 keys on every statement, 40 a side", tied(0, 40), tied(1, 40)),
    ]
    rows = []
    for label, old, new in cases:
        outcome, med, size = _measure(old, new)
        rows.append(
            (
                f"diff: {label} ({size})",
                f"{med * 1000:.1f} ms; {outcome}",
                "<= 5 s",
                verdict(med, 5),
            )
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    rows.append(("peak memory of the whole run", f"{rss} MB", "<= 500 MB", verdict(rss, 500)))
    print_table("diff cost with many condition keys", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
