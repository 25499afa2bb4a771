"""Condition operators, evaluated the way RAM documents them.

One value per key in a request; several policy values are ORed (any matches) for positive
operators, and the negated operators are true when none matches. Numeric values are compared
as exact decimals and Date values as exact instants (fractions of a second kept); a request
value an operator cannot parse matches nothing. A policy constant an operator cannot parse is
refused (:func:`constant_problem`), never left out.

A key absent from the request is UNCONFIRMED in RAM's documentation. permgen follows one
switch, :class:`MissingKey`: ``NEGATED_TRUE`` (the default, the reading AWS documents for the
same grammar: positive operators are false, negated operators true, so a guard written as
``Deny`` + ``NotIpAddress`` stays in force), or ``FALSE`` (every operator is false). See
docs/unconfirmed.md.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache
from typing import Any

from permgen.policy import wildcard


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

_COMPARE: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # negated below
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

#: A number: optional sign, ASCII digits with an optional fraction, an optional exponent.
#: Nothing else (no "1_000", "Infinity", "NaN", spaces or non-ASCII digits).
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@lru_cache(maxsize=4096)
def parse_number(text: str) -> Decimal | None:
    """The exact value of a decimal number, or None when ``text`` is not one."""
    if _NUMBER_RE.fullmatch(text) is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        return None


# ISO 8601 date-times, extended (2026-01-31T23:59:59.5Z) or basic (20260131T235959.5Z) format,
# with a calendar, week (2026-W05-6) or ordinal (2026-031) date, hours with optional minutes
# and seconds, a decimal fraction of the last of them, and a zone (Z, +08:00, +0800, +08).
_EXT = re.compile(
    r"(?P<y>[0-9]{4})-(?:(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})|W(?P<w>[0-9]{2})(?:-(?P<wd>[1-7]))?"
    r"|(?P<od>[0-9]{3}))"
    r"T(?P<h>[0-9]{2})(?::(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2}))?)?(?:[.,](?P<f>[0-9]+))?"
    r"(?P<z>Z|(?P<zs>[+-])(?P<zh>[0-9]{2})(?::(?P<zm>[0-9]{2}))?)"
)
_BASIC = re.compile(
    r"(?P<y>[0-9]{4})(?:(?P<mo>[0-9]{2})(?P<d>[0-9]{2})|W(?P<w>[0-9]{2})(?P<wd>[1-7])?"
    r"|(?P<od>[0-9]{3}))"
    r"T(?P<h>[0-9]{2})(?:(?P<mi>[0-9]{2})(?P<s>[0-9]{2})?)?(?:[.,](?P<f>[0-9]+))?"
    r"(?P<z>Z|(?P<zs>[+-])(?P<zh>[0-9]{2})(?P<zm>[0-9]{2})?)"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DATE_FORMS = (
    "an ISO 8601 date-time with a zone, such as 2026-01-31T23:59:59Z, "
    "2026-01-31T23:59:59.5+08:00 or 20260131T235959Z"
)


@lru_cache(maxsize=4096)
def parse_date(text: str) -> Decimal | None:
    """An ISO 8601 date-time with a zone -> exact seconds since 1970-01-01T00:00:00Z (a
    Decimal: fractions of a second are kept), or None when ``text`` is not one.

    A date without a time, or a time without a zone, names no single instant (ISO 8601
    reads it as local time) and is not accepted; neither are epoch numbers."""
    m = _EXT.fullmatch(text) or _BASIC.fullmatch(text)
    if m is None:
        return None
    g = m.groupdict()
    try:
        year = int(g["y"])
        if g["mo"] is not None:
            day = date(year, int(g["mo"]), int(g["d"]))
        elif g["w"] is not None:
            day = date.fromisocalendar(year, int(g["w"]), int(g["wd"] or 1))
        else:
            ordinal = int(g["od"])
            if not 1 <= ordinal <= (366 if calendar.isleap(year) else 365):
                return None
            day = date(year, 1, 1) + timedelta(days=ordinal - 1)
    except ValueError:
        return None
    hour = int(g["h"])
    minute = int(g["mi"] or 0)
    second = int(g["s"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    seconds = Decimal((day.toordinal() - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60)
    seconds += second
    if g["f"] is not None:  # a fraction of the last component given
        unit = 1 if g["s"] is not None else 60 if g["mi"] is not None else 3600
        seconds += Decimal("0." + g["f"]) * unit
    if g["zs"] is not None:
        zh, zm = int(g["zh"]), int(g["zm"] or 0)
        if zh > 23 or zm > 59:
            return None
        offset = zh * 3600 + zm * 60
        seconds += -offset if g["zs"] == "+" else offset
    return seconds


def format_date(seconds: Decimal) -> str | None:
    """Seconds since the epoch as ``YYYY-MM-DDThh:mm:ss[.fff]Z``; None outside years 1-9999."""
    whole = int(seconds.to_integral_value(rounding=ROUND_FLOOR))
    frac = seconds - whole
    days, rest = divmod(whole, 86400)
    try:
        day = date.fromordinal(days + _EPOCH_ORDINAL)
    except (ValueError, OverflowError):
        return None
    h, rest = divmod(rest, 3600)
    mi, s = divmod(rest, 60)
    text = f"{day.isoformat()}T{h:02d}:{mi:02d}:{s:02d}"
    if frac:
        digits = format(frac, "f").split(".", 1)[1].rstrip("0")
        text += "." + digits
    return text + "Z"


BOOL_VALUES = ("true", "false")


def constant_problem(operator: str, value: str) -> str | None:
    """What a condition constant should have been, or None when ``operator`` can compare it.

    Every constant permgen evaluates passes this check; a policy with one that does not is
    refused (never evaluated with the constant left out)."""
    family = FAMILY.get(operator)
    if family == "number":
        if parse_number(value) is None:
            return "a decimal number such as 10, -2.5 or 1e6"
    elif family == "date":
        if parse_date(value) is None:
            return DATE_FORMS
    elif family == "bool":
        if value not in BOOL_VALUES:
            return '"true" or "false"'
    elif family == "ip":
        if "*" in value:
            if _IP_WILDCARD_RE.fullmatch(value) is None:
                return "an IP address, a CIDR block or a wildcard form such as 101.*.*.100"
        elif value != value.strip() or parse_network(value) is None:
            return "an IP address or CIDR block"
    return None


#: OSS's wildcard form: four dot-separated parts of digits and "*".
_IP_WILDCARD_RE = re.compile(r"[0-9*]{1,3}(?:\.[0-9*]{1,3}){3}")


@lru_cache(maxsize=4096)
def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


#: Parses kept per process (request IP addresses, condition-key names), each of a short
#: text only (``_CACHED_TEXT`` characters): a request's long values are parsed, never kept.
PARSE_CACHE_SIZE = 4096
_CACHED_TEXT = 128


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return _cached_address(text) if len(text) <= _CACHED_TEXT else _address(text)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


_cached_address = lru_cache(maxsize=PARSE_CACHE_SIZE)(_address)


def _ip_matches(value: str, pattern: str) -> bool:
    if "*" in pattern:  # OSS documents wildcard forms such as 101.*.*.100
        return wildcard.match(pattern, value)
    net = parse_network(pattern)
    if net is None:
        return False
    addr = _parse_address(value)
    if addr is None:
        return False
    return addr.version == net.version and addr in net


def make_matcher(operator: str, values: tuple[str, ...]) -> Callable[[str], bool]:
    """A function deciding whether one present request value satisfies the operator
    (before negation: negated operators use the matcher of their positive form).

    Raises ValueError for a constant the operator cannot compare (:func:`constant_problem`):
    a constant is never left out."""
    for v in values:
        problem = constant_problem(operator, v)
        if problem is not None:
            raise ValueError(f"{v!r} is not {problem}")
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
        wanted = frozenset(values)
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


#: The spelling RAM documents for its condition keys (ram-facts 1.6, 1.7). A request names a
#: key in this spelling; a policy may spell it otherwise (see :class:`CompiledCondition`).
KNOWN_KEYS = {
    k.lower(): k
    for k in (
        "acs:SourceIp",
        "acs:SourceVpc",
        "acs:SecureTransport",
        "acs:CurrentTime",
        "acs:MFAPresent",
        "acs:AccessId",
        "acs:UserAgent",
        "acs:PrincipalARN",
        "oss:Prefix",
        "oss:Delimiter",
        "oss:x-oss-acl",
        "oss:x-oss-object-acl",
    )
}
_KNOWN_PREFIXES = {
    k.lower(): k
    for k in (
        "acs:ResourceTag/",
        "oss:BucketTag/",
        "oss:ExistingObjectTag/",
        "oss:RequestObjectTag/",
    )
}
#: The value type of documented keys: their witnesses are values of that type.
KEY_TYPES = {
    "acs:sourceip": "ip",
    "acs:currenttime": "date",
    "acs:securetransport": "bool",
    "acs:mfapresent": "bool",
}


def documented_key(key: str) -> str | None:
    """A documented key in its documented spelling (a tag key's own name is kept as
    written), or None for a key RAM does not document."""
    low = key.lower()
    known = KNOWN_KEYS.get(low)
    if known is not None:
        return known
    head, slash, _tail = low.partition("/")
    if slash:
        prefix = _KNOWN_PREFIXES.get(head + "/")
        if prefix is not None:
            return prefix + key[len(head) + 1 :]
    return None


def canonical_key(key: str) -> str:
    """How a request names ``key``: the documented spelling, or the key as written."""
    return _cached_canonical(key) if len(key) <= _CACHED_TEXT else _canonical(key)


def _canonical(key: str) -> str:
    return documented_key(key) or key


_cached_canonical = lru_cache(maxsize=PARSE_CACHE_SIZE)(_canonical)


class RequestContext:
    """A request's condition keys, looked up both ways a key name may be compared:
    ``folded`` ignores case, ``exact`` does not (documented keys in their documented
    spelling; built on first use, as most decisions never need it)."""

    __slots__ = ("_exact", "_items", "folded")

    def __init__(self, context: Mapping[str, str]) -> None:
        self._items = tuple(context.items())
        self._exact: dict[str, str] | None = None
        self.folded = {k.lower(): v for k, v in self._items}

    @property
    def exact(self) -> dict[str, str]:
        exact = self._exact
        if exact is None:
            exact = self._exact = {canonical_key(k): v for k, v in self._items}
        return exact


class CompiledCondition:
    """One (operator, key, values) ready to evaluate against a request context.

    Whether RAM compares condition-key names with or without case is not documented. A
    condition is evaluated under both readings: :meth:`holds` ignores case, :meth:`holds_exact`
    compares the key as spelled (a documented key spelled otherwise is then absent). The
    statement decides which to use (see ``permgen.semantics.evaluate``)."""

    __slots__ = ("key", "match", "negated", "operator", "spelled", "values")

    def __init__(self, operator: str, key: str, values: tuple[str, ...]) -> None:
        self.operator = operator
        self.key = key.lower()
        self.spelled = key
        self.values = values
        self.negated = operator in NEGATED
        self.match = make_matcher(operator, values)

    def truth(self, value: str | None, missing: MissingKey) -> bool:
        """The condition for a request whose value for the key is ``value`` (None: absent)."""
        if value is None:
            return self.negated and missing is MissingKey.NEGATED_TRUE
        hit = self.match(value)
        return not hit if self.negated else hit

    def holds(self, context: dict[str, str], missing: MissingKey) -> bool:
        """Key names compared without case; ``context`` is keyed by lower-case names."""
        return self.truth(context.get(self.key), missing)

    def holds_exact(self, context: dict[str, str], missing: MissingKey) -> bool:
        """Key names compared as spelled; ``context`` is :attr:`RequestContext.exact`."""
        return self.truth(context.get(self.spelled), missing)


def check_conditions(
    statements: Iterable[tuple[Any, str | None, int]],
) -> None:
    """Raise PolicyParseError naming the policy, statement and constant of the first
    condition constant its operator cannot compare. ``statements``: (statement, policy
    name, index in the policy)."""
    from permgen.errors import PolicyParseError

    for statement, source, index in statements:
        for c in statement.conditions:
            for k, v in enumerate(c.values):
                problem = constant_problem(c.operator, v)
                if problem is not None:
                    raise PolicyParseError(
                        f"{v!r} is not {problem}",
                        source=source or None,
                        path=f"Statement[{index}].Condition.{c.operator}.{c.key}[{k}]",
                    )


__all__ = [
    "BOOL_VALUES",
    "DATE_FORMS",
    "FAMILY",
    "KEY_TYPES",
    "KNOWN_KEYS",
    "NEGATED",
    "CompiledCondition",
    "MissingKey",
    "RequestContext",
    "canonical_key",
    "check_conditions",
    "constant_problem",
    "documented_key",
    "format_date",
    "make_matcher",
    "parse_date",
    "parse_network",
    "parse_number",
]
