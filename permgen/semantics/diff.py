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

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from permgen.policy import catalog
from permgen.policy.model import DENY, Policy, Statement
from permgen.policy.wildcard import arn_segments
from permgen.policy.wildcard import match as wildcard_match
from permgen.semantics.automata import (
    MAX_STATES,
    Budget,
    BudgetExceeded,
)
from permgen.semantics.classes import (
    DIFF_STEP_LIMIT,
    DiffTooLarge,
    _ActionClasses,
    _describe_condition,
    _level_of,
    _pretty_resource,
    _ResourceClasses,
    _Stmt,
    combine_condition_masks,
    combo_context,
    condition_combos,
    condition_key_classes,
)
from permgen.semantics.conditions import (
    MissingKey,
    RequestContext,
    check_conditions,
)
from permgen.semantics.evaluate import Evaluator, Request, StatementRef
from permgen.semantics.regions import Region, atom_globs, regions, set_bits
from permgen.semantics.risk import RISK_ORDER, RiskNote, _risks

Kind = Literal["new", "removed"]


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
# --------------------------------------------------------------------------- diff


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

    try:
        key_classes, key_masks = condition_key_classes(
            [st.statement for st in stmts], missing_key, budget
        )
    except BudgetExceeded as exc:
        raise DiffTooLarge("condition values", str(exc)) from None
    all_bits = (1 << len(stmts)) - 1
    denies = old_deny | new_deny

    def combined(folded: int, exact_names: int) -> int:
        return combine_condition_masks(folded, exact_names, denies)

    try:
        by_mask = condition_combos(key_masks, all_bits, denies, budget)
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
            for k in set_bits(granting & grant_bits):
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
    ctx = combo_context(key_masks, combos[ci][1])
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
                for k in set_bits(granting)
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
    excluded = tuple(resources.patterns[i] for i in set_bits(region.exclude))
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
    "DIFF_STEP_LIMIT",
    "MAX_STATES",
    "RISK_ORDER",
    "AccessItem",
    "DiffResult",
    "DiffTooLarge",
    "diff_policies",
]
