"""Minting short-lived credentials: a role's session policy through STS AssumeRole
(writing them for the tools that use them: :mod:`permgen.sts.profiles`).

The session policy is the role compiled with the placeholder values (never widened to fit:
one over 2,048 bytes fails with how far over). The duration is checked against 900..43,200
and the role's own maximum (``sts.duration``). Secrets are held in
:class:`~permgen.account.types.Secret` and only revealed into output the user asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from permgen.account.types import StsApi, StsCredentials
from permgen.errors import UsageError
from permgen.spec.compile import CompiledRole, session_policy
from permgen.spec.types import Spec

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


__all__ = ["Minted", "mint", "session_name"]
