"""A raw policy: role: a RAM policy document kept as written, exclusive with template and
grants, and untouched by the spec's default conditions."""

from __future__ import annotations

import pytest

from permgen.errors import SpecError
from permgen.spec.compile import compile_spec
from permgen.spec.load import parse_spec

HEAD = """version: 1
defaults:
  conditions: {secure_transport: true}
roles:
"""
RAW = """  legacy:
    description: hand-written
    adopt: true
    policy:
      Version: "1"
      Statement:
        - {Effect: Allow, Action: oss:GetObject, Resource: "acs:oss:*:*:b/x*"}
"""


def test_a_raw_policy_compiles_as_written_without_default_conditions() -> None:
    compiled = compile_spec(parse_spec(HEAD + RAW))
    role = compiled.roles["legacy"]
    assert role.policy.dumps() == (
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject"],'
        '"Resource":["acs:oss:*:*:b/x*"]}]}'
    )
    assert role.role.adopt and role.role.template == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "    template: reader\n",
            "roles.legacy.template: a role with a raw policy takes no 'template'",
        ),
        ("    conditions: {secure_transport: true}\n", "takes no 'conditions'"),
        ("    options: {browse: true}\n", "takes no 'options'"),
    ],
)
def test_a_raw_policy_excludes_template_keys(extra: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(HEAD + RAW + extra)
    assert message in str(err.value)


def test_a_raw_policy_must_parse_and_a_role_needs_one_form() -> None:
    bad = RAW.replace("Effect: Allow", "Effect: Alow")
    with pytest.raises(SpecError) as err:
        parse_spec(HEAD + bad)
    assert "roles.legacy.policy: not a valid RAM policy at Statement[0].Effect" in str(err.value)
    with pytest.raises(SpecError) as err:
        parse_spec(HEAD + "  r:\n    template: reader\n")
    assert "'grants' is missing" in str(err.value)
    with pytest.raises(SpecError) as err:
        parse_spec(HEAD + "  r:\n    adopt: true\n")
    assert "'template' is missing" in str(err.value)
