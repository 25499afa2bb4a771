"""RAM wildcard patterns (``*`` any run, also empty; ``?`` one character), matched in time
linear in pattern length times text length.

This is the only place a wildcard pattern is matched against a string (the evaluator, the
diff, lint, the emulator through the evaluator). It imports nothing from permgen.

How: a pattern is split at its stars into fixed-length *chunks* (literal characters and
``?``). The first chunk must match at the start of the text and the last at its end; every
chunk between is placed at its leftmost occurrence after the previous one (the greedy
two-pointer glob algorithm: placing a chunk as early as possible never loses a match). A
chunk is found with ``str.find`` / ``str.startswith`` when it is a plain literal compared
with case, and otherwise with a regular expression *without quantifiers* (literals and
``.`` only), which cannot backtrack: one attempt per start position, each at most the
chunk's length. The start positions tried by successive chunks do not overlap, so a match
costs at most ``len(pattern) * (len(text) + 1)`` character comparisons, whatever the
pattern (``a*a*a*...*b`` included). :func:`match_cost` reports that count for tests.

Case: ``ignore_case=True`` (actions) compares characters as Python's ``re.IGNORECASE``
does, as the earlier regex-based matcher did (``K`` matches the Kelvin sign U+212A, ``i`` the dotless
i U+0131); resources compare with case (docs/unconfirmed.md). When pattern and text are both
ASCII, both are lower-cased and compared with case, which is the same relation there.

ARN mode (``arn=True``, resources): in an ARN pattern's first four segments (``acs``,
service, region, account) wildcards do not match ``:`` (docs/unconfirmed.md). The text is
split at its first four ``:``; each head segment is matched alone and the rest of the ARN
with the rest of the pattern, where ``*`` matches anything, ``:`` included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "Pattern",
    "PatternSet",
    "arn_segments",
    "compile_pattern",
    "has_wildcard",
    "match",
    "match_cost",
]


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def arn_segments(pattern: str) -> int:
    """How many leading characters of an ARN pattern lie in its first four segments
    (service, region, account and the "acs" head); 0 when it is not an ARN pattern."""
    if not pattern.startswith("acs:") or pattern.count(":") < 4:
        return 0
    return len(":".join(pattern.split(":", 4)[:4]))


class _Chunk:
    """A fixed-length run of literal characters and ``?`` between two stars."""

    __slots__ = ("length", "literal", "rx")

    def __init__(self, text: str, ignore_case: bool) -> None:
        self.length = len(text)
        if "?" not in text and not ignore_case:
            self.literal: str | None = text
            self.rx: re.Pattern[str] | None = None
        else:
            # no quantifier, no alternation: a regex engine cannot backtrack on this
            body = "".join("." if c == "?" else re.escape(c) for c in text)
            self.literal = None
            self.rx = re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))

    def at(self, text: str, pos: int) -> bool:
        if self.literal is not None:
            return text.startswith(self.literal, pos)
        assert self.rx is not None
        return self.rx.match(text, pos) is not None

    def find(self, text: str, start: int, end: int) -> int:
        """The leftmost position >= start where the chunk fits inside text[:end], or -1."""
        if self.literal is not None:
            return text.find(self.literal, start, end)
        assert self.rx is not None
        m = self.rx.search(text, start, end)
        return -1 if m is None else m.start()


class _Glob:
    """One pattern without ARN segments: chunks between stars."""

    __slots__ = ("first", "last", "middle", "min_len", "star")

    def __init__(self, pattern: str, ignore_case: bool) -> None:
        parts = pattern.split("*")
        self.star = len(parts) > 1
        chunks = [_Chunk(p, ignore_case) for p in parts]
        self.first = chunks[0]
        self.last = chunks[-1]
        self.middle = tuple(c for c in chunks[1:-1] if c.length)
        self.min_len = sum(c.length for c in chunks) if self.star else chunks[0].length

    def match(self, text: str, cost: list[int] | None = None) -> bool:
        n = len(text)
        first = self.first
        if not self.star:
            if cost is not None:
                cost[0] += first.length
            return n == first.length and first.at(text, 0)
        last = self.last
        if n < self.min_len:
            return False
        if cost is not None:
            cost[0] += first.length + last.length
        if not first.at(text, 0):
            return False
        end = n - last.length
        if not last.at(text, end):
            return False
        pos = first.length
        for chunk in self.middle:
            found = chunk.find(text, pos, end)
            if cost is not None:
                tried = (found if found >= 0 else max(end - chunk.length, pos - 1)) - pos + 1
                cost[0] += tried * chunk.length
            if found < 0:
                return False
            pos = found + chunk.length
        return True


class Pattern:
    """A compiled wildcard pattern; :func:`compile_pattern` builds (and caches) them."""

    __slots__ = ("_ascii", "_glob", "_head", "_lower", "_rest", "ignore_case", "kind", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False, arn: bool = False) -> None:
        self.pattern = pattern
        self.ignore_case = ignore_case
        self._ascii = pattern.isascii()
        self._head: tuple[tuple[int, Pattern], ...] = ()
        self._rest: Pattern | None = None
        self._glob: _Glob | None = None
        self._lower: _Glob | None = None
        head = arn_segments(pattern) if arn else 0
        if head and has_wildcard(pattern[:head]):
            # ARN head with wildcards: segment by segment (a segment pattern has no ":")
            segments = pattern.split(":", 4)
            self._head = tuple(
                (i, Pattern(s, ignore_case=ignore_case))
                for i, s in enumerate(segments[:4])
                if s != "*"  # a lone star matches any segment
            )
            self._rest = Pattern(segments[4], ignore_case=ignore_case)
            self.kind = "arn"
            return
        # a head without wildcards is a literal prefix: the plain matcher is exact for it
        if not has_wildcard(pattern):
            self.kind = "exact"
        elif pattern.endswith("*") and not has_wildcard(pattern[:-1]):
            self.kind = "prefix"
        else:
            self.kind = "glob"
        self._glob = _Glob(pattern, ignore_case)
        if ignore_case and self._ascii:
            self._lower = _Glob(pattern.lower(), False)

    def match(self, text: str) -> bool:
        """Whether the whole of ``text`` matches."""
        kind = self.kind
        if not self.ignore_case:
            if kind == "exact":
                return text == self.pattern
            if kind == "prefix":
                return text.startswith(self.pattern[:-1])
        return self._match(text, None)

    def _match(self, text: str, cost: list[int] | None) -> bool:
        if self.kind == "arn":
            parts = text.split(":", 4)
            if len(parts) < 5:
                return False
            rest = self._rest
            assert rest is not None
            if cost is None:
                for i, seg in self._head:
                    if not seg.match(parts[i]):
                        return False
                return rest.match(parts[4])
            for i, seg in self._head:
                if not seg._match(parts[i], cost):
                    return False
            return rest._match(parts[4], cost)
        if self._lower is not None and text.isascii():
            return self._lower.match(text.lower(), cost)
        assert self._glob is not None
        return self._glob.match(text, cost)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r}, ignore_case={self.ignore_case})"


@lru_cache(maxsize=65536)
def compile_pattern(pattern: str, *, ignore_case: bool = False, arn: bool = False) -> Pattern:
    return Pattern(pattern, ignore_case=ignore_case, arn=arn)


def match(pattern: str, text: str, *, ignore_case: bool = False, arn: bool = False) -> bool:
    """Whether ``text`` matches the wildcard ``pattern`` (see the module docstring)."""
    if not ignore_case and not has_wildcard(pattern):
        return pattern == text
    return compile_pattern(pattern, ignore_case=ignore_case, arn=arn).match(text)


def match_cost(
    pattern: str, text: str, *, ignore_case: bool = False, arn: bool = False
) -> tuple[bool, int]:
    """:func:`match`, and an upper bound of the character comparisons it made (each chunk
    start position tried counts the chunk's length). Never more than
    ``len(pattern) * (len(text) + 1)``."""
    cost = [0]
    ok = compile_pattern(pattern, ignore_case=ignore_case, arn=arn)._match(text, cost)
    return ok, cost[0]


class PatternSet:
    """Several patterns that match when any one does (a statement's Action or Resource list),
    with the common forms answered without a per-pattern call: plain names by set lookup and
    ``prefix*`` by one ``startswith``."""

    __slots__ = ("_exact", "_exact_lower", "_other", "_prefixes", "ignore_case")

    def __init__(
        self, patterns: Iterable[str], *, ignore_case: bool = False, arn: bool = False
    ) -> None:
        self.ignore_case = ignore_case
        exact: set[str] = set()
        prefixes: list[str] = []
        other: list[Pattern] = []
        for p in patterns:
            compiled = compile_pattern(p, ignore_case=ignore_case, arn=arn)
            if ignore_case and not p.isascii():
                other.append(compiled)  # non-ASCII: Unicode case rules, see Pattern
            elif compiled.kind == "exact":
                exact.add(p.lower() if ignore_case else p)
            elif compiled.kind == "prefix":
                prefixes.append(p[:-1].lower() if ignore_case else p[:-1])
            else:
                other.append(compiled)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._other = tuple(other)
        # with case ignored, a non-ASCII text needs every pattern's Unicode-aware matcher
        self._exact_lower = tuple(
            compile_pattern(p, ignore_case=True, arn=arn) for p in sorted(exact)
        ) + tuple(compile_pattern(p + "*", ignore_case=True, arn=arn) for p in prefixes)

    def match(self, text: str) -> bool:
        if self.ignore_case:
            if not text.isascii():
                return any(p.match(text) for p in self._exact_lower) or any(
                    p.match(text) for p in self._other
                )
            low = text.lower()
            if low in self._exact or (self._prefixes and low.startswith(self._prefixes)):
                return True
        elif text in self._exact or (self._prefixes and text.startswith(self._prefixes)):
            return True
        return any(p.match(text) for p in self._other)
