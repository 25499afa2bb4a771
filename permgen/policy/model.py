"""The RAM policy model: a lenient parser, frozen values, a strict compact emitter.

Everything downstream (lint, evaluation, diff, sync) works on these values and never sees
"a string or a list". Parsing keeps the order the author wrote, so findings can point at
``Statement[3].Action[1]``; :func:`canonical` gives the order-free form used to compare
and to emit compiled policies.

Parsing is lenient where Alibaba's own examples are (trailing commas; a single statement
object instead of a list; a number or boolean as a condition value, kept as written) and
strict where a mistake would change meaning (unknown elements, both Action and NotAction,
duplicate keys, a Principal in an identity policy, a number where RAM wants a string).
JSON text is read within bounds (:mod:`permgen._internal.safejson`): nesting depth, number length,
no NaN or Infinity.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any

from permgen._internal.safejson import JsonLimitError, JsonNumber
from permgen._internal.safejson import loads as _bounded_loads
from permgen.errors import PolicyParseError

#: RAM's limit for a custom policy document, measured on compact JSON in UTF-8 bytes.
POLICY_LIMIT = 6144
#: STS's limit for a session policy passed to AssumeRole.
SESSION_POLICY_LIMIT = 2048

ALLOW = "Allow"
DENY = "Deny"

#: Every documented condition operator, in its canonical spelling (ram-facts 1.5).
OPERATORS: tuple[str, ...] = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "IpAddress",
    "NotIpAddress",
    "IpAddressIncludeBorder",
)
_OPERATOR_BY_LOWER = {op.lower(): op for op in OPERATORS}
_OPERATOR_SET = frozenset(OPERATORS)

_STATEMENT_KEYS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition")
_STATEMENT_KEY_BY_LOWER = {k.lower(): k for k in _STATEMENT_KEYS}
_STATEMENT_KEY_SET = frozenset(_STATEMENT_KEYS)


@dataclass(frozen=True, order=True)
class Condition:
    """One operator applied to one key: the request matches if any value matches."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One statement. ``actions`` holds Action or, when ``not_action``, NotAction."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    not_action: bool = False
    not_resource: bool = False
    sid: str | None = None

    def __post_init__(self) -> None:
        # Conditions are ANDed, so their order carries no meaning; keeping them sorted by
        # (operator, key) makes the emitted Condition block and the value agree.
        conds = self.conditions
        if len(conds) > 1 and any(
            (a.operator, a.key) > (b.operator, b.key) for a, b in pairwise(conds)
        ):
            ordered = tuple(sorted(conds, key=lambda c: (c.operator, c.key)))
            object.__setattr__(self, "conditions", ordered)

    @property
    def is_allow(self) -> bool:
        return self.effect == ALLOW

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sid is not None:
            out["Sid"] = self.sid
        out["Effect"] = self.effect
        out["NotAction" if self.not_action else "Action"] = list(self.actions)
        out["NotResource" if self.not_resource else "Resource"] = list(self.resources)
        if self.conditions:
            block: dict[str, dict[str, list[str]]] = {}
            for cond in self.conditions:
                block.setdefault(cond.operator, {})[cond.key] = list(cond.values)
            out["Condition"] = block
        return out


@dataclass(frozen=True)
class Policy:
    """A whole policy document. ``name`` is a label for messages (file or policy name)."""

    statements: tuple[Statement, ...]
    version: str = "1"
    name: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"Version": self.version, "Statement": [s.to_json() for s in self.statements]}

    def dumps(self) -> str:
        """Compact JSON, the form RAM's limits are measured on."""
        return self._compact

    @cached_property
    def _compact(self) -> str:
        return dumps_compact(self.to_json())

    def size(self) -> int:
        """Size in UTF-8 bytes of the compact form (the safe reading of RAM's limit)."""
        return len(self._compact.encode("utf-8"))


def dumps_compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- parsing


_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def _strip_trailing_commas(text: str) -> str:
    """Blank out commas that stand before ``]`` or ``}`` (outside strings).

    The comma becomes a space, so line and column numbers of later errors stay right.
    The text is split at double quotes; every other piece is outside a string, except
    where a quote was escaped (an odd run of backslashes before it).
    """
    if "," not in text or _TRAILING_COMMA.search(text) is None:
        return text  # no comma stands before a bracket anywhere, strings included
    parts = text.split('"')
    inside = False
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if not inside and "," in part and ("]" in part or "}" in part):
            parts[i] = _TRAILING_COMMA.sub(r" \1", part)
        if i < last:
            if inside and (len(part) - len(part.rstrip("\\"))) % 2 == 1:
                continue  # an escaped quote: still inside the string
            inside = not inside
    return '"'.join(parts)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def loads_lenient(
    text: str, *, source: str | None = None, duplicate_keys_checked: bool = True
) -> Any:
    """Parse JSON the way Alibaba's examples are written (trailing commas allowed).

    Numbers come back as :class:`~permgen._internal.safejson.JsonNumber` (their text as written);
    nesting deeper than :data:`~permgen._internal.safejson.MAX_DEPTH`, a number literal longer than
    :data:`~permgen._internal.safejson.MAX_NUMBER_CHARS`, NaN and Infinity are refused.
    """
    try:
        return _bounded_loads(
            _strip_trailing_commas(text),
            object_pairs_hook=_no_duplicate_keys if duplicate_keys_checked else None,
        )
    except JsonLimitError as exc:
        kind = "not valid JSON" if exc.invalid else "JSON beyond permgen's limits"
        raise PolicyParseError(
            f"{kind}: {exc.msg}", source=source, line=exc.lineno, column=exc.colno
        ) from None
    except _DuplicateKey as exc:
        raise PolicyParseError(
            f"duplicate key {exc.key!r}: JSON parsers disagree on which one wins",
            source=source,
        ) from None
    except json.JSONDecodeError as exc:
        raise PolicyParseError(
            f"not valid JSON: {exc.msg}", source=source, line=exc.lineno, column=exc.colno
        ) from None


def parse_policy(
    data: str | bytes | Mapping[str, Any], *, source: str | None = None, trusted: bool = False
) -> Policy:
    """Parse a RAM identity policy from JSON text or an already-decoded mapping.

    Raises :class:`PolicyParseError` naming the JSON path of the first problem. ``trusted``
    skips the duplicate-key check, for text permgen itself built with json.dumps.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyParseError("not UTF-8 text", source=source) from None
    doc = (
        loads_lenient(data, source=source, duplicate_keys_checked=not trusted)
        if isinstance(data, str)
        else data
    )
    if not isinstance(doc, Mapping):
        raise PolicyParseError("a policy must be a JSON object", source=source)
    return _parse_document(doc, source)


def _err(message: str, source: str | None, path: str) -> PolicyParseError:
    return PolicyParseError(message, source=source, path=path)


def _parse_document(doc: Mapping[str, Any], source: str | None) -> Policy:
    bad_key = next((k for k in doc if type(k) is not str), None)
    if bad_key is not None:
        raise _err(f"a key must be a string, not {bad_key!r}", source, "")
    keys = {k.lower(): k for k in doc}
    unknown = [k for k in doc if k.lower() not in ("version", "statement")]
    if unknown:
        raise _err(
            f"unknown element {unknown[0]!r} (a policy has Version and Statement)", source, ""
        )
    if "version" not in keys:
        raise _err('missing "Version" (it must be "1")', source, "")
    version = doc[keys["version"]]
    if version != "1" or type(version) is not str:
        raise _err(f'Version must be "1", not {_show(version)}', source, "Version")
    if "statement" not in keys:
        raise _err('missing "Statement"', source, "")
    raw = doc[keys["statement"]]
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise _err("Statement must be a list of statement objects", source, "Statement")
    statements = tuple(_parse_statement(s, source, f"Statement[{i}]") for i, s in enumerate(raw))
    return Policy(statements=statements, version="1", name=source or "")


def _show(value: Any) -> str:
    """A value for a message: strings quoted, JSON values as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if type(value) is str or isinstance(value, JsonNumber):
        return repr(value)
    return _json_type(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (JsonNumber, int, float)):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _strings(
    value: Any,
    source: str | None,
    path: str,
    *,
    allow_empty: bool = False,
    scalars: bool = False,
) -> tuple[str, ...]:
    """A string or a list of strings. ``scalars`` (condition values) also takes a boolean
    (``true`` -> ``"true"``) and a number as it was written (``10`` -> ``"10"``); a float
    decoded by someone else is refused, since its written form is lost."""
    if type(value) is str:
        return (value,)
    if type(value) is list and value and all(type(v) is str for v in value):
        return tuple(value)
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        if type(item) is str:
            out.append(item)
        elif scalars and isinstance(item, bool):
            out.append("true" if item else "false")
        elif scalars and isinstance(item, JsonNumber):
            out.append(item.text)
        elif scalars and type(item) is int:
            out.append(str(item))
        else:
            raise _err(f"expected a string, got {_json_type(item)}", source, where)
    if not out and not allow_empty:
        raise _err("expected at least one value", source, path)
    return tuple(out)


def _parse_statement(raw: Any, source: str | None, path: str) -> Statement:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise _err("a statement must be a JSON object", source, path)
    fields: Mapping[str, Any]
    if _STATEMENT_KEY_SET.issuperset(raw):
        fields = raw  # the usual case: every key already in its canonical spelling
    else:
        remapped: dict[str, Any] = {}
        for key, value in raw.items():
            canon = _STATEMENT_KEY_BY_LOWER.get(key.lower()) if type(key) is str else None
            if canon is None:
                hint = (
                    " (RAM identity policies have no Principal)"
                    if str(key).lower() == "principal"
                    else ""
                )
                raise _err(f"unknown element {key!r}{hint}", source, f"{path}.{key}")
            remapped[canon] = value
        fields = remapped
    effect = fields.get("Effect")
    if effect is None:
        raise _err('missing "Effect" (Allow or Deny)', source, path)
    if effect != ALLOW and effect != DENY:
        if type(effect) is not str or effect.lower() not in ("allow", "deny"):
            raise _err(
                f'Effect must be "Allow" or "Deny", not {_show(effect)}', source, f"{path}.Effect"
            )
        effect = ALLOW if effect.lower() == "allow" else DENY

    if ("Action" in fields) == ("NotAction" in fields):
        raise _err("a statement needs exactly one of Action or NotAction", source, path)
    not_action = "NotAction" in fields
    akey = "NotAction" if not_action else "Action"
    actions = tuple(map(normalize_action, _strings(fields[akey], source, f"{path}.{akey}")))
    for i, a in enumerate(actions):
        if a != "*" and ":" not in a:
            raise _err(
                f"action {a!r} is not of the form service:ActionName", source, f"{path}.{akey}[{i}]"
            )

    if ("Resource" in fields) == ("NotResource" in fields):
        raise _err("a statement needs exactly one of Resource or NotResource", source, path)
    not_resource = "NotResource" in fields
    rkey = "NotResource" if not_resource else "Resource"
    resources = _strings(fields[rkey], source, f"{path}.{rkey}")

    conditions: list[Condition] = []
    if "Condition" in fields:
        block = fields["Condition"]
        if type(block) is not dict and not isinstance(block, Mapping):
            raise _err("Condition must be an object", source, f"{path}.Condition")
        for op, keyed in block.items():
            if type(op) is not str:
                raise _err(f"unknown condition operator {op!r}", source, f"{path}.Condition")
            canon_op = op if op in _OPERATOR_SET else _OPERATOR_BY_LOWER.get(op.lower())
            if canon_op is None:
                raise _err(
                    f"unknown condition operator {op!r}{_suggest(op, OPERATORS)}",
                    source,
                    f"{path}.Condition.{op}",
                )
            if not keyed or (type(keyed) is not dict and not isinstance(keyed, Mapping)):
                raise _err(
                    "an operator takes an object of condition keys",
                    source,
                    f"{path}.Condition.{op}",
                )
            for ckey, cval in keyed.items():
                if type(ckey) is not str:
                    raise _err(
                        f"a condition key must be a string, not {ckey!r}",
                        source,
                        f"{path}.Condition.{op}",
                    )
                values = _strings(cval, source, f"{path}.Condition.{op}.{ckey}", scalars=True)
                conditions.append(Condition(canon_op, ckey, values))

    sid = fields.get("Sid")
    if sid is not None and type(sid) is not str:
        raise _err("Sid must be a string", source, f"{path}.Sid")
    return Statement(
        effect=effect,
        actions=actions,
        resources=resources,
        conditions=tuple(conditions),
        not_action=not_action,
        not_resource=not_resource,
        sid=sid,
    )


def _suggest(word: str, choices: Iterable[str]) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"; did you mean {match[0]!r}?" if match else ""


# --------------------------------------------------------------------------- normal form


@lru_cache(maxsize=65536)
def normalize_action(action: str) -> str:
    """``OSS:getobject`` -> ``oss:GetObject``: the service in lower case, the name as the
    catalog spells it when the catalog knows it; wildcard patterns keep their own case
    (actions compare case-insensitively anyway)."""
    if action == "*" or ":" not in action:
        return action
    service, _, name = action.partition(":")
    service = service.lower()
    if "*" in name or "?" in name:
        return f"{service}:{name}"
    from permgen.policy.catalog import canonical_action_name

    return canonical_action_name(service, name)


def canonical(policy: Policy) -> Policy:
    """The order-free form: values sorted and de-duplicated, statements sorted.

    Equal canonical forms grant exactly the same; the converse needs the semantic engine.
    """
    statements = sorted(
        {_canonical_statement(s) for s in policy.statements}, key=_statement_sort_key
    )
    return replace(policy, statements=tuple(statements))


def _canonical_statement(s: Statement) -> Statement:
    conds = sorted(
        {Condition(c.operator, c.key, tuple(sorted(set(c.values)))) for c in s.conditions}
    )
    return Statement(
        s.effect,
        tuple(sorted(set(s.actions), key=str.lower)),
        tuple(sorted(set(s.resources))),
        tuple(conds),
        s.not_action,
        s.not_resource,
        None,
    )


def _statement_sort_key(s: Statement) -> tuple[Any, ...]:
    return (
        s.effect != DENY,  # Deny statements first: they are what a reader should see first
        s.not_action,
        s.actions,
        s.not_resource,
        s.resources,
        s.conditions,
    )


def sorted_statements(statements: Iterable[Statement]) -> tuple[Statement, ...]:
    """Canonical statements, de-duplicated, in canonical order."""
    return tuple(sorted(set(statements), key=_statement_sort_key))


def merge_statements(statements: Sequence[Statement]) -> tuple[Statement, ...]:
    """Merge statements that keep the meaning when merged.

    Two statements with the same effect, the same conditions and plain Action/Resource can
    be merged when they share the action list (resources are unioned) or share the
    resource list (actions are unioned). Repeats until nothing merges; the result is
    deterministic for a given input order.
    """
    current = [_canonical_statement(s) for s in statements]
    changed = True
    while changed:
        changed = False
        out: list[Statement] = []
        for s in current:
            for i, t in enumerate(out):
                if (
                    t.effect == s.effect
                    and t.conditions == s.conditions
                    and not (t.not_action or s.not_action or t.not_resource or s.not_resource)
                ):
                    if t.actions == s.actions:
                        out[i] = replace(
                            t, resources=tuple(sorted(set(t.resources) | set(s.resources)))
                        )
                        changed = True
                        break
                    if t.resources == s.resources:
                        out[i] = replace(
                            t,
                            actions=tuple(sorted(set(t.actions) | set(s.actions), key=str.lower)),
                        )
                        changed = True
                        break
            else:
                out.append(s)
        current = out
    return tuple(current)


__all__ = [
    "ALLOW",
    "DENY",
    "OPERATORS",
    "POLICY_LIMIT",
    "SESSION_POLICY_LIMIT",
    "Condition",
    "Policy",
    "Statement",
    "canonical",
    "dumps_compact",
    "loads_lenient",
    "merge_statements",
    "normalize_action",
    "parse_policy",
    "sorted_statements",
]
