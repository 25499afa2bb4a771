"""Which combinations of wildcard patterns a string can match, with a witness for each.

A pattern is a sequence of tokens: ``*`` (any run, also empty), ``?`` (one character) and
character sets (a literal character, or both cases of a letter for case-insensitive
comparison). For a set of patterns, :func:`realize` finds every *vector* (the subset of
patterns a string matches) that some string realizes, and one such string: a breadth-first
search over the product of the patterns' automata. This is exact: a vector it does not
report is matched by no string at all.

Patterns whose literal prefixes or suffixes differ can never match the same string, so they
are searched in separate groups, which keeps the product small. Characters that appear in no
pattern behave alike, so one filler character stands for all of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from permgen.policy.wildcard import arn_segments

STAR = "*"
ANY = "?"
STAR_SEGMENT = "*:"  # a star that does not match ":" (inside an ARN's first four segments)
ANY_SEGMENT = "?:"  # one character other than ":"

Token = str | frozenset[str]  # a wildcard above, or a set of characters


@lru_cache(maxsize=65536)
def tokens(
    pattern: str, *, wildcards: bool = True, ignore_case: bool = False, arn: bool = False
) -> tuple[Token, ...]:
    """``arn=True``: wildcards in an ARN's first four segments do not match ":"."""
    head = arn_segments(pattern) if arn else 0
    out: list[Token] = []
    for pos, ch in enumerate(pattern):
        if wildcards and ch == "*" and pos < head:
            if not out or out[-1] != STAR_SEGMENT:
                out.append(STAR_SEGMENT)
        elif wildcards and ch == "?" and pos < head:
            out.append(ANY_SEGMENT)
        elif wildcards and ch == "*":
            if not out or out[-1] != STAR:
                out.append(STAR)
        elif wildcards and ch == "?":
            out.append(ANY)
        elif ignore_case and ch.lower() != ch.upper():
            out.append(frozenset({ch.lower(), ch.upper()}))
        else:
            out.append(frozenset({ch}))
    return tuple(out)


class _Nfa:
    """A pattern's automaton; a state is a bitmask of token positions (n = accepted)."""

    __slots__ = ("cache", "eps", "n", "seen_chars", "toks")

    def __init__(self, toks: tuple[Token, ...]) -> None:
        self.toks = toks
        self.n = len(toks)
        self.cache: dict[tuple[int, str], int] = {}
        # eps[i]: position i and every position reachable from it by skipping stars
        self.eps = [0] * (self.n + 1)
        for i in range(self.n, -1, -1):
            self.eps[i] = 1 << i
            if i < self.n and toks[i] in (STAR, STAR_SEGMENT):
                self.eps[i] |= self.eps[i + 1]
        self.seen_chars: dict[int, frozenset[str]] = {}

    def interesting(self, mask: int) -> frozenset[str]:
        """The characters that can move this state differently from any other character."""
        hit = self.seen_chars.get(mask)
        if hit is None:
            chars: set[str] = set()
            m = mask
            while m:
                low = m & -m
                i = low.bit_length() - 1
                m ^= low
                if i < self.n:
                    t = self.toks[i]
                    if isinstance(t, frozenset):
                        chars |= t
                    elif t in (STAR_SEGMENT, ANY_SEGMENT):
                        chars.add(":")
            hit = self.seen_chars[mask] = frozenset(chars)
        return hit

    def close(self, mask: int) -> int:
        out = 0
        while mask:
            low = mask & -mask
            out |= self.eps[low.bit_length() - 1]
            mask ^= low
        return out

    def start(self) -> int:
        return self.eps[0]

    def step(self, mask: int, ch: str) -> int:
        key = (mask, ch)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self.advance(mask, ch)
        return hit

    def advance(self, mask: int, ch: str) -> int:
        """The state after ``ch`` (not cached: for one-off runs over a text)."""
        out = 0
        m = mask
        toks, eps, n = self.toks, self.eps, self.n
        while m:
            low = m & -m
            i = low.bit_length() - 1
            m ^= low
            if i >= n:
                continue
            t = toks[i]
            if t == STAR:
                out |= eps[i]
            elif t == STAR_SEGMENT:
                if ch != ":":
                    out |= eps[i]
            elif t == ANY:
                out |= eps[i + 1]
            elif t == ANY_SEGMENT:
                if ch != ":":
                    out |= eps[i + 1]
            elif ch in t:
                out |= eps[i + 1]
        return out

    def accepts(self, mask: int) -> bool:
        return bool(mask >> self.n & 1)


def matches(toks: tuple[Token, ...], text: str) -> bool:
    """Whether ``text`` matches the tokens: the automaton run over the text, one step per
    character, each step at most one operation per token (linear time, no backtracking)."""
    nfa = _nfa(toks)
    mask = nfa.start()
    for ch in text:
        mask = nfa.advance(mask, ch)
        if not mask:
            return False
    return nfa.accepts(mask)


@lru_cache(maxsize=4096)
def _nfa(toks: tuple[Token, ...]) -> _Nfa:
    return _Nfa(toks)


def residuals(toks: tuple[Token, ...], prefix: str) -> tuple[tuple[Token, ...], ...]:
    """Token sequences whose languages together are exactly the strings ``s`` for which
    ``prefix + s`` matches ``toks`` (the pattern's derivative by ``prefix``); () when no
    string starting with ``prefix`` matches. At most ``len(toks) + 1`` sequences, found in
    one linear run over ``prefix``."""
    nfa = _nfa(toks)
    mask = nfa.start()
    for ch in prefix:
        mask = nfa.advance(mask, ch)
        if not mask:
            return ()
    out: list[tuple[Token, ...]] = []
    while mask:
        low = mask & -mask
        out.append(toks[low.bit_length() - 1 :])
        mask ^= low
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=65536)
def _literal_prefix(toks: tuple[Token, ...]) -> tuple[frozenset[str], ...]:
    out: list[frozenset[str]] = []
    for t in toks:
        if t in (STAR, STAR_SEGMENT):
            break
        out.append(frozenset() if t in (ANY, ANY_SEGMENT) else t)  # type: ignore[arg-type]
    return tuple(out)


def _compatible(a: tuple[frozenset[str], ...], b: tuple[frozenset[str], ...]) -> bool:
    """Can two fixed prefixes (empty set = any character) describe the same characters?"""
    return all(not x or not y or bool(x & y) for x, y in zip(a, b, strict=False))


_COLON = frozenset({":"})


@lru_cache(maxsize=65536)
def _arn_rest(toks: tuple[Token, ...]) -> tuple[Token, ...] | None:
    """The tokens after the fourth ":" when no wildcard before it can match ":"."""
    colons = 0
    for i, t in enumerate(toks):
        if t in (STAR, ANY):
            return None
        if t == _COLON:
            colons += 1
            if colons == 4:
                return toks[i + 1 :]
    return None


@lru_cache(maxsize=262144)
def _may_overlap(a: tuple[Token, ...], b: tuple[Token, ...]) -> bool:
    if not _compatible(_literal_prefix(a), _literal_prefix(b)):
        return False
    if not _compatible(_literal_prefix(a[::-1]), _literal_prefix(b[::-1])):
        return False
    # ARN patterns: the first four segments cannot absorb ":", so the rest after the
    # fourth ":" must be compatible too (different buckets or prefixes are disjoint)
    ra, rb = _arn_rest(a), _arn_rest(b)
    if ra is not None and rb is not None:
        return _compatible(_literal_prefix(ra), _literal_prefix(rb))
    return True


def _groups(pats: Sequence[tuple[Token, ...]]) -> list[list[int]]:
    parent = list(range(len(pats)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(pats)):
        for j in range(i + 1, len(pats)):
            if find(i) != find(j) and _may_overlap(pats[i], pats[j]):
                parent[find(i)] = find(j)
    out: dict[int, list[int]] = {}
    for i in range(len(pats)):
        out.setdefault(find(i), []).append(i)
    return list(out.values())


@dataclass
class Realized:
    """Vectors (bitmasks over the input patterns) and a witness string for each.

    ``complete`` is False when the search stopped at its state limit; the vectors found are
    still realized, but others may exist.
    """

    witnesses: dict[int, str]
    complete: bool = True


FILLERS = "xzqjkwvyXZQ0123456789-_"
#: States one search may visit. Past it the search stops (``complete=False``), or, with a
#: :class:`Budget`, raises :class:`BudgetExceeded`.
MAX_STATES = 20000


class BudgetExceeded(Exception):
    """A search (or the diff around it) needed more work than its :class:`Budget` allows."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(what)
        self.what = what
        self.limit = limit


class Budget:
    """An allowance of work shared by the searches of one task (one diff): each search
    spends the automaton steps it takes, and a search that reaches its state limit raises
    instead of returning an incomplete answer. Work is in steps: one state stepped over one
    character by one pattern."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, steps: int, what: str = "work") -> None:
        self.used += steps
        if self.used > self.limit:
            raise BudgetExceeded(f"{what}: more than {self.limit:,} steps", self.limit)


def _filler(pats: Iterable[tuple[Token, ...]]) -> str:
    used: set[str] = set()
    for p in pats:
        for t in p:
            if isinstance(t, frozenset):
                used |= t
    for ch in FILLERS:
        if ch not in used:
            return ch
    return "\x01"


class _Trie(_Nfa):
    """An automaton that accepts exactly a finite set of strings (used to avoid them)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.nodes: list[dict[str, int]] = [{}]
        self.final: set[int] = set()
        for w in words:
            node = 0
            for ch in w:
                nxt = self.nodes[node].get(ch)
                if nxt is None:
                    nxt = len(self.nodes)
                    self.nodes.append({})
                    self.nodes[node][ch] = nxt
                node = nxt
            self.final.add(node)
        self.cache = {}
        self.n = 0
        self.toks = ()

    # states are node index + 1; 0 = fell off the trie
    def start(self) -> int:
        return 1

    def step(self, mask: int, ch: str) -> int:
        if not mask:
            return 0
        nxt = self.nodes[mask - 1].get(ch)
        return 0 if nxt is None else nxt + 1

    def accepts(self, mask: int) -> bool:
        return mask != 0 and (mask - 1) in self.final


class _ShapeDfa:
    """A small DFA for the shape every string of a universe has (0 = dead state)."""

    def __init__(self, table: dict[int, tuple[dict[str, int], int]], accept: set[int]) -> None:
        # table: state -> (transitions for specific characters, default next state)
        self.table = table
        self.accept = accept

    def start(self) -> int:
        return 1

    def step(self, state: int, ch: str) -> int:
        if not state:
            return 0
        special, default = self.table[state]
        return special.get(ch, default)

    def accepts(self, state: int) -> bool:
        return state in self.accept


#: ``service:Name``: one colon, both sides non-empty.
ACTION_SHAPE = _ShapeDfa(
    {1: ({":": 0}, 2), 2: ({":": 3}, 2), 3: ({":": 0}, 4), 4: ({":": 0}, 4)},
    {4},
)
#: ``acs:<service>:<region>:<account>:<rest>``; region and account may be empty.
ARN_SHAPE = _ShapeDfa(
    {
        1: ({"a": 2}, 0),
        2: ({"c": 3}, 0),
        3: ({"s": 4}, 0),
        4: ({":": 5}, 0),
        5: ({":": 0}, 6),
        6: ({":": 7}, 6),
        7: ({":": 9}, 8),
        8: ({":": 9}, 8),
        9: ({":": 11}, 10),
        10: ({":": 11}, 10),
        11: ({}, 11),
    },
    {11},
)


#: ``acs:<service>:<region>:<account>``, the first four segments of an ARN: the ARN shape
#: without its fourth ":" and rest.
HEAD_SHAPE = _ShapeDfa(
    {**{k: v for k, v in ARN_SHAPE.table.items() if k < 9}, 9: ({":": 0}, 10), 10: ({":": 0}, 10)},
    {9, 10},
)


def _search(
    pats: list[tuple[Token, ...]],
    avoid: _Nfa | None,
    shape: _ShapeDfa | None,
    limit: int,
    budget: Budget | None = None,
) -> tuple[dict[int, str], bool]:
    """BFS over the product automaton of ``pats``, an automaton of strings to avoid (their
    states are explored but not reported) and the shape every reported string must have.

    Only the patterns still alive in a state are stepped, and (without ``avoid``) only over
    their own characters plus the filler: every other character acts like the filler."""
    nfas = [_Nfa(p) for p in pats]
    chars = [frozenset(c for t in p if isinstance(t, frozenset) for c in t) for p in pats]
    extra = frozenset({"a", "c", "s", ":"}) if shape is not None else frozenset()
    filler = _filler(pats)
    full = sorted(frozenset().union(*chars) | extra) + [filler]
    alphabets: dict[tuple[int, ...], list[str]] = {}  # per state of the patterns
    k = len(nfas)
    start = (
        tuple(n.start() for n in nfas)
        + (avoid.start() if avoid else 0,)
        + (shape.start() if shape else 0,)
    )
    seen = {start: ""}
    queue = deque([start])
    found: dict[int, str] = {}
    complete = True
    while queue:
        state = queue.popleft()
        word = seen[state]
        alive = tuple(i for i in range(k) if state[i])
        reportable = (avoid is None or not avoid.accepts(state[k])) and (
            shape is None or shape.accepts(state[k + 1])
        )
        if reportable:
            vec = 0
            for i in alive:
                if nfas[i].accepts(state[i]):
                    vec |= 1 << i
            if vec not in found:
                found[vec] = word
        if not alive and (avoid is None or not state[k]) and 0 in found:
            continue  # every pattern is dead and a string matching none is already known
        if avoid is None:
            key = state[:k]
            alphabet = alphabets.get(key)
            if alphabet is None:
                wanted: set[str] = set(extra)
                for i in alive:
                    wanted |= nfas[i].interesting(state[i])
                alphabet = sorted(wanted) + [filler]
                alphabets[key] = alphabet
        else:
            alphabet = full
        if budget is not None:
            budget.spend(len(alphabet) * (len(alive) + 2), "pattern search")
        for ch in alphabet:
            nxt = [0] * (k + 2)
            for i in alive:
                nxt[i] = nfas[i].step(state[i], ch)
            if avoid is not None:
                nxt[k] = avoid.step(state[k], ch)
            if shape is not None:
                nxt[k + 1] = shape.step(state[k + 1], ch)
                if not nxt[k + 1]:
                    continue
            nkey = tuple(nxt)
            if nkey not in seen:
                if len(seen) >= limit:
                    if budget is not None:
                        raise BudgetExceeded(
                            f"pattern search: more than {limit:,} automaton states", limit
                        )
                    complete = False
                    continue
                seen[nkey] = word + ch
                queue.append(nkey)
    return found, complete


def realize(
    patterns: Sequence[tuple[Token, ...]],
    *,
    candidates: Iterable[str] = (),
    avoid: Iterable[str] | None = None,
    shape: _ShapeDfa | None = None,
    limit: int = MAX_STATES,
    budget: Budget | None = None,
) -> Realized:
    """Every vector some string realizes over ``patterns``, with a witness.

    ``candidates`` are tried first, so readable strings are preferred as witnesses.
    ``avoid``: report only strings outside this finite set (e.g. known action names).
    ``shape``: report only strings of this shape (``ACTION_SHAPE``, ``ARN_SHAPE``).
    ``budget``: the work allowance to spend (:class:`Budget`); with one, reaching ``limit``
    states raises :class:`BudgetExceeded` instead of returning ``complete=False``.
    """
    avoid_set = set(avoid) if avoid is not None else None
    witnesses: dict[int, str] = {}
    for cand in candidates:
        if budget is not None:
            budget.spend(len(patterns) * (len(cand) + 1), "testing candidate strings")
        if avoid_set is not None and cand in avoid_set:
            continue
        if shape is not None and not _shape_accepts(shape, cand):
            continue
        vec = 0
        for i, p in enumerate(patterns):
            if matches(p, cand):
                vec |= 1 << i
        witnesses.setdefault(vec, cand)
    complete = True
    if budget is not None:
        budget.spend(4 * len(patterns) * len(patterns), "grouping patterns")
    groups = _groups(patterns)
    for group in groups:
        sub = [patterns[i] for i in group]
        trie = None
        if avoid_set is not None:
            heads = [_literal_prefix(p) for p in sub]
            words = [w for w in avoid_set if any(_prefix_ok(h, w) for h in heads)]
            trie = _Trie(words)
        found, ok = _search(sub, trie, shape, limit, budget)
        complete &= ok
        for local, word in found.items():
            if local == 0:
                continue  # a string matching nothing in this group may match another group
            vec = 0
            for j, i in enumerate(group):
                if local >> j & 1:
                    vec |= 1 << i
            witnesses.setdefault(vec, word)
    if 0 not in witnesses:
        zero = _find_zero(patterns, avoid_set, shape, limit, budget)
        if zero is not None:
            witnesses[0] = zero
    return Realized(witnesses, complete)


def _shape_accepts(shape: _ShapeDfa, text: str) -> bool:
    state = shape.start()
    for ch in text:
        state = shape.step(state, ch)
        if not state:
            return False
    return shape.accepts(state)


def _prefix_ok(head: tuple[frozenset[str], ...], word: str) -> bool:
    return all(not x or ch in x for x, ch in zip(head, word, strict=False))


def _find_zero(
    patterns: Sequence[tuple[Token, ...]],
    avoid: set[str] | None,
    shape: _ShapeDfa | None,
    limit: int,
    budget: Budget | None = None,
) -> str | None:
    filler = _filler(patterns)
    tries = [filler, filler * 3, "", filler * 40]
    if shape is ARN_SHAPE:
        tries = [f"acs:{filler}:::{filler}", f"acs:{filler * 3}:{filler}:{filler}:{filler * 40}"]
    elif shape is HEAD_SHAPE:
        tries = [f"acs:{filler}::", f"acs:{filler * 3}:{filler}:{filler * 20}"]
    elif shape is ACTION_SHAPE:
        tries = [f"{filler}:{filler}", f"{filler * 3}:{filler * 40}"]
    for cand in tries:
        if avoid is not None and cand in avoid:
            continue
        if shape is not None and not _shape_accepts(shape, cand):
            continue
        if not any(matches(p, cand) for p in patterns):
            return cand
    found, _ = _search(list(patterns), _Trie(avoid) if avoid else None, shape, limit, budget)
    return found.get(0)


__all__ = [
    "ACTION_SHAPE",
    "ANY",
    "ARN_SHAPE",
    "HEAD_SHAPE",
    "MAX_STATES",
    "STAR",
    "Budget",
    "BudgetExceeded",
    "Realized",
    "Token",
    "arn_segments",
    "matches",
    "realize",
    "residuals",
    "tokens",
]
