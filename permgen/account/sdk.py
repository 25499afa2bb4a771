"""The Alibaba Cloud SDK adapter: the only module that imports aliyun-python-sdk-*.

* One client factory: an ``endpoint`` (the emulator) is registered for both products with
  ``add_endpoint`` in the client's own region, and the proxy guard
  ``{"http": None, "https": "http://127.0.0.1:9"}`` makes any request that would resolve to
  the real cloud (https) fail on a dead local port instead of leaving the machine.
* The SDK retries nothing for RAM and STS; :func:`call` retries throttling, 5xx and
  connection errors with exponential backoff and full jitter, a bounded number of times,
  and logs each retry (never a secret). Only idempotent calls are retried by default.
* SDK exceptions become :class:`~permgen.errors.CloudError`, ``ThrottledError`` or
  ``EndpointError``. A server's message never reaches the user as it came: a
  ``SignatureDoesNotMatch`` answer carries the server's string to sign, which holds the
  SecurityToken, so permgen says which parameters differed instead
  (:func:`server_message`), and the caller's secret and token are masked in any message.
* The SDK's own loggers are filtered (:class:`SdkLogFilter`): their debug records (request
  URLs with the SecurityToken, response bodies with secrets) are dropped, and strings to
  sign and credential fields are masked in the others.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

from permgen.account.operations import RAM_READS, RAM_WRITES, RamOperations, requires
from permgen.account.types import (
    AccessKey,
    CallerIdentity,
    ClientConfig,
    Secret,
    StsCredentials,
)
from permgen.errors import CloudError, EndpointError, InputError, ThrottledError

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

ASSUME_ROLE = requires("sts:AssumeRole")
GET_CALLER_IDENTITY = requires("sts:GetCallerIdentity")


#: Where a server's message starts quoting its string to sign (the real RAM/STS and the
#: emulator both say "... server string to sign is:<it>").
_STRING_TO_SIGN = re.compile(r"string[\s_-]*to[\s_-]*sign(?:\s*is)?\s*[:=]?\s*", re.IGNORECASE)
#: A string to sign, or a credential field, wherever it appears in a text.
_SENSITIVE = re.compile(
    r"(?:GET|POST|PUT|DELETE|HEAD|PATCH)&%2F&\S*"
    r"|(?:SecurityToken|AccessKeySecret|sts_token|access_key_secret)"
    r"(?:=|%3D|%253D|[\"']?\s*:\s*[\"']?)[^\s\"'&,}]*",
    re.IGNORECASE,
)
_PARAM_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MASK = "***"


def mask(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every string to sign, credential field and given secret masked."""
    text = _SENSITIVE.sub(MASK, text)
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text


def _signed_params(string_to_sign: str) -> tuple[str, dict[str, str]] | None:
    """(method, {name: value}) of an RPC string to sign, or None if it is not one."""
    method, sep, rest = string_to_sign.strip().partition("&%2F&")
    if not sep or not method.isalpha():
        return None
    params: dict[str, str] = {}
    for pair in unquote(rest).split("&") if rest else []:
        name, _, value = pair.partition("=")
        params[unquote(name)] = unquote(value)
    return method, params


def _names(names: set[str]) -> str:
    shown = sorted(n if _PARAM_NAME.fullmatch(n) else "<unreadable name>" for n in names)
    return ", ".join(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")


def signature_difference(client: str, server: str) -> str:
    """Which parts of two strings to sign differ, naming parameters but never values."""
    mine, theirs = _signed_params(client), _signed_params(server)
    if theirs is None:
        return "the server's string to sign could not be read"
    if mine is None:
        return "the client's string to sign is not known"
    if mine == theirs:
        return "both sides signed the same request, so the AccessKeySecret is wrong"
    parts = []
    if mine[0] != theirs[0]:
        parts.append("the HTTP method")
    a, b = mine[1], theirs[1]
    if b.keys() - a.keys():
        parts.append(f"parameters only the server saw: {_names(set(b.keys() - a.keys()))}")
    if a.keys() - b.keys():
        parts.append(f"parameters only permgen signed: {_names(set(a.keys() - b.keys()))}")
    changed = {k for k in a.keys() & b.keys() if a[k] != b[k]}
    if changed:
        parts.append(f"parameters whose values differ: {_names(changed)}")
    return "; ".join(parts) or "the encoding of the request"


def server_message(
    code: str, message: str, client_string_to_sign: str = "", secrets: Sequence[str] = ()
) -> str:
    """A server's error message as permgen shows it: a string to sign is never shown (for
    SignatureDoesNotMatch, what differed is said instead), and secrets are masked."""
    found = _STRING_TO_SIGN.search(message)
    if found or code == "SignatureDoesNotMatch":
        quoted = message[found.end() :] if found else ""
        message = "the request's signature does not match the server's calculation"
        if quoted:
            message += f" ({signature_difference(client_string_to_sign, quoted)})"
    return mask(message, secrets)


class SdkLogFilter(logging.Filter):
    """Installed on aliyunsdkcore's loggers: debug records (request URLs with the
    SecurityToken, response bodies with credentials) are dropped; others are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        text = record.getMessage()
        if _STRING_TO_SIGN.search(text) or _SENSITIVE.search(text):
            found = _STRING_TO_SIGN.search(text)
            record.msg = mask(text[: found.start()] if found else text)
            record.args = ()
        return True


_SDK_LOGGERS = (
    "aliyunsdkcore",
    "aliyunsdkcore.client",
    "aliyunsdkcore.http.http_response",
    "aliyunsdkcore.retry.retry_condition",
    "aliyunsdkcore.auth.signers.access_key_signer",
    "aliyunsdkcore.auth.signers.sts_token_signer",
    "aliyunsdkcore.auth.signers.ram_role_arn_signer",
    "aliyunsdkcore.auth.signers.ecs_ram_role_signer",
    "aliyunsdkcore.auth.signers.rsa_key_pair_signer",
)


def install_sdk_log_filter() -> None:
    """Filter every aliyunsdkcore logger (a logger's filters do not apply to records
    propagated from its children, so each one gets its own); idempotent."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SdkLogFilter) for f in logger.filters):
            logger.addFilter(SdkLogFilter())


def _secrets(credentials: AccessKey) -> tuple[str, ...]:
    token = credentials.security_token
    return (credentials.access_key_secret.reveal(), token.reveal() if token else "")


def _check_sdk_override(credentials: AccessKey) -> None:
    """aliyunsdkcore signs with ``ALIYUN_ACCESS_KEY_ID``/``ALIYUN_ACCESS_KEY_SECRET`` from the
    environment, when both are set, instead of the credential it is given (and without its
    SecurityToken). Refuse rather than let the SDK sign with a key permgen did not choose."""
    import os

    key_id = os.environ.get("ALIYUN_ACCESS_KEY_ID")
    secret = os.environ.get("ALIYUN_ACCESS_KEY_SECRET")
    if key_id is None or secret is None:
        return
    if (
        key_id != credentials.access_key_id
        or secret != credentials.access_key_secret.reveal()
        or credentials.security_token is not None
    ):
        raise InputError(
            "ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET are set: Alibaba's SDK would sign "
            "with them instead of the credentials permgen resolved; unset them"
        )


def make_client(credentials: AccessKey, config: ClientConfig) -> Any:
    from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
    from aliyunsdkcore.client import AcsClient

    _check_sdk_override(credentials)
    install_sdk_log_filter()

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
    secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """One RPC call with permgen's retries; returns the decoded JSON body. ``secrets`` (the
    caller's secret and token) are masked in any message a server sends back."""
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
            hint = (
                f" (the caller needs {product.lower()}:{action}; docs/required-permissions.json "
                "lists every action permgen calls)"
                if code == "NoPermission"
                else ""
            )
            signed = getattr(getattr(req, "request", None), "string_to_sign", "") or ""
            message = server_message(code, str(exc.get_error_msg() or ""), signed, secrets)
            request_id = mask(str(exc.get_request_id()), secrets)
            raise cls(
                f"{product} {action} failed: {mask(code, secrets)} (HTTP {status}): {message} [RequestId {request_id}]{hint}",
                code=code,
                http_status=status,
                request_id=exc.get_request_id(),
                action=action,
            ) from None
        except IndexError:
            # aliyunsdkcore reads a SignatureDoesNotMatch message as "...:<string to sign>"
            # and fails with IndexError when the message has no ":"
            raise CloudError(
                f"{product} {action} failed: the SDK could not read the server's error answer "
                "(a SignatureDoesNotMatch without the server's string to sign)",
                code="SignatureDoesNotMatch",
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
        self._secrets = _secrets(credentials)

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
        out = call(self._client, "Sts", "AssumeRole", params, self.config, secrets=self._secrets)
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
        out = call(self._client, "Sts", "GetCallerIdentity", {}, self.config, secrets=self._secrets)
        return CallerIdentity(
            account_id=out.get("AccountId", ""),
            user_id=out.get("UserId", ""),
            arn=out.get("Arn", ""),
            identity_type=out.get("IdentityType", ""),
            principal_id=out.get("PrincipalId", ""),
            role_id=out.get("RoleId", ""),
        )


class SdkRamClient(RamOperations):
    """RAM through the real SDK (implements :class:`permgen.account.types.RamApi`)."""

    def __init__(self, credentials: AccessKey, config: ClientConfig) -> None:
        self.config = config
        self._client = make_client(credentials, config)
        self._secrets = _secrets(credentials)

    def invoke(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        if action not in RAM_READS and action not in RAM_WRITES:
            raise ValueError(f"permgen does not call RAM {action}")
        return call(
            self._client,
            "Ram",
            action,
            params,
            self.config,
            retry=action in RAM_READS,
            secrets=self._secrets,
        )


__all__ = [
    "MASK",
    "PROXY_GUARD",
    "SdkLogFilter",
    "SdkRamClient",
    "SdkStsClient",
    "call",
    "install_sdk_log_filter",
    "make_client",
    "mask",
    "server_message",
    "signature_difference",
]
