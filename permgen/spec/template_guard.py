"""Confinement and bounds for user templates.

User templates come from the repository a spec lives in, which in a pull request review is
whoever opened the pull request. Two things keep such a template from doing harm:

- **Confinement** (:func:`read_template`): a template is read only from a regular file
  inside the templates folder, found by walking the name one component at a time from the
  folder with ``O_NOFOLLOW``: no symlink (to a file or a directory, inside or outside the
  folder), no ``..`` or absolute name, no FIFO or device (opened non-blocking and checked
  with ``fstat``), no file with other hard links (it may be a file outside the folder), no
  file over :data:`MAX_TEMPLATE_BYTES`.
- **Bounds** (:class:`BoundedSandbox`): rendering one role has a wall-clock budget
  (:data:`RENDER_SECONDS`), an output cap (:data:`MAX_OUTPUT_BYTES`), a cap on the size of
  every value an operator, a call or a filter makes (:data:`MAX_VALUE_SIZE`), on ``range``
  (:data:`MAX_RANGE`), on loop iterations (:data:`MAX_LOOP_ITERATIONS`) and calls
  (:data:`MAX_CALLS`). Exceeding one raises :class:`TemplateRefused`, which ``render``
  turns into a :class:`~permgen.errors.SpecError` naming the template and the role.

The built-in templates ship in the package and are trusted; they do not go through this.
"""

from __future__ import annotations

import contextvars
import errno
import math
import os
import posixpath
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes
import jinja2.sandbox
from markupsafe import Markup, escape

from permgen.policy.model import POLICY_LIMIT

#: The largest user template file read, in bytes.
MAX_TEMPLATE_BYTES = 256 * 1024
#: Wall-clock budget for rendering one role's template, in seconds.
RENDER_SECONDS = 2.0
#: The most text one role's template may render: RAM's policy limit times 10 (room for
#: indentation and whitespace; the compact policy must still fit in the limit itself).
MAX_OUTPUT_BYTES = 10 * POLICY_LIMIT
#: The largest value (characters of a string, items plus characters of a list, dict or
#: tuple, counted deeply) any operator, call or filter in a template may produce or be
#: asked to produce.
MAX_VALUE_SIZE = MAX_OUTPUT_BYTES
#: The longest ``range()`` a template may make.
MAX_RANGE = 10_000
#: Loop iterations per role, all loops together.
MAX_LOOP_ITERATIONS = 100_000
#: Calls (macros, functions, methods, filters) per role.
MAX_CALLS = 100_000
#: Text a role's template may produce in all, counting each literal piece and each
#: ``{{ expression }}`` every time it runs, also inside macros and ``{% set %}`` blocks whose
#: text is used again (so a macro's text counts once where it is made and once where it is
#: output): 16 times :data:`MAX_OUTPUT_BYTES`.
MAX_PRODUCED = 16 * MAX_OUTPUT_BYTES
#: The largest integer operand of ``*`` or ``**`` and any integer argument, in bits.
MAX_INT_BITS = 256


class TemplateRefused(jinja2.TemplateError):
    """A user template broke a confinement rule or a bound; the message says which."""


# --------------------------------------------------------------------------- confinement


def _refuse(name: str, why: str) -> TemplateRefused:
    return TemplateRefused(f"template {name!r} {why}")


def _split(name: str) -> list[str]:
    if not name or "\x00" in name or "\\" in name:
        raise _refuse(name, "is not a valid template name")
    if name.startswith("/"):
        raise _refuse(name, "is an absolute name; templates are named relative to the folder")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _refuse(name, "has an empty, '.' or '..' component; it must stay in the folder")
    if any(p.lower() == ".git" for p in parts):
        raise _refuse(name, "is inside a .git folder (git's own files, which may hold credentials)")
    return parts


def _symlink_message(dir_fd: int, entry: str, walked: list[str], *, last: bool) -> str:
    try:
        target = os.readlink(entry, dir_fd=dir_fd)
    except OSError:
        target = "/"
    resolved = posixpath.normpath(posixpath.join(*walked, target) if walked else target)
    inside = not target.startswith("/") and resolved != ".." and not resolved.startswith("../")
    where = "inside" if inside else "to outside"
    what = "is a symlink" if last else f"passes through the symlink {'/'.join([*walked, entry])!r}"
    return f"{what} {where} the templates folder; templates must be regular files"


def read_template(folder: Path, name: str) -> str:
    """The text of template file ``name`` in ``folder``, read under the confinement rules.

    Raises :class:`jinja2.TemplateNotFound` when there is no such entry and
    :class:`TemplateRefused` when there is one that may not be read.
    """
    parts = _split(name)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        dir_fd = os.open(folder, flags | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        raise jinja2.TemplateNotFound(name) from None
    try:
        walked: list[str] = []
        for part in parts[:-1]:
            try:
                fd = os.open(part, flags | getattr(os, "O_DIRECTORY", 0) | nofollow, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT,):
                    raise jinja2.TemplateNotFound(name) from None
                if _is_symlink(part, dir_fd):
                    raise _refuse(
                        name, _symlink_message(dir_fd, part, walked, last=False)
                    ) from None
                raise _refuse(name, f"cannot be read: {exc.strerror}") from None
            os.close(dir_fd)
            dir_fd = fd
            walked.append(part)
        last = parts[-1]
        try:
            fd = os.open(last, flags | nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise jinja2.TemplateNotFound(name) from None
            if _is_symlink(last, dir_fd):
                raise _refuse(name, _symlink_message(dir_fd, last, walked, last=True)) from None
            raise _refuse(name, f"cannot be read: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _refuse(name, "is not a regular file")
            if st.st_nlink > 1:
                raise _refuse(
                    name,
                    "has other hard links (it may be a file outside the templates folder); "
                    "templates must be files of their own",
                )
            if st.st_size > MAX_TEMPLATE_BYTES:
                raise _refuse(name, f"is larger than {MAX_TEMPLATE_BYTES} bytes")
            data = _read_at_most(fd, MAX_TEMPLATE_BYTES + 1)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
    if len(data) > MAX_TEMPLATE_BYTES:
        raise _refuse(name, f"is larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(name, "is not UTF-8 text") from None


def _is_symlink(entry: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(entry, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = os.read(fd, min(65536, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class UserLoader(jinja2.BaseLoader):
    """User templates from one folder, read by :func:`read_template`; with ``tracked``,
    only those names (paths relative to the folder that git tracks)."""

    def __init__(self, folder: Path, tracked: frozenset[str] | None = None) -> None:
        self.folder = folder
        self.tracked = tracked

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        if self.tracked is not None and template not in self.tracked:
            _split(template)  # a name that leaves the folder says so first
            if not os.path.lexists(os.path.join(self.folder, template)):
                raise jinja2.TemplateNotFound(template)
            raise _refuse(
                template,
                "is not tracked by git; review reads only templates that git tracks (git add it)",
            )
        text = read_template(self.folder, template)
        return text, os.path.join(self.folder, template), lambda: True


# --------------------------------------------------------------------------- bounds


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0
    calls: int = 0
    produced: int = 0
    template: str = ""

    def tick_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateRefused(
                f"template {self.template!r} took longer than {RENDER_SECONDS:g} s to render"
            )

    def produce(self, n: int) -> None:
        self.produced += n
        if self.produced > MAX_PRODUCED:
            raise TemplateRefused(
                f"template {self.template!r} produced more than {MAX_PRODUCED} characters of "
                "text while rendering (in macros, blocks and output together)"
            )

    def call(self) -> None:
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise TemplateRefused(
                f"template {self.template!r} made more than {MAX_CALLS} calls while rendering"
            )
        self.tick_time()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "permgen_template_budget", default=None
)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # rendered without render_bounded: bounds on sizes only
        return _Budget(deadline=time.monotonic() + RENDER_SECONDS)
    return budget


def _too_big(what: str) -> TemplateRefused:
    name = _budget().template
    return TemplateRefused(
        f"template {name!r} would make {what} larger than {MAX_VALUE_SIZE} "
        "(characters and items; the limit on a template value)"
    )


def value_size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """How big ``value`` is (characters plus items, counted deeply); stops past ``limit``."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes):
            total += len(v)
        elif isinstance(v, dict):
            total += len(v)
            if total > limit:
                return total
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            total += len(v)
            if total > limit:
                return total
            stack.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            total += v.bit_length() // 8 + 1
        else:
            total += 1
        if total > limit:
            return total
    return total


def _check_value(value: Any, what: str = "a value") -> Any:
    sized = isinstance(value, str | list | tuple | dict | set | frozenset | bytes | int)
    if sized and value_size(value) > MAX_VALUE_SIZE:
        raise _too_big(what)
    return value


def _big_int() -> TemplateRefused:
    return TemplateRefused(
        f"template {_budget().template!r} would make an integer of more than {MAX_INT_BITS} bits"
    )


def _check_int(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _big_int()


def _check_arg(value: Any) -> None:
    """An argument to a call or filter: integers (widths, counts) at most the value cap."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE_SIZE:
        raise TemplateRefused(
            f"template {_budget().template!r} passed the number {value} as a width or a count; "
            f"the limit is {MAX_VALUE_SIZE}"
        )


_NUMBER = re.compile(r"\d+")


def _text_size(value: Any) -> int:
    """An upper bound on ``len(str(value))``: a string's length; for anything else a
    generous multiple of its size (quotes, commas and digits of a repr)."""
    return len(value) if isinstance(value, str) else value_size(value) * 8


def _format_estimate(fmt: str, args: Iterable[Any]) -> int:
    """An upper bound on the length of ``fmt % args`` or ``fmt.format(*args)``."""
    widest = max((int(n) for n in _NUMBER.findall(fmt[:10_000])), default=0)
    if widest > MAX_VALUE_SIZE or len(fmt) > MAX_VALUE_SIZE:
        return MAX_VALUE_SIZE + 1
    pieces = fmt.count("%") + fmt.count("{")
    biggest = max((_text_size(a) for a in args), default=0)
    return len(fmt) + pieces * (widest + biggest + 32)


def _estimate(name: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound on the size of a call's result, for the calls whose result can be
    a product of their inputs; 0 for the others (their results are checked afterwards)."""
    allargs = [*args, *kwargs.values()]
    if name == "join":
        items = list(target) if isinstance(target, list | tuple) else []
        sep = next((a for a in allargs if isinstance(a, str)), "")
        if isinstance(target, str):  # str.join(iterable): the separator is the target
            sep, items = target, list(args[0]) if args and isinstance(args[0], list | tuple) else []
        return len(sep) * len(items) + sum(_text_size(i) for i in items)
    if name == "replace":
        s = target if isinstance(target, str) else ""
        strs = [a for a in allargs if isinstance(a, str)]
        old, new = (strs + ["", ""])[:2]
        hits = s.count(old) if old else len(s) + 1
        return len(s) + hits * len(new)
    if name == "indent":
        s = target if isinstance(target, str) else ""
        width = allargs[0] if allargs else 4
        w = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
        return len(s) + (s.count("\n") + 1) * max(w, 0)
    if name == "expandtabs":
        s = target if isinstance(target, str) else ""
        w = allargs[0] if allargs and isinstance(allargs[0], int) else 8
        return len(s) + s.count("\t") * max(w, 0)
    if name == "format":
        fmt = target if isinstance(target, str) else ""
        if "*" in fmt:
            for a in allargs:
                _check_arg(a)
        return _format_estimate(fmt, allargs)
    return 0


#: The str methods a template may call; the others (``translate``, ``maketrans``,
#: ``encode``...) are refused. ``join``, ``replace``, ``format`` and the padding ones are
#: checked for the size they would make before they run.
STR_METHODS = frozenset(
    """capitalize casefold center count endswith find format index isalnum isalpha isascii
    isdecimal isdigit islower isnumeric isspace istitle isupper join ljust lower lstrip
    partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip
    split splitlines startswith strip swapcase title upper zfill""".split()
)


#: Filters whose integer arguments are widths or counts (checked against the value cap).
_WIDTH_FILTERS = frozenset({"batch", "center", "indent", "slice", "truncate", "wordwrap"})


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    # jinja passes the environment, context or eval context first to some filters
    # (marked with pass_environment and the like); the wrapper keeps the marking.
    pass_arg = getattr(func, "jinja_pass_arg", None)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.call()
        rest = args[1:] if pass_arg is not None else args
        target = rest[0] if rest else None
        if name in _WIDTH_FILTERS:
            for a in [*rest[1:], *kwargs.values()]:
                _check_arg(a)
        if _estimate(name, target, tuple(rest[1:]), kwargs) > MAX_VALUE_SIZE:
            raise _too_big(f"the result of the {name!r} filter")
        result = func(*args, **kwargs)
        if isinstance(result, Iterator | range):
            result = list(result)
        return _check_value(result, f"the result of the {name!r} filter")

    wrapper.__name__ = getattr(func, "__name__", name)
    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapper


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateRefused(
            f"template {_budget().template!r} asked for a range of {len(rng)} items; "
            f"the limit is {MAX_RANGE}"
        )
    return rng


def _bounded_iter(iterable: Any) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.iterations += 1
        if budget.iterations > MAX_LOOP_ITERATIONS:
            raise TemplateRefused(
                f"template {budget.template!r} ran more than {MAX_LOOP_ITERATIONS} loop iterations"
            )
        budget.tick_time()
        yield item


def _bounded_concat(*parts: Any) -> Any:
    """``a ~ b``, as jinja's ``markup_join`` does it, after checking the size."""
    total = 0
    for p in parts:
        total += _text_size(p)
        if total > MAX_VALUE_SIZE:
            raise _too_big("a string with '~'")
    if any(isinstance(p, Markup) for p in parts):
        return Markup("").join(escape(p) for p in parts)
    return "".join(map(str, parts))


class BoundedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox with bounds on time, sizes, ranges, loops and calls."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.permgen_out = self._make_out()
        self.globals["range"] = _bounded_range
        for name in ("lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)
        self.filters = {n: _bounded_filter(n, f) for n, f in self.filters.items()}

    # for loops iterate through _bounded_iter; '~' checks its size first; literal text is
    # counted as it is produced (permgen_data), as expressions are (the finalize hook)
    def _parse(self, source: str, name: str | None, filename: str | None) -> jinja2.nodes.Template:
        tree = super()._parse(source, name, filename)
        for output in tree.find_all(jinja2.nodes.Output):
            output.nodes = [
                jinja2.nodes.Call(
                    jinja2.nodes.EnvironmentAttribute(
                        "permgen_data"
                        if isinstance(n, jinja2.nodes.TemplateData)
                        else "permgen_out"
                    ),
                    [jinja2.nodes.Const(n.data) if isinstance(n, jinja2.nodes.TemplateData) else n],
                    [],
                    None,
                    None,
                )
                for n in output.nodes
            ]
        for loop in tree.find_all(jinja2.nodes.For):
            loop.iter = jinja2.nodes.Call(
                jinja2.nodes.EnvironmentAttribute("permgen_iter"), [loop.iter], [], None, None
            )
        for concat in tree.find_all(jinja2.nodes.Concat):
            concat.nodes = [
                jinja2.nodes.Call(
                    jinja2.nodes.EnvironmentAttribute("permgen_concat"),
                    list(concat.nodes),
                    [],
                    None,
                    None,
                )
            ]
        return tree

    permgen_iter = staticmethod(_bounded_iter)

    permgen_concat = staticmethod(_bounded_concat)

    @staticmethod
    def permgen_data(text: str) -> Markup:
        """A piece of literal text, counted."""
        _budget().produce(len(text))
        return Markup(text)

    def _make_out(self) -> Callable[[Any], Any]:
        finalize = self.finalize

        def permgen_out(value: Any) -> Any:
            """A ``{{ expression }}``: finalized (JSON-encoded) here, counted, then passed on
            as markup (which the environment's own finalize leaves as it is)."""
            out = finalize(value) if finalize is not None else value
            _budget().produce(len(out) if isinstance(out, str) else 1)
            return out

        return permgen_out

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value) and attr not in STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        _budget().call()
        _check_int(left)
        _check_int(right)
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                repeats = isinstance(n, int) and not isinstance(seq, int | float)
                if repeats and value_size(seq) * max(n, 0) > MAX_VALUE_SIZE:
                    raise _too_big("a value with '*'")
        elif operator == "**" and isinstance(right, int | float) and isinstance(left, int | float):
            if right > MAX_INT_BITS or (
                isinstance(left, int)
                and abs(left) > 1
                and math.log2(abs(left)) * right > MAX_INT_BITS
            ):
                raise _big_int()
        elif operator == "%" and isinstance(left, str):
            args = right if isinstance(right, tuple) else (right,)
            if "*" in left:  # widths taken from the arguments
                for a in args:
                    _check_arg(a)
            if _format_estimate(left, args) > MAX_VALUE_SIZE:
                raise _too_big("a string with '%'")
        result = super().call_binop(context, operator, left, right)
        return _check_value(result, f"a value with {operator!r}")

    def call(
        __self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if __obj is __self.permgen_out or __obj is BoundedSandbox.permgen_data:
            return __obj(*args)  # output, counted by produce(); not a call
        _budget().call()
        name = getattr(__obj, "__name__", "")
        target = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(target, str):  # a str method: widths, counts and products
            if name != "format" or "*" in target:
                for a in [*args, *kwargs.values()]:
                    _check_arg(a)
            if _estimate(name, target, args, kwargs) > MAX_VALUE_SIZE:
                raise _too_big(f"the result of {name!r}")
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_value(result, "the result of a call")


def render_bounded(template: jinja2.Template, context: dict[str, Any], name: str) -> str:
    """Render a user template within the bounds; raises :class:`TemplateRefused`."""
    budget = _Budget(deadline=time.monotonic() + RENDER_SECONDS, template=name)
    token = _BUDGET.set(budget)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                raise TemplateRefused(
                    f"template {name!r} rendered more than {MAX_OUTPUT_BYTES} characters"
                )
            budget.tick_time()
            out.append(chunk)
        return "".join(out)
    except RecursionError:
        raise TemplateRefused(f"template {name!r} recursed too deeply") from None
    except MemoryError:
        raise TemplateRefused(f"template {name!r} ran out of memory") from None
    finally:
        _BUDGET.reset(token)


__all__ = [
    "MAX_CALLS",
    "MAX_INT_BITS",
    "MAX_LOOP_ITERATIONS",
    "MAX_OUTPUT_BYTES",
    "MAX_RANGE",
    "MAX_TEMPLATE_BYTES",
    "MAX_VALUE_SIZE",
    "RENDER_SECONDS",
    "STR_METHODS",
    "BoundedSandbox",
    "TemplateRefused",
    "UserLoader",
    "read_template",
    "render_bounded",
    "value_size",
]
