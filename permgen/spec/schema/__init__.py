"""The JSON Schema of spec version 1, and its errors translated into messages a person can
act on. A valid spec is checked by the generated :mod:`permgen.spec.schema._compiled` alone
(it imports nothing but ``re``); jsonschema is imported only to explain an invalid one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from permgen.spec.types import Problem


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of spec version 1."""
    text = (Path(__file__).parent / "spec-v1.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def schema_problems(data: Any) -> list[Problem]:
    """Every schema violation, with a message a person can act on."""
    fast = _fast_validator()
    fast_error: Any = None
    if fast is not None:
        try:
            fast(data)
            return []
        except ValueError as exc:  # the generated validator's JsonSchemaValueException
            fast_error = exc
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema())
    validator = validator_cls(schema())
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        problems.extend(_explain(error))
    # "missing 'grants'" and "unknown key 'grant'; did you mean 'grants'?" are one mistake.
    meant = {(p.path[:-1], p.suggests) for p in problems if p.suggests}
    problems = [p for p in problems if not (p.missing and (p.path, p.missing) in meant)]
    if not problems and fast_error is not None:
        # The two disagree only where Python's re differs from ECMA-262 (a "$" before a
        # trailing newline): the stricter reading wins.
        problems.append(_fast_problem(fast_error))
    return problems


def _fast_problem(exc: Any) -> Problem:
    name = str(getattr(exc, "name", "") or "data")
    parts: list[Any] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]", name[len("data") :]):
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    definition = getattr(exc, "definition", None) or {}
    expected = definition.get("x-expected") if isinstance(definition, dict) else None
    value = getattr(exc, "value", None)
    return Problem(tuple(parts), f"{show(value)} is not {expected or 'valid here'}")


def _fast_validator() -> Any:
    """A compiled validator for the common case of a valid spec, or None.

    jsonschema is the source of truth for messages; this only answers "valid or not"
    quickly, so a valid spec never pays for importing jsonschema.
    """
    try:
        from permgen.spec.schema import _compiled
    except ImportError:  # pragma: no cover - the generated module ships with the package
        return None
    return _compiled.validate


def _explain(error: Any) -> Iterator[Problem]:
    import difflib

    path = tuple(error.absolute_path)
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    validator = error.validator
    if "propertyNames" in tuple(error.absolute_schema_path):
        # The error is about a key itself: point at the key.
        yield Problem(
            path + (error.instance,), f"{show(error.instance)} is not {expected or 'a valid name'}"
        )
        return
    if validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extras = (
            [k for k in error.instance if k not in allowed]
            if isinstance(error.instance, dict)
            else []
        )
        for key in extras:
            hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            where = (
                f"; did you mean {hint[0]!r}?"
                if hint
                else f" (expected one of: {', '.join(allowed)})"
            )
            yield Problem(
                path + (key,), f"unknown key {key!r}{where}", suggests=hint[0] if hint else None
            )
        return
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield Problem(path, f"missing required key {missing!r}", missing=missing)
        return
    if validator == "type":
        got = json_type(error.instance)
        want = error.validator_value
        want_text = " or ".join(want) if isinstance(want, list) else want
        text = f"expected {expected or want_text}, got {got}"
        if want == "string" and got in ("integer", "number"):
            text += " (put the value in quotes)"
        yield Problem(path, text)
        return
    if validator in ("pattern", "const", "enum", "minimum", "maximum", "minLength", "maxLength"):
        yield Problem(path, f"{show(error.instance)} is not {expected or error.message}")
        return
    if validator in ("minItems", "minProperties"):
        yield Problem(path, f"must not be empty: expected {expected or error.message}")
        return
    yield Problem(path, f"{error.message}" + (f" (expected {expected})" if expected else ""))


def json_type(value: Any, *, mapping: str = "mapping") -> str:
    """What a loaded YAML or JSON value is, for messages (``mapping``: the word for a dict)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return mapping
    return type(value).__name__


def show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
