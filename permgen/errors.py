"""Every error permgen raises, and the exit code each one maps to.

The tree::

    PermgenError                      exit 1 unless a subclass says otherwise
    ├── InputError                    exit 2: the user's input is wrong; no traceback
    │   ├── SpecError                 a role spec: file, line, column, path, expected
    │   ├── PolicyParseError          a policy document: not JSON, or not RAM grammar
    │   ├── PlaceholderError          a {placeholder} or a --var value
    │   ├── PolicySizeError           a compiled policy over RAM's limit
    │   └── UsageError                a bad combination of options or arguments
    ├── CloudError                    exit 1: the account API answered with an error code
    │   └── ThrottledError            the API said Throttling* after all retries
    ├── EndpointError                 exit 1: the API could not be reached
    └── CheckFailed                   exit 3: a check the user asked for failed

The CLI translates these into messages and exit codes in one place
(``permgen.cli._common``); library code never prints and never exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, the same for every command."""

    OK = 0
    RUNTIME = 1
    BAD_INPUT = 2
    CHECK_FAILED = 3
    DRIFT = 4


class PermgenError(Exception):
    """Base of every error permgen raises on purpose."""

    exit_code: ExitCode = ExitCode.RUNTIME

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(PermgenError):
    """The input is wrong; the message says where and what was expected."""

    exit_code = ExitCode.BAD_INPUT


class SpecError(InputError):
    """A problem in a role spec.

    ``file``, ``line`` and ``column`` locate it in the source (1-based, when known);
    ``path`` is the dotted path inside the document (``roles.r.grants[0].bucket``).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
    ) -> None:
        self.detail = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.detail}"
        return f"{where}: {self.detail}"


class PolicyParseError(InputError):
    """A policy document is not valid JSON or not valid RAM policy grammar."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        path: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.detail = message
        self.source = source
        self.path = path
        self.line = line
        self.column = column
        where = source or "<policy>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        text = f"{where}: {path}: {message}" if path else f"{where}: {message}"
        super().__init__(text)


class PlaceholderError(InputError):
    """A placeholder is used where it may not be, or a value could widen a grant."""


class PolicySizeError(InputError):
    """A compiled policy does not fit RAM's size limit."""

    def __init__(self, message: str, *, role: str, size: int, limit: int) -> None:
        self.role = role
        self.size = size
        self.limit = limit
        super().__init__(message)


class UsageError(InputError):
    """Options or arguments that do not go together."""


class CloudError(PermgenError):
    """The RAM or STS API answered with an error.

    ``code`` is Alibaba's error code (``EntityNotExist.Policy``), ``http_status`` the
    HTTP status, ``request_id`` the id to quote to support. The message never contains
    a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        http_status: int | None = None,
        request_id: str | None = None,
        action: str | None = None,
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.action = action
        super().__init__(message)


class ThrottledError(CloudError):
    """The API kept answering Throttling* after every retry."""


class EndpointError(PermgenError):
    """The endpoint could not be reached (connection refused, timeout, DNS)."""


class CheckFailed(PermgenError):
    """A check the user asked for failed (lint threshold, --expect, --fail-on-new-access)."""

    exit_code = ExitCode.CHECK_FAILED


__all__ = [
    "CheckFailed",
    "CloudError",
    "EndpointError",
    "ExitCode",
    "InputError",
    "PermgenError",
    "PlaceholderError",
    "PolicyParseError",
    "PolicySizeError",
    "SpecError",
    "ThrottledError",
    "UsageError",
]
