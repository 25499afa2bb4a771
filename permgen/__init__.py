"""permgen: least-privilege RAM policies, semantic diffs and short-lived STS credentials
for Alibaba Cloud OSS.

The library's public API is the names in ``__all__``, each imported from its module on
first use, so ``import permgen`` stays cheap. Where each lives: docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    # role specs
    "Spec": "permgen.spec.types",
    "Role": "permgen.spec.types",
    "load_spec": "permgen.spec.load",
    "parse_spec": "permgen.spec.load",
    "CompiledRole": "permgen.spec.compile",
    "CompiledSpec": "permgen.spec.compile",
    "compile_file": "permgen.spec.compile",
    "compile_spec": "permgen.spec.compile",
    "session_policy": "permgen.spec.compile",
    # policies
    "Policy": "permgen.policy.model",
    "Statement": "permgen.policy.model",
    "parse_policy": "permgen.policy.model",
    # semantics
    "Decision": "permgen.semantics.evaluate",
    "Evaluator": "permgen.semantics.evaluate",
    "Request": "permgen.semantics.evaluate",
    "explain": "permgen.semantics.evaluate",
    "MissingKey": "permgen.semantics.conditions",
    "AccessItem": "permgen.semantics.diff",
    "DiffResult": "permgen.semantics.diff",
    "diff_policies": "permgen.semantics.diff",
    # lint
    "Finding": "permgen.lint.core",
    "LintReport": "permgen.lint.engine",
    "lint_files": "permgen.lint.engine",
    "lint_policy": "permgen.lint.engine",
    # errors
    "ExitCode": "permgen.errors",
    "PermgenError": "permgen.errors",
    "InputError": "permgen.errors",
    "SpecError": "permgen.errors",
    "PolicyParseError": "permgen.errors",
    "CloudError": "permgen.errors",
}

__all__ = [
    "AccessItem",
    "CloudError",
    "CompiledRole",
    "CompiledSpec",
    "Decision",
    "DiffResult",
    "Evaluator",
    "ExitCode",
    "Finding",
    "InputError",
    "LintReport",
    "MissingKey",
    "PermgenError",
    "Policy",
    "PolicyParseError",
    "Request",
    "Role",
    "Spec",
    "SpecError",
    "Statement",
    "__version__",
    "compile_file",
    "compile_spec",
    "diff_policies",
    "explain",
    "lint_files",
    "lint_policy",
    "load_spec",
    "parse_policy",
    "parse_spec",
    "session_policy",
]

if TYPE_CHECKING:  # what type checkers and editors see; nothing is imported at run time
    from permgen.errors import (
        CloudError,
        ExitCode,
        InputError,
        PermgenError,
        PolicyParseError,
        SpecError,
    )
    from permgen.lint.core import Finding
    from permgen.lint.engine import LintReport, lint_files, lint_policy
    from permgen.policy.model import Policy, Statement, parse_policy
    from permgen.semantics.conditions import MissingKey
    from permgen.semantics.diff import AccessItem, DiffResult, diff_policies
    from permgen.semantics.evaluate import Decision, Evaluator, Request, explain
    from permgen.spec.compile import (
        CompiledRole,
        CompiledSpec,
        compile_file,
        compile_spec,
        session_policy,
    )
    from permgen.spec.load import load_spec, parse_spec
    from permgen.spec.types import Role, Spec


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'permgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
