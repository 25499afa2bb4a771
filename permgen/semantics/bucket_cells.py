"""The requests on one bucket that a set of statements can tell apart.

Every request on a bucket names the bucket itself or one object key in it, carries some
context, and asks for some action. For the statements that could apply to the bucket, keys
fall into finitely many classes that no statement's ``Resource`` can tell apart (found with
:func:`~permgen.semantics.automata.realize` over each pattern's derivative by the bucket's
ARN, so a pattern such as ``acs:oss:*:*:data-*/logs*`` is read exactly as it applies to
this bucket), and contexts into the combinations of condition-key classes the statements
can tell apart (:func:`~permgen.semantics.classes.condition_combos`, as the diff does).

A *cell* is one key class (or the bucket itself) and one context combination, with a
concrete key and context, and the statements (a bitmask) whose resource and conditions hold
there: whether a set of statements allows an action somewhere on the bucket is then a few
integer operations per cell, and the first cell that allows is a witness request.

Over all keys and contexts this is exact. When the patterns or conditions need more work
than the budget, the cells are drawn from sample keys and the empty context only, and
:attr:`BucketCells.exact` is False: what they allow is still allowed, but a grant may be
missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from permgen.policy.model import DENY, Statement
from permgen.policy.wildcard import match
from permgen.semantics.automata import (
    ANY,
    STAR,
    STAR_SEGMENT,
    Budget,
    BudgetExceeded,
    Token,
    matches,
    realize,
    residuals,
    tokens,
)
from permgen.semantics.classes import (
    ConditionRow,
    combo_context,
    condition_combos,
    condition_key_classes,
)
from permgen.semantics.conditions import CompiledCondition, MissingKey

#: Work one bucket's cells may take, in steps (as the diff counts them).
CELL_STEP_LIMIT = 2_000_000
#: Key classes one bucket may have before its cells are drawn from samples.
MAX_KEY_CLASSES = 256
#: Cells one bucket may have (key classes times context combinations).
MAX_CELLS = 8192
#: Matches every non-empty key: an object key is never empty.
_NON_EMPTY: tuple[Token, ...] = (ANY, STAR)


@dataclass(frozen=True)
class Cell:
    """One class of requests: ``key`` (None for the bucket itself), a context, and the
    statements whose resource and conditions hold for it (bit ``k``: ``statements[k]``)."""

    key: str | None
    context: Mapping[str, str]
    mask: int


def _sample(seq: tuple[Token, ...]) -> str:
    out = []
    for t in seq:
        if t in (STAR, STAR_SEGMENT):
            out.append("example")
        elif isinstance(t, frozenset):
            out.append(min(t))
        else:
            out.append("x")
    return "".join(out)


class BucketCells:
    """The cells of one bucket for a list of statements (see the module's docstring)."""

    def __init__(
        self,
        bucket_arn: str,
        statements: Sequence[Statement],
        *,
        missing: MissingKey = MissingKey.NEGATED_TRUE,
        limit: int = CELL_STEP_LIMIT,
    ) -> None:
        self.bucket_arn = bucket_arn
        self.statements = list(statements)
        self.exact = True
        self.denies = 0
        self.allows = 0
        for k, st in enumerate(self.statements):
            if st.effect == DENY:
                self.denies |= 1 << k
            else:
                self.allows |= 1 << k
        budget = Budget(limit)
        patterns: dict[str, int] = {}
        for st in self.statements:
            for p in st.resources:
                patterns.setdefault(p, len(patterns))
        self._patterns = list(patterns)
        self._stmt_patterns = [
            sum(1 << patterns[p] for p in st.resources) for st in self.statements
        ]
        self._not_resource = sum(1 << k for k, st in enumerate(self.statements) if st.not_resource)
        self._combos = self._conditions(missing, budget)
        keys = self._key_classes(budget)
        bucket_vec = sum(
            1 << i for i, p in enumerate(self._patterns) if match(p, bucket_arn, arn=True)
        )
        self.bucket_cells = _distinct(self._cells(None, bucket_vec))
        cells: list[Cell] = []
        for key, vec in keys:
            cells += self._cells(key, vec)
            if len(cells) > MAX_CELLS:
                self.exact = False
                del cells[MAX_CELLS:]
                break
        #: one cell per distinct set of statements (cells alike decide alike), in order
        self.object_cells = _distinct(cells)

    # -- conditions
    def _conditions(self, missing: MissingKey, budget: Budget) -> list[tuple[int, dict[str, str]]]:
        all_bits = (1 << len(self.statements)) - 1
        key_masks: list[list[ConditionRow]]
        try:
            _classes, key_masks = condition_key_classes(self.statements, missing, budget)
            by_mask = condition_combos(key_masks, all_bits, self.denies, budget)
            exact = all(kc.exact for kc in _classes)
        except BudgetExceeded:
            self.exact = False
            # the empty context alone: statements without conditions, and conditioned ones
            # whose conditions hold with every key absent, are still decided exactly
            return [(self._empty_context_mask(missing), {})]
        self.exact &= exact
        return [(mask, combo_context(key_masks, choice)) for mask, choice in by_mask.items()]

    def _empty_context_mask(self, missing: MissingKey) -> int:
        out = 0
        for k, st in enumerate(self.statements):
            holds = all(
                CompiledCondition(c.operator, c.key, c.values).truth(None, missing)
                for c in st.conditions
            )
            if holds:
                out |= 1 << k
        return out

    # -- keys
    def _key_classes(self, budget: Budget) -> list[tuple[str, int]]:
        """(a key, the patterns it matches) per key class: ``example`` first."""
        prefix = self.bucket_arn + "/"
        seqs: dict[tuple[Token, ...], int] = {}
        owners: list[int] = []  # per sequence: the patterns it stands for
        for i, p in enumerate(self._patterns):
            for seq in residuals(tokens(p, arn=True), prefix):
                if seq not in seqs:
                    seqs[seq] = len(seqs)
                    owners.append(0)
                owners[seqs[seq]] |= 1 << i
        seq_list = list(seqs)
        guard = 1 << len(seq_list)
        candidates = ["example"] + [s for s in (_sample(q) for q in seq_list) if s]
        try:
            found = realize([*seq_list, _NON_EMPTY], candidates=candidates, budget=budget)
            witnesses, self.exact = found.witnesses, self.exact and found.complete
        except BudgetExceeded:
            self.exact = False
            witnesses = {}
            for cand in dict.fromkeys(candidates):
                vec = guard
                for j, q in enumerate(seq_list):
                    if matches(q, cand):
                        vec |= 1 << j
                witnesses.setdefault(vec, cand)
        if len(witnesses) > MAX_KEY_CLASSES:
            self.exact = False
            witnesses = dict(list(witnesses.items())[:MAX_KEY_CLASSES])
        out: list[tuple[str, int]] = []
        for vec, key in witnesses.items():  # candidates first: ``example`` leads
            if not vec & guard:
                continue  # only the empty key: no object has it
            pvec = 0
            for j in range(len(seq_list)):
                if vec >> j & 1:
                    pvec |= owners[j]
            out.append((key, pvec))
        return out

    def _resource_mask(self, pattern_vec: int) -> int:
        mask = 0
        for k, pm in enumerate(self._stmt_patterns):
            if bool(pattern_vec & pm) != bool(self._not_resource >> k & 1):
                mask |= 1 << k
        return mask

    def _cells(self, key: str | None, pattern_vec: int) -> list[Cell]:
        rmask = self._resource_mask(pattern_vec)
        return [Cell(key, ctx, rmask & cmask) for cmask, ctx in self._combos]

    def key_cells(self, key: str) -> list[Cell]:
        """The cells of one given key (every context combination)."""
        resource = f"{self.bucket_arn}/{key}"
        vec = sum(1 << i for i, p in enumerate(self._patterns) if match(p, resource, arn=True))
        return self._cells(key, vec)

    def resource(self, cell: Cell) -> str:
        return self.bucket_arn if cell.key is None else f"{self.bucket_arn}/{cell.key}"


def _distinct(cells: list[Cell]) -> list[Cell]:
    seen: dict[int, Cell] = {}
    for c in cells:
        seen.setdefault(c.mask, c)
    return list(seen.values())


__all__ = ["CELL_STEP_LIMIT", "MAX_CELLS", "MAX_KEY_CLASSES", "BucketCells", "Cell"]
