"""Loading and validating role specs (format version 1).

A spec is YAML, loaded safely with the position of every key and list item kept, checked
against the JSON Schema shipped in ``permgen/schema/spec-v1.json``, then checked for what a
schema cannot say (CIDR blocks, placeholders, options per template). Every problem becomes a
:class:`~permgen.errors.SpecError` naming the file, line, column and path
(``roles.ingest-writer.grants[0].bucket``) and what was expected; when there are several,
all are reported at once, in file order.

The result is a frozen :class:`Spec`: nothing downstream sees raw YAML.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath
from typing import Any

import yaml

from permgen.errors import SpecError

BUILTIN_TEMPLATES = ("reader", "writer", "temporary-uploader")

#: Options each built-in template takes, with their defaults (DESIGN section 2).
BUILTIN_OPTIONS: dict[str, dict[str, bool]] = {
    "reader": {"versions": False, "browse": False},
    "writer": {"read": True, "delete": False, "versions": False, "browse": False},
    "temporary-uploader": {},
}

#: A placeholder value can never widen a grant: no wildcard, slash, dot-dot or ``${``.
#: Validators are applied with ``fullmatch`` (never ``match`` with ``$``, which accepts a
#: trailing newline).
PLACEHOLDER_VALUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
PLACEHOLDER_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Conditions:
    source_ip: tuple[str, ...] = ()
    source_vpc: tuple[str, ...] = ()
    secure_transport: bool = False


@dataclass(frozen=True)
class Grant:
    bucket: str
    prefixes: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class StsBlock:
    role_arn: str
    duration: int = 3600


@dataclass(frozen=True)
class Role:
    name: str
    template: str
    grants: tuple[Grant, ...]
    description: str = ""
    options: tuple[tuple[str, bool | str | int], ...] = ()
    conditions: Conditions = Conditions()
    account: str = "*"
    attach: tuple[str, ...] = ()
    sts: StsBlock | None = None
    line: int | None = None

    @property
    def option_map(self) -> dict[str, bool | str | int]:
        return dict(self.options)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Placeholder names used in this role's prefixes, in first-use order."""
        seen: dict[str, None] = {}
        for grant in self.grants:
            for prefix in grant.prefixes:
                for name in PLACEHOLDER_RE.findall(prefix):
                    seen.setdefault(name, None)
        return tuple(seen)


@dataclass(frozen=True)
class Spec:
    path: str
    roles: Mapping[str, Role]
    templates_dir: Path | None = None
    source: str = field(default="", repr=False, compare=False)
    #: The spec's ``defaults`` and ``templates`` entries as written (for review's
    #: "what changed for every role" notes).
    defaults: Any = field(default=None, repr=False, compare=False)
    templates_entry: str | None = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------- YAML with positions


class _Positions:
    """Where each key and list item of a loaded document stands (1-based line, column)."""

    def __init__(self) -> None:
        self.by_id: dict[int, dict[Any, tuple[int, int]]] = {}
        self.keep: list[Any] = []  # keep containers alive so their ids stay unique

    def record(self, container: Any, key: Any, mark: yaml.Mark) -> None:
        table = self.by_id.get(id(container))
        if table is None:
            table = self.by_id[id(container)] = {}
            self.keep.append(container)
        table[key] = (mark.line + 1, mark.column + 1)

    def locate(self, root: Any, path: tuple[Any, ...]) -> tuple[int | None, int | None]:
        """The position of the deepest element of ``path`` that exists."""
        node = root
        best: tuple[int | None, int | None] = (None, None)
        for part in path:
            table = self.by_id.get(id(node))
            if table is None or part not in table:
                break
            best = table[part]
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        return best


_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Implicit tags of plain scalars already resolved in this process, by their text.
_TAGS: dict[str, str] = {}


class _BaseLoader(_SafeLoader):  # type: ignore[misc]
    """The safe loader, with the implicit tag of a plain scalar remembered by its text.

    Resolving runs a chain of regular expressions per scalar, and a spec repeats the same
    keys and values (``template``, ``reader``, ``true``) many times. The safe loader has no
    path resolvers, so a plain scalar's tag depends on its text alone.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = _TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_TAGS) < 65536:
                    _TAGS[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
#: The longest integer a spec may write, in characters: Python refuses to print an integer
#: of more than 4,300 digits, and no value in a spec needs more than a few.
MAX_INT_CHARS = 64
#: Nodes a document may expand to, aliases included: a "billion laughs" stops here.
MAX_NODES = 200_000


class _Builder:
    """Turns the composed YAML node tree into plain values, recording positions.

    Composition (the C parser) does the scanning and tag resolution; building the values
    here, in one tight recursive walk, is about twice as fast as PyYAML's generic
    constructor, and gives every key and item its position for error messages.
    Non-string scalars go through the safe constructor's own functions, so YAML's
    meaning is unchanged; tags the safe loader does not know are refused.
    """

    def __init__(self, loader: Any, positions: _Positions, source: str) -> None:
        self.loader = loader
        self.positions = positions
        self.source = source
        self.constructors = loader.yaml_constructors
        self.count = 0

    def error(self, message: str, mark: yaml.Mark) -> SpecError:
        return SpecError(message, file=self.source, line=mark.line + 1, column=mark.column + 1)

    def build(self, node: yaml.Node) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(
                f"the document expands to more than {MAX_NODES} values (aliases?)", node.start_mark
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            if node.tag == _INT_TAG and len(node.value) > MAX_INT_CHARS:
                raise self.error(
                    f"an integer of {len(node.value)} characters (at most {MAX_INT_CHARS})",
                    node.start_mark,
                )
            constructor = self.constructors.get(node.tag)
            if constructor is None:
                raise self.error(
                    f"not valid YAML: the tag {node.tag!r} is not allowed", node.start_mark
                )
            return constructor(self.loader, node)
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            record = self.positions.record
            for i, child in enumerate(node.value):
                items.append(self.build(child))
                record(items, i, child.start_mark)
            return items
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                raise self.error(
                    f"not valid YAML: the tag {node.tag!r} is not allowed", node.start_mark
                )
            explicit = {id(k) for k, _ in node.value}
            self.loader.flatten_mapping(node)
            data: dict[Any, Any] = {}
            written: set[Any] = set()  # keys written explicitly (merged ones may be overridden)
            for key_node, value_node in node.value:
                key = self.build(key_node)
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise self.error("a mapping key must be a plain value", key_node.start_mark)
                if id(key_node) in explicit:
                    if key in written:
                        raise self.error(f"duplicate key {key!r}", key_node.start_mark)
                    written.add(key)
                data[key] = self.build(value_node)
                self.positions.record(data, key, key_node.start_mark)
            return data
        raise self.error("not valid YAML", node.start_mark)  # pragma: no cover


def load_yaml(text: str, source: str) -> tuple[Any, _Positions]:
    positions = _Positions()
    loader = _BaseLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else _Builder(loader, positions, source).build(node)
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "not valid YAML"
        if exc.context:
            problem = f"{exc.context}, {problem}"
        raise SpecError(
            f"not valid YAML: {problem}",
            file=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        before = text[: exc.position]
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise SpecError(
            f"not valid YAML: character #x{char:04x} is not allowed ({exc.reason})",
            file=source,
            line=before.count("\n") + 1,
            column=exc.position - (before.rfind("\n") + 1) + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {' '.join(str(exc).split())}", file=source) from None
    except RecursionError:
        raise SpecError("not valid YAML: nested too deeply", file=source) from None
    finally:
        loader.dispose()
    return data, positions


# --------------------------------------------------------------------------- schema


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of spec version 1."""
    text = (Path(__file__).parent / "schema" / "spec-v1.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def format_path(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class _Problem:
    path: tuple[Any, ...]
    message: str
    locate: tuple[Any, ...] | None = None  # where to point, when not at ``path``
    suggests: str | None = None  # an unknown key's likely meaning
    missing: str | None = None  # a required key that is absent


def _schema_problems(data: Any) -> list[_Problem]:
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
    problems: list[_Problem] = []
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


def _fast_problem(exc: Any) -> _Problem:
    name = str(getattr(exc, "name", "") or "data")
    parts: list[Any] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]", name[len("data") :]):
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    definition = getattr(exc, "definition", None) or {}
    expected = definition.get("x-expected") if isinstance(definition, dict) else None
    value = getattr(exc, "value", None)
    return _Problem(tuple(parts), f"{_show(value)} is not {expected or 'valid here'}")


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


def _explain(error: Any) -> Iterator[_Problem]:
    import difflib

    path = tuple(error.absolute_path)
    expected = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    validator = error.validator
    if "propertyNames" in tuple(error.absolute_schema_path):
        # The error is about a key itself: point at the key.
        yield _Problem(
            path + (error.instance,), f"{_show(error.instance)} is not {expected or 'a valid name'}"
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
            yield _Problem(
                path + (key,), f"unknown key {key!r}{where}", suggests=hint[0] if hint else None
            )
        return
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield _Problem(path, f"missing required key {missing!r}", missing=missing)
        return
    if validator == "type":
        got = _json_type(error.instance)
        want = error.validator_value
        want_text = " or ".join(want) if isinstance(want, list) else want
        text = f"expected {expected or want_text}, got {got}"
        if want == "string" and got in ("integer", "number"):
            text += " (put the value in quotes)"
        yield _Problem(path, text)
        return
    if validator in ("pattern", "const", "enum", "minimum", "maximum", "minLength", "maxLength"):
        yield _Problem(path, f"{_show(error.instance)} is not {expected or error.message}")
        return
    if validator in ("minItems", "minProperties"):
        yield _Problem(path, f"must not be empty: expected {expected or error.message}")
        return
    yield _Problem(path, f"{error.message}" + (f" (expected {expected})" if expected else ""))


def _json_type(value: Any) -> str:
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
        return "mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool)) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- semantic checks


def _check_cidr(value: str) -> str | None:
    import ipaddress

    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=True)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        if "/" in value:
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return f"{value!r} is not an IP address or CIDR block"
            return f"{value!r} has host bits set; did you mean {str(net)!r}?"
        return f"{value!r} is not an IP address or CIDR block"
    return None


def _check_prefix(prefix: str) -> str | None:
    if prefix.startswith("/"):
        return f"{prefix!r}: object keys do not start with '/'"
    if "*" in prefix or "?" in prefix:
        return f"{prefix!r}: wildcards are not allowed in prefixes (a prefix already covers everything below it)"
    if any(part == ".." for part in prefix.split("/")):
        return f"{prefix!r}: '..' is not allowed in prefixes"
    if "${" in prefix:
        return f"{prefix!r}: '${{' is not allowed in prefixes"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix):
        return f"{prefix!r}: control characters are not allowed in prefixes"
    rest = PLACEHOLDER_RE.sub("", prefix)
    if "{" in rest or "}" in rest:
        return f"{prefix!r}: unbalanced '{{' or '}}' (placeholders are written {{name}})"
    for name in PLACEHOLDER_RE.findall(prefix):
        if not PLACEHOLDER_NAME_RE.fullmatch(name):
            return f"{prefix!r}: {{{name}}} is not a valid placeholder name (letters, digits, _)"
    return None


def _semantic_problems(data: dict[str, Any], user_templates: set[str] | None) -> list[_Problem]:
    import difflib

    problems: list[_Problem] = []
    defaults = data.get("defaults") or {}

    def conditions_problems(block: Any, base: tuple[Any, ...]) -> None:
        if not isinstance(block, dict):
            return
        for i, ip in enumerate(block.get("source_ip") or []):
            msg = _check_cidr(ip)
            if msg:
                problems.append(_Problem(base + ("source_ip", i), msg))

    conditions_problems(defaults.get("conditions"), ("defaults", "conditions"))
    for name, role in (data.get("roles") or {}).items():
        base: tuple[Any, ...] = ("roles", name)
        conditions_problems(role.get("conditions"), base + ("conditions",))
        template = role["template"]
        has_sts = "sts" in role
        for gi, grant in enumerate(role["grants"]):
            for pi, prefix in enumerate(grant.get("prefixes", [""])):
                where = base + ("grants", gi, "prefixes", pi)
                msg = _check_prefix(prefix)
                if msg:
                    problems.append(_Problem(where, msg))
                    continue
                names = PLACEHOLDER_RE.findall(prefix)
                if names and not has_sts:
                    problems.append(
                        _Problem(
                            where,
                            f"placeholder {{{names[0]}}} is only allowed in a role with an sts: block "
                            "(placeholders are filled in when a token is minted)",
                        )
                    )
        if template in BUILTIN_OPTIONS:
            allowed = BUILTIN_OPTIONS[template]
            for key, value in (role.get("options") or {}).items():
                if key not in allowed:
                    hint = difflib.get_close_matches(key, list(allowed), n=1)
                    takes = ", ".join(allowed) or "no options"
                    extra = f"; did you mean {hint[0]!r}?" if hint else f" (it takes: {takes})"
                    problems.append(
                        _Problem(
                            base + ("options", key),
                            f"template {template} has no option {key!r}{extra}",
                        )
                    )
                elif not isinstance(value, bool):
                    problems.append(
                        _Problem(
                            base + ("options", key), f"expected true or false, got {_show(value)}"
                        )
                    )
        elif user_templates is not None and template not in user_templates:
            choices = list(dict.fromkeys([*BUILTIN_TEMPLATES, *sorted(user_templates)]))
            hint = difflib.get_close_matches(template, choices, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(choices)})"
            problems.append(_Problem(base + ("template",), f"unknown template {template!r}{extra}"))
    return problems


# --------------------------------------------------------------------------- building values


def _conditions(block: Mapping[str, Any] | None, base: Conditions) -> Conditions:
    if not block:
        return base
    return Conditions(
        source_ip=tuple(block["source_ip"]) if "source_ip" in block else base.source_ip,
        source_vpc=tuple(block["source_vpc"]) if "source_vpc" in block else base.source_vpc,
        secure_transport=block.get("secure_transport", base.secure_transport),
    )


def _build(
    data: dict[str, Any], path: str, positions: _Positions, templates_dir: Path | None, text: str
) -> Spec:
    defaults = data.get("defaults") or {}
    default_conditions = _conditions(defaults.get("conditions"), Conditions())
    account = defaults.get("account", "*")
    roles: dict[str, Role] = {}
    for name, raw in data["roles"].items():
        template = raw["template"]
        options: dict[str, bool | str | int] = dict(BUILTIN_OPTIONS.get(template, {}))
        options.update(raw.get("options") or {})
        sts = raw.get("sts")
        roles[name] = Role(
            name=name,
            template=template,
            grants=tuple(
                Grant(bucket=g["bucket"], prefixes=tuple(g.get("prefixes", [""])))
                for g in raw["grants"]
            ),
            description=raw.get("description", ""),
            options=tuple(sorted(options.items())),
            conditions=_conditions(raw.get("conditions"), default_conditions),
            account=account,
            attach=tuple(raw.get("attach") or ()),
            sts=StsBlock(role_arn=sts["role_arn"], duration=int(sts.get("duration", 3600)))
            if sts
            else None,
            line=positions.locate(data, ("roles", name))[0],
        )
    return Spec(
        path=path,
        roles=roles,
        templates_dir=templates_dir,
        source=text,
        defaults=data.get("defaults"),
        templates_entry=data.get("templates"),
    )


def _raise(problems: list[_Problem], data: Any, positions: _Positions, source: str) -> None:
    if not problems:
        return
    located = []
    for p in problems:
        line, col = positions.locate(data, p.locate or p.path)
        located.append((line or 0, col or 0, p))
    located.sort(key=lambda t: (t[0], t[1]))
    errors = [
        SpecError(
            p.message, file=source, line=line or None, column=col or None, path=format_path(p.path)
        )
        for line, col, p in located
    ]
    first = errors[0]
    if len(errors) > 1:
        rest = "\n".join(f"  {e}" for e in errors[1:])
        raise SpecError(
            f"{first.detail}\n{rest}",
            file=first.file,
            line=first.line,
            column=first.column,
            path=first.path,
        )
    raise first


def user_template_names(directory: Path | None) -> set[str]:
    """Names of the user templates in ``directory`` (``<name>.json.j2``)."""
    if directory is None or not directory.is_dir():
        return set()
    return {p.name[: -len(".json.j2")] for p in directory.glob("*.json.j2")}


def project_root(directory: Path) -> Path:
    """The top of the git work tree that holds ``directory`` (the nearest folder with a
    ``.git`` entry; git refuses to track one, so a change cannot move it), else ``directory``."""
    d = directory.resolve()
    for candidate in (d, *d.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return d


def templates_folder_problem(base_dir: Path, entry: str, root: Path | None = None) -> str | None:
    """Why the spec's ``templates:`` entry may not be used, or None.

    The folder must be reached from the spec's folder without passing through a symlink
    and must be inside the project (``root``, default :func:`project_root`): a spec (in a
    pull request, say) cannot point its templates at ``/proc/self`` or outside the repository.
    """
    here = base_dir.resolve()
    top = (root or project_root(here)).resolve()
    current = Path(here.anchor) if os.path.isabs(entry) else here
    for part in PurePath(entry).parts:
        if part in (".", ""):
            continue
        if os.path.isabs(part):
            current = Path(part)
            continue
        current = current.parent if part == ".." else current / part
        if part != ".." and current.is_symlink():
            return (
                f"{entry!r} passes through the symlink {str(current)!r}; the templates folder "
                "must be a real directory"
            )
    inside = current.relative_to(top).parts if current == top or top in current.parents else None
    if inside is not None and any(p.lower() == ".git" for p in inside):
        return f"{entry!r} is inside a .git folder (git's own files, which may hold credentials)"
    if inside is None:
        return (
            f"{entry!r} is outside the project folder {str(top)!r} (the git work tree that "
            "holds the spec, or the spec's own folder)"
        )
    return None


def parse_spec(
    text: str,
    *,
    source: str = "<spec>",
    base_dir: Path | None = None,
    templates_dir: Path | None = None,
    root: Path | None = None,
) -> Spec:
    """Load and validate a spec from YAML text.

    ``root`` bounds the spec's ``templates:`` folder (default: :func:`project_root` of
    ``base_dir``); a ``templates_dir`` given by the caller is used as it is."""
    data, positions = load_yaml(text, source)
    if data is None:
        raise SpecError("the spec is empty (expected version: 1 and roles:)", file=source)
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping at the top, got {_json_type(data)}", file=source, line=1
        )
    _raise(_schema_problems(data), data, positions, source)
    if templates_dir is None and "templates" in data:
        problem = templates_folder_problem(base_dir or Path("."), data["templates"], root)
        if problem:
            _raise([_Problem(("templates",), problem)], data, positions, source)
        templates_dir = (base_dir or Path(".")) / data["templates"]
        if not templates_dir.is_dir():
            _raise(
                [
                    _Problem(
                        ("templates",),
                        f"{data['templates']!r} is not a directory (resolved to {templates_dir})",
                    )
                ],
                data,
                positions,
                source,
            )
    names = user_template_names(templates_dir)
    _raise(_semantic_problems(data, names), data, positions, source)
    return _build(data, source, positions, templates_dir, text)


def load_spec(
    path: str | Path, *, templates_dir: Path | None = None, root: Path | None = None
) -> Spec:
    """Read, load and validate a spec file (``root``: see :func:`parse_spec`)."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, expected a spec file", file=str(path)) from None
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", file=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return parse_spec(
        text, source=str(path), base_dir=p.parent, templates_dir=templates_dir, root=root
    )


def check_placeholder_value(name: str, value: str) -> str | None:
    """Why ``value`` may not fill ``{name}``, or None when it may."""
    if PLACEHOLDER_VALUE_RE.fullmatch(value) and ".." not in value:
        return None
    if not value:
        return f"--var {name}: the value is empty"
    if len(value) > 64:
        return f"--var {name}: the value is {len(value)} characters; at most 64 are allowed"
    return (
        f"--var {name}={value!r}: a placeholder value must match "
        f"{PLACEHOLDER_VALUE_RE.pattern} (no '*', '?', '/', '..' or '${{'), so it can never widen a grant"
    )


__all__ = [
    "BUILTIN_OPTIONS",
    "BUILTIN_TEMPLATES",
    "PLACEHOLDER_VALUE_RE",
    "Conditions",
    "Grant",
    "Role",
    "Spec",
    "StsBlock",
    "check_placeholder_value",
    "format_path",
    "load_spec",
    "parse_spec",
    "schema",
    "user_template_names",
]
