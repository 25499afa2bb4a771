"""What the rule families share: documentation links, statement helpers, the registry."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, lru_cache

from permgen.lint.core import LintContext, Rule
from permgen.policy import catalog
from permgen.policy.model import ALLOW, Statement

O1 = "https://www.alibabacloud.com/help/en/oss/user-guide/authorization-syntax-and-elements"
O2 = "https://www.alibabacloud.com/help/en/oss/user-guide/how-oss-works-with-ram"
D1 = "https://www.alibabacloud.com/help/en/ram/policy-structure-and-syntax"
D2 = "https://www.alibabacloud.com/help/en/ram/policy-elements"
D5 = "https://www.alibabacloud.com/help/en/ram/product-overview/limits"


# --------------------------------------------------------------------------- helpers


def action_key(s: Statement) -> str:
    return "NotAction" if s.not_action else "Action"


def resource_key(s: Statement) -> str:
    return "NotResource" if s.not_resource else "Resource"


def oss_arn(resource: str) -> tuple[str, str, str] | None:
    """``acs:oss:region:account:rest`` -> (region, account, rest); None if not an OSS ARN."""
    if not resource.startswith("acs:oss:"):
        return None
    parts = resource.split(":", 4)
    if len(parts) != 5:
        return None
    return parts[2], parts[3], parts[4]


@lru_cache(maxsize=16384)
def resource_levels(resource: str) -> frozenset[str]:
    """The OSS resource levels a Resource pattern can match."""
    if resource == "*":
        return frozenset({"service", "bucket", "object"})
    arn = oss_arn(resource)
    if arn is None:
        return frozenset()
    rest = arn[2]
    if rest and set(rest) == {"*"}:
        return frozenset({"service", "bucket", "object"})
    if "/" in rest:
        return frozenset({"object"})
    if "*" in rest or "?" in rest:
        return frozenset({"bucket", "object"})
    return frozenset({"bucket"})


@cache
def service_names(service: str) -> tuple[str, ...]:
    return tuple(i.name for i in catalog.actions().values() if i.service == service)


def allowed_statements(ctx: LintContext) -> Iterator[tuple[int, Statement]]:
    for i, s in enumerate(ctx.policy.statements):
        if s.effect == ALLOW:
            yield i, s


def level_mismatches(s: Statement) -> Iterator[tuple[int, str, str]]:
    """(index, action, level) for each known OSS action no resource of ``s`` can match."""
    levels: set[str] = set()
    for r in s.resources:
        levels |= resource_levels(r)
    for j, action in enumerate(s.actions):
        if "*" in action or "?" in action:
            continue
        info = catalog.lookup(action)
        if info is None or info.service != "oss":
            continue
        if info.level not in levels:
            yield j, action, info.level


# --------------------------------------------------------------------------- registry

RULES_BY_ID: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in RULES_BY_ID:  # pragma: no cover - guarded by a test
        raise ValueError(f"duplicate rule id {rule.id}")
    RULES_BY_ID[rule.id] = rule
    return rule
