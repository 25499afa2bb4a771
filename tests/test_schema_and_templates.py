"""The shipped JSON Schema, its generated fast validator, and user templates."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.errors import SpecError
from permgen.spec.compile import compile_spec
from permgen.spec.load import parse_spec
from permgen.spec.schema import _compiled, schema
from permgen.tools import gen_schema_validator
from tests.conftest import EXAMPLES, ROOT, run_cli


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_docs_carry_the_same_schema() -> None:
    assert json.loads((ROOT / "docs" / "spec-v1.schema.json").read_text()) == schema()


def test_the_generated_validator_is_current() -> None:
    assert (
        ROOT / "permgen" / "spec" / "schema" / "_compiled.py"
    ).read_text() == gen_schema_validator.generate()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 50000),
    st.sampled_from(
        [
            "",
            "abc",
            "corp-data",
            "Corp",
            "vpc-abc",
            "1234567890123456",
            "user:a",
            "x/",
            "reader",
            "acs:ram::1234567890123456:role/r",
        ]
    ),
)
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "roles",
                    "defaults",
                    "r",
                    "template",
                    "grants",
                    "bucket",
                    "prefixes",
                    "options",
                    "sts",
                    "role_arn",
                    "duration",
                    "account",
                    "conditions",
                    "source_ip",
                    "source_vpc",
                    "secure_transport",
                    "attach",
                    "read",
                    "bad",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_fast_and_full_validators_agree(doc: object) -> None:
    full_ok = jsonschema.Draft202012Validator(schema()).is_valid(doc)
    try:
        _compiled.validate(doc)
        fast_ok = True
    except ValueError:
        fast_ok = False
    assert fast_ok == full_ok


def test_the_examples_validate_fully() -> None:
    import yaml

    data = yaml.safe_load((EXAMPLES / "platform.yaml").read_text())
    jsonschema.validate(data, schema())


# ------------------------------------------------------------------ user templates


def _user_spec(tmp_path: Path, template_body: str, description: str = "d") -> Path:
    (tmp_path / "tpl").mkdir(exist_ok=True)
    (tmp_path / "tpl" / "custom.json.j2").write_text(textwrap.dedent(template_body))
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f'version: 1\ntemplates: tpl\nroles:\n  r:\n    template: custom\n    description: {json.dumps(description)}\n    grants: [{{bucket: abc, prefixes: ["x/"]}}]\n'
    )
    return spec


def test_the_example_user_template_compiles() -> None:
    doc = json.loads((EXAMPLES / "compiled" / "bucket-auditor.json").read_text())
    (allow,) = doc["Statement"]
    assert "oss:GetBucketPolicy" in allow["Action"]
    assert allow["Resource"] == [
        "acs:oss:*:1234567890123456:corp-data",
        "acs:oss:*:1234567890123456:corp-reports",
    ]


def test_values_reach_user_templates_only_as_json(tmp_path: Path) -> None:
    # A description crafted to break out of a JSON string stays a string.
    evil = 'x"}], "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*'
    spec = _user_spec(
        tmp_path,
        """\
        {"Version": "1", "Statement": [
          {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": {{ grants[0].object_arns }},
           "Condition": {"StringEquals": {"acs:UserAgent": [{{ role.description }}]}}}
        ]}
        """,
        description=evil,
    )
    result = run_cli("compile", str(spec), "--role", "r")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["Statement"][0]["Action"] == ["oss:GetObject"]
    assert doc["Statement"][0]["Condition"]["StringEquals"]["acs:UserAgent"] == [evil]


def test_a_user_template_cannot_mark_a_value_safe(tmp_path: Path) -> None:
    spec = _user_spec(
        tmp_path,
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": {{ role.description | safe }}, "Resource": "*"}]}',
    )
    result = run_cli("compile", str(spec))
    assert result.exit_code == 2
    assert "template 'custom'" in result.output


def test_a_user_template_that_renders_invalid_json_is_bad_input(tmp_path: Path) -> None:
    spec = _user_spec(
        tmp_path,
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "{{ grants[0].bucket }}"}]}',
    )
    result = run_cli("compile", str(spec))
    assert result.exit_code == 2
    assert "did not render a valid policy" in result.output
    assert "roles.r.template" in result.output


def test_a_user_template_is_validated_like_a_policy(tmp_path: Path) -> None:
    spec = _user_spec(
        tmp_path,
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "oss:GetObject", "Resource": "*"}]}',
    )
    result = run_cli("compile", str(spec))
    assert result.exit_code == 2
    assert "Principal" in result.output


def test_a_user_template_with_an_undefined_variable_fails_loudly(tmp_path: Path) -> None:
    spec = _user_spec(
        tmp_path,
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": {{ grants[0].no_such_thing }}}]}',
    )
    result = run_cli("compile", str(spec))
    assert result.exit_code == 2
    assert "no_such_thing" in result.output


def test_a_user_template_cannot_escape_the_sandbox(tmp_path: Path) -> None:
    spec = _user_spec(
        tmp_path,
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": {{ grants.__class__.__mro__ }}, "Resource": "*"}]}',
    )
    result = run_cli("compile", str(spec))
    assert result.exit_code == 2


def test_an_unknown_template_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SpecError, match="unknown template 'custom'"):
        parse_spec(
            "version: 1\nroles:\n  r: {template: custom, grants: [{bucket: abc}]}\n", source="s"
        )


def test_templates_flag_overrides_the_spec(tmp_path: Path) -> None:
    spec = _user_spec(
        tmp_path,
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": {{ grants[0].object_arns }}}]}',
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "custom.json.j2").write_text(
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetBucketInfo"], "Resource": [{{ grants[0].bucket_arn }}]}]}'
    )
    result = run_cli("compile", str(spec), "--role", "r", "--templates", str(other))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["Statement"][0]["Action"] == ["oss:GetBucketInfo"]


def test_conditions_colliding_with_a_template_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "custom.json.j2").write_text(
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": {{ grants[0].object_arns }}, "Condition": {"Bool": {"acs:SecureTransport": "true"}}}]}'
    )
    spec = parse_spec(
        "version: 1\ntemplates: tpl\ndefaults: {conditions: {secure_transport: true}}\nroles:\n  r: {template: custom, grants: [{bucket: abc}]}\n",
        source="s",
        base_dir=tmp_path,
    )
    with pytest.raises(SpecError, match="collide"):
        compile_spec(spec)
