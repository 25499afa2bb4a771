"""PG2xx: semantic rules, which need :mod:`permgen.semantics` (redundancy, reach, dead denies)."""

from __future__ import annotations

from collections.abc import Iterator

from permgen.lint.core import Check, Hit, LintContext, Rule
from permgen.lint.rules.common import (
    D1,
    O1,
    O2,
    level_mismatches,
    register,
)
from permgen.policy import catalog
from permgen.policy.model import DENY


def _semantic(kind: str) -> Check:
    def check(ctx: LintContext) -> Iterator[Hit]:
        from permgen.semantics import checks

        source = {
            "redundant": checks.redundant_statements,
            "all-on-bucket": checks.effectively_all_on_bucket,
            "destructive": checks.destructive_without_conditions,
        }[kind]
        for issue in source(ctx.policy):
            yield f"Statement[{issue.statement_index}]", issue.message

    return check


REDUNDANT = register(
    Rule(
        id="PG201",
        name="grants-nothing",
        severity="warning",
        summary="An Allow statement that grants nothing: shadowed by a Deny, or contained in another Allow.",
        description=(
            "Decided exactly on the patterns: every request the statement matches is denied by "
            "one Deny (with no more conditions), or allowed by one other Allow (with no more "
            "conditions). Remove it, or fix the statement that makes it useless."
        ),
        reference=D1,
        example='[{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}, {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/a/*"}]',
        passes='[{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/a/*"}, {"Effect": "Allow", "Action": "oss:PutObject", "Resource": "acs:oss:*:*:b/a/*"}]',
        check=_semantic("redundant"),
    )
)
ALL_ON_BUCKET = register(
    Rule(
        id="PG202",
        name="all-actions-on-bucket",
        severity="warning",
        summary="An Allow that grants every OSS action (object or bucket level) on a named bucket.",
        description=(
            "Whatever the spelling (oss:*, a list, NotAction), a statement that grants every "
            "action on a bucket includes deletes, ACL and policy changes."
        ),
        reference=O2,
        example='{"Effect": "Allow", "NotAction": "ram:*", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject"], "Resource": "acs:oss:*:*:b/*"}',
        check=_semantic("all-on-bucket"),
    )
)
DESTRUCTIVE = register(
    Rule(
        id="PG203",
        name="unconditioned-delete",
        severity="warning",
        summary="An Allow of a delete action with no condition.",
        description=(
            "Deleted objects cannot be recovered without versions. Limit who can delete by "
            "network (acs:SourceVpc, acs:SourceIp) and transport (acs:SecureTransport)."
        ),
        reference=O1,
        example='{"Effect": "Allow", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:b/tmp/*"}',
        passes='{"Effect": "Allow", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:b/tmp/*", "Condition": {"StringEquals": {"acs:SourceVpc": "vpc-123"}}}',
        check=_semantic("destructive"),
    )
)


def _check_dead_deny(ctx: LintContext) -> Iterator[Hit]:
    for i, s in enumerate(ctx.policy.statements):
        if s.effect != DENY or s.not_action or s.not_resource:
            continue
        known = [
            a
            for a in s.actions
            if "*" not in a
            and "?" not in a
            and (info := catalog.lookup(a)) is not None
            and info.service == "oss"
        ]
        wrong = list(level_mismatches(s))
        if known and len(wrong) == len(known) == len(s.actions):
            levels = ", ".join(sorted({lvl for _, _, lvl in wrong}))
            yield (
                f"Statement[{i}]",
                f"this Deny can never match: its actions are {levels}-level but no Resource has that level; it protects nothing",
            )


DEAD_DENY = register(
    Rule(
        id="PG204",
        name="deny-cannot-match",
        severity="error",
        summary="A Deny that can never match because its resources are of the wrong level for its actions.",
        description=(
            "A guard such as Deny oss:DeleteObject on acs:oss:*:*:bucket (a bucket ARN) never "
            "applies: object actions are authorized against bucket/key. The protection the "
            "author meant is missing."
        ),
        reference=O2,
        example='{"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:my-bucket"}',
        passes='{"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:my-bucket/*"}',
        check=_check_dead_deny,
    )
)
