"""JSON from outside, read with bounds: nesting depth, number length, no NaN or Infinity.

Python's decoder recurses once per nesting level (8,000 brackets in 16 KiB end in a
RecursionError), converts an integer of more than 4,300 digits only to raise ValueError,
and accepts ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON. Every document
permgen reads from a user, a caller or the network goes through :func:`loads`, which
refuses each of these with a :class:`JsonLimitError` that says where, before the decoder
sees them.

Numbers are kept as written (:class:`JsonNumber`) unless the caller asks for ints and
floats: a policy value ``1.50`` is the text ``1.50``, never the float ``1.5``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

#: The deepest nesting of arrays and objects accepted. A RAM policy is 6 levels deep at most
#: (document, Statement list, statement, Condition, operator, key, value list: 7 with a file
#: that holds a list of policies); 64 leaves room for every honest document.
MAX_DEPTH = 64
#: The longest number literal accepted, in characters (sign, digits, point and exponent).
MAX_NUMBER_CHARS = 64

# A JSON string, quotes and escapes included (the unrolled form: linear, no backtracking).
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Bytes that matter to nesting: brackets (braces folded into brackets), quotes, backslashes.
_KEEP = b'[]{}"\\'
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_FOLD = bytes.maketrans(b"{}", b"[]")


class JsonLimitError(ValueError):
    """A document over one of the bounds, or NaN/Infinity (``invalid``: not JSON at all).
    ``pos`` is the offset in the text, when known."""

    def __init__(
        self, message: str, text: str = "", pos: int | None = None, *, invalid: bool = False
    ) -> None:
        super().__init__(message)
        self.msg = message
        self.invalid = invalid
        self.pos = pos
        self.lineno: int | None = None
        self.colno: int | None = None
        if pos is not None and pos >= 0:
            self.lineno = text.count("\n", 0, pos) + 1
            self.colno = pos - text.rfind("\n", 0, pos)


class JsonNumber:
    """A JSON number as it was written (``10``, ``-1.50``, ``2e3``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _outside_strings(text: str) -> bytes:
    """The brackets of ``text`` that stand outside strings, braces folded into brackets."""
    reduced = text.encode("utf-8", "surrogatepass").translate(_FOLD, _DROP)
    if b"\\" in reduced:  # escapes: tokenize the strings properly
        reduced = _STRING_RE.sub("", text).encode("utf-8", "surrogatepass").translate(_FOLD, _DROP)
        return reduced.replace(b'"', b"")  # an unterminated string's quote
    # No string holds a bracket (the usual case) exactly when dropping every pair of adjacent
    # quotes leaves none: the first string that holds one starts a run of an odd number of
    # quotes, so one of them would be left.
    paired = reduced.replace(b'""', b"")
    if b'"' not in paired:
        return paired
    # no escape: quotes alternate open, close, so every other piece is outside the strings
    return b"".join(reduced.split(b'"')[::2])


def nesting_depth(text: str, *, stop: int | None = None) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings not counted).

    Removes the innermost ``[]`` pairs once per level, in C; ``stop`` gives up after that
    many levels and returns ``stop + 1``. Unbalanced brackets (not JSON) count as deep."""
    outside = _outside_strings(text)
    depth = 0
    while outside:
        if stop is not None and depth > stop:
            return depth
        shorter = outside.replace(b"[]", b"")
        if len(shorter) == len(outside):  # unbalanced: what is left is that deep at least
            return depth + len(shorter)
        outside = shorter
        depth += 1
    return depth


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JsonLimitError` if arrays and objects nest deeper than ``max_depth``."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # not enough brackets to go that deep
    if nesting_depth(text, stop=max_depth) <= max_depth:
        return
    # the slow walk, only to say where: the bracket that went one level too deep
    depth = 0
    for m in re.finditer(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', text, re.DOTALL):
        ch = m.group()
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonLimitError(
                    f"arrays and objects nested more than {max_depth} deep", text, m.start()
                )
        elif ch in "]}":
            depth -= 1
    # unbalanced brackets that never go that deep: not JSON, which the decoder will say


class _NumberTooLong(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


class _Constant(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _bounded(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def hook(literal: str) -> Any:
        if len(literal) > MAX_NUMBER_CHARS:
            raise _NumberTooLong(literal)
        return convert(literal)

    return hook


def _no_constant(name: str) -> Any:
    raise _Constant(name)


_CONVERTERS: dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]] = {
    "text": (_bounded(JsonNumber), _bounded(JsonNumber)),
    "python": (_bounded(int), _bounded(float)),
}
_DECODERS: dict[tuple[str, Any], json.JSONDecoder] = {}


def _decoder(numbers: str, object_pairs_hook: Any) -> json.JSONDecoder:
    """One decoder per configuration, built once (json.loads with hooks builds one per call)."""
    key = (numbers, object_pairs_hook)
    decoder = _DECODERS.get(key)
    if decoder is None:
        parse_int, parse_float = _CONVERTERS[numbers]
        decoder = _DECODERS[key] = json.JSONDecoder(
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=_no_constant,
            object_pairs_hook=object_pairs_hook,
        )
    return decoder


def _blank_strings(text: str) -> str:
    return _STRING_RE.sub(lambda m: " " * len(m.group()), text)


def loads(
    text: str,
    *,
    max_depth: int = MAX_DEPTH,
    numbers: str = "text",
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` within the bounds. ``numbers="text"`` gives :class:`JsonNumber` values;
    ``numbers="python"`` gives ints and floats (each literal still bounded in length).

    Raises :class:`JsonLimitError` over a bound, ``json.JSONDecodeError`` for bad JSON.
    """
    check_depth(text, max_depth)
    try:
        return _decoder(numbers, object_pairs_hook).decode(text)
    except _NumberTooLong as exc:
        n = len(exc.literal)
        where = _blank_strings(text).find(exc.literal)
        raise JsonLimitError(
            f"a number of {n} characters (at most {MAX_NUMBER_CHARS})", text, where
        ) from None
    except _Constant as exc:
        where = _blank_strings(text).find(exc.name)
        raise JsonLimitError(f"{exc.name} is not a JSON value", text, where, invalid=True) from None
    except RecursionError:  # a bound lower than the depth check's (a deep thread stack)
        raise JsonLimitError("arrays and objects nested too deeply") from None


__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "JsonLimitError",
    "JsonNumber",
    "check_depth",
    "loads",
    "nesting_depth",
]
