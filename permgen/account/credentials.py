"""Where account credentials come from: flags, then the ALIBABA_CLOUD_* environment, then an
aliyun CLI profile (``~/.aliyun/config.json``, modes AK and StsToken)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from permgen.account.types import AccessKey, Secret
from permgen.errors import InputError


def aliyun_config_path() -> Path:
    return Path(os.environ.get("PERMGEN_ALIYUN_CONFIG") or Path.home() / ".aliyun" / "config.json")


def resolve(
    *,
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> AccessKey:
    env = os.environ if environ is None else environ
    if access_key_id or access_key_secret:
        if not (access_key_id and access_key_secret):
            raise InputError("give both --access-key-id and --access-key-secret")
        return AccessKey(
            access_key_id,
            Secret(access_key_secret),
            Secret(security_token) if security_token else None,
        )
    if not profile and env.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not secret:
            raise InputError(
                "ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not"
            )
        token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN")
        return AccessKey(
            env["ALIBABA_CLOUD_ACCESS_KEY_ID"], Secret(secret), Secret(token) if token else None
        )
    path = config_path or aliyun_config_path()
    config = read_aliyun_config(path)
    if config is None:
        raise InputError(
            "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "
            f"or configure an aliyun CLI profile ({path})"
        )
    name = profile or env.get("ALIBABA_CLOUD_PROFILE") or config.get("current") or "default"
    entry = next((p for p in config.get("profiles", []) if p.get("name") == name), None)
    if entry is None:
        raise InputError(f"{path}: no profile named {name!r}")
    mode = str(entry.get("mode", "AK")).lower()
    if mode not in ("ak", "ststoken"):
        raise InputError(
            f"{path}: profile {name!r} has mode {entry.get('mode')!r}; permgen reads AK and StsToken profiles"
        )
    key_id, secret = entry.get("access_key_id"), entry.get("access_key_secret")
    if not key_id or not secret:
        raise InputError(f"{path}: profile {name!r} has no access key")
    token = entry.get("sts_token") if mode == "ststoken" else None
    for field, value in (
        ("access_key_id", key_id),
        ("access_key_secret", secret),
        ("sts_token", token),
    ):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{path}: profile {name!r}: {field} is not a string")
    return AccessKey(key_id, Secret(secret), Secret(token) if token else None)


def _json_kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def read_aliyun_config(path: Path) -> dict[str, Any] | None:
    """The aliyun CLI configuration at ``path``, or None when there is no such file.

    Checked for the shape permgen reads and rewrites: an object whose ``current`` (when
    present) is a string and whose ``profiles`` (when present) is an array of objects, each
    ``name`` a string. Anything else is an :class:`InputError` naming the file and the key.
    """
    what = "the aliyun CLI configuration"
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise InputError(f"{path}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        config = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"{path}: {what} is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"{path}: {what} is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: {what}: expected an object, got {_json_kind(config)}")
    current = config.get("current")
    if current is not None and not isinstance(current, str):
        raise InputError(f"{path}: current: expected a string, got {_json_kind(current)}")
    profiles = config.get("profiles", [])
    if not isinstance(profiles, list):
        raise InputError(f"{path}: profiles: expected an array, got {_json_kind(profiles)}")
    for i, p in enumerate(profiles):
        if not isinstance(p, dict):
            raise InputError(f"{path}: profiles[{i}]: expected an object, got {_json_kind(p)}")
        name = p.get("name")
        if name is not None and not isinstance(name, str):
            raise InputError(
                f"{path}: profiles[{i}].name: expected a string, got {_json_kind(name)}"
            )
    return config


__all__ = ["aliyun_config_path", "read_aliyun_config", "resolve"]
