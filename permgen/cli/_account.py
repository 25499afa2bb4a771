"""Options every account command shares, and building the clients from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def account_options(func: F) -> F:
    options = [
        click.option(
            "--endpoint",
            envvar="PERMGEN_ENDPOINT",
            help="An emulator URL (env PERMGEN_ENDPOINT); default: the real cloud.",
        ),
        click.option("--region", default="cn-hangzhou", show_default=True),
        click.option("--profile", help="aliyun CLI profile with the caller's credentials."),
        click.option(
            "--access-key-id",
            envvar="PERMGEN_ACCESS_KEY_ID",
            help="Caller's AccessKeyId (prefer ALIBABA_CLOUD_ACCESS_KEY_ID).",
        ),
        click.option(
            "--access-key-secret",
            envvar="PERMGEN_ACCESS_KEY_SECRET",
            help="Caller's secret (prefer the environment: flags show in ps).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def ram_client(
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
) -> Any:
    from permgen.account.credentials import resolve
    from permgen.account.sdk import SdkRamClient
    from permgen.account.types import ClientConfig

    caller = resolve(
        access_key_id=access_key_id, access_key_secret=access_key_secret, profile=profile
    )
    return SdkRamClient(caller, ClientConfig(endpoint=endpoint, region=region))
