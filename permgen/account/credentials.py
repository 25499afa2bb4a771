"""Where account credentials come from: flags, then the ALIBABA_CLOUD_* environment, then an
aliyun CLI profile (``~/.aliyun/config.json``, modes AK and StsToken)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

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
    try:
        config = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(
            "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, "
            f"or configure an aliyun CLI profile ({path})"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the aliyun CLI configuration: {exc}") from None
    name = profile or env.get("ALIBABA_CLOUD_PROFILE") or config.get("current") or "default"
    entry = next((p for p in config.get("profiles", []) if p.get("name") == name), None)
    if entry is None:
        raise InputError(f"{path}: no profile named {name!r}")
    mode = str(entry.get("mode", "AK")).lower()
    if mode not in ("ak", "ststoken"):
        raise InputError(
            f"{path}: profile {name!r} has mode {entry.get('mode')!r}; permgen reads AK and StsToken profiles"
        )
    if not entry.get("access_key_id") or not entry.get("access_key_secret"):
        raise InputError(f"{path}: profile {name!r} has no access key")
    token = entry.get("sts_token") if mode == "ststoken" else None
    return AccessKey(
        entry["access_key_id"], Secret(entry["access_key_secret"]), Secret(token) if token else None
    )


__all__ = ["aliyun_config_path", "resolve"]
