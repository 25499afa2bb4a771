"""The exact semantic diff: every request one set of policies allows and the other denies.

Whether a statement applies to a request depends on three independent parts of the request:
the action, the resource and the condition keys. For each part, the patterns and condition
atoms of both policy sets split every possible value into finitely many classes that no
statement can tell apart; :mod:`permgen.semantics.automata` finds every class that some value
realizes, with a witness (for actions, separately for names in the catalog and for names a
service may add later). A statement's effect on a class is a bit, so deciding a class of
requests is a few integer operations; every combination of classes is decided for both sets,
and each class decided differently is a difference with a concrete witness request. Every
witness is confirmed with the evaluator before it is reported.

Over all strings this is exact. Resources are drawn from well-formed ARNs
(``acs:<service>:<region>:<account>:<rest>``) and actions from ``service:Name`` strings,
since no request carries anything else.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from functools import lru_cache
from typing import Any, Literal

from permgen.errors import InputError
from permgen.policy import catalog
from permgen.policy.model import DENY, Policy, Statement
from permgen.policy.wildcard import Pattern, arn_segments, compile_pattern
from permgen.policy.wildcard import match as wildcard_match
from permgen.semantics.automata import (
    ACTION_SHAPE,
    ARN_SHAPE,
    HEAD_SHAPE,
    MAX_STATES,
    Budget,
    BudgetExceeded,
    realize,
    tokens,
)
from permgen.semantics.conditions import (
    FAMILY,
    KEY_TYPES,
    KNOWN_KEYS,
    CompiledCondition,
    MissingKey,
    RequestContext,
    canonical_key,
    check_conditions,
    format_date,
    parse_date,
    parse_network,
    parse_number,
)
from permgen.semantics.evaluate import Evaluator, Request, StatementRef
from permgen.semantics.regions import Region, atom_globs, regions

Kind = Literal["new", "removed"]

#: The work one diff may do, in steps (one automaton state stepped over one character by
#: one pattern; one pair of patterns compared; one combination of classes decided). The
#: action classes have an allowance of their own (they are computed once per set of action
#: patterns and cached). Past it the diff stops with :class:`DiffTooLarge` (exit 2).
#: Ordinary policies use well under 1% of it (docs/performance.md).
DIFF_STEP_LIMIT = 20_000_000


class DiffTooLarge(InputError):
    """The policies' patterns need more work than the diff allows (exit 2)."""

    def __init__(self, part: str, detail: str) -> None:
        super().__init__(
            f"diff refused: comparing the {part} needs too much work ({detail}); "
            "simplify the wildcard patterns (many '*' in one pattern, many overlapping "
            "patterns) or compare fewer policies at once (docs/semantics.md, Limits)"
        )
        self.part = part


#: Risk classes in the order reports list them (most severe first): the catalog's.
RISK_ORDER = catalog.RISK_CLASSES


@dataclass(frozen=True)
class AccessItem:
    """One region of requests allowed on one side only."""

    kind: Kind
    actions: tuple[str, ...]  # catalog (or literally named) actions in the region
    future: bool  # the region also holds actions the catalog does not know (yet)
    resources: tuple[str, ...]  # the region: resources matching any of these globs ...
    conditions: tuple[str, ...]  # the context constraints of the region ("any" when none)
    witness: Request
    statement: StatementRef  # the Allow statement responsible
    risk: tuple[str, ...]
    denied_by: tuple[StatementRef, ...] = ()  # on the other side, the Deny that stopped it
    risk_notes: tuple[RiskNote, ...] = ()  # why some risk classes hold, each with a request
    except_resources: tuple[str, ...] = ()  # ... and none of these (patterns)

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "future_actions": self.future,
            "resources": list(self.resources),
            "except_resources": list(self.except_resources),
            "conditions": list(self.conditions),
            "risk": list(self.risk),
            "witness": self.witness.to_json(),
            "statement": self.statement.to_json(),
            "denied_by": [d.to_json() for d in self.denied_by],
            "risk_notes": [n.to_json() for n in self.risk_notes],
        }


@dataclass(frozen=True)
class DiffResult:
    new_access: tuple[AccessItem, ...]
    removed_access: tuple[AccessItem, ...]
    exact: bool = True
    stats: dict[str, int] = field(default_factory=dict, compare=False)
    #: request -> lies in a difference (None: in no class); for checking against brute force
    classify: Any = field(default=None, compare=False, repr=False)

    @property
    def equivalent(self) -> bool:
        return not self.new_access and not self.removed_access

    def risks(self) -> set[str]:
        return {r for item in self.new_access for r in item.risk}

    def to_json(self) -> dict[str, Any]:
        return {
            "equivalent": self.equivalent,
            "exact": self.exact,
            "new_access": [i.to_json() for i in self.new_access],
            "removed_access": [i.to_json() for i in self.removed_access],
        }


# --------------------------------------------------------------------------- the parts


@dataclass
class _Stmt:
    side: Literal["old", "new"]
    policy: str
    index: int
    statement: Statement


#: What a witness puts in an ARN head segment written only as a wildcard.
_HEAD_DEFAULTS = ("acs", "oss", "cn-hangzhou", "1234567890123456")


def _pretty_resource(pattern: str) -> str:
    """A readable resource a pattern matches: no wildcard is left in it (a request names
    one real resource)."""
    if pattern == "*":
        return "acs:oss:cn-hangzhou:1234567890123456:example-bucket/example"
    parts = pattern.split(":", 4)
    if len(parts) == 5 and parts[0] == "acs":
        head = [
            default
            if seg and set(seg) <= {"*"}
            else seg.replace("*", "").replace("?", "0" if n == 3 else "x")
            for n, (seg, default) in enumerate(zip(parts[:4], _HEAD_DEFAULTS, strict=True))
        ]
        rest = parts[4].replace("*", "example").replace("?", "x")
        return ":".join([*head, rest])
    return pattern.replace("*", "example").replace("?", "x")


class _ActionClasses:
    """Action classes: a vector over the action patterns -> the catalog (or literally named)
    actions in it, and a witness for names no catalog knows (``future``). The classes depend
    only on the set of patterns, so they are computed once per set."""

    def __init__(self, stmts: Sequence[_Stmt]) -> None:
        patterns: dict[str, int] = {}
        for st in stmts:
            for a in st.statement.actions:
                patterns.setdefault(a.lower(), len(patterns))
        self.pattern_index = patterns
        self.matchers, self.classes, self.future, self.exact = _action_classes(tuple(patterns))

    def vector(self, action: str) -> int:
        low = action.lower()
        vec = 0
        for i, m in enumerate(self.matchers):
            if m.match(low):
                vec |= 1 << i
        return vec

    def statement_mask(self, vec: int, stmts: Sequence[_Stmt]) -> int:
        mask = 0
        for k, st in enumerate(stmts):
            hit = any(vec >> self.pattern_index[a.lower()] & 1 for a in st.statement.actions)
            if hit != st.statement.not_action:
                mask |= 1 << k
        return mask


@lru_cache(maxsize=4096)
def _action_classes(
    patterns: tuple[str, ...],
) -> tuple[list[Pattern], dict[int, list[str]], dict[int, str], bool]:
    # patterns and names are lower-cased, then compared with case
    matchers = [compile_pattern(p) for p in patterns]
    known: dict[str, str] = {name: info.name for name, info in catalog.actions().items()}
    for p in patterns:
        if "*" not in p and "?" not in p:
            known.setdefault(p, p)
    classes: dict[int, list[str]] = {}
    for low, display in known.items():
        vec = 0
        for i, m in enumerate(matchers):
            if m.match(low):
                vec |= 1 << i
        classes.setdefault(vec, []).append(display)
    wild = [i for i, p in enumerate(patterns) if "*" in p or "?" in p]
    try:
        found = realize(
            [tokens(patterns[i]) for i in wild],
            avoid=frozenset(known),
            shape=ACTION_SHAPE,
            budget=Budget(DIFF_STEP_LIMIT),
        )
    except BudgetExceeded as exc:
        raise DiffTooLarge("Action patterns", str(exc)) from None
    future: dict[int, str] = {}
    for local, witness in found.witnesses.items():
        vec = 0
        for j, i in enumerate(wild):
            if local >> j & 1:
                vec |= 1 << i
        future[vec] = witness
        classes.setdefault(vec, [])
    return matchers, classes, future, found.complete


class _ResourceClasses:
    def __init__(self, stmts: Sequence[_Stmt], budget: Budget) -> None:
        patterns: dict[str, int] = {}
        for st in stmts:
            for r in st.statement.resources:
                patterns.setdefault(r, len(patterns))
        self.patterns = list(patterns)
        self.pattern_index = patterns
        split = _split_arns(self.patterns)
        if split is None:
            found = realize(
                [tokens(p, arn=True) for p in self.patterns],
                candidates=[_pretty_resource(p) for p in self.patterns],
                shape=ARN_SHAPE,
                budget=budget,
            )
            self.exact = found.complete
            self.classes = found.witnesses  # vec -> witness
        else:
            self.classes, self.exact = _split_classes(self.patterns, *split, budget=budget)

    def statement_mask(self, vec: int, stmts: Sequence[_Stmt]) -> int:
        mask = 0
        for k, st in enumerate(stmts):
            hit = any(vec >> self.pattern_index[r] & 1 for r in st.statement.resources)
            if hit != st.statement.not_resource:
                mask |= 1 << k
        return mask


def _split_arns(patterns: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """Heads (``acs:svc:region:account``) and rests of ARN patterns, or None when some
    pattern other than ``*`` is not an ARN pattern."""
    heads, rests = [], []
    for p in patterns:
        if p == "*":
            heads.append("")
            rests.append("")
            continue
        n = arn_segments(p)
        if not n:
            return None
        heads.append(p[:n])
        rests.append(p[n + 1 :])
    return heads, rests


def _split_classes(
    patterns: Sequence[str], heads: list[str], rests: list[str], *, budget: Budget
) -> tuple[dict[int, str], bool]:
    """Resource classes from the heads and the rests separately.

    A well-formed ARN is head + ":" + rest, and (wildcards in the head not crossing ":")
    a pattern matches it exactly when its head matches the ARN's head and its rest the
    ARN's rest; any head class combines with any rest class. Searching the two parts
    apart is much smaller than searching whole ARNs."""
    uh = sorted({h for h, p in zip(heads, patterns, strict=True) if p != "*"})
    ur = sorted({r for r, p in zip(rests, patterns, strict=True) if p != "*"})
    hfound = realize(
        [tokens(h + ":", arn=True)[:-1] for h in uh],
        candidates=[_pretty_resource(h + ":x").rsplit(":", 1)[0] for h in uh],
        shape=HEAD_SHAPE,
        budget=budget,
    )
    rfound = realize(
        [tokens(r) for r in ur],
        candidates=[_pretty_resource("acs:x:*:*:" + r).split(":", 4)[4] for r in ur],
        budget=budget,
    )
    budget.spend(len(hfound.witnesses) * len(rfound.witnesses) * len(patterns), "resource classes")
    star = 0
    for i, p in enumerate(patterns):
        if p == "*":
            star |= 1 << i
    hindex = {h: i for i, h in enumerate(uh)}
    rindex = {r: i for i, r in enumerate(ur)}
    classes: dict[int, str] = {}
    for hv, hw in hfound.witnesses.items():
        for rv, rw in rfound.witnesses.items():
            vec = star
            for i, p in enumerate(patterns):
                if p != "*" and hv >> hindex[heads[i]] & 1 and rv >> rindex[rests[i]] & 1:
                    vec |= 1 << i
            classes.setdefault(vec, f"{hw}:{rw}")
    return classes, hfound.complete and rfound.complete


def _ip_candidates(values: Sequence[str]) -> list[str]:
    """An address in every range of addresses the networks in ``values`` tell apart: each
    network's first and last address and its neighbours (every elementary range starts at
    one of them), and one IPv4 and one IPv6 address elsewhere."""
    out: list[str] = ["192.0.2.1", "2001:db8::1"]
    for v in values:
        if "*" in v:
            continue
        net = parse_network(v)
        if net is None:
            continue
        first, last = int(net.network_address), int(net.broadcast_address)
        top = 2**32 - 1 if net.version == 4 else 2**128 - 1
        for n in (first, last, first - 1, last + 1):
            if 0 <= n <= top:
                out.append(
                    str(ipaddress.ip_address(n) if net.version == 6 else ipaddress.IPv4Address(n))
                )
    return out


_WIDE = Context(prec=28, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])


def _digits(x: Decimal) -> int:
    return len(x.as_tuple().digits)


def _step(x: Decimal, *, up: bool, prec: int) -> Decimal | None:
    """The next decimal above (below) ``x`` with ``prec`` significant digits: no decimal
    written with fewer digits lies strictly between the two."""
    ctx = _WIDE.copy()
    ctx.prec = prec
    y = ctx.next_plus(x) if up else ctx.next_minus(x)
    return y if y.is_finite() and (y > x if up else y < x) else None


def _between(a: Decimal, b: Decimal) -> Decimal | None:
    """A short decimal strictly between a < b (exact: no float rounding)."""
    if a < 0 < b:
        return Decimal(0)
    if b <= 0:
        mirrored = _between(-b, -a)
        return None if mirrored is None else -mirrored
    y: Decimal | None
    if a == 0:
        ctx = _WIDE.copy()
        ctx.prec = _digits(b) + 2
        y = ctx.divide(b, 2)
    else:
        y = _step(a, up=True, prec=max(_digits(a), _digits(b)) + 2)
    return y if y is not None and a < y < b else None


def _ordered_points(consts: Sequence[Decimal]) -> tuple[list[Decimal], bool]:
    """Every constant, a value between each two neighbours and one beyond each end: one
    value in each region of the line the comparisons with ``consts`` tell apart. False
    when some region got no value."""
    points = sorted(set(consts))
    if not points:
        return [Decimal(0)], True
    width = max(_digits(c) for c in points) + 2
    out: list[Decimal] = []
    exact = True
    for i, c in enumerate(points):
        out.append(c)
        if i + 1 < len(points):
            mid = _between(c, points[i + 1])
            if mid is None:
                exact = False
            else:
                out.append(mid)
    for end, up in ((points[0], False), (points[-1], True)):
        beyond = _step(end, up=up, prec=width)
        if beyond is None:
            exact = False
        else:
            out.append(beyond)
    return out, exact


def _fmt_number(x: Decimal) -> str:
    return format(x, "f") if -30 <= x.adjusted() <= 40 else str(x)


def _fits(pattern: str, value: str) -> list[str]:
    """Strings that match the wildcard ``pattern`` and keep as much of ``value`` as they
    can: ways to make a number, date or address also match a StringLike pattern."""
    first = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=-1)
    if first < 0:
        return []
    last = max(pattern.rfind("*"), pattern.rfind("?"))
    head, tail = pattern[:first], pattern[last + 1 :]
    body = value[len(head) : len(value) - len(tail) if tail else None]
    tries = [
        pattern.replace("*", value).replace("?", "0"),
        head + body + tail,
        head + value + tail,
        head + value[len(head) :],
        value[: len(value) - len(tail)] + tail if tail else value,
        head + value,
        value + tail,
    ]
    if "." in value and pattern.count(".") == value.count("."):  # dotted forms: part by part
        parts = [
            p.replace("*", v) if "*" in p else p.replace("?", "0")
            for p, v in zip(pattern.split("."), value.split("."), strict=True)
        ]
        tries.insert(0, ".".join(parts))
    elif "." in value:  # keep the value's parts, the pattern's whole literal parts
        parts = value.split(".")
        lead = head.split(".")[:-1]
        trail = tail.split(".")[1:]
        if len(lead) + len(trail) <= len(parts):
            parts[: len(lead)] = lead
            parts[len(parts) - len(trail) :] = trail
            tries.insert(0, ".".join(parts))
    return [t for t in dict.fromkeys(tries) if wildcard_match(pattern, t)]


def _is_typed(text: str) -> bool:
    """Whether ``text`` is a value of a typed key: an address, a number, a date or a Bool."""
    if parse_number(text) is not None or parse_date(text) is not None:
        return True
    if text.lower() in ("true", "false"):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _other_spelling(key: str, spellings: Sequence[str]) -> str | None:
    for variant in (key.upper(), key.lower(), key.swapcase(), key.title()):
        cand = canonical_key(variant)
        if cand not in spellings:
            return cand
    return None


class _KeyClasses:
    """The classes of one condition key: the request values (None = the key is absent) and
    spellings of the key's name that no statement can tell apart.

    Each class carries two truth vectors over the atoms: with key names compared without
    case, and as spelled (which RAM does is UNCONFIRMED; docs/unconfirmed.md)."""

    def __init__(
        self, key: str, atoms: list[CompiledCondition], missing: MissingKey, budget: Budget
    ) -> None:
        self.key = key
        self.atoms = atoms
        by_family: dict[str, list[CompiledCondition]] = {}
        for a in atoms:
            by_family.setdefault(FAMILY[a.operator], []).append(a)
        kind = KEY_TYPES.get(key)
        complete = True
        values: list[str] = []  # values of the key's own type first: readable witnesses
        late: list[str] = []  # values no request of that type carries
        pats: list[tuple[Any, ...]] = []
        texts: list[str] = []
        wild: list[str] = []  # patterns a value of another family may be made to match
        for family, group in by_family.items():
            for a in group:
                for v in a.values:
                    if family == "string" and a.operator.endswith("Like"):
                        pats.append(tokens(v))
                        wild.append(v)
                    elif family == "string" and a.operator.endswith("IgnoreCase"):
                        pats.append(tokens(v, wildcards=False, ignore_case=True))
                    elif family == "string":
                        pats.append(tokens(v, wildcards=False))
                    elif family == "bool":
                        pats.append(tokens(v, wildcards=False, ignore_case=True))
                    elif family == "ip" and "*" in v:
                        pats.append(tokens(v))
                        wild.append(v)
                    else:
                        continue
                    texts.append(v)
        typed: list[str] = []
        ip_values = [v for a in by_family.get("ip", []) for v in a.values]
        if ip_values or kind == "ip":
            typed.extend(_ip_candidates(ip_values))
            late.append("not-an-ip")
        if "number" in by_family:
            consts = [parse_number(v) for a in by_family["number"] for v in a.values]
            points, ok = _ordered_points([c for c in consts if c is not None])
            complete &= ok
            typed.extend(_fmt_number(x) for x in points)
            late.append("not-a-number")
        if "date" in by_family or kind == "date":
            consts = [parse_date(v) for a in by_family.get("date", []) for v in a.values]
            points, ok = _ordered_points([c for c in consts if c is not None])
            if not by_family.get("date"):
                points = [Decimal(1767225600)]  # 2026-01-01T00:00:00Z
            complete &= ok
            for x in points:
                text = format_date(x)
                if text is None:
                    complete = False
                else:
                    typed.append(text)
            late.append("not-a-date")
        if "bool" in by_family or kind == "bool":
            typed.extend(["true", "false"])
        values.extend(typed)
        for p in wild:  # a value of the key's type that also matches a pattern
            for v in typed:
                for fit in _fits(p, v):
                    (values if _is_typed(fit) else late).append(fit)
        if pats:
            found = realize(pats, candidates=texts, budget=budget)
            complete &= found.complete
            late[:0] = found.witnesses.values()
        if texts and typed and any(f in by_family for f in ("number", "date")):
            complete = False  # strings and numbers/dates on one key: found, not proven
        if texts and typed and "ip" in by_family and any("*" not in v for v in ip_values):
            complete = False  # patterns and networks on one key
        self.exact = complete
        spelled = sorted({a.spelled for a in atoms})
        if key in KNOWN_KEYS:
            spellings = [KNOWN_KEYS[key]]  # requests name a documented key one way
        else:  # as some statement spells it, or otherwise
            spellings = sorted({canonical_key(k) for k in spelled})
            other = _other_spelling(spelled[0], spellings)
            if other is not None:
                spellings.append(other)
        seen: dict[tuple[tuple[bool, ...], tuple[bool, ...]], tuple[str | None, str]] = {}
        absent = tuple(a.truth(None, missing) for a in atoms)
        seen[(absent, absent)] = (None, spellings[0])
        for candidate in dict.fromkeys(values + late):
            folded = tuple(a.truth(candidate, missing) for a in atoms)
            for sp in spellings:
                exact = tuple(
                    t if a.spelled == sp else n
                    for a, t, n in zip(atoms, folded, absent, strict=True)
                )
                seen.setdefault((folded, exact), (candidate, sp))
        # [((truth without case, truth as spelled), value, spelling)]
        self.classes = [(truth, value, sp) for truth, (value, sp) in seen.items()]


# --------------------------------------------------------------------------- diff


def _level_of(resource: str) -> str:
    rest = resource.split(":", 4)[-1] if resource.startswith("acs:") else resource
    if rest and set(rest) <= {"*"}:
        return "service"
    return "object" if "/" in rest else "bucket"


def _describe_condition(c: Any) -> str:
    return f"{c.operator} {c.key} [{', '.join(c.values)}]"


def _flatten(policies: Sequence[Policy], side: Literal["old", "new"]) -> list[_Stmt]:
    return [
        _Stmt(side, p.name or f"{side}[{n}]", i, s)
        for n, p in enumerate(policies)
        for i, s in enumerate(p.statements)
    ]


@lru_cache(maxsize=65536)
def _canonical_statement(statement: Statement) -> Statement:
    from permgen.policy.model import _canonical_statement as canonical_statement

    return canonical_statement(statement)


@lru_cache(maxsize=65536)
def _rest_head(resource: str) -> str | None:
    """The literal text after an ARN's fourth ":" up to the first wildcard, or None when
    the pattern is not an ARN whose first four segments are free of "*"/"?" crossing ":".
    Two ARN patterns whose heads are not prefixes of one another match no common string."""
    head = arn_segments(resource)
    if not head:
        return None
    rest = resource[head + 1 :]
    cut = min((i for i in (rest.find("*"), rest.find("?")) if i >= 0), default=len(rest))
    return rest[:cut]


def _relevant(old: list[_Stmt], new: list[_Stmt]) -> list[_Stmt] | None:
    """The statements that can matter, or None when both sides hold the same statements.

    A request is decided differently only if a statement present on one side alone matches
    it. A statement on both sides whose resources cannot overlap any one-sided statement's
    resources never matches such a request, so it is left out (exactly, not heuristically:
    the overlap test only says "disjoint" when the patterns are)."""

    def keys(side: list[_Stmt]) -> dict[Statement, int]:
        out: dict[Statement, int] = {}
        for st in side:
            k = _canonical_statement(st.statement)
            out[k] = out.get(k, 0) + 1
        return out

    old_keys, new_keys = keys(old), keys(new)
    changed = {k for k in old_keys if k not in new_keys} | {
        k for k in new_keys if k not in old_keys
    }
    if not changed:
        return None
    if any(k.not_resource or k.not_action for k in changed):
        return old + new
    changed_heads = [_rest_head(r) for k in changed for r in k.resources]

    def needed(st: _Stmt) -> bool:
        k = _canonical_statement(st.statement)
        if k in changed or st.statement.not_resource:
            return True
        for r in k.resources:
            head = _rest_head(r)
            if head is None:
                return True
            for c in changed_heads:
                if c is None or head.startswith(c) or c.startswith(head):
                    return True
        return False

    return [st for st in old + new if needed(st)]


#: Condition keys that say where a request comes from or how it travels. New access that
#: only a value of these keys tells apart from access the old side already granted is
#: ``condition-removed`` (docs/semantics.md, Risk classes).
NETWORK_KEYS = ("acs:SourceIp", "acs:SourceVpc", "acs:SecureTransport")

#: At most this many variants of a witness (values of the network keys) are evaluated
#: when looking for the condition a new access item no longer needs.
CONDITION_TRIES = 4096

#: At most this many other requests of an item (besides its witness) are tried as the
#: place where a network condition was dropped.
CONDITION_CANDIDATES = 32


@dataclass(frozen=True)
class RiskNote:
    """Why an item has a risk class, with a request that shows it (decided as the item's
    side says: allowed by one side, denied by the other)."""

    risk: str
    text: str
    request: Request

    def to_json(self) -> dict[str, Any]:
        return {"risk": self.risk, "text": self.text, "request": self.request.to_json()}


def _reaches(rest: str, *, object_level: bool) -> bool:
    """Whether the wildcard pattern ``rest`` (an ARN after its fourth ":") matches some
    bucket name (no "/"), or some ``bucket/key`` with a non-empty bucket and key."""
    # states: 0 start, 1 in the bucket name, 2 just after "/", 3 in the key; -1 dead
    accept = 3 if object_level else 1

    def step(state: int, ch: str) -> int:
        if state in (0, 1):
            return (2 if state == 1 and object_level else -1) if ch == "/" else 1
        return 3 if state in (2, 3) else -1

    states = {0}
    for ch in rest:
        if ch == "*":
            grown = set(states)
            while True:
                more = {step(s, c) for s in grown for c in "a/"} - {-1}
                if more <= grown:
                    break
                grown |= more
            states = grown
        else:
            chars = "a/" if ch == "?" else ch
            states = {step(s, c) for s in states for c in chars} - {-1}
        if not states:
            return False
    return accept in states


def _level_possible(statement: Statement, level: str) -> bool:
    """Whether the statement's resources can name an OSS resource of ``level`` (catalog
    levels: ``acs:oss:*:<account>:*``, ``...:<bucket>``, ``...:<bucket>/<key>``)."""
    if statement.not_resource or level not in ("service", "bucket", "object"):
        return True
    for r in statement.resources:
        if r == "*":
            return True
        head = arn_segments(r)
        if not head:
            continue  # not an ARN: no OSS request names it
        if not wildcard_match(r[:head].split(":")[1], "oss"):
            continue
        rest = r[head + 1 :]
        if level == "service":
            if wildcard_match(rest, "*"):
                return True
        elif _reaches(rest, object_level=level == "object"):
            return True
    return False


def _whole_bucket(pattern: str, level: str, statement: Statement) -> bool:
    """Whether ``pattern`` lets a data read of ``level`` cover a whole bucket: every key of
    some bucket (object reads), or listing a bucket with no limiting ``oss:Prefix``."""
    if pattern == "*":
        return True
    head = arn_segments(pattern)
    rest = pattern[head + 1 :] if head else pattern
    if level == "object":
        stem = rest.rstrip("*?")
        tail = rest[len(stem) :]
        slashes = stem.count("/")
        return "*" in tail and (slashes == 0 or (slashes == 1 and stem.endswith("/")))
    if not _reaches(rest, object_level=False):
        return False
    for c in statement.conditions:
        if c.key.lower() != "oss:prefix" or c.operator not in ("StringEquals", "StringLike"):
            continue
        if not any(c.operator == "StringLike" and set(v) <= {"*"} for v in c.values):
            return False  # a prefix condition that limits the listing
    return True


def _representatives(pattern: str, witness: Request, level: str | None) -> list[str]:
    """Resources of ``level`` (None: any) that ``pattern`` matches, to try: the witness's
    when it matches, and readable ones (a last ``*`` may stand for ``bucket/key``)."""
    cut = pattern.rfind("*")
    tries = [witness.resource, _pretty_resource(pattern)]
    if cut >= 0:
        tries.append(_pretty_resource(pattern[:cut] + "example/example" + pattern[cut + 1 :]))
    return [
        r
        for r in dict.fromkeys(tries)
        if wildcard_match(pattern, r, arn=True) and (level is None or _level_of(r) == level)
    ]


def _with(context: Mapping[str, str], key: str, value: str | None) -> dict[str, str]:
    """``context`` with ``key`` (any spelling) set to ``value`` (None: absent)."""
    out = {k: v for k, v in context.items() if k.lower() != key.lower()}
    if value is not None:
        out[key] = value
    return out


def _bucket_wide(
    actions: Sequence[str],
    statement: Statement,
    witness: Request,
    this: Evaluator,
    other: Evaluator,
) -> bool:
    """Some data read on a whole-bucket pattern of the statement is decided differently."""
    reads = [
        info
        for a in actions
        if (info := catalog.lookup(a)) is not None
        and info.service == "oss"
        and "bucket-wide-read" in info.risk
    ]
    if not reads:
        return False
    if statement.not_resource:
        return True
    for info in reads:
        for r in statement.resources:
            if not _whole_bucket(r, info.level, statement):
                continue
            for resource in _representatives(r, witness, info.level):
                req = Request(info.name, resource, witness.context)
                if this.allows(req) and not other.allows(req):
                    return True
    return False


def _public_acl(
    actions: Sequence[str], statement: Statement, witness: Request, old: Evaluator, new: Evaluator
) -> RiskNote | None:
    """A request that sets a public ACL and that only the new side allows."""
    for a in actions:
        info = catalog.lookup(a)
        if info is None or not info.acl_key:
            continue
        resources = [witness.resource] if _level_of(witness.resource) == info.level else []
        if not statement.not_resource:
            resources += [
                p for r in statement.resources for p in _representatives(r, witness, info.level)
            ]
        for resource in dict.fromkeys(resources):
            found = []
            for value in catalog.PUBLIC_ACLS:
                req = Request(info.name, resource, _with(witness.context, info.acl_key, value))
                if new.allows(req) and not old.allows(req):
                    found.append(req)
            if found:
                header = info.acl_key.partition(":")[2]
                who = {"oss:PutObject": "uploads", "oss:PutBucket": "new buckets"}.get(
                    info.name, info.name
                )
                values = " or ".join(r.context[info.acl_key] for r in found)
                return RiskNote("exposure", f"{who} may now set {header}: {values}", found[0])
    return None


@lru_cache(maxsize=1024)
def _network_values(
    key: str, atoms: tuple[tuple[str, tuple[str, ...], str], ...], missing: MissingKey
) -> tuple[str | None, ...]:
    """One value (None: absent) of ``key`` per class its atoms tell apart."""
    compiled = [CompiledCondition(op, spelled, values) for op, values, spelled in atoms]
    try:
        classes = _KeyClasses(key, compiled, missing, Budget(DIFF_STEP_LIMIT)).classes
    except BudgetExceeded:
        return (None,)
    return tuple(dict.fromkeys(value for _truth, value, _spelling in classes))


def _requirement(conditions: Sequence[Any], key: str) -> str:
    parts = []
    for c in conditions:
        if c.key.lower() != key.lower():
            continue
        if c.operator == "Bool" and len(c.values) == 1:
            parts.append(f"{key}={c.values[0]}")
        else:
            parts.append(_describe_condition(c))
    return " and ".join(parts)


def _targets(statement: Statement, action: str, resource: str) -> bool:
    """Whether ``statement`` may apply to requests of ``action`` on ``resource`` (its
    conditions aside; resources compared without case, so never too few)."""
    if any(wildcard_match(p, action, ignore_case=True) for p in statement.actions) is (
        statement.not_action
    ):
        return False
    if statement.not_resource:
        return True
    return any(wildcard_match(r, resource, ignore_case=True, arn=True) for r in statement.resources)


def _restricted(ev: Evaluator, action: str, resource: str) -> Evaluator:
    """``ev`` over the statements that may apply to ``action`` on ``resource``: it decides
    every request of that action on that resource exactly as ``ev`` does."""
    return Evaluator.from_statements(
        [
            (c.statement, c.policy, c.index)
            for c in (*ev.deny_statements, *ev.allow_statements)
            if _targets(c.statement, action, resource)
        ],
        missing_key=ev.missing_key,
    )


def _condition_candidates(
    actions: Sequence[str], statement: Statement, witness: Request, old: Evaluator, new: Evaluator
) -> Iterator[Request]:
    """The witness, then requests of the item elsewhere in its region where the old side
    had a network condition: an action of the item on a resource of such a statement, with
    the witness's condition keys, that the responsible statement may match, the new side
    allows and the old side denies (at most :data:`CONDITION_CANDIDATES`)."""
    yield witness
    wanted = {k.lower() for k in NETWORK_KEYS}
    seen = {(witness.action, witness.resource)}
    for cs in (*old.deny_statements, *old.allow_statements):
        s = cs.statement
        if s.not_action or s.not_resource:
            continue
        if not any(c.key.lower() in wanted for c in s.conditions):
            continue
        action = next(
            (
                a
                for a in (witness.action, *actions)
                if any(wildcard_match(p, a, ignore_case=True) for p in s.actions)
            ),
            None,
        )
        if action is None:
            continue
        for pattern in s.resources:
            for resource in _representatives(pattern, witness, None):
                if (action, resource) in seen or not _targets(statement, action, resource):
                    continue
                seen.add((action, resource))
                if len(seen) > CONDITION_CANDIDATES:
                    return
                request = Request(action, resource, witness.context)
                if new.allows(request) and not old.allows(request):
                    yield request


def _condition_removed(
    actions: Sequence[str], statement: Statement, witness: Request, old: Evaluator, new: Evaluator
) -> RiskNote | None:
    """The network or transport conditions the new side no longer asks for, shown on the
    witness or on another request of the item (:func:`_condition_candidates`)."""
    for request in _condition_candidates(actions, statement, witness, old, new):
        note = _condition_removed_at(
            request,
            _restricted(old, request.action, request.resource),
            _restricted(new, request.action, request.resource),
        )
        if note is not None:
            return note
    return None


def _condition_removed_at(request: Request, old: Evaluator, new: Evaluator) -> RiskNote | None:
    """Whether ``request`` (new allows, old denies) differs from a request both sides allow
    in the values of :data:`NETWORK_KEYS` alone.

    The values tried are one per class the two sides' conditions on each key tell apart,
    fewest keys changed first; the first variant both sides allow shows that the
    difference lies in those keys alone."""
    witness = request
    wanted = {k.lower(): k for k in NETWORK_KEYS}
    atoms: dict[str, dict[tuple[str, tuple[str, ...], str], None]] = {}
    for ev in (old, new):
        for cs in (*ev.deny_statements, *ev.allow_statements):
            for c in cs.statement.conditions:
                if c.key.lower() in wanted:
                    atoms.setdefault(wanted[c.key.lower()], {})[(c.operator, c.values, c.key)] = (
                        None
                    )
    if not atoms:
        return None
    keys = sorted(atoms)
    current = {
        k: next((v for name, v in witness.context.items() if name.lower() == k.lower()), None)
        for k in keys
    }
    options = {
        k: [
            v
            for v in _network_values(k.lower(), tuple(atoms[k]), old.missing_key)
            if v != current[k]
        ]
        for k in keys
    }
    tries = 0
    for n in range(1, len(keys) + 1):
        for chosen in itertools.combinations(keys, n):
            for values in itertools.product(*(options[k] for k in chosen)):
                tries += 1
                if tries > CONDITION_TRIES:
                    return None
                context: Mapping[str, str] = witness.context
                for k, v in zip(chosen, values, strict=True):
                    context = _with(context, k, v)
                variant = Request(witness.action, witness.resource, context)
                if old.allows(variant) and new.allows(variant):
                    return RiskNote(
                        "condition-removed",
                        _removed_text(witness, variant, chosen, current, old),
                        witness,
                    )
    return None


def _removed_text(
    witness: Request,
    variant: Request,
    keys: Sequence[str],
    current: dict[str, str | None],
    old: Evaluator,
) -> str:
    before = old.decide(witness)
    if before.kind == "explicit_deny":
        deciders = [s.statement for s in before.statements]
        verb = "old denied it"
    else:
        deciders = [s.statement for s in old.decide(variant).statements]
        verb = "old required"
    parts = []
    for k in keys:
        value = variant.context.get(k)
        req = next(
            (text for s in deciders if (text := _requirement(s.conditions, k))),
            f"{k}={value}" if value is not None else f"no {k}",
        )
        if current[k] is None and verb == "old required" and "=" in req and " " not in req:
            parts.append(f"without {req}")
        elif current[k] is None:
            parts.append(f"without {k} ({verb}: {req})")
        else:
            parts.append(f"with {k}={current[k]} ({verb}: {req})")
    return "now allowed " + " and ".join(parts)


def _risks(
    actions: Sequence[str],
    future: bool,
    statement: Statement,
    witness: Request,
    this: Evaluator,
    other: Evaluator,
    *,
    new: bool,
) -> tuple[tuple[str, ...], tuple[RiskNote, ...]]:
    """The risk classes of an item of access ``this`` side allows and ``other`` denies
    (``new``: new access), with notes that show the class on a concrete request."""
    risk: set[str] = set()
    notes: list[RiskNote] = []
    for a in actions:
        info = catalog.lookup(a)
        if info is None:
            continue
        if info.service == "oss" and not _level_possible(statement, info.level):
            continue  # e.g. a bucket action of oss:* on object ARNs: no such request
        risk.update(r for r in info.risk if r != "bucket-wide-read")
    if future:
        risk.add("future-actions")
    wide_action = statement.not_action or any(
        a == "*" or a.endswith(":*") for a in statement.actions
    )
    wide_resource = statement.not_resource or any(
        r == "*" or (r.startswith("acs:") and set(r.split(":", 4)[-1]) <= {"*"})
        for r in statement.resources
    )
    if wide_action or wide_resource:
        risk.add("wildcard-scope")
    if _bucket_wide(actions, statement, witness, this, other):
        risk.add("bucket-wide-read")
    if new:
        old_eval, new_eval = other, this
        for note in (
            _public_acl(actions, statement, witness, old_eval, new_eval),
            _condition_removed(actions, statement, witness, old_eval, new_eval),
        ):
            if note is not None:
                risk.add(note.risk)
                notes.append(note)
    order = {r: i for i, r in enumerate(RISK_ORDER)}
    notes.sort(key=lambda n: order[n.risk])
    return tuple(r for r in RISK_ORDER if r in risk), tuple(notes)


def diff_policies(
    old: Sequence[Policy],
    new: Sequence[Policy],
    *,
    missing_key: MissingKey = MissingKey.NEGATED_TRUE,
) -> DiffResult:
    """Every request the ``new`` set allows and ``old`` denies, and the reverse.

    Raises PolicyParseError for a condition constant its operator cannot compare."""
    for side, policies in (("old", old), ("new", new)):
        check_conditions(
            (s, p.name or f"{side}[{n}]", i)
            for n, p in enumerate(policies)
            for i, s in enumerate(p.statements)
        )
    stmts = _relevant(_flatten(old, "old"), _flatten(new, "new"))
    if stmts is None:
        return DiffResult((), (), classify=lambda request: False, stats={"statements": 0})
    bits = {k: 1 << k for k in range(len(stmts))}
    old_allow = sum(
        bits[k] for k, s in enumerate(stmts) if s.side == "old" and s.statement.effect != DENY
    )
    old_deny = sum(
        bits[k] for k, s in enumerate(stmts) if s.side == "old" and s.statement.effect == DENY
    )
    new_allow = sum(
        bits[k] for k, s in enumerate(stmts) if s.side == "new" and s.statement.effect != DENY
    )
    new_deny = sum(
        bits[k] for k, s in enumerate(stmts) if s.side == "new" and s.statement.effect == DENY
    )
    allows = old_allow | new_allow
    if not allows:
        return DiffResult((), (), classify=lambda request: False)

    actions = _ActionClasses(stmts)
    budget = Budget(DIFF_STEP_LIMIT)
    try:
        resources = _ResourceClasses(stmts, budget)
    except BudgetExceeded as exc:
        raise DiffTooLarge("Resource patterns", str(exc)) from None

    # condition keys: the distinct atoms per key, the statements that need each, and for
    # each key class the statements whose atoms on that key all hold
    atoms_by_key: dict[str, dict[tuple[str, tuple[str, ...], str], CompiledCondition]] = {}
    needs: dict[str, dict[tuple[str, tuple[str, ...], str], int]] = {}
    for k, st in enumerate(stmts):
        for c in st.statement.conditions:
            key = c.key.lower()
            ident = (c.operator, c.values, c.key)
            atoms_by_key.setdefault(key, {}).setdefault(
                ident, CompiledCondition(c.operator, c.key, c.values)
            )
            needs.setdefault(key, {})
            needs[key][ident] = needs[key].get(ident, 0) | bits[k]
    try:
        key_classes = [
            _KeyClasses(key, list(atoms.values()), missing_key, budget)
            for key, atoms in atoms_by_key.items()
        ]
    except BudgetExceeded as exc:
        raise DiffTooLarge("condition values", str(exc)) from None
    all_bits = (1 << len(stmts)) - 1
    # per key class: the statements whose atoms on that key hold with key names compared
    # without case, and as spelled; its value and the spelling of the key's name
    Row = tuple[int, int, str | None, str, tuple[tuple[bool, ...], tuple[bool, ...]]]
    key_masks: list[list[Row]] = []
    for kc in key_classes:
        owners = list(needs[kc.key].values())
        rows: list[Row] = []
        for truth, value, spelling in kc.classes:
            masks = []
            for reading in truth:
                mask = all_bits
                for owner_bits, holds in zip(owners, reading, strict=True):
                    if not holds:
                        mask &= ~owner_bits
                masks.append(mask)
            rows.append((masks[0], masks[1], value, spelling, truth))
        key_masks.append(rows)
    # An Allow applies when its conditions hold under either reading of key names, a Deny
    # only when they hold under both (as the evaluator decides).
    denies = old_deny | new_deny

    def combined(folded: int, exact_names: int) -> int:
        return ((folded | exact_names) & ~denies) | (folded & exact_names & denies)

    # The condition combinations that statements can tell apart: the product of the keys'
    # classes, folded one key at a time and kept only when it changes which statements
    # apply. Keys no statement ties together multiply only the masks they change, so
    # independent keys cost their sum, not their product.
    partial: dict[tuple[int, int], tuple[int, ...]] = {(all_bits, all_bits): ()}
    try:
        for rows in key_masks:
            budget.spend(len(partial) * len(rows), "condition combinations")
            nxt: dict[tuple[int, int], tuple[int, ...]] = {}
            for (folded, exact_names), choice in partial.items():
                for i, row in enumerate(rows):
                    nxt.setdefault((folded & row[0], exact_names & row[1]), (*choice, i))
            partial = nxt
        by_mask: dict[int, tuple[int, ...]] = {}
        for (folded, exact_names), choice in partial.items():
            by_mask.setdefault(combined(folded, exact_names), choice)
        combos = list(by_mask.items())
        n_cells = len(actions.classes) * len(resources.classes) * len(combos)
        budget.spend(n_cells, "combinations of action, resource and condition classes")
    except BudgetExceeded as exc:
        raise DiffTooLarge("classes", str(exc)) from None

    action_rows = [(actions.statement_mask(vec, stmts), vec) for vec in actions.classes]
    resource_rows = [(resources.statement_mask(vec, stmts), vec) for vec in resources.classes]

    # per side and (action class, resource class): [contexts decided differently, the first
    # such context, the statements granting it, whether the other side allows it in some]
    pairs: dict[str, dict[tuple[int, int], list[Any]]] = {"new": {}, "removed": {}}
    for amask, avec in action_rows:
        if not amask & allows:
            continue
        for rmask, rvec in resource_rows:
            ar = amask & rmask
            if not ar & allows:
                continue
            # whether each side allows, and each side's Deny applies, in some context
            seen = [False, False, False, False]
            for ci, (cmask, _choice) in enumerate(combos):
                m = ar & cmask
                old_ok = bool(m & old_allow) and not m & old_deny
                new_ok = bool(m & new_allow) and not m & new_deny
                seen[0] = seen[0] or old_ok
                seen[1] = seen[1] or new_ok
                seen[2] = seen[2] or bool(m & old_deny)
                seen[3] = seen[3] or bool(m & new_deny)
                if old_ok != new_ok:
                    side = "new" if new_ok else "removed"
                    grant = m & (new_allow if new_ok else old_allow)
                    rec = pairs[side].get((avec, rvec))
                    if rec is None:
                        rec = pairs[side][(avec, rvec)] = [0, ci, 0, seen]
                    rec[0] += 1
                    rec[2] |= grant

    # Statements left out above cannot match a request decided differently, so evaluators
    # over the rest decide every witness exactly as evaluators over whole policies would.
    old_eval = Evaluator.from_statements(
        [(st.statement, st.policy, st.index) for st in stmts if st.side == "old"],
        missing_key=missing_key,
    )
    new_eval = Evaluator.from_statements(
        [(st.statement, st.policy, st.index) for st in stmts if st.side == "new"],
        missing_key=missing_key,
    )
    exact = actions.exact and resources.exact and all(kc.exact for kc in key_classes)
    items: dict[str, list[AccessItem]] = {"new": [], "removed": []}
    pretty = {_pretty_resource(p) for p in resources.patterns}
    all_classes = list(resources.classes)
    for side, side_pairs in pairs.items():
        grant_bits = new_allow if side == "new" else old_allow
        # action classes with the same resource classes share their entries
        by_action: dict[int, set[int]] = {}
        for avec, rvec in side_pairs:
            by_action.setdefault(avec, set()).add(rvec)
        groups: dict[frozenset[int], list[int]] = {}
        for avec, rvecs in by_action.items():
            groups.setdefault(frozenset(rvecs), []).append(avec)
        for delta, avecs in groups.items():
            granting = 0
            for avec in avecs:
                for rvec in delta:
                    granting |= side_pairs[(avec, rvec)][2]
            prefer: set[int] = set()
            for k in _bits_of(granting & grant_bits):
                s = stmts[k].statement
                if s.not_resource:
                    prefer.add(0)
                else:
                    prefer.update(1 << resources.pattern_index[r] for r in s.resources)
            others = [r for r in all_classes if r not in delta]
            try:
                found, complete = regions(
                    sorted(delta), others, resources.patterns, sorted(prefer), budget
                )
            except BudgetExceeded as exc:
                raise DiffTooLarge("classes", str(exc)) from None
            exact = exact and complete
            for region in found:
                item = _region_item(
                    side,
                    region,
                    avecs,
                    side_pairs,
                    len(combos),
                    stmts=stmts,
                    actions=actions,
                    resources=resources,
                    combos=combos,
                    key_masks=key_masks,
                    pretty=pretty,
                    evaluators=(old_eval, new_eval),
                )
                if item is None:
                    exact = False
                else:
                    items[side].append(item)
    order = {r: i for i, r in enumerate(RISK_ORDER)}

    def sort_key(item: AccessItem) -> tuple[Any, ...]:
        first = min((order[r] for r in item.risk), default=len(order))
        return (first, item.statement.policy, item.statement.index, item.witness.resource)

    def classify(request: Request) -> bool | None:
        """Whether ``request`` lies in a difference; None if it falls in no class (a bug)."""
        avec = actions.vector(request.action)
        if avec not in actions.classes:
            return None
        rvec = 0
        for i, p in enumerate(resources.patterns):
            if wildcard_match(p, request.resource, arn=True):
                rvec |= 1 << i
        if rvec not in resources.classes:
            return None
        ctx = RequestContext(request.context)
        folded = exact_names = all_bits
        for kc, rows in zip(key_classes, key_masks, strict=True):
            truth = (
                tuple(a.holds(ctx.folded, missing_key) for a in kc.atoms),
                tuple(a.holds_exact(ctx.exact, missing_key) for a in kc.atoms),
            )
            row = next((row for row in rows if row[4] == truth), None)
            if row is None:
                return None
            folded &= row[0]
            exact_names &= row[1]
        cmask = combined(folded, exact_names)
        if cmask not in by_mask:
            return None  # a combination the search did not keep (a bug)
        m = actions.statement_mask(avec, stmts) & resources.statement_mask(rvec, stmts) & cmask
        old_ok = bool(m & old_allow) and not m & old_deny
        new_ok = bool(m & new_allow) and not m & new_deny
        return old_ok != new_ok

    return DiffResult(
        tuple(sorted(items["new"], key=sort_key)),
        tuple(sorted(items["removed"], key=sort_key)),
        exact=exact,
        classify=classify,
        stats={
            "statements": len(stmts),
            "action_classes": len(actions.classes),
            "resource_classes": len(resources.classes),
            "context_classes": len(combos),
        },
    )


def _bits_of(x: int) -> list[int]:
    out = []
    while x:
        low = x & -x
        out.append(low.bit_length() - 1)
        x ^= low
    return out


def _region_item(
    side: str,
    region: Region,
    avecs: Sequence[int],
    side_pairs: dict[tuple[int, int], list[Any]],
    n_combos: int,
    *,
    stmts: Sequence[_Stmt],
    actions: _ActionClasses,
    resources: _ResourceClasses,
    combos: Sequence[tuple[int, tuple[int, ...]]],
    key_masks: Sequence[Sequence[tuple[int, int, str | None, str, Any]]],
    pretty: set[str],
    evaluators: tuple[Evaluator, Evaluator],
) -> AccessItem | None:
    """One entry: the action classes ``avecs`` on the resources of ``region``, its witness
    confirmed with the evaluator (None when it fails, which would be a bug)."""
    old_eval, new_eval = evaluators
    cells = [(avec, rvec) for avec in avecs for rvec in region.covers]
    known: list[str] = []
    future = False
    for avec in avecs:
        known.extend(actions.classes[avec])
        future = future or avec in actions.future
    # the witness: a readable resource first, an action of the resource's level first
    cells.sort(key=lambda c: (resources.classes[c[1]] not in pretty, c[1], c[0]))
    avec, rvec = cells[0]
    _count, ci, _grant, _other = side_pairs[(avec, rvec)]
    resource = resources.classes[rvec]
    names = actions.classes[avec]
    level = _level_of(resource)
    by_level = [n for n in names if (info := catalog.lookup(n)) is not None and info.level == level]
    action = (by_level or names or [actions.future.get(avec, "")])[0]
    ctx = {}
    for rows, i in zip(key_masks, combos[ci][1], strict=True):
        _f, _e, value, spelling, _t = rows[i]
        if value is not None:
            ctx[spelling] = value
    witness_req = Request(action, resource, ctx)
    old_ok = old_eval.allows(witness_req)
    new_ok = new_eval.allows(witness_req)
    if (side == "new") != (new_ok and not old_ok) or (side == "removed") != (old_ok and not new_ok):
        return None
    # the statement responsible: the first that grants the witness
    grant_eval = new_eval if side == "new" else old_eval
    responsible = grant_eval.decide(witness_req).statements[0]
    grant_side = "new" if side == "new" else "old"
    st = next(
        s
        for s in stmts
        if s.side == grant_side and (s.policy, s.index) == (responsible.policy, responsible.index)
    )
    # when: "any" if every context is decided differently on every pair of the entry;
    # otherwise the conditions of the statements granting it, and a note when the other
    # side already allows part of it
    recs = [side_pairs[c] for c in cells]
    if all(r[0] == n_combos for r in recs):
        conditions: tuple[str, ...] = ("any",)
    else:
        granting = 0
        for r in recs:
            granting |= r[2]
        # one statement's conditions all hold (ANDed, one per line); several statements
        # with different conditions: one line, their sets ORed
        sets = tuple(
            dict.fromkeys(
                tuple(_describe_condition(c) for c in stmts[k].statement.conditions)
                for k in _bits_of(granting)
            )
        )
        if len(sets) == 1:
            conditions = sets[0]
        else:
            conditions = (
                " or ".join(
                    "(no condition)"
                    if not cs
                    else cs[0]
                    if len(cs) == 1
                    else "(" + " and ".join(cs) + ")"
                    for cs in sets
                ),
            )
        # seen: [old allows, new allows, an old Deny applies, a new Deny applies] in some
        # context of the pair
        other_allows, own_denies = (0, 3) if side == "new" else (1, 2)
        if any(r[3][other_allows] for r in recs):
            conditions += (
                ("where the old policies did not already allow it",)
                if side == "new"
                else ("where the new policies do not allow it",)
            )
        if any(r[3][own_denies] for r in recs):
            conditions += (
                f"unless a Deny of the {'new' if side == 'new' else 'old'} policies applies",
            )
        conditions = conditions or ("only in some contexts",)
    resource_globs = tuple(
        dict.fromkeys(g for a in region.atoms for g in atom_globs(a, resources.patterns))
    )
    excluded = tuple(resources.patterns[i] for i in _bits_of(region.exclude))
    known_sorted = tuple(sorted(dict.fromkeys(known), key=str.lower))
    other = old_eval if side == "new" else new_eval
    this = new_eval if side == "new" else old_eval
    denied = tuple(r for r in other.decide(witness_req).statements if r.effect == DENY)
    risk, notes = _risks(
        known_sorted, future, st.statement, witness_req, this, other, new=side == "new"
    )
    return AccessItem(
        kind="new" if side == "new" else "removed",
        actions=known_sorted,
        future=future,
        resources=resource_globs,
        conditions=conditions,
        witness=witness_req,
        statement=StatementRef(
            st.policy, st.index, st.statement.effect, st.statement, "allows the witness"
        ),
        risk=risk,
        denied_by=denied,
        except_resources=excluded,
        risk_notes=notes,
    )


__all__ = [
    "CONDITION_CANDIDATES",
    "CONDITION_TRIES",
    "DIFF_STEP_LIMIT",
    "MAX_STATES",
    "NETWORK_KEYS",
    "RISK_ORDER",
    "AccessItem",
    "DiffResult",
    "DiffTooLarge",
    "RiskNote",
    "diff_policies",
]
