"""Loading specs: every mistake names the file, line, path and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from permgen.errors import SpecError
from permgen.spec.load import load_spec, load_yaml, parse_spec
from permgen.spec.types import check_placeholder_value

GOOD = """\
version: 1
roles:
  r:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["a/"]}]
"""


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(textwrap.dedent(text), source="roles.yaml")
    return info.value


def test_a_minimal_spec_loads_with_defaults() -> None:
    spec = parse_spec(GOOD, source="roles.yaml")
    role = spec.roles["r"]
    assert role.template == "reader"
    assert role.account == "*"
    assert role.option_map == {"versions": False, "browse": False}
    assert role.grants[0].prefixes == ("a/",)
    assert role.line == 3


def test_prefixes_default_to_the_whole_bucket() -> None:
    spec = parse_spec(GOOD.replace(', prefixes: ["a/"]', ""), source="s")
    assert spec.roles["r"].grants[0].prefixes == ("",)


# (spec text, line, path, fragment of the message)
CASES = [
    (
        """\
        version: 1
        roles:
          ingest-writer:
            template: writer
            grants:
              - bucket: Corp_Data
        """,
        6,
        "roles.ingest-writer.grants[0].bucket",
        "is not an OSS bucket name",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grant: [{bucket: abc}]
        """,
        5,
        "roles.r.grant",
        "did you mean 'grants'?",
    ),
    (
        """\
        version: 2
        roles: {r: {template: reader, grants: [{bucket: abc}]}}
        """,
        1,
        "version",
        "spec format version, 1",
    ),
    (
        """\
        version: 1
        defaults:
          account: 1234567890123456
        roles: {r: {template: reader, grants: [{bucket: abc}]}}
        """,
        3,
        "defaults.account",
        "put the value in quotes",
    ),
    (
        """\
        version: 1
        defaults:
          conditions:
            source_ip: ["10.1.2.3/8"]
        roles: {r: {template: reader, grants: [{bucket: abc}]}}
        """,
        4,
        "defaults.conditions.source_ip[0]",
        "did you mean '10.0.0.0/8'?",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: [{bucket: abc}]
            conditions:
              source_ip: ["not-an-ip"]
        """,
        7,
        "roles.r.conditions.source_ip[0]",
        "not an IP address or CIDR block",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: [{bucket: abc}]
            conditions: {source_vpc: ["vpc_ABC"]}
        """,
        6,
        "roles.r.conditions.source_vpc[0]",
        "VPC id",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants:
              - bucket: abc
                prefixes: ["home/{user}/"]
        """,
        7,
        "roles.r.grants[0].prefixes[0]",
        "placeholder {user} is only allowed in a role with an sts: block",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: [{bucket: abc, prefixes: ["logs/*"]}]
        """,
        5,
        "roles.r.grants[0].prefixes[0]",
        "wildcards are not allowed",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reder
            grants: [{bucket: abc}]
        """,
        4,
        "roles.r.template",
        "did you mean 'reader'?",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: writer
            grants: [{bucket: abc}]
            options: {delet: true}
        """,
        6,
        "roles.r.options.delet",
        "did you mean 'delete'?",
    ),
    (
        """\
        version: 1
        roles:
          bad_name:
            template: reader
            grants: [{bucket: abc}]
        """,
        3,
        "roles.bad_name",
        "1-128 letters, digits or hyphens",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: temporary-uploader
            grants: [{bucket: abc, prefixes: ["in/{u}/"]}]
            sts: {role_arn: "acs:ram::1234567890123456:role/up", duration: 60}
        """,
        6,
        "roles.r.sts.duration",
        "from 900 to 43200",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: temporary-uploader
            grants: [{bucket: abc}]
            sts: {role_arn: "arn:aws:iam::1:role/x"}
        """,
        6,
        "roles.r.sts.role_arn",
        "acs:ram::<16-digit account>:role/<name>",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: [{bucket: abc}]
            attach: ["alice"]
        """,
        6,
        "roles.r.attach[0]",
        "user:NAME, role:NAME or group:NAME",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: []
        """,
        5,
        "roles.r.grants",
        "must not be empty",
    ),
    (
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: [{bucket: "abc\\n"}]
        """,
        5,
        "roles.r.grants[0].bucket",
        "is not an OSS bucket name",
    ),
]


@pytest.mark.parametrize(("text", "line", "path", "fragment"), CASES, ids=[c[2] for c in CASES])
def test_bad_specs_name_line_path_and_expectation(
    text: str, line: int, path: str, fragment: str
) -> None:
    err = _error(text)
    assert err.file == "roles.yaml"
    assert err.path == path
    assert err.line == line
    assert fragment in str(err)
    assert str(err).startswith(f"roles.yaml:{line}:")


def test_malformed_yaml_names_line_and_column() -> None:
    err = _error("version: 1\nroles:\n  r: [unclosed\n")
    assert "not valid YAML" in str(err)
    assert err.line == 4 or err.line == 3


def test_duplicate_keys_are_errors() -> None:
    err = _error(
        "version: 1\nroles:\n  r: {template: reader, grants: [{bucket: abc}]}\n  r: {template: writer, grants: [{bucket: abc}]}\n"
    )
    assert "duplicate key 'r'" in str(err)
    assert err.line == 4


def test_several_errors_are_reported_together_in_file_order() -> None:
    err = _error(
        """\
        version: 1
        roles:
          a:
            template: reader
            grants: [{bucket: "A"}]
          b:
            template: reader
            grants: [{bucket: "B"}]
        """
    )
    text = str(err)
    assert text.index("roles.a.grants[0].bucket") < text.index("roles.b.grants[0].bucket")
    assert ":8:" in text


def test_empty_and_non_mapping_specs() -> None:
    assert "empty" in str(_error(""))
    assert "expected a mapping" in str(_error("- a\n- b\n"))


def test_yaml_tags_that_build_objects_are_refused() -> None:
    err = _error("version: 1\nroles: !!python/object:os.system {}\n")
    assert "not valid YAML" in str(err)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")


def test_role_conditions_replace_defaults_key_by_key() -> None:
    spec = parse_spec(
        textwrap.dedent(
            """\
            version: 1
            defaults:
              conditions: {source_ip: ["10.0.0.0/8"], source_vpc: ["vpc-a"], secure_transport: true}
            roles:
              r:
                template: reader
                grants: [{bucket: abc}]
                conditions: {source_ip: []}
            """
        ),
        source="s",
    )
    cond = spec.roles["r"].conditions
    assert cond.source_ip == ()
    assert cond.source_vpc == ("vpc-a",)
    assert cond.secure_transport is True


@pytest.mark.parametrize(
    "value", ["*", "?", "a/b", "..", "a..b", "", "${x}", "x" * 65, "-lead", "a b", "ü"]
)
def test_placeholder_values_that_could_widen_are_refused(value: str) -> None:
    assert check_placeholder_value("user", value) is not None


@pytest.mark.parametrize("value", ["alice", "a.b", "user@example.com", "A-1_2", "x" * 64])
def test_placeholder_values_that_cannot_widen_are_accepted(value: str) -> None:
    assert check_placeholder_value("user", value) is None


def test_anchors_and_merge_keys_work() -> None:
    spec = parse_spec(
        textwrap.dedent(
            """\
            version: 1
            roles:
              a: &base
                template: reader
                grants: [{bucket: abc, prefixes: ["x/"]}]
              b:
                <<: *base
                template: writer
            """
        ),
        source="s",
    )
    assert spec.roles["b"].template == "writer"
    assert spec.roles["b"].grants == spec.roles["a"].grants


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    err = _error("\n".join(lines) + "\nversion: 1\n")
    assert "expands to more than" in str(err)


def test_yaml_types_keep_their_meaning() -> None:
    spec = parse_spec(
        "version: 1\nroles:\n  r:\n    template: writer\n    grants: [{bucket: abc}]\n    options: {delete: yes, read: off}\n",
        source="s",
    )
    assert spec.roles["r"].option_map["delete"] is True
    assert spec.roles["r"].option_map["read"] is False


_scalars = st.sampled_from(
    ["1", "1.5", "true", "yes", "no", "null", "~", "0x1f", "0o17", "1_000", ".inf", "-.nan",
     "2001-12-14", "2001-12-14t21:59:43.10-05:00", "reader", "'true'", '"1"', "a b", "1e3",
     "+12", "NULL", "False", "on", "-1", "0"]
)  # fmt: skip


@given(st.lists(_scalars, min_size=1, max_size=30))
def test_yaml_values_mean_what_yaml_says_however_often_they_repeat(values: list[str]) -> None:
    """Remembering resolved tags never changes a value: the result equals PyYAML's own."""
    text = (
        "".join(f"k{i}: {v}\n" for i, v in enumerate(values))
        + "items: ["
        + ", ".join(values)
        + "]\n"
    )
    ours, _ = load_yaml(text, "t.yaml")
    theirs = yaml.safe_load(text)
    assert repr(ours) == repr(theirs)  # repr: nan != nan, and 1 == True
    again, _ = load_yaml(text, "t.yaml")  # every tag now comes from the memo
    assert repr(again) == repr(theirs)
