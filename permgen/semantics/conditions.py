"""Condition operators, evaluated the way RAM documents them.

One value per key in a request; several policy values are ORed (any matches) for positive
operators, and the negated operators are true when none matches. Numeric and Date values are
compared as numbers and instants; a request value an operator cannot parse matches nothing.

A key absent from the request is UNCONFIRMED in RAM's documentation. permgen follows one
switch, :class:`MissingKey`: ``NEGATED_TRUE`` (the default, the reading AWS documents for the
same grammar: positive operators are false, negated operators true, so a guard written as
``Deny`` + ``NotIpAddress`` stays in force), or ``FALSE`` (every operator is false). See
docs/unconfirmed.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache

from permgen.semantics import wildcard


class MissingKey(Enum):
    NEGATED_TRUE = "negated-true"
    FALSE = "false"


NEGATED = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "NotIpAddress",
    }
)

FAMILY = {
    "StringEquals": "string",
    "StringNotEquals": "string",
    "StringEqualsIgnoreCase": "string",
    "StringNotEqualsIgnoreCase": "string",
    "StringLike": "string",
    "StringNotLike": "string",
    "NumericEquals": "number",
    "NumericNotEquals": "number",
    "NumericLessThan": "number",
    "NumericLessThanEquals": "number",
    "NumericGreaterThan": "number",
    "NumericGreaterThanEquals": "number",
    "DateEquals": "date",
    "DateNotEquals": "date",
    "DateLessThan": "date",
    "DateLessThanEquals": "date",
    "DateGreaterThan": "date",
    "DateGreaterThanEquals": "date",
    "Bool": "bool",
    "IpAddress": "ip",
    "NotIpAddress": "ip",
    "IpAddressIncludeBorder": "ip",
}

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # negated below
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def parse_date(text: str) -> float | None:
    """ISO 8601 -> seconds since the epoch (UTC when no zone is given); also epoch numbers."""
    if not _DATE_RE.match(text):
        return parse_number(text)
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=4096)
def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _ip_matches(value: str, pattern: str) -> bool:
    if "*" in pattern:  # OSS documents wildcard forms such as 101.*.*.100
        return wildcard.match(pattern, value)
    net = parse_network(pattern)
    if net is None:
        return False
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return addr.version == net.version and addr in net


def make_matcher(operator: str, values: tuple[str, ...]) -> Callable[[str], bool]:
    """A function deciding whether one present request value satisfies the operator
    (before negation: negated operators use the matcher of their positive form)."""
    family = FAMILY[operator]
    if family == "string":
        if operator.endswith("Like"):
            patterns = [wildcard.compile_pattern(v) for v in values]
            return lambda v: any(p.match(v) for p in patterns)
        if operator.endswith("IgnoreCase"):
            lowered = frozenset(v.lower() for v in values)
            return lambda v: v.lower() in lowered
        exact = frozenset(values)
        return lambda v: v in exact
    if family == "bool":
        wanted = frozenset(v.lower() for v in values)
        return lambda v: v.lower() in wanted
    if family == "ip":
        return lambda v: any(_ip_matches(v, p) for p in values)
    parse = parse_number if family == "number" else parse_date
    name = operator.removeprefix("Numeric").removeprefix("Date")
    compare = _COMPARE[name]
    consts = [c for c in (parse(v) for v in values) if c is not None]

    def match(v: str) -> bool:
        x = parse(v)
        return x is not None and any(compare(x, c) for c in consts)

    return match


class CompiledCondition:
    """One (operator, key, values) ready to evaluate against a request context."""

    __slots__ = ("key", "match", "negated", "operator", "values")

    def __init__(self, operator: str, key: str, values: tuple[str, ...]) -> None:
        self.operator = operator
        self.key = key.lower()
        self.values = values
        self.negated = operator in NEGATED
        self.match = make_matcher(operator, values)

    def holds(self, context: dict[str, str], missing: MissingKey) -> bool:
        value = context.get(self.key)
        if value is None:
            return self.negated and missing is MissingKey.NEGATED_TRUE
        hit = self.match(value)
        return not hit if self.negated else hit


__all__ = [
    "FAMILY",
    "NEGATED",
    "CompiledCondition",
    "MissingKey",
    "format_date",
    "make_matcher",
    "parse_date",
    "parse_network",
    "parse_number",
]
