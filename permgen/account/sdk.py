"""The Alibaba Cloud SDK adapter: the only module that imports aliyun-python-sdk-*.

* One client factory: an ``endpoint`` (the emulator) is registered for both products with
  ``add_endpoint`` in the client's own region, and the proxy guard
  ``{"http": None, "https": "http://127.0.0.1:9"}`` makes any request that would resolve to
  the real cloud (https) fail on a dead local port instead of leaving the machine.
* The SDK retries nothing for RAM and STS; :func:`call` retries throttling, 5xx and
  connection errors with exponential backoff and full jitter, a bounded number of times,
  and logs each retry (never a secret). Only idempotent calls are retried by default.
* SDK exceptions become :class:`~permgen.errors.CloudError`, ``ThrottledError`` or
  ``EndpointError``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from permgen.account.types import AccessKey, CallerIdentity, ClientConfig, Secret, StsCredentials
from permgen.errors import CloudError, EndpointError, ThrottledError

log = logging.getLogger("permgen.account")

PROXY_GUARD = {"http": None, "https": "http://127.0.0.1:9"}
RETRYABLE_CODES = {
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "ServiceUnavailable",
    "InternalError",
    "UnknownError",
}

#: The RAM/STS actions permgen calls, declared next to the calls (docs/required-permissions.json).
REQUIRED_ACTIONS: set[str] = set()


def requires(action: str) -> str:
    REQUIRED_ACTIONS.add(action)
    return action


ASSUME_ROLE = requires("sts:AssumeRole")
GET_CALLER_IDENTITY = requires("sts:GetCallerIdentity")


def make_client(credentials: AccessKey, config: ClientConfig) -> Any:
    from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
    from aliyunsdkcore.client import AcsClient

    if credentials.security_token is not None:
        cred: Any = StsTokenCredential(
            credentials.access_key_id,
            credentials.access_key_secret.reveal(),
            credentials.security_token.reveal(),
        )
    else:
        cred = AccessKeyCredential(
            credentials.access_key_id, credentials.access_key_secret.reveal()
        )
    client = AcsClient(
        region_id=config.region,
        credential=cred,
        connect_timeout=int(config.connect_timeout),
        timeout=int(config.read_timeout),
        proxy=PROXY_GUARD if config.endpoint else None,
    )
    if config.endpoint:
        for product in ("Ram", "Sts"):
            client.add_endpoint(config.region, product, config.endpoint)
    return client


def call(
    client: Any,
    product: str,
    action: str,
    params: dict[str, str],
    config: ClientConfig,
    *,
    retry: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """One RPC call with permgen's retries; returns the decoded JSON body."""
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
    from aliyunsdkcore.request import CommonRequest

    attempts = config.max_attempts if retry else 1
    for attempt in range(1, attempts + 1):
        req = CommonRequest()
        req.set_product(product)
        req.set_version("2015-05-01" if product == "Ram" else "2015-04-01")
        req.set_action_name(action)
        req.set_method("POST")
        req.set_protocol_type("http" if config.endpoint else "https")
        for k, v in params.items():
            req.add_query_param(k, v)
        try:
            data: dict[str, Any] = json.loads(client.do_action_with_exception(req))
            return data
        except ServerException as exc:
            code = str(exc.get_error_code())
            status = exc.get_http_status()
            retryable = (
                code in RETRYABLE_CODES or code.startswith("Throttling") or (status or 0) >= 500
            )
            if retryable and attempt < attempts:
                _backoff(action, attempt, code, config, sleep)
                continue
            cls = ThrottledError if code.startswith("Throttling") else CloudError
            raise cls(
                f"{product} {action} failed: {code} (HTTP {status}): {exc.get_error_msg()} [RequestId {exc.get_request_id()}]",
                code=code,
                http_status=status,
                request_id=exc.get_request_id(),
                action=action,
            ) from None
        except ClientException as exc:
            if attempt < attempts:
                _backoff(action, attempt, str(exc.get_error_code()), config, sleep)
                continue
            raise EndpointError(
                f"{product} {action}: cannot reach {config.endpoint or 'the Alibaba Cloud endpoint'}: {exc.get_error_code()}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _backoff(
    action: str, attempt: int, reason: str, config: ClientConfig, sleep: Callable[[float], None]
) -> None:
    delay = random.uniform(0, min(config.backoff_cap, config.backoff_base * 2 ** (attempt - 1)))
    log.warning(
        "%s: %s; retry %d of %d in %.2fs", action, reason, attempt, config.max_attempts - 1, delay
    )
    sleep(delay)


class SdkStsClient:
    """STS through the real SDK (implements :class:`permgen.account.types.StsApi`)."""

    def __init__(self, credentials: AccessKey, config: ClientConfig) -> None:
        self.config = config
        self._client = make_client(credentials, config)

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        *,
        duration: int,
        policy: str | None = None,
        external_id: str | None = None,
    ) -> StsCredentials:
        params = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": str(duration),
        }
        if policy is not None:
            params["Policy"] = policy
        if external_id is not None:
            params["ExternalId"] = external_id
        # AssumeRole issues new credentials on every call, so a retry cannot do harm
        out = call(self._client, "Sts", "AssumeRole", params, self.config)
        c = out["Credentials"]
        user = out.get("AssumedRoleUser", {})
        return StsCredentials(
            access_key_id=c["AccessKeyId"],
            access_key_secret=Secret(c["AccessKeySecret"]),
            security_token=Secret(c["SecurityToken"]),
            expiration=c["Expiration"],
            assumed_role_id=user.get("AssumedRoleId", ""),
            assumed_role_arn=user.get("Arn", ""),
        )

    def get_caller_identity(self) -> CallerIdentity:
        out = call(self._client, "Sts", "GetCallerIdentity", {}, self.config)
        return CallerIdentity(
            account_id=out.get("AccountId", ""),
            user_id=out.get("UserId", ""),
            arn=out.get("Arn", ""),
            identity_type=out.get("IdentityType", ""),
            principal_id=out.get("PrincipalId", ""),
            role_id=out.get("RoleId", ""),
        )


__all__ = ["PROXY_GUARD", "REQUIRED_ACTIONS", "SdkStsClient", "call", "make_client"]
