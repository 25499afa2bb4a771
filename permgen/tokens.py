"""Minting short-lived credentials: a role's session policy through STS AssumeRole, and
writing the result for the tools that use it.

The session policy is the role compiled with the placeholder values (never widened to fit:
one over 2,048 bytes fails with how far over). The duration is checked against 900..43,200
and the role's own maximum (``sts.duration``). Secrets are held in
:class:`~permgen.account.types.Secret` and only revealed into output the user asked for.
"""

from __future__ import annotations

import configparser
import io
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from permgen.account.types import StsApi, StsCredentials
from permgen.compiler import CompiledRole, session_policy
from permgen.errors import InputError, UsageError
from permgen.fileio import write_secret_file
from permgen.spec import Spec

_SESSION_CHARS = re.compile(r"[^A-Za-z0-9.@_-]")


def session_name(given: str | None, role: str, values: Mapping[str, str]) -> str:
    """A valid RoleSessionName (2-64 of ``[A-Za-z0-9.@_-]``): the one given (checked), or
    ``permgen-<role>[-<values>]`` sanitized and cut to 64."""
    if given is not None:
        if not re.fullmatch(r"[A-Za-z0-9.@_-]{2,64}", given):
            raise UsageError(
                f"--session {given!r}: 2-64 characters of letters, digits, '.', '@', '_', '-'"
            )
        return given
    raw = "-".join(["permgen", role, *values.values()])
    name = _SESSION_CHARS.sub("-", raw)[:64]
    return name if len(name) >= 2 else "permgen"


@dataclass(frozen=True)
class Minted:
    role: CompiledRole
    credentials: StsCredentials
    session_name: str
    duration: int


def mint(
    spec: Spec,
    role_name: str,
    values: Mapping[str, str],
    sts: StsApi,
    *,
    session: str | None = None,
    duration: int | None = None,
    role_arn: str | None = None,
) -> Minted:
    compiled = session_policy(spec, role_name, values)
    block = compiled.role.sts
    assert block is not None  # session_policy refuses roles without sts:
    maximum = block.duration
    wanted = maximum if duration is None else duration
    if not 900 <= wanted <= 43200:
        raise UsageError(f"--duration {wanted}: STS tokens last 900 to 43,200 seconds")
    if wanted > maximum:
        raise UsageError(
            f"--duration {wanted}: role {role_name} allows at most {maximum} seconds (its sts.duration)"
        )
    name = session_name(session, role_name, compiled.values)
    creds = sts.assume_role(
        role_arn or block.role_arn, name, duration=wanted, policy=compiled.policy.dumps()
    )
    return Minted(compiled, creds, name, wanted)


# --------------------------------------------------------------------------- output


def env_lines(creds: StsCredentials) -> str:
    pairs = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", creds.access_key_id),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", creds.access_key_secret.reveal()),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", creds.security_token.reveal()),
        ("OSS_ACCESS_KEY_ID", creds.access_key_id),
        ("OSS_ACCESS_KEY_SECRET", creds.access_key_secret.reveal()),
        ("OSS_SESSION_TOKEN", creds.security_token.reveal()),
    ]
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in pairs)


def environment(creds: StsCredentials) -> dict[str, str]:
    """The variables ``--exec`` sets (both the SDK's and the OSS tools' names)."""
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": creds.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": creds.access_key_secret.reveal(),
        "ALIBABA_CLOUD_SECURITY_TOKEN": creds.security_token.reveal(),
        "OSS_ACCESS_KEY_ID": creds.access_key_id,
        "OSS_ACCESS_KEY_SECRET": creds.access_key_secret.reveal(),
        "OSS_SESSION_TOKEN": creds.security_token.reveal(),
    }


def json_document(m: Minted) -> dict[str, Any]:
    c = m.credentials
    return {
        "AccessKeyId": c.access_key_id,
        "AccessKeySecret": c.access_key_secret.reveal(),
        "SecurityToken": c.security_token.reveal(),
        "Expiration": c.expiration,
        "RoleSessionName": m.session_name,
        "AssumedRoleArn": c.assumed_role_arn,
        "DurationSeconds": m.duration,
    }


def read_ossutil_config(path: Path) -> configparser.ConfigParser:
    """The ossutil config at ``path`` (empty when there is no such file); a file that is not
    UTF-8 or not INI is an :class:`InputError` naming it."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    what = "the ossutil configuration"
    try:
        parser.read_string(path.read_text("utf-8"), source=str(path))
    except FileNotFoundError:
        pass
    except UnicodeDecodeError:
        raise InputError(f"{path}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except configparser.Error as exc:
        raise InputError(f"{path}: cannot read {what}: {_ini_problem(exc)}") from None
    return parser


def _ini_problem(exc: configparser.Error) -> str:
    """Where and what, never the line itself (it may hold a secret)."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a line before any [section] header"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(n) for n, _ in exc.errors[:5])
        return f"line {lines}: not 'key = value', a [section] header or a comment"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] already exists"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: {exc.option!r} already set in [{exc.section}]"
    return type(exc).__name__


def write_aliyun_profile(
    path: Path,
    profile: str,
    creds: StsCredentials,
    region: str,
    *,
    existing: dict[str, Any] | None = None,
) -> None:
    """Add or replace one StsToken profile in the aliyun CLI config, keeping the others;
    written atomically with mode 0600. ``existing`` is the file as
    :func:`~permgen.account.credentials.read_aliyun_config` read it (read here when None)."""
    from permgen.account.credentials import read_aliyun_config

    config = existing if existing is not None else read_aliyun_config(path)
    if config is None:
        config = {"current": profile, "profiles": [], "meta_path": ""}
    entry = {
        "name": profile,
        "mode": "StsToken",
        "access_key_id": creds.access_key_id,
        "access_key_secret": creds.access_key_secret.reveal(),
        "sts_token": creds.security_token.reveal(),
        "region_id": region,
        "output_format": "json",
        "language": "en",
    }
    profiles = [p for p in config.get("profiles", []) if p.get("name") != profile]
    config["profiles"] = [*profiles, entry]
    config.setdefault("current", profile)
    write_secret_file(path, json.dumps(config, indent=4) + "\n")


def write_ossutil_profile(
    path: Path,
    profile: str,
    creds: StsCredentials,
    region: str,
    *,
    existing: configparser.ConfigParser | None = None,
) -> None:
    """Add or replace ``[profile NAME]`` in an ossutil 2.x config, keeping other sections;
    written atomically with mode 0600. ``existing`` is the file as
    :func:`read_ossutil_config` read it (read here when None)."""
    parser = existing if existing is not None else read_ossutil_config(path)
    section = f"profile {profile}"
    if parser.has_section(section):
        parser.remove_section(section)
    parser.add_section(section)
    parser[section]["accessKeyID"] = creds.access_key_id
    parser[section]["accessKeySecret"] = creds.access_key_secret.reveal()
    parser[section]["stsToken"] = creds.security_token.reveal()
    parser[section]["region"] = region
    out = io.StringIO()
    parser.write(out)
    write_secret_file(path, out.getvalue())


__all__ = [
    "Minted",
    "env_lines",
    "environment",
    "json_document",
    "mint",
    "read_ossutil_config",
    "session_name",
    "write_aliyun_profile",
    "write_ossutil_profile",
]
