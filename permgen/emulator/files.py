"""The emulator's start-up files: ``--state`` (JSON the emulator wrote) and ``--seed`` (YAML).

Both are checked against a JSON Schema before anything is created from them, so a file of
the wrong shape (``[]``, ``null``, a string where a list belongs, an unknown key, a fault's
``status: high``) is an :class:`~permgen.errors.InputError` (exit 2) naming the file and the
key path, never a traceback. :func:`prepare` is everything ``permgen emulator`` does before
it listens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from permgen.emulator.backend import Backend
from permgen.emulator.state import EmulatorError
from permgen.errors import InputError, PolicyParseError, SpecError

_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_NULLABLE_STR = {"type": ["string", "null"]}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


#: What :meth:`Backend.dump` writes.
STATE_SCHEMA: dict[str, Any] = _obj(
    {
        "version": {"const": 1},
        "counter": {"type": "integer", "minimum": 0},
        "keys": _list(
            _obj(
                {
                    "key_id": _STR,
                    "secret": _STR,
                    "principal": _STR,
                    "token": _NULLABLE_STR,
                    "expires": {"type": ["number", "null"]},
                    "session_policy": _NULLABLE_STR,
                },
                ("key_id", "secret", "principal"),
            )
        ),
        "users": {"type": "object", "additionalProperties": _STR},
        "groups": {"type": "object", "additionalProperties": _STRS},
        "roles": _list(
            _obj(
                {
                    "name": _STR,
                    "trust": {"type": "object"},
                    "max_session": {"type": "integer"},
                    "role_id": _STR,
                },
                ("name", "trust"),
            )
        ),
        "policies": _list(
            _obj(
                {
                    "name": _STR,
                    "type": {"const": "Custom"},
                    "description": _STR,
                    "versions": {"type": "object", "additionalProperties": _STR},
                    "default": _STR,
                    "created": _STR,
                    "next_version": {"type": "integer", "minimum": 1},
                },
                ("name", "type", "description", "versions", "default"),
            )
        ),
        "attachments": _list(
            _obj(
                {
                    "kind": {"enum": ["User", "Group", "Role"]},
                    "name": _STR,
                    "policies": _list(
                        {
                            "type": "array",
                            "prefixItems": [{"enum": ["System", "Custom"]}, _STR],
                            "minItems": 2,
                            "maxItems": 2,
                        }
                    ),
                },
                ("kind", "name", "policies"),
            )
        ),
    }
)

#: The seed file (docs/emulator.md, "Seed and state files").
SEED_SCHEMA: dict[str, Any] = _obj(
    {
        "groups": _STRS,
        "users": _list(
            _obj(
                {
                    "name": _STR,
                    "groups": _STRS,
                    "access_keys": _list(_obj({"id": _STR, "secret": _STR}, ("id", "secret"))),
                },
                ("name",),
            )
        ),
        "roles": _list(
            _obj(
                {
                    "name": _STR,
                    "trust": {"type": "object"},
                    "trusted": {"anyOf": [_STR, _STRS]},
                    "max_session": {"type": "integer"},
                },
                ("name",),
            )
        ),
        "policies": _list(
            _obj(
                {"name": _STR, "document": {"type": "object"}, "description": _STR},
                ("name", "document"),
            )
        ),
        "attachments": _list(
            _obj(
                {
                    "policy": _STR,
                    "type": {"enum": ["System", "Custom"]},
                    "to": {"type": "string", "pattern": "^(user|group|role):."},
                },
                ("policy", "to"),
            )
        ),
        "faults": _list(
            _obj(
                {
                    "action": _STR,
                    "code": _STR,
                    "status": {"type": "integer", "minimum": 100, "maximum": 599},
                    "times": {"type": "integer", "minimum": 0},
                    "delay": {"type": "number", "minimum": 0, "maximum": 600},
                    "drop": {"type": "boolean"},
                },
                ("action",),
            )
        ),
    }
)


def _path_text(path: Any) -> str:
    from permgen.spec.load import format_path

    return format_path(list(path)) or "(top level)"


def _first_error(data: Any, schema: dict[str, Any]) -> Any:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    return errors[0] if errors else None


_KINDS = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _kind(value: Any) -> str:
    """``a string``, ``an object`` ...: the value's JSON type with its article."""
    from permgen.spec.schema import json_type

    name = json_type(value, mapping="object")
    return name if name == "null" else ("an " if name[0] in "aeiou" else "a ") + name


def _message(error: Any) -> str:
    """What is wrong, without quoting the value (these files hold access key secrets)."""
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_KINDS.get(n, n) for n in names)
        return f"expected {wanted}, got {_kind(error.instance)}"
    if rule in ("const", "enum"):
        options = [expected] if rule == "const" else list(expected)
        return f"expected {' or '.join(json.dumps(o) for o in options)}"
    if rule == "pattern":
        return f"expected a string matching {expected}"
    if rule == "anyOf":
        return "expected a string or a list of strings"
    if rule in ("prefixItems", "minItems", "maxItems"):
        return "expected a [type, name] pair"
    if rule in ("minimum", "maximum"):
        return f"expected a {rule} of {expected}, got {error.instance}"[:120]
    if rule in ("required", "additionalProperties"):
        return " ".join(str(error.message).split())[:200]  # names keys, never values
    return f"not what the format allows ({rule})"


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def load_state(path: str | Path) -> dict[str, Any]:
    """Read and check a ``--state`` file."""
    p = Path(path)
    what = "the emulator state file"
    try:
        data = json.loads(_read(p, what), parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"{p}: {what} is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"{p}: {what} is not JSON: {exc}") from None
    error = _first_error(data, STATE_SCHEMA)
    if error is not None:
        raise InputError(
            f"{p}: not an emulator state file: {_path_text(error.absolute_path)}: {_message(error)}"
        )
    from permgen.policy.model import parse_policy

    for i, policy in enumerate(data.get("policies", [])):
        where = f"{p}: not an emulator state file: policies[{i}]"
        if policy["default"] not in policy["versions"]:
            raise InputError(f"{where}.default: no version {policy['default'][:80]!r}")
        for vid, document in policy["versions"].items():
            try:
                parse_policy(document)
            except (PolicyParseError, RecursionError) as exc:
                raise InputError(f"{where}.versions.{vid[:80]}: {exc}") from None
    return dict(data)


def load_seed(path: str | Path) -> dict[str, Any]:
    """Read and check a ``--seed`` file."""
    from permgen.spec.load import load_yaml

    p = Path(path)
    data, positions = load_yaml(_read(p, "the seed file"), str(p))
    if data is None:
        return {}
    error = _first_error(data, SEED_SCHEMA)
    if error is not None:
        line, column = positions.locate(data, tuple(error.absolute_path))
        raise SpecError(
            _message(error),
            file=str(p),
            line=line,
            column=column,
            path=_path_text(error.absolute_path),
        )
    return dict(data)


def prepare(
    state_file: str | None, seed_file: str | None, backend: Backend | None = None
) -> tuple[Backend, list[dict[str, Any]]]:
    """The account ``--state`` and ``--seed`` describe, and the seed's faults."""
    backend = backend or Backend()
    if state_file and Path(state_file).exists():
        data = load_state(state_file)
        try:
            backend.load(data)
        except (ValueError, KeyError, TypeError) as exc:  # the schema should have said so
            raise InputError(f"{state_file}: not an emulator state file: {exc!r}") from None
    faults: list[dict[str, Any]] = []
    if seed_file:
        data = load_seed(seed_file)
        try:
            faults = backend.seed(data)
        except EmulatorError as exc:
            raise InputError(f"{seed_file}: {exc.code}: {exc.message}") from None
        except (ValueError, KeyError, TypeError) as exc:  # the schema should have said so
            raise InputError(f"{seed_file}: unexpected shape: {exc!r}") from None
    return backend, faults


__all__ = ["SEED_SCHEMA", "STATE_SCHEMA", "load_seed", "load_state", "prepare"]
