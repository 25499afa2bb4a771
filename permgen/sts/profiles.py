"""Handing minted credentials to the tools that use them: environment lines, a child's
environment, the JSON document, and aliyun CLI and ossutil profiles (written atomically,
owner-only). Secrets are revealed only into output the user asked for.
"""

from __future__ import annotations

import configparser
import io
import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from permgen._internal.fileio import write_secret_file
from permgen.account.types import AccessKey, StsCredentials
from permgen.errors import InputError, UsageError
from permgen.sts.mint import Minted

#: A profile name for the aliyun CLI and ossutil configs (applied with fullmatch): nothing that
#: could end an INI section header (``]``), start another (newline, ``[``) or be read as a key
#: (``=``, ``:``), and no spaces (ossutil reads ``[profile NAME]`` up to the first space).
PROFILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_profile_name(name: str) -> str:
    """``name`` if it is a valid ``--profile-name``; otherwise a usage error (exit 2)."""
    if PROFILE_NAME_RE.fullmatch(name) is None:
        raise UsageError(
            f"--profile-name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


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


#: The names each tool family reads the key id, the secret and the token from; ``--exec``
#: sets every one of them to the minted credentials.
CREDENTIAL_NAMES: tuple[tuple[str, str, str], ...] = (
    # Alibaba Cloud SDKs and the credentials chain (environment provider, first in the chain)
    (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    ),
    # the aliyun CLI's other spellings
    ("ALIBABACLOUD_ACCESS_KEY_ID", "ALIBABACLOUD_ACCESS_KEY_SECRET", "ALIBABACLOUD_SECURITY_TOKEN"),
    ("ALICLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECURITY_TOKEN"),
    # the Terraform / Pulumi alicloud provider
    ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN"),
    # ossutil and the OSS SDKs
    ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"),
)

#: Prefixes of the variables Alibaba Cloud tools, SDKs and permgen read their configuration from.
_FAMILIES = (
    "ALIBABA_CLOUD_",
    "ALIBABACLOUD_",
    "ALICLOUD_",
    "ALIYUN_",
    "OSS_",
    "OSSUTIL_",
    "PERMGEN_",
)
#: In those families, a name with one of these words holds a credential, or selects where one
#: comes from (a profile, a credentials or config file, a role to assume, OIDC, the ECS
#: metadata role, a credentials URI or process).
_CREDENTIAL_WORDS = (
    "ACCESS_KEY", "SECRET", "TOKEN", "PASSWORD", "PRIVATE_KEY", "PUBLIC_KEY", "KEY_ID",
    "CREDENTIAL", "PROFILE", "CONFIG", "ROLE", "SESSION", "OIDC", "ECS_METADATA", "PROCESS",
)  # fmt: skip
#: Names the aliyun CLI also reads credentials from, without a family prefix.
_BARE_CREDENTIAL_NAMES = frozenset(
    {"ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SECURITY_TOKEN", "ACCESS_KEY", "SECRET_KEY"}
)


def is_credential_variable(name: str) -> bool:
    """Whether an environment variable holds an Alibaba Cloud credential or selects where
    one is read from (``--exec`` removes every such variable from the child's environment)."""
    upper = name.upper()
    if upper in _BARE_CREDENTIAL_NAMES:
        return True
    return upper.startswith(_FAMILIES) and any(w in upper for w in _CREDENTIAL_WORDS)


def environment(creds: StsCredentials) -> dict[str, str]:
    """The credential variables ``--exec`` sets: every family's names
    (:data:`CREDENTIAL_NAMES`) hold the minted credentials, and the SDKs' ECS-metadata
    fallback is switched off."""
    out: dict[str, str] = {}
    for key_id, secret, token in CREDENTIAL_NAMES:
        out[key_id] = creds.access_key_id
        out[secret] = creds.access_key_secret.reveal()
        out[token] = creds.security_token.reveal()
    out["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    return out


def refresh_environment(uri: str) -> dict[str, str]:
    """The credential variables ``--exec --refresh`` sets: only the credentials URI, with
    every source that comes before it in the credentials chain of ``alibabacloud-credentials``
    switched off (environment keys: none set; the aliyun CLI profile: disabled; the
    credentials file: ``/dev/null``, which has no profile; ECS metadata: disabled)."""
    return {
        "ALIBABA_CLOUD_CREDENTIALS_URI": uri,
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
        "ALIBABA_CLOUD_CREDENTIALS_FILE": "/dev/null",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }


def child_environment(
    parent: Mapping[str, str],
    creds: StsCredentials,
    caller: AccessKey,
    *,
    credentials_uri: str | None = None,
) -> dict[str, str]:
    """The environment of the ``--exec`` command: the parent's, without any credential
    variable (:func:`is_credential_variable`) and without any variable holding the caller's
    key id, secret or token (whatever its name), plus :func:`environment` (or, with
    ``credentials_uri``, :func:`refresh_environment`: no static credentials at all)."""
    held = [caller.access_key_id, caller.access_key_secret.reveal()]
    if caller.security_token is not None:
        held.append(caller.security_token.reveal())
    held = [h for h in held if h]

    def holds_caller_key(value: str) -> bool:
        # containment for values long enough not to occur by chance; equality otherwise
        return any(h in value if len(h) >= 8 else h == value for h in held)

    kept = {
        k: v for k, v in parent.items() if not is_credential_variable(k) and not holds_caller_key(v)
    }
    if credentials_uri is not None:
        return {**kept, **refresh_environment(credentials_uri)}
    return {**kept, **environment(creds)}


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

    check_profile_name(profile)
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
    check_profile_name(profile)
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
    "CREDENTIAL_NAMES",
    "PROFILE_NAME_RE",
    "check_profile_name",
    "child_environment",
    "env_lines",
    "environment",
    "is_credential_variable",
    "json_document",
    "read_ossutil_config",
    "refresh_environment",
    "write_aliyun_profile",
    "write_ossutil_profile",
]
