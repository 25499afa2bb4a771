"""Loading role specs (format version 1): YAML with positions, then every check, then values.

A spec is YAML, loaded safely with the position of every key and list item kept, checked
against the JSON Schema (:mod:`permgen.spec.schema`), then for what a schema cannot say
(:mod:`permgen.spec.checks`). Every problem becomes a :class:`~permgen.errors.SpecError`
naming the file, line, column and path (``roles.ingest-writer.grants[0].bucket``) and what
was expected; when there are several, all are reported at once, in file order.

The result is a frozen :class:`~permgen.spec.types.Spec`: nothing downstream sees raw YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from permgen.errors import SpecError
from permgen.spec.checks import semantic_problems, templates_folder_problem, user_template_names
from permgen.spec.schema import json_type, schema_problems
from permgen.spec.types import Problem, Spec, build

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


def format_path(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _raise(problems: list[Problem], data: Any, positions: _Positions, source: str) -> None:
    if not problems:
        return
    located = []
    for p in problems:
        line, col = positions.locate(data, p.path)
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
            f"expected a mapping at the top, got {json_type(data)}", file=source, line=1
        )
    _raise(schema_problems(data), data, positions, source)
    if templates_dir is None and "templates" in data:
        problem = templates_folder_problem(base_dir or Path("."), data["templates"], root)
        if problem:
            _raise([Problem(("templates",), problem)], data, positions, source)
        templates_dir = (base_dir or Path(".")) / data["templates"]
        if not templates_dir.is_dir():
            _raise(
                [
                    Problem(
                        ("templates",),
                        f"{data['templates']!r} is not a directory (resolved to {templates_dir})",
                    )
                ],
                data,
                positions,
                source,
            )
    names = user_template_names(templates_dir)
    _raise(semantic_problems(data, names), data, positions, source)
    return build(data, source, lambda path: positions.locate(data, path)[0], templates_dir, text)


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
