"""``docs/cli.md``: the ``--help`` of every command, generated from the commands themselves."""

from __future__ import annotations

from typing import Any

import click

from permgen.cli import COMMANDS, cli


def cli_markdown() -> str:
    """Markdown with the top-level help and the help of every registered command."""
    out = [
        "# Command-line reference",
        "",
        "Generated from the commands' own help by `make docs`; do not edit.",
        "",
    ]
    settings: dict[str, Any] = {
        "terminal_width": 100,
        "max_content_width": 100,
        "resilient_parsing": True,
    }
    ctx = cli.make_context("permgen", [], **settings)
    out += ["## permgen", "", "```", cli.get_help(ctx), "```", ""]
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        if command is None:  # pragma: no cover - list_commands lists only importable ones
            continue
        sub = click.Context(
            command,
            info_name=name,
            parent=ctx,
            terminal_width=100,
            max_content_width=100,
        )
        out += [
            f"## permgen {name}",
            "",
            COMMANDS[name][1],
            "",
            "```",
            command.get_help(sub),
            "```",
            "",
        ]
    return "\n".join(out)


__all__ = ["cli_markdown"]
