"""``permgen compile``: role spec -> RAM policy JSON (or Terraform)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from permgen.cli._common import batch, handle_errors, parse_vars
from permgen.errors import ExitCode, UsageError


@click.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--role", "roles", multiple=True, metavar="R", help="Compile only this role (repeatable)."
)
@click.option(
    "--bucket",
    "bucket",
    metavar="B",
    help="Print the bucket policy of this bucket of the spec's buckets: section.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Fill a placeholder: gives the narrow session policy instead of the ceiling (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one file per role into this directory (atomically: all files or none).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "terraform"]),
    default="json",
    show_default=True,
    help="Policy JSON, or per role an alicloud_ram_policy resource and its attachments.",
)
@click.option(
    "--templates",
    "templates_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Directory of user templates (overrides the spec's templates: key).",
)
@click.option(
    "--indent",
    type=click.IntRange(0, 8),
    default=None,
    help="Indent JSON for people. The default is compact JSON, the form RAM's size limits are measured on.",
)
@click.option(
    "--check",
    is_flag=True,
    help="With --out: write nothing; exit 4 and list the files that are stale, missing or extra.",
)
@click.option(
    "--import-existing",
    is_flag=True,
    help="With --format terraform: add import blocks (Terraform 1.5+) for the policies and "
    "attachments, to adopt an account where they already exist (docs/adopting.md).",
)
@handle_errors
@batch
def command(
    spec: Path,
    roles: tuple[str, ...],
    bucket: str | None,
    variables: tuple[str, ...],
    out: Path | None,
    fmt: str,
    templates_dir: Path | None,
    indent: int | None,
    check: bool,
    import_existing: bool,
) -> int:
    """Compile the roles of SPEC into minimal RAM policies.

    \b
    With --out: one DIR/<role>.json (or .tf) per role, and per bucket of the
    buckets: section one DIR/buckets/<bucket>.policy.json (JSON: its bucket
    policy) or DIR/buckets/<bucket>.tf (terraform: its policy and protections).
    Else with --bucket B: that bucket's policy on stdout.
    Else with one --role: that policy on stdout.
    Else: a JSON object {role: policy} on stdout.

    A role with placeholders ({user}) and an sts: block compiles to its ceiling
    (placeholders widened to *) unless --var fills them.

    Exit codes: 0 ok, 2 bad input, 4 stale files (with --check).
    """
    from permgen.spec.compile import compile_file
    from permgen.spec.outputs import render_outputs, stale_outputs

    if check and out is None:
        raise UsageError("--check needs --out DIR")
    if import_existing and fmt != "terraform":
        raise UsageError("--import-existing needs --format terraform")
    compiled = compile_file(
        spec, roles=roles or None, values=parse_vars(variables), templates_dir=templates_dir
    )
    if bucket is not None:
        from permgen.spec.compile import bucket_policy_text

        if out is not None or roles or fmt != "json":
            raise UsageError(
                "--bucket prints one bucket policy; it takes no --out, --role or --format"
            )
        if bucket not in compiled.buckets:
            known = ", ".join(compiled.buckets) or "none"
            raise UsageError(f"--bucket {bucket}: the spec has no such bucket (buckets: {known})")
        policy = compiled.buckets[bucket]
        if policy is None:
            raise UsageError(f"--bucket {bucket}: the spec gives this bucket no policy: key")
        click.echo(bucket_policy_text(policy, indent=indent), nl=False)
        return int(ExitCode.OK)
    if out is not None:
        files = render_outputs(compiled, fmt=fmt, indent=indent, import_existing=import_existing)
        if check:
            stale = stale_outputs(out, files, fmt=fmt)
            for line in stale:
                click.echo(line)
            if stale:
                click.echo(
                    f"permgen: {len(stale)} file(s) in {out} differ from what {spec} compiles to",
                    err=True,
                )
                return int(ExitCode.DRIFT)
            return int(ExitCode.OK)
        from permgen._internal.fileio import atomic_write_many

        atomic_write_many({out / name: text for name, text in files.items()}, durable=False)
        click.echo(f"wrote {len(files)} file(s) to {out}", err=True)
        return int(ExitCode.OK)
    if fmt == "terraform":
        from permgen.spec.compile import terraform_text

        click.echo(
            "\n".join(
                terraform_text(r, import_existing=import_existing) for r in compiled.roles.values()
            ),
            nl=False,
        )
        return int(ExitCode.OK)
    if len(roles) == 1:
        from permgen.spec.compile import policy_text

        click.echo(policy_text(next(iter(compiled.roles.values())).policy, indent=indent), nl=False)
        return int(ExitCode.OK)
    if indent is None:
        # each policy's compact JSON is already known (its size was checked on it)
        body = ",".join(
            f"{json.dumps(name, ensure_ascii=False)}:{r.policy.dumps()}"
            for name, r in compiled.roles.items()
        )
        click.echo("{" + body + "}")
    else:
        doc = {name: r.policy.to_json() for name, r in compiled.roles.items()}
        click.echo(json.dumps(doc, indent=indent, ensure_ascii=False))
    return int(ExitCode.OK)
