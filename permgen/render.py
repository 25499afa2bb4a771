"""Rendering templates into policy text with jinja2.

Values reach JSON only through JSON encoding: the environment's ``finalize`` hook
JSON-encodes the result of every ``{{ expression }}``; macro output (markup produced by
the template itself) passes through unchanged; the ``safe`` and ``escape`` filters, the
only ways to turn a value into markup, are removed. Templates run in jinja2's immutable
sandbox with strict undefined variables, so a typo is an error, not an empty string.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
from markupsafe import Markup

from permgen.errors import SpecError

TEMPLATE_SUFFIX = ".json.j2"


def builtin_templates_dir() -> Path:
    """Where the built-in templates are: inside the installed package, or the source tree."""
    here = Path(__file__).resolve().parent
    installed = here / "_templates"
    if installed.is_dir():
        return installed
    return here.parent / "templates"


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError, naming the variable
    return Markup(json.dumps(value, ensure_ascii=False))


class _Loader(jinja2.BaseLoader):
    """Built-in templates by name from the package; user templates from one directory.

    A user template cannot shadow a built-in one or the shared ``_lib.j2``.
    """

    def __init__(self, builtin: Path, user: Path | None) -> None:
        self.builtin = jinja2.FileSystemLoader(str(builtin))
        self.builtin_names = {p.name for p in builtin.iterdir()}
        self.user = jinja2.FileSystemLoader(str(user)) if user else None

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Any]:
        if template in self.builtin_names or self.user is None:
            return self.builtin.get_source(environment, template)
        return self.user.get_source(environment, template)


@cache
def environment(user_dir: Path | None) -> jinja2.Environment:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=_Loader(builtin_templates_dir(), user_dir),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    for name in ("safe", "escape", "e", "forceescape", "urlize", "xmlattr"):
        env.filters.pop(name, None)
    return env


def render(template: str, context: dict[str, Any], *, user_dir: Path | None, role: str) -> str:
    """Render template ``template`` (a name without suffix) for ``role``."""
    env = environment(user_dir.resolve() if user_dir else None)
    try:
        tpl = env.get_template(template + TEMPLATE_SUFFIX)
        return tpl.render(context)
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
    except (TypeError, ValueError) as exc:  # a value json.dumps cannot encode
        raise SpecError(
            f"template {template!r} produced a value that is not JSON: {exc}",
            path=f"roles.{role}.template",
        ) from None


__all__ = ["TEMPLATE_SUFFIX", "builtin_templates_dir", "environment", "render"]
