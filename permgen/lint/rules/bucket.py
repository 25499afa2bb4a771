"""PG3xx: bucket-policy rules. They look at ``ctx.bucket`` (the statements with their
Principal) and yield nothing for an identity policy."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from permgen.lint.core import Hit, LintContext, Rule
from permgen.lint.rules.common import O1, oss_arn, register
from permgen.lint.rules.statements import RECOVERY_ACTIONS
from permgen.policy import catalog
from permgen.policy.model import ALLOW
from permgen.policy.wildcard import names_matching
from permgen.semantics.bucket_policy import bucket_policy_problems

O3 = "https://www.alibabacloud.com/help/en/oss/user-guide/oss-bucket-policy/"


def _check_ip_without_vpc(ctx: LintContext) -> Iterator[Hit]:
    if ctx.bucket is None:
        return
    for problem in bucket_policy_problems(ctx.bucket):
        where, _, message = problem.partition(": ")
        yield f"{where}.Condition", f"OSS refuses this bucket policy: {message}"


IP_WITHOUT_VPC = register(
    Rule(
        id="PG301",
        name="bucket-source-ip-without-vpc",
        severity="error",
        summary="A bucket-policy statement tests acs:SourceIp but not acs:SourceVpc.",
        description=(
            "OSS refuses a bucket policy whose statement has an acs:SourceIp condition "
            'without an acs:SourceVpc one ("acs:SourceVpc should be set if acs:SourceIp is '
            'set"). Add the VPC condition (StringLike ["vpc-*"] means "from any VPC"; '
            'StringNotLike ["vpc-*"] means "not from a VPC").'
        ),
        reference=O3,
        example='{"Effect": "Allow", "Principal": ["1234567890123456"], "Action": "oss:GetObject", '
        '"Resource": "acs:oss:*:1234567890123456:b/*", "Condition": {"IpAddress": {"acs:SourceIp": ["203.0.113.0/24"]}}}',
        passes='{"Effect": "Allow", "Principal": ["1234567890123456"], "Action": "oss:GetObject", '
        '"Resource": "acs:oss:*:1234567890123456:b/*", "Condition": {"IpAddress": {"acs:SourceIp": ["203.0.113.0/24"]}, '
        '"StringNotLike": {"acs:SourceVpc": ["vpc-*"]}}}',
        check=_check_ip_without_vpc,
    )
)


def _check_anonymous(ctx: LintContext) -> Iterator[Hit]:
    if ctx.bucket is None:
        return
    for i, bs in enumerate(ctx.bucket.statements):
        st = bs.statement
        if st.effect == ALLOW and bs.everyone and not st.conditions:
            yield (
                f"Statement[{i}].Principal",
                'Allow to Principal "*" without a Condition: anyone on the internet, signed '
                'or not, may do this (an empty Principal list also means "*")',
            )


ANONYMOUS = register(
    Rule(
        id="PG302",
        name="bucket-anonymous-access",
        severity="error",
        summary='A bucket-policy Allow to Principal "*" (or []) without any Condition.',
        description=(
            'Principal "*" names every caller, anonymous ones included; an empty list means '
            "the same. Without a Condition (a VPC, an IP range with a VPC, HTTPS...) the "
            "statement makes the resources public. Name the principals, or add the condition "
            "that confines the callers."
        ),
        reference=O3,
        example='{"Effect": "Allow", "Principal": ["*"], "Action": "oss:GetObject", "Resource": "acs:oss:*:1234567890123456:b/*"}',
        passes='{"Effect": "Allow", "Principal": ["*"], "Action": "oss:GetObject", "Resource": "acs:oss:*:1234567890123456:b/*", '
        '"Condition": {"StringEquals": {"acs:SourceVpc": ["vpc-bp1abc"]}}}',
        check=_check_anonymous,
    )
)


@cache
def _destructive_actions() -> tuple[str, ...]:
    names = {i.name for i in catalog.actions().values() if "destructive" in i.risk}
    return tuple(sorted(names | set(RECOVERY_ACTIONS)))


def _owner(ctx: LintContext) -> str | None:
    """The bucket owner's UID as the policy's OSS ARNs name it (one account), else None."""
    accounts = {
        arn[1]
        for s in ctx.policy.statements
        for r in s.resources
        if (arn := oss_arn(r)) is not None and arn[1] not in ("", "*")
    }
    return accounts.pop() if len(accounts) == 1 else None


def _foreign(principal: str, owner: str | None) -> bool:
    """Whether a Principal entry can name a caller outside the owner's account."""
    if principal == "*":
        return True
    if principal.startswith("user:"):  # a RAM user of this account, as compile writes it
        return False
    if principal.startswith("arn:sts::"):
        account = principal[len("arn:sts::") :].partition(":")[0]
        return owner is not None and account != owner
    return owner is not None and principal != owner


def _check_destructive(ctx: LintContext) -> Iterator[Hit]:
    if ctx.bucket is None:
        return
    owner = _owner(ctx)
    destructive = _destructive_actions()
    for i, bs in enumerate(ctx.bucket.statements):
        st = bs.statement
        if st.effect != ALLOW:
            continue
        foreign = [p for p in bs.principals if _foreign(p, owner)]
        if not foreign:
            continue
        hits = (
            [a for a in destructive if not any(names_matching(p, (a,)) for p in st.actions)]
            if st.not_action
            else [h for a in st.actions for h in names_matching(a, destructive)]
        )
        if hits:
            shown = ", ".join(sorted(set(hits))[:4]) + (" ..." if len(set(hits)) > 4 else "")
            yield (
                f"Statement[{i}].Action",
                f"Allow of destructive actions ({shown}) to {', '.join(foreign)}: callers "
                "outside the owner's account could destroy data for good (a bare UID that is "
                "not the owner's is another account or a RAM user: OSS names both by UID)",
            )


DESTRUCTIVE = register(
    Rule(
        id="PG303",
        name="bucket-destructive-to-others",
        severity="warning",
        summary="A bucket-policy Allow of destructive actions to another account or to everyone.",
        description=(
            "Deleting objects or versions, suspending versioning, changing lifecycle rules, "
            "aborting a retention policy, removing replication or the bucket policy itself "
            "destroy data or its recovery path. Granting them in a bucket policy to another "
            "account (a UID that is not the owner's, a role session of another account) or "
            'to "*" lets callers the owner does not manage do it. The owner is the account the '
            "policy's resource ARNs name."
        ),
        reference=O1,
        example='{"Effect": "Allow", "Principal": ["1111111111111111"], "Action": "oss:DeleteObject", '
        '"Resource": "acs:oss:*:1234567890123456:b/*"}',
        passes='{"Effect": "Allow", "Principal": ["1111111111111111"], "Action": "oss:GetObject", '
        '"Resource": "acs:oss:*:1234567890123456:b/*"}',
        check=_check_destructive,
    )
)
