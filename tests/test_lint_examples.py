"""Every lint rule's documented examples do what docs/rules.md says: the example it flags
yields a finding with that rule's id, and the example it does not flag yields none.

The examples are read from docs/rules.md itself (generated from the rule catalog; a test in
test_lint.py keeps the two the same), so what a reader sees is what is checked.
"""

from __future__ import annotations

import json
import re

import pytest

from permgen.lint.engine import lint_policy
from permgen.lint.rules import RULES
from permgen.policy.model import parse_policy
from tests.conftest import ROOT

_SECTION = re.compile(r"^## (PG\d{3})\n(.*?)(?=^## |\Z)", re.M | re.S)
_BLOCK = re.compile(r"^Example that it (flags|does not flag):\n\n```json\n(.*?)\n```", re.M | re.S)


def _documented() -> dict[str, dict[str, str]]:
    text = (ROOT / "docs" / "rules.md").read_text()
    return {
        rule: {kind: body for kind, body in _BLOCK.findall(section)}
        for rule, section in _SECTION.findall(text)
    }


DOCUMENTED = _documented()
#: rules whose flagged example is prose, not a policy (checked below in other ways)
NOT_A_POLICY = {"PG107": "(a policy of more than 6,144 bytes)"}


def _as_policy(example: str) -> str:
    """A documented example is a whole policy, one statement, or a list of statements."""
    value = json.loads(example)
    if isinstance(value, dict) and "Statement" in value:
        return example
    statements = value if isinstance(value, list) else [value]
    return json.dumps({"Version": "1", "Statement": statements})


def test_every_rule_is_documented_with_the_examples_its_catalog_entry_has() -> None:
    assert sorted(DOCUMENTED) == sorted(r.id for r in RULES)
    for r in RULES:
        assert DOCUMENTED[r.id].get("flags", "") == r.example, r.id
        assert DOCUMENTED[r.id].get("does not flag", "") == r.passes, r.id
    # only the internal-error rule has no flagged example; every policy rule has a clean one
    assert [r.id for r in RULES if not r.example] == ["PG002"]
    assert [r.id for r in RULES if not r.passes] == ["PG002", "PG107"]


@pytest.mark.parametrize(
    "rule", [r for r, ex in DOCUMENTED.items() if "flags" in ex and r not in NOT_A_POLICY]
)
def test_the_flagged_example_fires_its_rule(rule: str) -> None:
    findings = list(lint_policy(_as_policy_or_raw(DOCUMENTED[rule]["flags"]), source="example"))
    assert rule in {f.rule_id for f in findings}, findings


@pytest.mark.parametrize("rule", [r for r, ex in DOCUMENTED.items() if "does not flag" in ex])
def test_the_clean_example_does_not_fire_its_rule(rule: str) -> None:
    findings = list(lint_policy(_as_policy(DOCUMENTED[rule]["does not flag"]), source="example"))
    assert rule not in {f.rule_id for f in findings}, findings
    assert "PG001" not in {f.rule_id for f in findings}, findings  # it is a valid policy


def _as_policy_or_raw(example: str) -> str:
    """PG001's example is an invalid policy, linted as written."""
    value = json.loads(example)
    return example if isinstance(value, dict) and "Version" in value else _as_policy(example)


def test_the_size_rule_fires_just_past_the_limit_and_not_at_it() -> None:
    assert DOCUMENTED["PG107"]["flags"] == NOT_A_POLICY["PG107"]

    def policy(n: int) -> str:
        statement = {
            "Effect": "Allow",
            "Action": "oss:GetObject",
            "Resource": "acs:oss:*:*:b/" + "k" * n,
        }
        return json.dumps({"Version": "1", "Statement": [statement]})

    # the first resource length at which the rule fires is where RAM's count passes 6,144
    fired = [n for n in range(5900, 6200) if "PG107" in {f.rule_id for f in lint_policy(policy(n))}]
    assert fired and fired[0] > 5900
    first = fired[0]
    assert parse_policy(policy(first)).size() > 6144 >= parse_policy(policy(first - 1)).size()
