"""Rendering templates into policy text with jinja2.

Values reach JSON only through JSON encoding: the environment's ``finalize`` hook
JSON-encodes the result of every ``{{ expression }}``; macro output (markup produced by
the template itself) passes through unchanged; the ``safe`` and ``escape`` filters, the
only ways to turn a value into markup, are removed. Templates run in jinja2's immutable
sandbox with strict undefined variables, so a typo is an error, not an empty string.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from permgen.errors import SpecError
from permgen.spec.template_guard import BoundedSandbox, TemplateRefused, UserLoader, render_bounded

TEMPLATE_SUFFIX = ".json.j2"


def builtin_templates_dir() -> Path:
    """Where the built-in templates are: inside the installed package, or the source tree."""
    here = Path(__file__).resolve().parent
    installed = here / "_templates"
    if installed.is_dir():
        return installed
    return here.parents[1] / "templates"


_encode_str = json.encoder.encode_basestring  # the C string encoder json.dumps uses


def _to_json(value: Any) -> str:
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[" + ",".join(map(_encode_str, value)) + "]"
    return json.dumps(value, ensure_ascii=False)


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError, naming the variable
    return Markup(_to_json(value))


def _body(effect: str, actions: Any, resources: Any, conditions: Any) -> dict[str, Any]:
    body = {"Effect": effect, "Action": actions, "Resource": resources}
    if conditions:
        body["Condition"] = conditions
    return body


def _statement(effect: str, actions: Any, resources: Any, conditions: Any) -> Markup:
    return Markup(
        json.dumps(_body(effect, actions, resources, conditions), ensure_ascii=False) + ","
    )


def allow(actions: Any, resources: Any, conditions: Any = None) -> Markup:
    """``{{ allow(actions, resources, conditions) }}``: one Allow statement, JSON-encoded,
    followed by a comma (for user templates that write statements one by one)."""
    return _statement("Allow", actions, resources, conditions)


def deny(actions: Any, resources: Any, conditions: Any = None) -> Markup:
    """``{{ deny(actions, resources, conditions) }}``: one Deny statement, JSON-encoded,
    followed by a comma."""
    return _statement("Deny", actions, resources, conditions)


_NOTHING = Markup("")


class Statements(list[dict[str, Any]]):
    """A list of statements a template builds and emits once: ``{% set s = statements() %}``,
    ``{{ s.add("Allow", actions, resources, conditions) }}`` (which emits nothing), then
    ``{{ {"Version": "1", "Statement": s} }}``, one JSON encoding of the whole policy and no
    separators to get right. The ``_lib.j2`` macros take one as ``into``."""

    def add(self, effect: str, actions: Any, resources: Any, conditions: Any = None) -> Markup:
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"a statement's effect is Allow or Deny, not {effect!r}")
        self.append(_body(effect, actions, resources, conditions))
        return _NOTHING


def statements() -> Statements:
    """``statements()``: a new, empty :class:`Statements`."""
    return Statements()


def put(
    into: Statements | None, effect: str, actions: Any, resources: Any, conditions: Any = None
) -> Markup:
    """``{{ put(into, effect, ...) }}`` (the ``_lib.j2`` macros): add a statement to ``into``
    and emit nothing, or with no ``into`` emit it as :func:`allow`/:func:`deny` do."""
    if into is not None:
        return into.add(effect, actions, resources, conditions)
    if effect not in ("Allow", "Deny"):
        raise ValueError(f"a statement's effect is Allow or Deny, not {effect!r}")
    return _statement(effect, actions, resources, conditions)


class _Loader(jinja2.BaseLoader):
    """Built-in templates by name from the package; user templates from one directory.

    A user template cannot shadow a built-in one or the shared ``_lib.j2``. User templates
    are read under :func:`permgen.spec.template_guard.read_template`'s confinement rules.
    """

    def __init__(
        self, builtin: Path, user: Path | None, tracked: frozenset[str] | None = None
    ) -> None:
        self.builtin = jinja2.FileSystemLoader(str(builtin))
        self.builtin_names = {p.name for p in builtin.iterdir()}
        self.user = UserLoader(user, tracked) if user else None

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Any]:
        if template in self.builtin_names or self.user is None:
            return self.builtin.get_source(environment, template)
        return self.user.get_source(environment, template)


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    for name in ("safe", "escape", "e", "forceescape", "urlize", "xmlattr"):
        env.filters.pop(name, None)
    env.globals["allow"] = allow
    env.globals["deny"] = deny
    env.globals["statements"] = statements
    env.globals["put"] = put
    return env


_OPTIONS: dict[str, Any] = {
    "autoescape": True,
    "finalize": _finalize,
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
    "auto_reload": False,
}


@cache
def environment(user_dir: Path | None, tracked: frozenset[str] | None = None) -> jinja2.Environment:
    """The environment for user templates: jinja2's immutable sandbox, with bounds
    (``tracked``: see :func:`only_tracked`)."""
    env = BoundedSandbox(loader=_Loader(builtin_templates_dir(), user_dir, tracked), **_OPTIONS)
    return _configure(env)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's on-disk cache of compiled templates, keyed by source checksum.

    Compiling the built-in templates costs more than the rest of a small ``compile``; the
    cache (``$XDG_CACHE_HOME/permgen/jinja``, ``PERMGEN_CACHE_DIR`` to move it, ``off`` to
    disable) makes later runs load bytecode instead. A cache that cannot be written is
    simply not used.
    """
    import os

    setting = os.environ.get("PERMGEN_CACHE_DIR", "")
    if setting.lower() == "off":
        return None
    base = (
        Path(setting)
        if setting
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "permgen"
    )
    directory = base / "jinja"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(str(directory))


@cache
def builtin_environment() -> jinja2.Environment:
    """The environment for the built-in templates, which ship with permgen.

    The same encoding rules as for user templates, without the sandbox's per-call checks.
    """
    env = jinja2.Environment(
        loader=_Loader(builtin_templates_dir(), None), bytecode_cache=_bytecode_cache(), **_OPTIONS
    )
    return _configure(env)


_TRACKED: contextvars.ContextVar[tuple[Path, frozenset[str]] | None] = contextvars.ContextVar(
    "permgen_tracked_templates", default=None
)


@contextlib.contextmanager
def only_tracked(folder: Path, names: frozenset[str]) -> Iterator[None]:
    """Within the block, user templates in ``folder`` are read only if their name (relative
    to the folder) is in ``names``: ``review`` passes the files git tracks, so a pull
    request's templates cannot read a file the CI job left in the working tree."""
    token = _TRACKED.set((folder.resolve(), names))
    try:
        yield
    finally:
        _TRACKED.reset(token)


def render(template: str, context: dict[str, Any], *, user_dir: Path | None, role: str) -> str:
    """Render template ``template`` (a name without suffix) for ``role``."""
    from permgen.spec.types import BUILTIN_TEMPLATES

    trusted = template in BUILTIN_TEMPLATES
    if trusted:
        env = builtin_environment()
    else:
        folder = user_dir.resolve() if user_dir else None
        restriction = _TRACKED.get()
        tracked = restriction[1] if restriction and restriction[0] == folder else None
        env = environment(folder, tracked)
    try:
        tpl = env.get_template(template + TEMPLATE_SUFFIX)
        if trusted:
            return tpl.render(context)
        return render_bounded(tpl, context, template)
    except TemplateRefused as exc:
        raise SpecError(f"{exc} (role {role})", path=f"roles.{role}.template") from None
    except RecursionError:  # parsing or compiling a deeply nested template
        raise SpecError(
            f"template {template!r} is nested too deeply", path=f"roles.{role}.template"
        ) from None
    except jinja2.TemplateNotFound:
        raise SpecError(f"template {template!r} not found", path=f"roles.{role}.template") from None
    except jinja2.TemplateSyntaxError as exc:
        raise SpecError(
            f"template {template!r} has a syntax error: {exc.message}",
            file=exc.filename or exc.name,
            line=exc.lineno,
            path=f"roles.{role}.template",
        ) from None
    except jinja2.UndefinedError as exc:
        raise SpecError(
            f"template {template!r} failed for this role: {exc.message}",
            path=f"roles.{role}.template",
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise SpecError(
            f"template {template!r} tried something the sandbox does not allow: {exc}",
            path=f"roles.{role}.template",
        ) from None
    except jinja2.TemplateError as exc:
        raise SpecError(
            f"template {template!r} failed: {exc}", path=f"roles.{role}.template"
        ) from None
    except UnicodeDecodeError:
        raise SpecError(
            f"template {template!r}: the template file is not UTF-8 text",
            path=f"roles.{role}.template",
        ) from None
    except ArithmeticError as exc:  # 1 // 0, a float overflow
        raise SpecError(
            f"template {template!r} failed: {type(exc).__name__}: {exc}",
            path=f"roles.{role}.template",
        ) from None
    except (TypeError, ValueError) as exc:  # a value json.dumps cannot encode
        raise SpecError(
            f"template {template!r} produced a value that is not JSON: {exc}",
            path=f"roles.{role}.template",
        ) from None


__all__ = [
    "TEMPLATE_SUFFIX",
    "builtin_environment",
    "builtin_templates_dir",
    "environment",
    "only_tracked",
    "render",
]
