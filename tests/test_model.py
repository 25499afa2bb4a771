"""The policy model: lenient parsing, strict emission, normal forms."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permgen.errors import PolicyParseError
from permgen.policy.model import (
    Condition,
    Policy,
    Statement,
    canonical,
    merge_statements,
    parse_policy,
)
from permgen.policy.wildcard import match as wildcard_match


def test_trailing_commas_are_accepted_like_alibabas_own_examples() -> None:
    text = '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject",], "Resource": "acs:oss:*:*:b/*",},]}'
    policy = parse_policy(text)
    assert policy.statements[0].actions == ("oss:GetObject",)
    assert policy.statements[0].resources == ("acs:oss:*:*:b/*",)


def test_a_comma_inside_a_string_is_not_touched() -> None:
    text = '{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"acs:oss:*:*:b/a,]"}]}'
    assert parse_policy(text).statements[0].resources == ("acs:oss:*:*:b/a,]",)


def test_string_or_list_normalizes_to_a_tuple_and_action_case_to_the_catalog() -> None:
    policy = parse_policy(
        {
            "Version": "1",
            "Statement": [{"Effect": "allow", "Action": "OSS:getobject", "Resource": "*"}],
        }
    )
    st0 = policy.statements[0]
    assert st0.effect == "Allow"
    assert st0.actions == ("oss:GetObject",)
    assert st0.resources == ("*",)


def test_bad_json_names_line_and_column() -> None:
    with pytest.raises(PolicyParseError) as info:
        parse_policy(
            '{\n  "Version": "1",\n  "Statement": [\n    {"Effect": }\n  ]\n}', source="p.json"
        )
    assert info.value.line == 4
    assert "p.json:4:" in str(info.value)


@pytest.mark.parametrize(
    ("doc", "path", "needle"),
    [
        ({"Statement": []}, "", "Version"),
        ({"Version": "2", "Statement": []}, "Version", '"1"'),
        (
            {"Version": "1", "Statement": [{"Action": "x:y", "Resource": "*"}]},
            "Statement[0]",
            "Effect",
        ),
        (
            {
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": "a:b", "NotAction": "a:c", "Resource": "*"}
                ],
            },
            "Statement[0]",
            "exactly one",
        ),
        (
            {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "a:b"}]},
            "Statement[0]",
            "Resource",
        ),
        (
            {
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": "a:b", "Resource": "*", "Principal": "*"}
                ],
            },
            "Statement[0].Principal",
            "Principal",
        ),
        (
            {
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}],
            },
            "Statement[0].Action[0]",
            "service:ActionName",
        ),
        (
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "a:b",
                        "Resource": "*",
                        "Condition": {"StringEqual": {"k": "v"}},
                    }
                ],
            },
            "Statement[0].Condition.StringEqual",
            "StringEquals",
        ),
        (
            {"Version": "1", "Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]},
            "Statement[0].Action",
            "at least one",
        ),
    ],
)
def test_grammar_errors_name_the_path(doc: dict[str, object], path: str, needle: str) -> None:
    with pytest.raises(PolicyParseError) as info:
        parse_policy(doc)
    assert info.value.path == path
    assert needle in str(info.value)


def test_duplicate_keys_are_an_error() -> None:
    with pytest.raises(PolicyParseError, match="duplicate key 'Action'"):
        parse_policy(
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"a:b","Action":"a:c","Resource":"*"}]}'
        )


def test_emit_is_compact_and_strict() -> None:
    policy = Policy(
        (
            Statement(
                "Allow",
                ("oss:ListObjects",),
                ("acs:oss:*:*:b",),
                (Condition("StringLike", "oss:Prefix", ("a/*",)),),
            ),
        )
    )
    text = policy.dumps()
    assert " " not in text
    assert json.loads(text) == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:ListObjects"],
                "Resource": ["acs:oss:*:*:b"],
                "Condition": {"StringLike": {"oss:Prefix": ["a/*"]}},
            }
        ],
    }
    assert policy.size() == len(text.encode())


def test_canonical_is_order_free() -> None:
    a = Statement("Allow", ("oss:PutObject", "oss:GetObject"), ("r2", "r1"))
    b = Statement("Deny", ("oss:DeleteObject",), ("r1",))
    assert canonical(Policy((a, b))) == canonical(
        Policy((b, Statement("Allow", ("oss:GetObject", "oss:PutObject"), ("r1", "r2"))))
    )
    assert canonical(Policy((a, b))).statements[0].effect == "Deny"


def test_merge_statements_merges_only_what_keeps_meaning() -> None:
    s1 = Statement("Allow", ("oss:GetObject",), ("acs:oss:*:*:b/a*",))
    s2 = Statement("Allow", ("oss:GetObject",), ("acs:oss:*:*:c/b*",))
    s3 = Statement(
        "Allow",
        ("oss:PutObject",),
        ("acs:oss:*:*:b/a*",),
        (Condition("Bool", "acs:SecureTransport", ("true",)),),
    )
    merged = merge_statements([s1, s2, s3])
    assert len(merged) == 2
    assert merged[0].resources == ("acs:oss:*:*:b/a*", "acs:oss:*:*:c/b*")
    assert merged[1] == s3


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a*", "abc", True),
        ("a*", "a", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a.c", "abc", False),
        ("*/x", "p/q/x", True),
        ("acs:oss:*:*:b/*", "acs:oss:*:*:b", False),
    ],
)
def test_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_match(pattern, value) is expected


_names = st.text(alphabet="aAbB:*?/K\u212a\u0130i", max_size=6)


def _regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """The regex the matcher replaced: the reference for its case rules."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@given(_names, _names, st.booleans())
def test_wildcard_match_agrees_with_its_regex(pattern: str, value: str, ignore_case: bool) -> None:
    """The plain-name fast paths answer exactly as the regex the matcher replaced did,
    Unicode case rules (Kelvin sign, dotted and dotless i) included."""
    expected = _regex(pattern, ignore_case).fullmatch(value) is not None
    assert wildcard_match(pattern, value, ignore_case=ignore_case) is expected


# ------------------------------------------------------------------ properties

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
_actions = st.lists(
    st.one_of(
        st.sampled_from(["oss:GetObject", "oss:PutObject", "oss:List*", "*", "ram:*"]),
        _text.map(lambda t: "svc:" + t),
    ),
    min_size=1,
    max_size=4,
)
_conditions = st.lists(
    st.builds(
        Condition,
        st.sampled_from(["StringLike", "StringEquals", "IpAddress", "Bool"]),
        st.sampled_from(["oss:Prefix", "acs:SourceIp", "acs:SecureTransport"]),
        st.lists(_text, min_size=1, max_size=3).map(tuple),
    ),
    max_size=3,
    unique_by=lambda c: (c.operator, c.key),
)
_statements = st.builds(
    Statement,
    st.sampled_from(["Allow", "Deny"]),
    _actions.map(tuple),
    st.lists(_text, min_size=1, max_size=3).map(tuple),
    _conditions.map(tuple),
    st.booleans(),
    st.booleans(),
)
_policies = st.builds(Policy, st.lists(_statements, max_size=5).map(tuple))


@given(_policies)
def test_parse_of_emit_is_identity(policy: Policy) -> None:
    assert parse_policy(policy.dumps()) == policy


@given(_policies)
def test_canonical_is_idempotent_and_survives_a_round_trip(policy: Policy) -> None:
    once = canonical(policy)
    assert canonical(once) == once
    assert canonical(parse_policy(once.dumps())) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2,], "b": "x,]",}', '{"a": [1, 2 ], "b": "x,]" }'),
        (r'{"a": "q\\", "b": [",}",],}', r'{"a": "q\\", "b": [",}" ] }'),
        (r'{"a": "esc\\\",]",}', r'{"a": "esc\\\",]" }'),
        ("[1 ,\n ]", "[1  \n ]"),
        ("no commas", "no commas"),
    ],
)
def test_trailing_commas_are_blanked_outside_strings_only(text: str, expected: str) -> None:
    from permgen.policy.model import _strip_trailing_commas

    assert _strip_trailing_commas(text) == expected
    assert len(_strip_trailing_commas(text)) == len(text)


@given(st.lists(st.text(alphabet='ab,]}"\\\\ ', max_size=6), max_size=5))
def test_strings_survive_comma_stripping(values: list[str]) -> None:
    from permgen.policy.model import _strip_trailing_commas

    doc = json.dumps({"k": values})
    text = doc[:-1] + ",}"
    assert json.loads(_strip_trailing_commas(text)) == {"k": values}
