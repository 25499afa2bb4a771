"""Parsers that cannot be driven into the ground: deep nesting, long numbers, NaN and
Infinity, and values that are not strings where RAM wants strings, in policies (every
command that reads one) and in specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen._internal.safejson import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    JsonLimitError,
    JsonNumber,
    check_depth,
    loads,
    nesting_depth,
)
from permgen.errors import PolicyParseError, SpecError
from permgen.policy.model import parse_policy
from permgen.spec.load import MAX_INT_CHARS, parse_spec
from tests.conftest import run_cli


def _policy(resource: str = '"*"', condition: str = "") -> str:
    cond = f', "Condition": {condition}' if condition else ""
    return (
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", '
        f'"Resource": {resource}{cond}}}]}}'
    )


DEEP = "[" * 8000 + "]" * 8000  # the reproduction: 8,000 levels inside 16 KiB
DEEP_IN_POLICY = '{"Version": "1", "Statement": ' + DEEP + "}"
BIG_INT = _policy("9" * 5000)

# ------------------------------------------------------------------ the reproductions


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (DEEP, f"nested more than {MAX_DEPTH} deep"),
        (DEEP_IN_POLICY, f"nested more than {MAX_DEPTH} deep"),
        (BIG_INT, f"a number of 5000 characters (at most {MAX_NUMBER_CHARS})"),
        (_policy("NaN"), "not valid JSON: NaN is not a JSON value"),
        (_policy("Infinity"), "not valid JSON: Infinity is not a JSON value"),
        (_policy('["*", -Infinity]'), "not valid JSON: -Infinity is not a JSON value"),
        (_policy("123"), "Statement[0].Resource: expected a string, got a number"),
        (_policy('["*", true]'), "Statement[0].Resource[1]: expected a string, got a boolean"),
        (_policy("null"), "Statement[0].Resource: expected a string, got null"),
        (_policy("[[]]"), "Statement[0].Resource[0]: expected a string, got a list"),
        ('{"Version": 1, "Statement": []}', 'Version must be "1", not 1'),
        (
            '{"Version": "1", "Statement": [{"Effect": true, "Action": "a:b", "Resource": "*"}]}',
            'Effect must be "Allow" or "Deny", not true',
        ),
        (
            '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": 7, "Resource": "*"}]}',
            "Statement[0].Action: expected a string, got a number",
        ),
        (
            '{"Version": "1", "Statement": [{"Sid": 1, "Effect": "Allow", "Action": "a:b", "Resource": "*"}]}',
            "Sid must be a string",
        ),
        (_policy(condition='{"Bool": {"acs:SecureTransport": NaN}}'), "NaN"),
        (_policy(condition='{"NumericLessThan": {"x:y": 1e999999}}'), None),
    ],
)
def test_policies_are_refused_with_a_message_not_a_traceback(text: str, needle: str | None) -> None:
    if needle is None:  # a long exponent is kept as written: no float is ever made of it
        cond = parse_policy(text).statements[0].conditions[0]
        assert cond.values == ("1e999999",)
        return
    with pytest.raises(PolicyParseError) as info:
        parse_policy(text, source="p.json")
    assert needle in str(info.value)
    assert str(info.value).startswith("p.json")


def test_the_refusal_says_where() -> None:
    with pytest.raises(PolicyParseError) as info:
        parse_policy('{\n"Version": "1",\n"Statement": [\n' + DEEP + "]}", source="p.json")
    assert (info.value.line, info.value.column) == (4, MAX_DEPTH - 1)
    with pytest.raises(PolicyParseError) as info:
        parse_policy("{\n" + BIG_INT[1:], source="p.json")
    assert info.value.line == 2


def test_condition_values_keep_numbers_and_booleans_as_written() -> None:
    policy = parse_policy(
        _policy(
            condition='{"Bool": {"acs:SecureTransport": true}, '
            '"NumericLessThan": {"x:n": [10, 1.50, -2e3]}}'
        )
    )
    values = {c.key: c.values for c in policy.statements[0].conditions}
    assert values == {"acs:SecureTransport": ("true",), "x:n": ("10", "1.50", "-2e3")}
    # a float decoded elsewhere has lost its written form: refused
    doc = json.loads(_policy(condition='{"NumericLessThan": {"x:n": 1.5}}'))
    with pytest.raises(PolicyParseError, match="got a number"):
        parse_policy(doc)


@pytest.mark.parametrize("command", ["lint", "diff", "explain"])
@pytest.mark.parametrize(
    "text", [DEEP, DEEP_IN_POLICY, BIG_INT, _policy("NaN"), _policy("123")], ids=range(5)
)
def test_every_command_refuses_with_exit_2(tmp_path: Path, command: str, text: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    good = tmp_path / "good.json"
    good.write_text(_policy())
    args = {
        "lint": ["lint", str(bad)],
        "diff": ["diff", str(good), str(bad)],
        "explain": [
            "explain",
            "--action",
            "oss:GetObject",
            "--resource",
            "acs:oss:*:*:b/k",
            str(bad),
        ],
    }[command]
    result = run_cli(*args)  # a traceback fails here
    # lint reports a grammar error as a finding (exit 3); JSON it cannot read is exit 2
    grammar = command == "lint" and text == _policy("123")
    assert result.exit_code == (3 if grammar else 2), result.output
    assert "bad.json" in result.output


# ------------------------------------------------------------------ specs


SPEC = """version: 1
roles:
  r:
    template: reader
    grants: [{{bucket: example-bucket}}]
    sts: {{role_arn: "acs:ram::1234567890123456:role/r", duration: {duration}}}
"""


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            SPEC.format(duration="9" * 5000),
            f"an integer of 5000 characters (at most {MAX_INT_CHARS})",
        ),
        (SPEC.format(duration="0x" + "f" * 5000), "an integer of 5002 characters"),
        ("version: 1\nroles: " + DEEP, "nest"),
        ("version: 1\nroles: " + "[" * 900 + "]" * 900, "roles"),
        ("version: 1\nroles:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)), "roles"),
    ],
    ids=["long-int", "long-hex", "deep-flow", "deep-but-parsable", "deep-block"],
)
def test_specs_are_refused_with_a_message(text: str, needle: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="s.yaml")
    assert needle in str(info.value)


def test_an_alias_bomb_stops_at_the_node_budget(tmp_path: Path) -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines.append("roles: {r: {template: reader, grants: [{bucket: example-bucket}]}, q: *a9}")
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\n")
    result = run_cli("compile", str(spec))
    assert result.exit_code == 2
    assert "expands to more than" in result.output


def test_a_long_integer_in_a_spec_is_exit_2_in_compile_and_lint(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(duration="9" * 5000))
    for args in (["compile", str(spec)], ["lint", str(spec)]):
        result = run_cli(*args)
        assert result.exit_code == 2, result.output
        assert "5000 characters" in result.output


# ------------------------------------------------------------------ the properties


def _json_values() -> st.SearchStrategy[Any]:
    text = st.text(alphabet='ab[]{}"\\,: \n\u00e9', max_size=6)
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), text),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)
        ),
        max_leaves=30,
    )


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(_json_values(), st.booleans())
def test_the_depth_scan_agrees_with_the_decoder(value: Any, indent: bool) -> None:
    text = json.dumps(value, indent=1 if indent else None, ensure_ascii=False)
    assert nesting_depth(text, stop=100) == _depth(value)
    check_depth(text, max_depth=_depth(value))
    if _depth(value):
        with pytest.raises(JsonLimitError):
            check_depth(text, max_depth=_depth(value) - 1)


_STATEMENT_VALUES = st.one_of(
    st.just('"*"'),
    st.just('"oss:GetObject"'),
    st.integers().map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5", "true", "null", "1e99999"]),
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=0, max_value=3000).map(lambda d: "[" * d + '"x"' + "]" * d),
    st.integers(min_value=0, max_value=3000).map(lambda d: '{"a":' * d + "1" + "}" * d),
)


def _as_strings(raw: Any, scalars: bool) -> tuple[str, ...] | None:
    """What RAM's grammar makes of a value, or None where it wants strings and gets none."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif scalars and isinstance(item, bool):
            out.append("true" if item else "false")
        elif scalars and isinstance(item, JsonNumber):
            out.append(item.text)
        else:
            return None
    return tuple(out) or None


@settings(max_examples=150, deadline=None)
@given(
    effect=st.one_of(st.just('"Allow"'), _STATEMENT_VALUES),
    action=st.one_of(st.just('["oss:GetObject", "oss:PutObject"]'), _STATEMENT_VALUES),
    resource=st.one_of(st.just('["acs:oss:*:*:b/*"]'), _STATEMENT_VALUES),
    cvalue=st.one_of(st.just('["a", 10, 1.50, true]'), _STATEMENT_VALUES),
)
def test_any_shape_parses_or_is_refused_cleanly(
    effect: str, action: str, resource: str, cvalue: str
) -> None:
    text = (
        f'{{"Version": "1", "Statement": [{{"Effect": {effect}, "Action": {action}, '
        f'"Resource": {resource}, "Condition": {{"StringEquals": {{"k:k": {cvalue}}}}}}}]}}'
    )
    try:
        decoded: Any = loads(text)["Statement"][0]
    except (JsonLimitError, ValueError):
        decoded = None
    try:
        policy = parse_policy(text)
    except PolicyParseError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        if decoded is not None:  # the JSON was fine: the grammar refused a value
            assert (
                decoded["Effect"] != "Allow"
                or _as_strings(decoded["Action"], False) is None
                or _as_strings(decoded["Resource"], False) is None
                or _as_strings(decoded["Condition"]["StringEquals"]["k:k"], True) is None
                or "service:ActionName" in str(exc)
            ), str(exc)
        return
    # what parses is exactly what was written: no number or boolean became an action or ARN
    assert decoded is not None
    st0 = policy.statements[0]
    assert st0.effect == "Allow"
    assert st0.resources == _as_strings(decoded["Resource"], False)
    assert len(st0.actions) == len(_as_strings(decoded["Action"], False) or ())
    assert st0.conditions[0].values == _as_strings(
        decoded["Condition"]["StringEquals"]["k:k"], True
    )


def test_the_parse_caches_keep_short_texts_only() -> None:
    """A request's long values are parsed but never kept: the caches hold at most
    PARSE_CACHE_SIZE short texts, so hostile requests cannot grow them by their size."""
    from permgen.semantics import conditions

    long_key = "acs:" + "k" * 10_000
    long_ip = " " * 5_000 + "10.0.0.1"
    before = (
        conditions._cached_canonical.cache_info().currsize,
        conditions._cached_address.cache_info().currsize,
    )
    assert conditions.canonical_key(long_key) == long_key
    assert conditions._parse_address(long_ip) is not None  # parsed as before
    after = (
        conditions._cached_canonical.cache_info().currsize,
        conditions._cached_address.cache_info().currsize,
    )
    assert after == before
    assert conditions._cached_canonical.cache_info().maxsize == conditions.PARSE_CACHE_SIZE
    assert conditions._cached_address.cache_info().maxsize == conditions.PARSE_CACHE_SIZE
