"""The public API: exactly these names, each resolving lazily to its defining module."""

from __future__ import annotations

import subprocess
import sys

import pytest

import permgen

PUBLIC = [
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


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(permgen.__all__) == sorted(["__version__", *PUBLIC])
    assert set(permgen._EXPORTS) == set(PUBLIC)  # every public name has its module, no more


@pytest.mark.parametrize("name", PUBLIC)
def test_each_name_resolves_to_its_defining_module(name: str) -> None:
    value = getattr(permgen, name)
    assert value.__name__ == name
    assert value.__module__.startswith("permgen.") and value.__module__ != "permgen"
    assert name in dir(permgen)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = permgen.nope  # type: ignore[attr-defined]


def test_importing_permgen_imports_nothing_else() -> None:
    code = "import sys, permgen; print(sorted(m for m in sys.modules if m.startswith('permgen')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['permgen']"


def test_the_api_works_end_to_end() -> None:
    """A policy parsed through the API decides a request like the CLI's evaluator."""
    policy = permgen.parse_policy(
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject",'
        '"Resource":"acs:oss:*:*:bucket/data/*"}]}'
    )
    evaluator = permgen.Evaluator([policy])
    assert evaluator.allows(permgen.Request("oss:GetObject", "acs:oss:*:*:bucket/data/a.txt"))
    assert not evaluator.allows(permgen.Request("oss:PutObject", "acs:oss:*:*:bucket/data/a.txt"))
