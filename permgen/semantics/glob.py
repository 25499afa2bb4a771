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

STAR = "*"
ANY = "?"

Token = str | frozenset[str]  # "*", "?", or a set of characters


def tokens(pattern: str, *, wildcards: bool = True, ignore_case: bool = False) -> tuple[Token, ...]:
    out: list[Token] = []
    for ch in pattern:
        if wildcards and ch == "*":
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

    __slots__ = ("cache", "n", "toks")

    def __init__(self, toks: tuple[Token, ...]) -> None:
        self.toks = toks
        self.n = len(toks)
        self.cache: dict[tuple[int, str], int] = {}

    def close(self, mask: int) -> int:
        i = 0
        while i < self.n:
            if mask >> i & 1 and self.toks[i] == STAR:
                mask |= 1 << (i + 1)
            i += 1
        return mask

    def start(self) -> int:
        return self.close(1)

    def step(self, mask: int, ch: str) -> int:
        key = (mask, ch)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        out = 0
        m, i = mask, 0
        while m:
            if m & 1 and i < self.n:
                t = self.toks[i]
                if t == STAR:
                    out |= 1 << i
                elif t == ANY or ch in t:
                    out |= 1 << (i + 1)
            m >>= 1
            i += 1
        out = self.close(out)
        self.cache[key] = out
        return out

    def accepts(self, mask: int) -> bool:
        return bool(mask >> self.n & 1)


def matches(toks: tuple[Token, ...], text: str) -> bool:
    nfa = _Nfa(toks)
    mask = nfa.start()
    for ch in text:
        mask = nfa.step(mask, ch)
        if not mask:
            return False
    return nfa.accepts(mask)


def _literal_prefix(toks: tuple[Token, ...]) -> list[frozenset[str]]:
    out: list[frozenset[str]] = []
    for t in toks:
        if t == STAR:
            break
        out.append(frozenset() if t == ANY else t)  # type: ignore[arg-type]
    return out


def _compatible(a: list[frozenset[str]], b: list[frozenset[str]]) -> bool:
    """Can two fixed prefixes (empty set = any character) describe the same characters?"""
    return all(not x or not y or bool(x & y) for x, y in zip(a, b, strict=False))


def _may_overlap(a: tuple[Token, ...], b: tuple[Token, ...]) -> bool:
    if not _compatible(_literal_prefix(a), _literal_prefix(b)):
        return False
    return _compatible(_literal_prefix(a[::-1]), _literal_prefix(b[::-1]))


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
MAX_STATES = 20000


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


class _Shape:
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
ACTION_SHAPE = _Shape(
    {1: ({":": 0}, 2), 2: ({":": 3}, 2), 3: ({":": 0}, 4), 4: ({":": 0}, 4)},
    {4},
)
#: ``acs:<service>:<region>:<account>:<rest>``; region and account may be empty.
ARN_SHAPE = _Shape(
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


def _search(
    pats: list[tuple[Token, ...]], avoid: _Nfa | None, shape: _Shape | None, limit: int
) -> tuple[dict[int, str], bool]:
    """BFS over the product automaton of ``pats``, an automaton of strings to avoid (their
    states are explored but not reported) and the shape every reported string must have."""
    nfas = [_Nfa(p) for p in pats]
    alphabet = sorted({c for p in pats for t in p if isinstance(t, frozenset) for c in t})
    if shape is not None:
        alphabet = sorted(set(alphabet) | {"a", "c", "s", ":"})
    alphabet.append(_filler(pats))
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
        reportable = (avoid is None or not avoid.accepts(state[k])) and (
            shape is None or shape.accepts(state[k + 1])
        )
        if reportable:
            vec = 0
            for i in range(k):
                if nfas[i].accepts(state[i]):
                    vec |= 1 << i
            if vec not in found:
                found[vec] = word
        if not any(state[:k]) and (avoid is None or not state[k]) and 0 in found:
            continue  # every pattern is dead and a string matching none is already known
        for ch in alphabet:
            nxt = tuple(nfas[i].step(state[i], ch) for i in range(k)) + (
                avoid.step(state[k], ch) if avoid else 0,
                shape.step(state[k + 1], ch) if shape else 0,
            )
            if shape is not None and not nxt[k + 1]:
                continue
            if nxt not in seen:
                if len(seen) >= limit:
                    complete = False
                    continue
                seen[nxt] = word + ch
                queue.append(nxt)
    return found, complete


def realize(
    patterns: Sequence[tuple[Token, ...]],
    *,
    candidates: Iterable[str] = (),
    avoid: Iterable[str] | None = None,
    shape: _Shape | None = None,
    limit: int = MAX_STATES,
) -> Realized:
    """Every vector some string realizes over ``patterns``, with a witness.

    ``candidates`` are tried first, so readable strings are preferred as witnesses.
    ``avoid``: report only strings outside this finite set (e.g. known action names).
    ``shape``: report only strings of this shape (``ACTION_SHAPE``, ``ARN_SHAPE``).
    """
    avoid_set = set(avoid) if avoid is not None else None
    witnesses: dict[int, str] = {}
    for cand in candidates:
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
    groups = _groups(patterns)
    for group in groups:
        sub = [patterns[i] for i in group]
        trie = None
        if avoid_set is not None:
            heads = [_literal_prefix(p) for p in sub]
            words = [w for w in avoid_set if any(_prefix_ok(h, w) for h in heads)]
            trie = _Trie(words)
        found, ok = _search(sub, trie, shape, limit)
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
        zero = _find_zero(patterns, avoid_set, shape, limit)
        if zero is not None:
            witnesses[0] = zero
    return Realized(witnesses, complete)


def _shape_accepts(shape: _Shape, text: str) -> bool:
    state = shape.start()
    for ch in text:
        state = shape.step(state, ch)
        if not state:
            return False
    return shape.accepts(state)


def _prefix_ok(head: list[frozenset[str]], word: str) -> bool:
    return all(not x or ch in x for x, ch in zip(head, word, strict=False))


def _find_zero(
    patterns: Sequence[tuple[Token, ...]], avoid: set[str] | None, shape: _Shape | None, limit: int
) -> str | None:
    filler = _filler(patterns)
    tries = [filler, filler * 3, "", filler * 40]
    if shape is ARN_SHAPE:
        tries = [f"acs:{filler}:::{filler}", f"acs:{filler * 3}:{filler}:{filler}:{filler * 40}"]
    elif shape is ACTION_SHAPE:
        tries = [f"{filler}:{filler}", f"{filler * 3}:{filler * 40}"]
    for cand in tries:
        if avoid is not None and cand in avoid:
            continue
        if shape is not None and not _shape_accepts(shape, cand):
            continue
        if not any(matches(p, cand) for p in patterns):
            return cand
    found, _ = _search(list(patterns), _Trie(avoid) if avoid else None, shape, limit)
    return found.get(0)


__all__ = [
    "ACTION_SHAPE",
    "ANY",
    "ARN_SHAPE",
    "STAR",
    "Realized",
    "Token",
    "matches",
    "realize",
    "tokens",
]
