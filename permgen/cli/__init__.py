"""The ``permgen`` command line.

Thin by design: every command parses its options, calls one library function, formats the
result and returns an exit code. Commands live one per module and are imported only when
they run, so ``permgen --help`` and ``permgen compile`` never load the Alibaba SDKs or the
HTTP stack.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from permgen import __version__

#: name -> (module, one-line help). The help is here so ``--help`` imports no command.
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("permgen.cli.compile_cmd", "Compile a role spec into RAM policy JSON."),
    "lint": ("permgen.cli.lint_cmd", "Check policies or specs against the rule catalog."),
    "explain": ("permgen.cli.explain_cmd", "Decide one request against policies, and say why."),
    "diff": ("permgen.cli.diff_cmd", "Semantic diff: what new access a change grants or removes."),
    "review": ("permgen.cli.review_cmd", "Diff every role of a spec between two git revisions."),
    "plan": ("permgen.cli.plan_cmd", "Show what apply would change in the account (read-only)."),
    "import": ("permgen.cli.import_cmd", "Write a spec from the account's custom policies."),
    "apply": ("permgen.cli.apply_cmd", "Create or update policies and attachments in the account."),
    "token": ("permgen.cli.token_cmd", "Mint short-lived STS credentials scoped to one role."),
    "serve": ("permgen.cli.serve_cmd", "Run the token-vending HTTP service."),
    "emulator": ("permgen.cli.emulator_cmd", "Run the local RAM + STS API emulator."),
    "audit": ("permgen.cli.audit_cmd", "Report who can destroy which data for good (read-only)."),
    "usage": (
        "permgen.cli.usage_cmd",
        "Right-size a spec's roles from access logs and ActionTrail.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _) in COMMANDS.items() if _exists(mod)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _exists(entry[0]):
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="permgen")
def cli() -> None:
    """permgen: least privilege for Alibaba Cloud OSS.

    Compile role specs into minimal RAM policies, diff permission changes semantically,
    sync them to the account, and mint short-lived STS credentials.

    Exit codes: 0 ok, 1 runtime or cloud error, 2 bad input or usage,
    3 a check failed, 4 drift.
    """


def main(argv: list[str] | None = None) -> Any:
    """Console entry point."""
    return cli.main(args=argv, prog_name="permgen")
