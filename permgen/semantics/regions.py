"""Describe a set of resource classes as a few regions: "matches any of these globs and none
of those".

The diff splits all resources into classes: a class is the set of resources that match
exactly a given subset of the policies' resource patterns (its *vector*, a bitmask over the
patterns). A difference is a set ``D`` of classes, and every other realized class (``N``)
must stay outside its description. A region ``(R, E)`` covers the classes that match some
*atom* of ``R`` and no pattern of ``E``; an atom is a set of patterns matched together (one
pattern, ``*`` for the empty set, or the intersection of several patterns, written as globs).
Since every resource lies in exactly one class, and whether it matches a pattern (or an
intersection of patterns) depends only on its class, a region that covers the classes of
``D`` and none of ``N`` covers exactly the resources of the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from permgen.semantics.automata import ANY, STAR, Budget, Token, tokens

_STAR_SEGMENT = "*:"
_ANY_SEGMENT = "?:"
_STARS = (STAR, _STAR_SEGMENT)
#: Globs one intersection may take; past it the intersection is not written out.
MAX_INTERSECTION_GLOBS = 16


class _TooMany(Exception):
    pass


def _char_meet(x: Token, y: Token) -> Token | None:
    """The characters both one-character tokens accept."""
    if isinstance(x, frozenset) and isinstance(y, frozenset):
        return (x & y) or None
    if isinstance(x, frozenset) or isinstance(y, frozenset):
        chars, wild = (x, y) if isinstance(x, frozenset) else (y, x)
        assert isinstance(chars, frozenset)
        out = chars - {":"} if wild == _ANY_SEGMENT else chars
        return out or None
    return _ANY_SEGMENT if _ANY_SEGMENT in (x, y) else ANY


def _normalize(toks: tuple[Token, ...]) -> tuple[Token, ...]:
    out: list[Token] = []
    for t in toks:
        if t in _STARS and out and out[-1] in _STARS:
            out[-1] = t if t == out[-1] else STAR  # "*:" then "*" (or the reverse) is "*"
        else:
            out.append(t)
    return tuple(out)


def _meet(a: tuple[Token, ...], b: tuple[Token, ...]) -> frozenset[tuple[Token, ...]]:
    """Token sequences whose languages together are exactly L(a) & L(b).

    A star meeting a star: L(s.p) & L(t.q) = L(s&t) . (L(p) & L(t.q) | L(s.p) & L(q)),
    since star languages are closed under prefixes and suffixes; a star meeting one
    character either matches nothing or takes that character."""
    memo: dict[tuple[int, int], frozenset[tuple[Token, ...]]] = {}

    def rec(i: int, j: int) -> frozenset[tuple[Token, ...]]:
        hit = memo.get((i, j))
        if hit is not None:
            return hit
        out: set[tuple[Token, ...]] = set()
        if i == len(a) or j == len(b):
            rest = b[j:] if i == len(a) else a[i:]
            if all(t in _STARS for t in rest):
                out.add(())
        else:
            x, y = a[i], b[j]
            xs, ys = x in _STARS, y in _STARS
            if xs and ys:
                both: Token = _STAR_SEGMENT if _STAR_SEGMENT in (x, y) else STAR
                for r in rec(i + 1, j) | rec(i, j + 1):
                    out.add(_normalize((both, *r)))
            elif xs or ys:
                star, other = (x, y) if xs else (y, x)
                out |= rec(i + 1, j) if xs else rec(i, j + 1)
                c = _char_meet(ANY if star == STAR else _ANY_SEGMENT, other)
                if c is not None:
                    for r in rec(i, j + 1) if xs else rec(i + 1, j):
                        out.add((c, *r))
            else:
                c = _char_meet(x, y)
                if c is not None:
                    for r in rec(i + 1, j + 1):
                        out.add((c, *r))
        if len(out) > MAX_INTERSECTION_GLOBS:
            raise _TooMany
        result = memo[(i, j)] = frozenset(out)
        return result

    return rec(0, 0)


def _render(toks: tuple[Token, ...]) -> str | None:
    """The glob for a token sequence, or None when no glob means exactly the same."""
    chars: list[str] = []
    for t in toks:
        if t in _STARS:
            chars.append("*")
        elif t in (ANY, _ANY_SEGMENT):
            chars.append("?")
        elif isinstance(t, frozenset) and len(t) == 1 and not t & {"*", "?"}:
            chars.append(next(iter(t)))
        else:
            return None
    text = "".join(chars)
    return text if tokens(text, arn=True) == toks else None


@lru_cache(maxsize=4096)
def intersection(patterns: tuple[str, ...]) -> tuple[str, ...] | None:
    """Globs matching exactly the resources every pattern matches (resource semantics:
    wildcards in an ARN's first four segments do not match ":"); () when no resource
    matches them all; None when the intersection cannot be written in a few globs."""
    current: set[tuple[Token, ...]] = {tokens(patterns[0], arn=True)}
    try:
        for p in patterns[1:]:
            other = tokens(p, arn=True)
            nxt: set[tuple[Token, ...]] = set()
            for t in current:
                nxt |= _meet(t, other)
            if len(nxt) > MAX_INTERSECTION_GLOBS:
                return None
            current = nxt
    except _TooMany:
        return None
    out: list[str] = []
    for t in current:
        text = _render(t)
        if text is None:
            return None
        out.append(text)
    # one glob per distinct sequence, in a stable order
    return tuple(sorted(set(out)))


@dataclass
class Region:
    """Resources matching some atom (a set of patterns, as a bitmask; 0 is ``*``) and no
    pattern of ``exclude``; ``covers`` are the classes of the difference it holds."""

    atoms: list[int]
    exclude: int
    covers: set[int]


def set_bits(x: int) -> list[int]:
    """The positions of the bits set in ``x``, lowest first."""
    out = []
    while x:
        low = x & -x
        out.append(low.bit_length() - 1)
        x ^= low
    return out


def _covered(vec: int, atoms: Sequence[int], exclude: int) -> bool:
    return not vec & exclude and any(vec & a == a for a in atoms)


def regions(
    delta: Sequence[int],
    others: Sequence[int],
    patterns: Sequence[str],
    prefer: Sequence[int],
    budget: Budget,
) -> tuple[list[Region], bool]:
    """Regions covering every class of ``delta`` and no class of ``others``.

    ``prefer``: atoms to try first (the patterns through which the side that allows the
    difference grants it; 0 when it grants through a NotResource). False when some class
    could only be described by an intersection too large to write (it is then left out)."""
    uncovered = set(delta)
    out: list[Region] = []
    complete = True
    prefer_set = set(prefer)

    inside: dict[int, int] = {}  # pattern -> classes of the difference matching it
    for d in delta:
        for i in set_bits(d):
            inside[i] = inside.get(i, 0) + 1

    def exclusion(v: int, atom: int) -> int | None:
        """Patterns (outside ``v``) that keep the classes of ``others`` out of ``atom``."""
        hit = [u for u in others if u & atom == atom]
        budget.spend(len(others) + 1, "describing the difference")
        if any(not u & ~v for u in hit):
            return None
        exclude = 0
        while hit:
            budget.spend(len(hit) + 1, "describing the difference")
            counts: dict[int, int] = {}
            for u in hit:
                for i in set_bits(u & ~v):
                    counts[i] = counts.get(i, 0) + 1
            # the pattern that keeps out the most, and of those the one that keeps the
            # fewest classes of the difference out with it
            best = max(counts, key=lambda i: (counts[i], -inside.get(i, 0), -i))
            exclude |= 1 << best
            hit = [u for u in hit if not u >> best & 1]
        return exclude

    def writable(atom: int) -> bool:
        return bin(atom).count("1") < 2 or bool(
            intersection(tuple(patterns[i] for i in set_bits(atom)))
        )

    for v in sorted(delta, key=lambda x: (bin(x).count("1"), x)):
        if v not in uncovered:
            continue
        singles = [1 << i for i in set_bits(v)]
        tiers = [
            [a for a in (*singles, 0) if a in prefer_set],
            [a for a in singles if a not in prefer_set],
            [0],
            [a | b for n, a in enumerate(singles) for b in singles[n + 1 :]][:64],
            [v],
        ]
        chosen: Region | None = None
        for tier in tiers:
            best: tuple[tuple[int, int, int], Region] | None = None
            for atom in tier:
                exclude = exclusion(v, atom)
                if exclude is None or not writable(atom):
                    continue
                covers = {d for d in uncovered if d & atom == atom and not d & exclude}
                score = (len(covers), -bin(exclude).count("1"), -atom)
                if best is None or score > best[0]:
                    best = (score, Region([atom], exclude, covers))
            if best is not None:
                chosen = best[1]
                break
        if chosen is None:
            complete = False
            uncovered.discard(v)
            continue
        uncovered -= chosen.covers
        out.append(chosen)
    # merge: regions with the same exclusions share one entry; others when the merged
    # region still covers everything both did (a merge never covers a class of ``others``:
    # a class outside every exclusion that matched an atom was covered before)
    merged: list[Region] = []
    for r in out:
        for m in merged:
            exclude = m.exclude | r.exclude
            both = m.covers | r.covers
            atoms = m.atoms + [a for a in r.atoms if a not in m.atoms]
            if m.exclude == r.exclude or all(_covered(d, atoms, exclude) for d in both):
                m.atoms, m.exclude, m.covers = atoms, exclude, both
                break
        else:
            merged.append(Region(list(r.atoms), r.exclude, set(r.covers)))
    # each region's classes: all it covers (not only those it was made for); then leave out
    # a region whose classes the others already cover
    for m in merged:
        m.covers = {d for d in delta if _covered(d, m.atoms, m.exclude)}
    merged.sort(key=lambda m: -len(m.covers))
    kept: list[Region] = []
    for n, m in enumerate(merged):
        rest: set[int] = set()
        for other in kept + merged[n + 1 :]:
            rest |= other.covers
        if not m.covers <= rest:
            kept.append(m)
    return kept, complete


def atom_globs(atom: int, patterns: Sequence[str]) -> tuple[str, ...]:
    if not atom:
        return ("*",)
    bits = set_bits(atom)
    if len(bits) == 1:
        return (patterns[bits[0]],)
    return intersection(tuple(patterns[i] for i in bits)) or ()


__all__ = ["MAX_INTERSECTION_GLOBS", "Region", "atom_globs", "intersection", "regions", "set_bits"]
