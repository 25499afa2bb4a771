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

Speed: the common forms (``oss:Get*``, ``acs:oss:*:*:bucket/prefix/*``, plain names) are
matched by one compiled regular expression per pattern list, as before, because one C call
beats any Python loop. A pattern goes to that regex only when it *cannot backtrack more
than linearly*: at most one ``*`` outside the ARN head, and each ``*`` inside the head the
last character of its segment (``[^:]*`` followed by ``:`` has one way to match). Such a
regex has at most one star with a choice, so it tries each of at most ``len(text)`` split
points once, each costing at most ``len(pattern)``. Every other pattern (two or more stars
in the rest, as in ``a*a*...*b``) goes to the chunk matcher above. :func:`is_simple` says
which; the tests check that a pattern with two stars never takes the regex path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = [
    "Pattern",
    "PatternSet",
    "arn_segments",
    "compile_pattern",
    "has_wildcard",
    "is_simple",
    "match",
    "match_cost",
]


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


@lru_cache(maxsize=64)
def _by_lower(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(n.lower(), []).append(n)
    return {k: tuple(v) for k, v in out.items()}


def names_matching(pattern: str, names: tuple[str, ...]) -> list[str]:
    """The names an Action pattern matches, in any case (as RAM compares actions): a lookup
    for a plain name, matching otherwise."""
    if not has_wildcard(pattern) and pattern.isascii():  # ASCII: lower-case lookup is exact
        return list(_by_lower(names).get(pattern.lower(), ()))
    return [n for n in names if match(pattern, n, ignore_case=True)]


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


def is_simple(pattern: str, *, arn: bool = False) -> bool:
    """Whether ``pattern`` is matched by a regular expression (see the module docstring):
    at most one ``*`` after the ARN head, and every ``*`` in the head ends its segment."""
    head = arn_segments(pattern) if arn else 0
    if pattern.count("*", head) > 1:
        return False
    pos = pattern.find("*", 0, head)
    while pos >= 0:
        if pattern[pos + 1] != ":":  # the head ends before a ":", so pos + 1 exists
            return False
        pos = pattern.find("*", pos + 1, head)
    return True


def _regex_body(pattern: str, arn: bool) -> str:
    head = arn_segments(pattern) if arn else 0
    out = []
    for pos, c in enumerate(pattern):
        if c == "*":
            out.append("[^:]*" if pos < head else ".*")
        elif c == "?":
            out.append("[^:]" if pos < head else ".")
        else:
            out.append(re.escape(c))
    return "".join(out)


def _simple_regex(patterns: Iterable[str], ignore_case: bool, arn: bool) -> re.Pattern[str]:
    """One regex for simple patterns (:func:`is_simple`): an alternation costs the sum of
    its branches, each linear."""
    body = "|".join(_regex_body(p, arn) for p in patterns)
    return re.compile(f"(?:{body})", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


class Pattern:
    """A compiled wildcard pattern; :func:`compile_pattern` builds (and caches) them.

    ``match(text)`` is bound once, at compile time, to the cheapest exact test the pattern
    allows: string equality, ``startswith``, a regex for a simple pattern, or the chunk
    matcher."""

    __slots__ = ("_glob", "_head", "_lower", "_rest", "ignore_case", "match", "pattern", "simple")

    match: Callable[[str], bool]

    def __init__(self, pattern: str, *, ignore_case: bool = False, arn: bool = False) -> None:
        self.pattern = pattern
        self.ignore_case = ignore_case
        self.simple = is_simple(pattern, arn=arn)
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
        else:
            # no ARN head, or one without wildcards: its literal ":" need no special rule
            self._glob = _Glob(pattern, ignore_case)
            if ignore_case and pattern.isascii():
                self._lower = _Glob(pattern.lower(), False)
        if not ignore_case and not has_wildcard(pattern):
            self.match = pattern.__eq__
        elif not ignore_case and pattern.endswith("*") and not has_wildcard(pattern[:-1]):
            self.match = _startswith(pattern[:-1])
        elif self.simple:
            self.match = _fullmatch(_simple_regex([pattern], ignore_case, arn))
        else:
            self.match = self._chunks

    def _chunks(self, text: str) -> bool:
        return self._match(text, None)

    def _match(self, text: str, cost: list[int] | None) -> bool:
        """The chunk matcher (whatever the pattern), counting its work in ``cost``."""
        if self._rest is not None:
            parts = text.split(":", 4)
            if len(parts) < 5:
                return False
            for i, seg in self._head:
                if not seg._match(parts[i], cost):
                    return False
            return self._rest._match(parts[4], cost)
        if self._lower is not None and text.isascii():
            return self._lower.match(text.lower(), cost)
        assert self._glob is not None
        return self._glob.match(text, cost)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r}, ignore_case={self.ignore_case})"


def _startswith(prefix: str) -> Callable[[str], bool]:
    return lambda text: text.startswith(prefix)


def _fullmatch(rx: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: rx.fullmatch(text) is not None


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
    """Several patterns that match when any one does (a statement's Action or Resource
    list): the simple ones (:func:`is_simple`) as one regex, the others by the chunk
    matcher."""

    __slots__ = ("_other", "_rx", "fullmatch", "ignore_case")

    #: ``fullmatch(text)``: something true when ``text`` matches, else None; the regex's own
    #: C method when every pattern is simple (the evaluator's hot path)
    fullmatch: Callable[[str], object]

    def __init__(
        self, patterns: Iterable[str], *, ignore_case: bool = False, arn: bool = False
    ) -> None:
        self.ignore_case = ignore_case
        simple: list[str] = []
        other: list[Callable[[str], bool]] = []
        for p in dict.fromkeys(patterns):
            if is_simple(p, arn=arn):
                simple.append(p)
            else:
                other.append(compile_pattern(p, ignore_case=ignore_case, arn=arn).match)
        self._rx = _simple_regex(simple, ignore_case, arn) if simple else None
        self._other = tuple(other)
        self.fullmatch = self._rx.fullmatch if self._rx is not None and not other else self._any

    def _any(self, text: str) -> bool | None:
        rx = self._rx
        if rx is not None and rx.fullmatch(text) is not None:
            return True
        return True if any(m(text) for m in self._other) else None

    def match(self, text: str) -> bool:
        return self.fullmatch(text) is not None
