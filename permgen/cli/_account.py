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


def allow_root_option(func: F) -> F:
    """``--allow-root-credentials`` for the commands that act on the account."""
    option = click.option(
        "--allow-root-credentials",
        "allow_root",
        is_flag=True,
        help="Run even when the credentials are the account's own (root) AccessKey, which "
        "should not exist: use a RAM user or role instead.",
    )
    return option(func)


def refuse_root(identity: Any, allow_root: bool) -> None:
    """InputError (exit 2) when GetCallerIdentity says the caller is the account itself."""
    from permgen.errors import InputError

    if identity.identity_type == "Account" and not allow_root:
        raise InputError(
            f"the credentials are the root AccessKey of account {identity.account_id}: account "
            "commands refuse it (root keys should not exist; use a RAM user or role with the "
            "permissions in docs/required-permissions.json), or pass --allow-root-credentials"
        )


def account_caller(
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    *,
    allow_root: bool,
) -> tuple[Any, Any, Any]:
    """(credentials, client config, caller identity), refusing root credentials unless
    ``allow_root``: the one place every account command checks who it runs as."""
    from permgen.account.credentials import resolve
    from permgen.account.sdk import SdkStsClient
    from permgen.account.types import ClientConfig

    caller = resolve(
        access_key_id=access_key_id, access_key_secret=access_key_secret, profile=profile
    )
    config = ClientConfig(endpoint=endpoint, region=region)
    identity = SdkStsClient(caller, config).get_caller_identity()
    refuse_root(identity, allow_root)
    return caller, config, identity


def ram_client(
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    *,
    allow_root: bool,
) -> Any:
    """The RAM client of an account command. Who the caller is gets checked on its first
    call (so input errors found before the account is reached still come first)."""
    from permgen.account.credentials import resolve
    from permgen.account.sdk import SdkRamClient, SdkStsClient
    from permgen.account.types import ClientConfig

    caller = resolve(
        access_key_id=access_key_id, access_key_secret=access_key_secret, profile=profile
    )
    config = ClientConfig(endpoint=endpoint, region=region)

    class CheckedRamClient(SdkRamClient):
        checked = False

        def invoke(self, action: str, params: dict[str, str]) -> dict[str, Any]:
            if not self.checked:
                refuse_root(SdkStsClient(caller, config).get_caller_identity(), allow_root)
                self.checked = True
            return super().invoke(action, params)

    return CheckedRamClient(caller, config)


def oss_client(
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
) -> Any:
    """The OSS adapter (buckets: of plan and apply) with the same caller and endpoint."""
    from permgen.account.credentials import resolve
    from permgen.account.oss_sdk import SdkOssClient
    from permgen.account.types import ClientConfig

    caller = resolve(
        access_key_id=access_key_id, access_key_secret=access_key_secret, profile=profile
    )
    return SdkOssClient(caller, ClientConfig(endpoint=endpoint, region=region))


def bucket_flag_options(func: F) -> F:
    """``--allow-suspend-versioning BUCKET`` and the other flags that allow one weakening
    change each (account.bucket_sync.FLAGS)."""
    helps = {
        "suspend-versioning": "Allow suspending versioning of BUCKET (repeatable).",
        "abort-retention": "Allow aborting (replacing) the unlocked retention policy of BUCKET (repeatable).",
        "remove-replication": "Allow removing replication rules of BUCKET (repeatable).",
        "remove-overwrite-protection": "Allow removing overwrite-protection rules of BUCKET (repeatable).",
        "delete-bucket-policy": "Allow deleting the bucket policy of BUCKET (repeatable).",
    }
    for name, text in reversed(list(helps.items())):
        func = click.option(
            f"--allow-{name}",
            "allow_" + name.replace("-", "_"),
            multiple=True,
            metavar="BUCKET",
            help=text,
        )(func)
    return func


def bucket_allowances(kwargs: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """The FLAGS keys -> buckets given with the ``--allow-...`` options."""
    return {
        name: tuple(kwargs.get("allow_" + name.replace("-", "_")) or ())
        for name in (
            "suspend-versioning",
            "abort-retention",
            "remove-replication",
            "remove-overwrite-protection",
            "delete-bucket-policy",
        )
    }
