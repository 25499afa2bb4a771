"""What every command shares: error translation to exit codes, output helpers, options.

Errors become a one-line ``permgen: error: ...`` on stderr and the exit code of
:class:`permgen.errors.ExitCode`; this is the only place that translation happens.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from permgen.errors import PermgenError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Run a command body; turn permgen errors into a message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
        except PermgenError as exc:
            click.echo(f"permgen: error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("permgen: interrupted", err=True)
            sys.exit(130)
        if isinstance(result, int):
            sys.exit(result)
        return result

    return wrapper  # type: ignore[return-value]


#: Young-generation threshold of the garbage collector for batch commands (default 700).
BATCH_GC_THRESHOLD = (50_000, 20, 20)


def batch(func: F) -> F:
    """Mark a command that builds many objects and then exits (compile, lint, diff ...).

    Such a run keeps almost everything it allocates until it exits, so the collector's
    default (a young collection every 700 allocations, full ones as they add up) mostly
    rescans live objects: compiling 1,000 roles spent about 15% of its time there. These
    commands collect every 50,000 allocations instead, and only while the command runs: the
    thresholds are restored when it returns or raises, so a program that calls ``main()``
    keeps its own. Importing permgen sets nothing; long-running commands (serve, the
    emulator) keep Python's defaults, and so do programs that use permgen as a library.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import gc

        before = gc.get_threshold()
        gc.set_threshold(*BATCH_GC_THRESHOLD)
        try:
            return func(*args, **kwargs)
        finally:
            gc.set_threshold(*before)

    return wrapper  # type: ignore[return-value]


def batch_uncollected(func: F) -> F:
    """Like :func:`batch`, for a command whose work makes almost no reference cycles: the
    collector is off while it runs, and back as it was when it returns or raises.

    ``audit`` keeps what it decides (memos, tables, findings: millions of objects on an
    account of 5,000 users) until it exits, and makes few cycles (a collection after the
    benchmark account's audit finds 454 unreachable objects); even :func:`batch`'s rare
    collections rescanned that heap for about 10% of the run."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import gc

        was = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was:
                gc.enable()

    return wrapper  # type: ignore[return-value]


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("user=alice", ...)`` -> ``{"user": "alice"}``; a pair without ``=`` is a usage error."""
    from permgen.errors import UsageError

    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        if name in out:
            raise UsageError(f"--var {name!r} given twice")
        out[name] = value
    return out


def missing_key_option(func: F) -> F:
    """``--missing-key``: how a condition on a key absent from a request evaluates."""
    return click.option(
        "--missing-key",
        type=click.Choice(["negated-true", "false"]),
        default="negated-true",
        show_default=True,
        help="How a condition on a key absent from the request evaluates (docs/unconfirmed.md).",
    )(func)


def jobs_option(what: str) -> Callable[[F], F]:
    """``--jobs`` / ``-j``: forked worker processes for a large run (0, the default: one per
    CPU; 1: this process only). ``what`` says what counts as large and how work is shared."""
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=0),
        default=0,
        show_default="0: one per CPU",
        help=f"Processes for {what}; 1 runs in this process only.",
    )


def fail_on_risk_option(func: F) -> F:
    """``--fail-on-risk``: risk classes of new access that fail the check (exit 3); the
    help lists every class of the catalog."""
    from permgen.policy.catalog import RISK_CLASSES

    return click.option(
        "--fail-on-risk",
        metavar="RISKS",
        default="",
        help="Exit 3 when new access has one of these risk classes (comma-separated: "
        + ", ".join(RISK_CLASSES)
        + "; docs/semantics.md).",
    )(func)


def parse_risks(text: str) -> list[str]:
    """The risk classes of a ``--fail-on-risk`` value; an unknown one is a usage error."""
    from permgen.errors import UsageError
    from permgen.policy.catalog import RISK_CLASSES

    risks = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in risks if r not in RISK_CLASSES]
    if unknown:
        raise UsageError(
            f"--fail-on-risk: unknown risk class {unknown[0]!r} (known: {', '.join(RISK_CLASSES)})"
        )
    return risks
