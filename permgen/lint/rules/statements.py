"""PG1xx: rules over a policy's statements (actions, resources, scope, size, conditions)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache

from permgen.lint.core import Hit, LintContext, Rule
from permgen.lint.rules.common import (
    D1,
    D2,
    D5,
    O1,
    O2,
    action_key,
    allowed_statements,
    level_mismatches,
    oss_arn,
    register,
    resource_key,
    service_names,
)
from permgen.policy import catalog
from permgen.policy.model import DENY, Statement
from permgen.policy.wildcard import match as wildcard_match
from permgen.policy.wildcard import names_matching


def _check_unknown_action(ctx: LintContext) -> Iterator[Hit]:
    known = catalog.known_services()
    for i, s in enumerate(ctx.policy.statements):
        key = action_key(s)
        for j, action in enumerate(s.actions):
            if action == "*":
                continue
            service, _, name = action.partition(":")
            path = f"Statement[{i}].{key}[{j}]"
            if service not in known:
                continue
            if "*" in name or "?" in name:
                if not catalog.matching(action):
                    yield path, f"{action!r} matches no known {service} action"
                continue
            if catalog.lookup(action) is None:
                close = difflib.get_close_matches(action, service_names(service), n=1, cutoff=0.7)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                yield path, f"unknown action {action!r}{hint}"


UNKNOWN_ACTION = register(
    Rule(
        id="PG101",
        name="unknown-action",
        severity="error",
        summary="An OSS, RAM or STS action that does not exist, or a wildcard that matches none.",
        description=(
            "A misspelt action grants nothing, so the permission the author meant is missing "
            "(or, in a Deny, the protection is missing). Names are checked against permgen's "
            "action catalog (docs/actions.md); actions of other services are not checked."
        ),
        reference=O1,
        example='{"Effect": "Allow", "Action": "oss:GetObjects", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_unknown_action,
    )
)


_WANT = {
    "object": "an object ARN (acs:oss:*:<account>:<bucket>/<key pattern>)",
    "bucket": "a bucket ARN (acs:oss:*:<account>:<bucket>)",
    "service": 'the service ARN (acs:oss:*:<account>:*) or "*"',
}


def _check_resource_level(ctx: LintContext) -> Iterator[Hit]:
    for i, s in enumerate(ctx.policy.statements):
        if s.not_action or s.not_resource or s.effect == DENY:
            continue
        for j, action, level in level_mismatches(s):
            article = "an" if level == "object" else "a"
            yield (
                f"Statement[{i}].Action[{j}]",
                f"{action} is {article} {level}-level action but no Resource of this statement "
                f"can match {_WANT[level]}; it grants nothing",
            )


RESOURCE_LEVEL = register(
    Rule(
        id="PG102",
        name="wrong-resource-level",
        severity="error",
        summary="An Allowed action on a resource of the wrong level (object actions on a bucket ARN, and so on).",
        description=(
            "OSS authorizes bucket-level actions (ListObjects, GetBucketInfo) against the bucket "
            "ARN and object-level actions (GetObject, PutObject) against bucket/key. "
            "acs:oss:*:*:b/* does not cover acs:oss:*:*:b, and the reverse. A statement that "
            "pairs an action only with resources of the other level grants nothing, or, in a "
            "Deny, protects nothing. This is a common bug in published policies."
        ),
        reference=O2,
        example='{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": "acs:oss:*:*:my-bucket"}',
        passes='{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": "acs:oss:*:*:my-bucket/*"}',
        check=_check_resource_level,
    )
)


def _check_region(ctx: LintContext) -> Iterator[Hit]:
    for i, s in enumerate(ctx.policy.statements):
        key = resource_key(s)
        for j, r in enumerate(s.resources):
            if not r.startswith("acs:oss"):
                continue
            arn = oss_arn(r)
            path = f"Statement[{i}].{key}[{j}]"
            if arn is None:
                yield path, f"{r!r} is not an OSS ARN (acs:oss:*:<account>:<bucket>[/<key>])"
            elif arn[0] != "*":
                yield path, f"{r!r}: the region of an OSS ARN must be '*', not {arn[0]!r}"


REGION = register(
    Rule(
        id="PG103",
        name="oss-arn-region",
        severity="error",
        summary="An OSS ARN whose region is not '*', or a malformed OSS ARN.",
        description=(
            "OSS supports only the wildcard in the region segment of its ARNs; an explicit "
            "region does not match requests."
        ),
        reference=O1,
        example='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:cn-hangzhou:*:b/*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_region,
    )
)


def _check_wildcard_action(ctx: LintContext) -> Iterator[Hit]:
    for i, s in allowed_statements(ctx):
        if s.not_action:
            yield (
                f"Statement[{i}].NotAction",
                "Allow with NotAction grants every action except the listed ones, including future ones",
            )
            continue
        for j, a in enumerate(s.actions):
            if a == "*" or a.lower().endswith(":*"):
                yield (
                    f"Statement[{i}].Action[{j}]",
                    f"Allow of {a!r} grants every action of {'every service' if a == '*' else a.split(':')[0]}, including future ones",
                )


WILDCARD_ACTION = register(
    Rule(
        id="PG104",
        name="wildcard-action",
        severity="warning",
        summary="Allow of every action ('*', 'oss:*', or NotAction).",
        description=(
            "Least privilege names the actions a job needs. A service wildcard also grants "
            "every action the service adds later, including destructive ones."
        ),
        reference=O2,
        example='{"Effect": "Allow", "Action": "oss:*", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject"], "Resource": "acs:oss:*:*:b/*"}',
        check=_check_wildcard_action,
    )
)


def _service_level_only(s: Statement) -> bool:
    """Every action of the statement is a known service-level action (ListBuckets...)."""
    infos = [catalog.lookup(a) for a in s.actions]
    return all(i is not None and i.level == "service" for i in infos)


def _check_wildcard_resource(ctx: LintContext) -> Iterator[Hit]:
    for i, s in allowed_statements(ctx):
        if not s.not_action and _service_level_only(s):
            continue  # service-level actions such as oss:ListBuckets need the service ARN
        if s.not_resource:
            yield (
                f"Statement[{i}].NotResource",
                "Allow with NotResource grants on every resource except the listed ones",
            )
            continue
        services = _action_services(s)
        scope = (
            "every bucket and object"
            if services is None
            else f"every resource of {', '.join(services)}"
        )
        for j, r in enumerate(s.resources):
            arn = oss_arn(r)
            if r == "*" or (arn is not None and arn[2] and set(arn[2]) == {"*"}):
                yield (f"Statement[{i}].Resource[{j}]", f"Allow on {r!r} covers {scope}")


def _action_services(s: Statement) -> list[str] | None:
    """The services a statement's actions name, or None when they may name OSS actions
    (NotAction, or a wildcard in the service part such as ``*``)."""
    if s.not_action:
        return None
    services = {a.partition(":")[0].lower() for a in s.actions}
    if any(wildcard_match(svc, "oss", ignore_case=True) for svc in services):
        return None
    return sorted(services)


WILDCARD_RESOURCE = register(
    Rule(
        id="PG105",
        name="wildcard-resource",
        severity="warning",
        summary='Allow on every resource (Resource "*", acs:oss:*:*:*, or NotResource).',
        description=(
            "Grants should name buckets and prefixes. Only service-level actions such as "
            "oss:ListBuckets need the service ARN."
        ),
        reference=O2,
        example='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_wildcard_resource,
    )
)

_LIST_ACTIONS = ("oss:ListObjects", "oss:ListObjectVersions")
_READ_ACTIONS = ("oss:GetObject", "oss:GetObjectVersion")


def _matches_any(actions: tuple[str, ...], names: tuple[str, ...]) -> bool:
    return any(names_matching(a, names) for a in actions)


def _check_unscoped_list(ctx: LintContext) -> Iterator[Hit]:
    scoped: dict[str, bool] = {}  # bucket -> every object read grant is prefix-scoped
    for _, s in allowed_statements(ctx):
        if s.not_action or s.not_resource or not _matches_any(s.actions, _READ_ACTIONS):
            continue
        for r in s.resources:
            arn = oss_arn(r)
            if arn is None or "/" not in arn[2]:
                continue
            bucket, _, prefix = arn[2].partition("/")
            if "*" in bucket or "?" in bucket:
                continue
            whole = prefix == "" or set(prefix) == {"*"}
            scoped[bucket] = scoped.get(bucket, True) and not whole
    for i, s in allowed_statements(ctx):
        if s.not_action or s.not_resource or not _matches_any(s.actions, _LIST_ACTIONS):
            continue
        if any(c.key.lower() == "oss:prefix" for c in s.conditions):
            continue
        for j, r in enumerate(s.resources):
            arn = oss_arn(r)
            if arn is None:
                continue
            for bucket, is_scoped in scoped.items():
                if is_scoped and wildcard_match(arn[2], bucket):
                    yield (
                        f"Statement[{i}].Resource[{j}]",
                        f"lists every key of bucket {bucket!r} while its object grants are "
                        "prefix-scoped; add a StringLike oss:Prefix condition",
                    )
                    break


UNSCOPED_LIST = register(
    Rule(
        id="PG106",
        name="unscoped-list",
        severity="warning",
        summary="ListObjects on a bucket without an oss:Prefix condition, while object grants are prefix-scoped.",
        description=(
            "ListObjects is authorized against the bucket ARN. Without a StringLike oss:Prefix "
            "condition the caller can list every key name in the bucket, even when GetObject is "
            "limited to a prefix: names of other teams' files leak."
        ),
        reference=O2,
        example='[{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/team/*"}, {"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "acs:oss:*:*:b"}]',
        passes='[{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/team/*"}, {"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "acs:oss:*:*:b", "Condition": {"StringLike": {"oss:Prefix": "team/*"}}}]',
        check=_check_unscoped_list,
    )
)


def _check_size(ctx: LintContext) -> Iterator[Hit]:
    size = ctx.policy.size()
    if size > ctx.size_limit:
        what = "session policy" if ctx.session else "policy"
        yield (
            "",
            f"the {what} is {size} bytes as compact JSON, {size - ctx.size_limit} over RAM's limit of {ctx.size_limit}",
        )


SIZE = register(
    Rule(
        id="PG107",
        name="policy-too-large",
        severity="error",
        summary="Over RAM's size limit: 6,144 bytes for a policy, 2,048 for an STS session policy.",
        description=(
            "Measured on compact JSON in UTF-8 bytes (the safe reading: see docs/unconfirmed.md). "
            "Split the grants over several policies (up to 10 custom policies per principal)."
        ),
        reference=D5,
        example="(a policy of more than 6,144 bytes)",
        check=_check_size,
    )
)

#: Actions that destroy the recovery path for deleted or overwritten objects.
RECOVERY_ACTIONS = (
    "oss:DeleteObjectVersion",
    "oss:PutBucketVersioning",
    "oss:PutBucketLifecycle",
    "oss:DeleteBucketLifecycle",
    "oss:PutBucketPolicy",
    "oss:DeleteBucketPolicy",
    "oss:AbortBucketWorm",
    "oss:DeleteBucket",
    "oss:DeleteBucketReplication",
)


def _check_recovery(ctx: LintContext) -> Iterator[Hit]:
    for i, s in allowed_statements(ctx):
        if s.not_action:
            continue
        for j, a in enumerate(s.actions):
            hits = names_matching(a, RECOVERY_ACTIONS)
            if hits:
                via = "" if hits == [a] else f" (matches {', '.join(hits)})"
                yield (
                    f"Statement[{i}].Action[{j}]",
                    f"Allow of {a}{via} can destroy the recovery path for deleted or overwritten objects",
                )


RECOVERY = register(
    Rule(
        id="PG108",
        name="destroys-recovery",
        severity="warning",
        summary="Allow of an action that can remove object versions, versioning, lifecycle or bucket policy.",
        description=(
            "Deleted or overwritten OSS objects cannot be recovered except from versions. "
            "DeleteObjectVersion, PutBucketVersioning (suspend), lifecycle rules and bucket "
            "policies can remove that path; permgen's built-in templates never grant them."
        ),
        reference=O1,
        example='{"Effect": "Allow", "Action": "oss:DeleteObjectVersion", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObjectVersion", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_recovery,
    )
)


@cache
def _exposure_actions() -> tuple[str, ...]:
    return tuple(i.name for i in catalog.actions().values() if "exposure" in i.risk)


def _check_exposure(ctx: LintContext) -> Iterator[Hit]:
    exposure = _exposure_actions()
    for i, s in allowed_statements(ctx):
        if s.not_action:
            continue
        for j, a in enumerate(s.actions):
            if a == "*" or a.lower() == "oss:*":
                continue  # PG104 already says it
            hits = names_matching(a, exposure)
            if hits:
                via = (
                    ""
                    if hits == [a]
                    else f" (matches {', '.join(hits[:4])}{'...' if len(hits) > 4 else ''})"
                )
                yield (
                    f"Statement[{i}].Action[{j}]",
                    f"Allow of {a}{via} can make data public or change who can reach it",
                )


EXPOSURE = register(
    Rule(
        id="PG109",
        name="exposure",
        severity="warning",
        summary="Allow of an action that can expose data (ACLs, bucket policy, public access block, CORS, website).",
        description=(
            "Object and bucket ACLs, bucket policies and public-access settings decide who outside "
            "the account can read data. Grant them to administrators only."
        ),
        reference=O1,
        example='{"Effect": "Allow", "Action": "oss:PutObjectAcl", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObjectAcl", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_exposure,
    )
)


def _check_sid(ctx: LintContext) -> Iterator[Hit]:
    for i, s in enumerate(ctx.policy.statements):
        if s.sid is not None:
            yield (
                f"Statement[{i}].Sid",
                "Sid is not part of RAM's documented identity-policy grammar",
            )


SID = register(
    Rule(
        id="PG110",
        name="sid",
        severity="info",
        summary="A Sid element (not documented for RAM identity policies).",
        description="Whether RAM accepts Sid in identity policies is not documented (docs/unconfirmed.md).",
        reference=D1,
        example='{"Sid": "Read", "Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}',
        check=_check_sid,
    )
)


def _bad_value(operator: str, value: str) -> str | None:
    from permgen.semantics.conditions import constant_problem

    return constant_problem(operator, value)


def _check_condition_values(ctx: LintContext) -> Iterator[Hit]:
    for i, s in enumerate(ctx.policy.statements):
        for c in s.conditions:
            for k, v in enumerate(c.values):
                want = _bad_value(c.operator, v)
                if want:
                    yield (
                        f"Statement[{i}].Condition.{c.operator}.{c.key}[{k}]",
                        f"{v!r} is not {want}",
                    )


CONDITION_VALUES = register(
    Rule(
        id="PG111",
        name="condition-value",
        severity="error",
        summary="A condition value that its operator cannot compare (a non-number for Numeric*, a bad date, IP or Bool).",
        description=(
            "A value the operator cannot parse never matches: an Allow grants nothing and a "
            "Deny protects nothing. Numbers are plain decimals (no `1_000`, `NaN` or "
            "`Infinity`); dates are ISO 8601 date-times with a zone, in extended or basic "
            "format (`2026-01-31T23:59:59Z`, `20260131T235959Z`; a date alone or a time "
            "without a zone names no single instant); Bool takes `true` or `false` exactly. "
            "`explain`, `diff` and `review` refuse such a policy (exit 2)."
        ),
        reference=D2,
        example='{"Effect": "Deny", "Action": "oss:*", "Resource": "*", "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/33"}}}',
        passes='{"Effect": "Deny", "Action": "oss:*", "Resource": "*", "Condition": {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/16"}}}',
        check=_check_condition_values,
    )
)


def _check_cidr_host_bits(ctx: LintContext) -> Iterator[Hit]:
    import ipaddress

    for i, s in enumerate(ctx.policy.statements):
        for c in s.conditions:
            if c.operator not in ("IpAddress", "NotIpAddress", "IpAddressIncludeBorder"):
                continue
            for k, v in enumerate(c.values):
                if "*" in v or "/" not in v:
                    continue
                try:
                    ipaddress.ip_network(v, strict=True)
                    continue
                except ValueError:
                    pass
                try:
                    net = ipaddress.ip_network(v, strict=False)
                except ValueError:
                    continue  # PG111 says it
                host = v.split("/", 1)[0]
                yield (
                    f"Statement[{i}].Condition.{c.operator}.{c.key}[{k}]",
                    f"{v!r} has host bits set: permgen reads it as {str(net)!r}; write "
                    f"{str(net)!r} for the network, or {host!r} for one address",
                )


CIDR_HOST_BITS = register(
    Rule(
        id="PG112",
        name="cidr-host-bits",
        severity="error",
        summary="A CIDR block with host bits set (10.0.0.1/8) in an IpAddress condition.",
        description=(
            "Whether RAM reads 10.0.0.1/8 as the network 10.0.0.0/8, as one address or refuses "
            "it is not documented; the author meant one of the first two. permgen's specs "
            "refuse such a block; in a policy it is reported here with both fixes."
        ),
        reference=D2,
        example='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*", "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.1/8"}}}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*", "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}}',
        check=_check_cidr_host_bits,
    )
)


def _check_prefix_without_slash(ctx: LintContext) -> Iterator[Hit]:
    for i, s in allowed_statements(ctx):
        if s.not_resource:
            continue
        for j, r in enumerate(s.resources):
            arn = oss_arn(r)
            if arn is None:
                continue
            bucket, slash, key = arn[2].partition("/")
            stem = key.rstrip("*")
            if not slash or stem == key or not stem or stem.endswith("/"):
                continue
            if "*" in stem or "?" in stem or "*" in bucket or "?" in bucket:
                continue  # a pattern with other wildcards means more than a prefix
            folder = r[: len(r) - (len(key) - len(stem))]
            yield (
                f"Statement[{i}].Resource[{j}]",
                f"{r!r} also matches keys such as {bucket}/{stem}-other/...; if {stem!r} is a "
                f"folder, write {folder + '/*'!r}",
            )


PREFIX_WITHOUT_SLASH = register(
    Rule(
        id="PG113",
        name="prefix-without-slash",
        severity="warning",
        summary="An Allow on a key prefix that does not end in / (tables* also matches tables-secret/).",
        description=(
            "`*` matches any characters, `/` included, so `bucket/tables*` grants "
            "`bucket/tables-secret/...` and `bucket/tables.bak` too. For a folder, end the "
            "prefix with `/` (`bucket/tables/*`). Whole-bucket grants (`bucket/*`) and patterns "
            "with other wildcards are not reported."
        ),
        reference=O2,
        example='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/tables*"}',
        passes='{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/tables/*"}',
        check=_check_prefix_without_slash,
    )
)
