"""``permgen token``: short-lived STS credentials scoped to one role's session policy."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from permgen.cli._common import handle_errors, parse_vars
from permgen.errors import ExitCode, UsageError


@click.command("token")
@click.argument("role")
@click.option(
    "--spec",
    "spec_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The role spec.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Fill a placeholder of the role (repeatable).",
)
@click.option("--session", help="RoleSessionName (default: permgen-<role>-<values>, sanitized).")
@click.option(
    "--duration", type=int, help="Seconds, 900 to the role's sts.duration (default: that maximum)."
)
@click.option("--role-arn", help="Assume this role instead of the spec's sts.role_arn.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["env", "json", "aliyun-cli", "ossutil"]),
    default="env",
    show_default=True,
)
@click.option(
    "--profile-name",
    default="permgen",
    show_default=True,
    help="Profile to write (aliyun-cli, ossutil): 1-64 of letters, digits, '.', '_', '-'.",
)
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file to write (default: ~/.aliyun/config.json or ~/.ossutilconfig).",
)
@click.option(
    "--exec",
    "exec_",
    is_flag=True,
    help="Run the command after -- with the minted credentials (and no other) in its environment.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="With --exec: serve the command fresh credentials for as long as it runs, through "
    "ALIBABA_CLOUD_CREDENTIALS_URI (a loopback endpoint) instead of static variables.",
)
@click.option(
    "--endpoint",
    envvar="PERMGEN_ENDPOINT",
    help="An emulator URL (env PERMGEN_ENDPOINT); default: the real cloud.",
)
@click.option("--region", default="cn-hangzhou", show_default=True)
@click.option("--profile", help="aliyun CLI profile holding the caller's credentials.")
@click.option(
    "--access-key-id",
    envvar="PERMGEN_ACCESS_KEY_ID",
    help="Caller's AccessKeyId (prefer ALIBABA_CLOUD_ACCESS_KEY_ID).",
)
@click.option(
    "--access-key-secret",
    envvar="PERMGEN_ACCESS_KEY_SECRET",
    help="Caller's secret (prefer the environment: flags show in ps).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@handle_errors
def command(
    role: str,
    spec_path: Path,
    variables: tuple[str, ...],
    session: str | None,
    duration: int | None,
    role_arn: str | None,
    fmt: str,
    profile_name: str,
    config_file: Path | None,
    exec_: bool,
    refresh: bool,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    command: tuple[str, ...],
) -> int:
    """Mint STS credentials for ROLE: AssumeRole with the role's session policy.

    \b
    permgen token mobile-uploader --spec roles.yaml --var user=alice --format env
    permgen token mobile-uploader --spec roles.yaml --var user=alice --exec -- ossutil cp f oss://b/k
    permgen token mobile-uploader --spec roles.yaml --var user=alice --exec --refresh -- ./app.py

    Exit codes: 0; 1 cloud or network error; 2 bad input. With --exec, the command's own code
    (128+N when signal N ended it); 2 when it cannot be started.
    """
    from permgen._internal.fileio import check_writable
    from permgen.account.credentials import read_aliyun_config, resolve
    from permgen.account.sdk import SdkStsClient
    from permgen.account.types import ClientConfig, StsCredentials
    from permgen.spec.load import load_spec
    from permgen.sts.childproc import check_runnable, run
    from permgen.sts.mint import mint
    from permgen.sts.profiles import (
        check_profile_name,
        child_environment,
        env_lines,
        json_document,
        read_ossutil_config,
        write_aliyun_profile,
        write_ossutil_profile,
    )

    if refresh and not exec_:
        raise UsageError("--refresh works only with --exec -- CMD ARGS")
    if exec_ and not command:
        raise UsageError("--exec needs a command after --")
    if command and not exec_:
        raise UsageError(f"unexpected argument {command[0]!r} (use --exec -- CMD ARGS)")
    check_profile_name(profile_name)
    if exec_:
        check_runnable(command, os.environ)
    spec = load_spec(spec_path)
    # the config file to update is read and checked before AssumeRole: a bad one mints nothing
    path = config_file
    existing: Any = None
    if fmt == "aliyun-cli" and not exec_:
        path = config_file or Path.home() / ".aliyun" / "config.json"
        existing = read_aliyun_config(path)
    elif fmt == "ossutil" and not exec_:
        path = config_file or Path.home() / ".ossutilconfig"
        existing = read_ossutil_config(path)
    if path is not None and not exec_ and fmt in ("aliyun-cli", "ossutil"):
        check_writable(path)
    caller = resolve(
        access_key_id=access_key_id, access_key_secret=access_key_secret, profile=profile
    )
    sts = SdkStsClient(caller, ClientConfig(endpoint=endpoint, region=region))
    values = parse_vars(variables)
    minted = mint(
        spec,
        role,
        values,
        sts,
        session=session,
        duration=duration,
        role_arn=role_arn,
    )
    creds = minted.credentials
    click.echo(
        f"permgen: {minted.session_name}: {creds.access_key_id}, expires {creds.expiration}",
        err=True,
    )
    if exec_ and refresh:
        from permgen.sts.refresh import CredentialServer, Refresher

        def mint_again() -> StsCredentials:
            again = mint(
                spec,
                role,
                values,
                sts,
                session=minted.session_name,
                duration=minted.duration,
                role_arn=role_arn,
            )
            return again.credentials

        def log(line: str) -> None:
            click.echo(line, err=True)

        server = CredentialServer(Refresher(creds, mint_again, duration=minted.duration, log=log))
        env = child_environment(os.environ, creds, caller, credentials_uri=server.uri)
        return run(command, env, alongside=server)
    if exec_:
        return run(command, child_environment(os.environ, creds, caller))
    if fmt == "env":
        click.echo(env_lines(creds), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(json_document(minted), indent=2))
    elif fmt == "aliyun-cli":
        assert path is not None
        write_aliyun_profile(path, profile_name, creds, region, existing=existing)
        click.echo(
            f"wrote profile {profile_name!r} to {path} (use: aliyun --profile {profile_name} ...)",
            err=True,
        )
    else:
        assert path is not None
        write_ossutil_profile(path, profile_name, creds, region, existing=existing)
        click.echo(
            f"wrote [profile {profile_name}] to {path} (use: ossutil --profile {profile_name} ...)",
            err=True,
        )
    sys.stdout.flush()
    return int(ExitCode.OK)
