"""The classes a diff searches over: statements flattened, action classes, resource
classes, and condition-key classes (the values of one key no statement can tell apart),
with the candidate values that stand for each, and the work budget they all spend from.
:mod:`permgen.semantics.diff` searches their combinations; :mod:`permgen.semantics.risk`
uses the key classes to find the values that show a risk class.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from functools import lru_cache
from typing import Any, Literal

from permgen.errors import InputError
from permgen.policy import catalog
from permgen.policy.model import Statement
from permgen.policy.wildcard import Pattern, arn_segments, compile_pattern
from permgen.policy.wildcard import match as wildcard_match
from permgen.semantics.automata import (
    ACTION_SHAPE,
    ARN_SHAPE,
    HEAD_SHAPE,
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
    canonical_key,
    format_date,
    parse_date,
    parse_network,
    parse_number,
)

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
    if b <= 0:  # copy_negate is exact; unary minus would round to the context's 28 digits
        mirrored = _between(b.copy_negate(), a.copy_negate())
        return None if mirrored is None else mirrored.copy_negate()
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


#: One condition-key class as the combination search sees it: the statements whose atoms on
#: that key hold (key names compared without case, and as spelled), its value (None: the
#: key is absent), the spelling of the key's name, and the truth of each atom.
ConditionRow = tuple[int, int, str | None, str, tuple[tuple[bool, ...], tuple[bool, ...]]]


def condition_key_classes(
    statements: Sequence[Statement], missing: MissingKey, budget: Budget
) -> tuple[list[_KeyClasses], list[list[ConditionRow]]]:
    """The classes of every condition key the statements use, and per class the statements
    (bit ``k`` for ``statements[k]``) whose atoms on that key all hold.

    Raises :class:`BudgetExceeded` past the budget."""
    atoms_by_key: dict[str, dict[tuple[str, tuple[str, ...], str], CompiledCondition]] = {}
    needs: dict[str, dict[tuple[str, tuple[str, ...], str], int]] = {}
    for k, st in enumerate(statements):
        for c in st.conditions:
            key = c.key.lower()
            ident = (c.operator, c.values, c.key)
            atoms_by_key.setdefault(key, {}).setdefault(
                ident, CompiledCondition(c.operator, c.key, c.values)
            )
            needs.setdefault(key, {})
            needs[key][ident] = needs[key].get(ident, 0) | 1 << k
    key_classes = [
        _KeyClasses(key, list(atoms.values()), missing, budget)
        for key, atoms in atoms_by_key.items()
    ]
    all_bits = (1 << len(statements)) - 1
    key_masks: list[list[ConditionRow]] = []
    for kc in key_classes:
        owners = list(needs[kc.key].values())
        rows: list[ConditionRow] = []
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
    return key_classes, key_masks


def combine_condition_masks(folded: int, exact_names: int, denies: int) -> int:
    """The statements that apply: an Allow when its conditions hold under either reading of
    key names, a Deny only when they hold under both (as the evaluator decides)."""
    return ((folded | exact_names) & ~denies) | (folded & exact_names & denies)


def condition_combos(
    key_masks: Sequence[Sequence[ConditionRow]], all_bits: int, denies: int, budget: Budget
) -> dict[int, tuple[int, ...]]:
    """The condition combinations that statements can tell apart: statements that apply ->
    one choice of class per key (an index into each key's rows).

    The product of the keys' classes, folded one key at a time and kept only when it
    changes which statements apply: keys no statement ties together multiply only the
    masks they change, so independent keys cost their sum, not their product. Raises
    :class:`BudgetExceeded` past the budget."""
    partial: dict[tuple[int, int], tuple[int, ...]] = {(all_bits, all_bits): ()}
    for rows in key_masks:
        budget.spend(len(partial) * len(rows), "condition combinations")
        nxt: dict[tuple[int, int], tuple[int, ...]] = {}
        for (folded, exact_names), choice in partial.items():
            for i, row in enumerate(rows):
                nxt.setdefault((folded & row[0], exact_names & row[1]), (*choice, i))
        partial = nxt
    by_mask: dict[int, tuple[int, ...]] = {}
    for (folded, exact_names), choice in partial.items():
        by_mask.setdefault(combine_condition_masks(folded, exact_names, denies), choice)
    return by_mask


def combo_context(
    key_masks: Sequence[Sequence[ConditionRow]], choice: Sequence[int]
) -> dict[str, str]:
    """The request context of one combination (absent keys left out)."""
    ctx: dict[str, str] = {}
    for rows, i in zip(key_masks, choice, strict=True):
        _f, _e, value, spelling, _t = rows[i]
        if value is not None:
            ctx[spelling] = value
    return ctx


def _level_of(resource: str) -> str:
    rest = resource.split(":", 4)[-1] if resource.startswith("acs:") else resource
    if rest and set(rest) <= {"*"}:
        return "service"
    return "object" if "/" in rest else "bucket"


def _describe_condition(c: Any) -> str:
    return f"{c.operator} {c.key} [{', '.join(c.values)}]"


__all__ = [
    "DIFF_STEP_LIMIT",
    "ConditionRow",
    "DiffTooLarge",
    "combine_condition_masks",
    "combo_context",
    "condition_combos",
    "condition_key_classes",
]
