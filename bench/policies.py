"""Realistic policies for the benchmarks, generated deterministically."""

from __future__ import annotations

import random
from typing import Any

ACTIONS = [
    ["oss:GetObject"],
    ["oss:GetObject", "oss:GetObjectVersion"],
    ["oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"],
    ["oss:DeleteObject"],
    ["oss:GetObjectTagging", "oss:PutObjectTagging"],
]


def policy(seed: int, statements: int = 30) -> dict[str, Any]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    buckets = [f"team-{seed % 7}-data-{i}" for i in range(4)]
    while len(out) < statements:
        b = rng.choice(buckets)
        prefix = f"{rng.choice(['raw', 'exports', 'ingest', 'tmp'])}/{rng.randrange(20)}/"
        kind = rng.random()
        cond = {"Bool": {"acs:SecureTransport": ["true"]}}
        if rng.random() < 0.5:
            cond["StringEquals"] = {"acs:SourceVpc": [f"vpc-{rng.randrange(3)}"]}
        if kind < 0.6:
            out.append(
                {
                    "Effect": "Allow",
                    "Action": rng.choice(ACTIONS),
                    "Resource": [f"acs:oss:*:1234567890123456:{b}/{prefix}*"],
                    "Condition": cond,
                }
            )
        elif kind < 0.85:
            out.append(
                {
                    "Effect": "Allow",
                    "Action": ["oss:ListObjects"],
                    "Resource": [f"acs:oss:*:1234567890123456:{b}"],
                    "Condition": {**cond, "StringLike": {"oss:Prefix": [f"{prefix}*"]}},
                }
            )
        else:
            out.append(
                {
                    "Effect": "Deny",
                    "Action": ["oss:PutObject"],
                    "Resource": [f"acs:oss:*:1234567890123456:{b}/*"],
                    "Condition": {
                        "StringEquals": {
                            "oss:x-oss-object-acl": ["public-read", "public-read-write"]
                        }
                    },
                }
            )
    return {"Version": "1", "Statement": out}


def edited(doc: dict[str, Any], seed: int) -> dict[str, Any]:
    """A typical edit: one statement added, removed or widened."""
    rng = random.Random(seed)
    statements = [dict(s) for s in doc["Statement"]]
    kind = seed % 3
    if kind == 0:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["oss:DeleteObject"],
                "Resource": [f"acs:oss:*:1234567890123456:team-{seed % 7}-data-0/tmp/*"],
            }
        )
    elif kind == 1:
        statements.pop(rng.randrange(len(statements)))
    else:
        i = rng.randrange(len(statements))
        s = statements[i]
        s["Resource"] = [r.rsplit("/", 2)[0] + "/*" if "/" in r else r for r in s["Resource"]]
    return {"Version": "1", "Statement": statements}
