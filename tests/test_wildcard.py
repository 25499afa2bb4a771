"""Wildcard matching in linear time: the matcher against independent references, its work
bound, and the hostile ``*a*a*...*b`` patterns through every command that matches globs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from permgen.policy.model import Policy, parse_policy
from permgen.policy.wildcard import PatternSet, compile_pattern, is_simple, match, match_cost
from permgen.semantics import Evaluator, Request, diff_policies
from permgen.semantics import automata as glob_mod
from permgen.semantics.diff import DIFF_STEP_LIMIT, DiffTooLarge
from tests.conftest import ROOT, run_cli

# ------------------------------------------------------------------ references


def _same_char(p: str, c: str, ignore_case: bool) -> bool:
    """One pattern character against one text character: with case ignored, as
    re.IGNORECASE compares them (the rule permgen has always applied to actions)."""
    if p == c:
        return True
    return ignore_case and re.fullmatch(re.escape(p), c, re.IGNORECASE) is not None


def _head(pattern: str) -> int:
    """Characters of an ARN pattern before its fourth ":" (0: not an ARN pattern)."""
    if not pattern.startswith("acs:"):
        return 0
    colons = [i for i, c in enumerate(pattern) if c == ":"]
    return colons[3] if len(colons) >= 4 else 0


def brute(pattern: str, text: str, *, ignore_case: bool = False, arn: bool = False) -> bool:
    """A memoized recursive matcher written from the definition (no chunking, no regex)."""
    head = _head(pattern) if arn else 0

    @cache
    def go(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(text)
        p = pattern[i]
        if p == "*":
            if go(i + 1, j):
                return True
            return j < len(text) and not (i < head and text[j] == ":") and go(i, j + 1)
        if j == len(text):
            return False
        if p == "?":
            return not (i < head and text[j] == ":") and go(i + 1, j + 1)
        return _same_char(p, text[j], ignore_case) and go(i + 1, j + 1)

    return go(0, 0)


def old_regex(pattern: str, text: str, *, ignore_case: bool = False, arn: bool = False) -> bool:
    """The backtracking regex the matcher replaced (safe on short inputs only)."""
    head = _head(pattern) if arn else 0
    body = "".join(
        ("[^:]*" if i < head else ".*")
        if c == "*"
        else ("[^:]" if i < head else ".")
        if c == "?"
        else re.escape(c)
        for i, c in enumerate(pattern)
    )
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(body, text, flags) is not None


_PAT = st.text(alphabet="ab*?:/", max_size=10)
_TXT = st.text(alphabet="ab:/", max_size=12)
_ARN_PAT = st.builds(lambda a, b: "acs:" + a + ":" + b, _PAT, _PAT)
_ARN_TXT = st.builds(lambda a, b: "acs:" + a + ":" + b, _TXT, _TXT)
_CASE_PAT = st.text(alphabet="aAkK\u212a\u0130\u0131iIsS\u017f*?:", max_size=8)
_CASE_TXT = st.text(alphabet="aAkK\u212a\u0130\u0131iIsS\u017f:x", max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_PAT, _ARN_PAT), st.one_of(_TXT, _ARN_TXT), st.booleans(), st.booleans())
def test_the_matcher_agrees_with_a_brute_force_reference(
    pattern: str, text: str, arn: bool, ignore_case: bool
) -> None:
    expected = brute(pattern, text, ignore_case=ignore_case, arn=arn)
    assert match(pattern, text, ignore_case=ignore_case, arn=arn) is expected
    # the chunk matcher too, for simple patterns that match() hands to a regex
    assert match_cost(pattern, text, ignore_case=ignore_case, arn=arn)[0] is expected
    assert old_regex(pattern, text, ignore_case=ignore_case, arn=arn) is expected


@settings(max_examples=200, deadline=None)
@given(_CASE_PAT, _CASE_TXT, st.booleans())
def test_unicode_case_is_compared_as_before(pattern: str, text: str, arn: bool) -> None:
    """Kelvin sign, dotted and dotless i, long s: the same answers as re.IGNORECASE."""
    expected = old_regex(pattern, text, ignore_case=True, arn=arn)
    assert match(pattern, text, ignore_case=True, arn=arn) is expected
    assert match_cost(pattern, text, ignore_case=True, arn=arn)[0] is expected
    assert brute(pattern, text, ignore_case=True, arn=arn) is expected


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(_PAT, _ARN_PAT, _CASE_PAT), max_size=5),
    st.one_of(_TXT, _ARN_TXT, _CASE_TXT),
    st.booleans(),
    st.booleans(),
)
def test_a_pattern_set_matches_when_one_of_its_patterns_does(
    patterns: list[str], text: str, arn: bool, ignore_case: bool
) -> None:
    expected = any(brute(p, text, ignore_case=ignore_case, arn=arn) for p in patterns)
    assert PatternSet(patterns, ignore_case=ignore_case, arn=arn).match(text) is expected


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab*?", max_size=40),
    st.text(alphabet="ab", max_size=80),
    st.booleans(),
)
def test_the_work_is_at_most_pattern_times_text(pattern: str, text: str, ignore_case: bool) -> None:
    ok, cost = match_cost(pattern, text, ignore_case=ignore_case)
    assert ok is brute(pattern, text, ignore_case=ignore_case)
    assert cost <= len(pattern) * (len(text) + 1)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_PAT, _ARN_PAT), st.booleans())
def test_only_patterns_that_cannot_backtrack_take_the_regex_path(pattern: str, arn: bool) -> None:
    """A regex gets at most one star with a choice: none of two stars after the ARN head,
    and a star in the head only where a ":" follows it."""
    head = _head(pattern) if arn else 0
    if is_simple(pattern, arn=arn):
        assert pattern.count("*", head) <= 1
        assert all(pattern[i + 1] == ":" for i in range(head) if pattern[i] == "*")
    if pattern.count("*", head) >= 2:
        assert not is_simple(pattern, arn=arn)
        assert not compile_pattern(pattern, arn=arn).simple


# ------------------------------------------------------------------ the reproductions

HOSTILE = "*a" * 10 + "*b"  # ten "*a" groups: the regex it replaced did not finish in 120 s
TEXT_60 = "corp-data/" + "a" * 50  # 60 characters, no "b"


@pytest.mark.parametrize("groups", [8, 10, 30])
def test_hostile_patterns_cost_at_most_pattern_times_text(groups: int) -> None:
    pattern = "corp-data/" + "*a" * groups + "*b"
    start = time.perf_counter()
    for arn in (False, True):
        prefix = "acs:oss:*:*:" if arn else ""
        ok, cost = match_cost(prefix + pattern, prefix + TEXT_60, arn=arn)
        assert not ok
        assert cost <= len(prefix + pattern) * (len(prefix + TEXT_60) + 1)
        assert match(prefix + pattern, prefix + TEXT_60 + "b", arn=arn)
    assert time.perf_counter() - start < 5  # a guard against hangs, not a benchmark


def _policy(resource: str, action: str = "oss:GetObject") -> dict[str, object]:
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": [action], "Resource": [resource]}],
    }


@pytest.mark.parametrize("groups", [8, 10])
def test_explain_decides_a_hostile_resource_pattern_at_once(tmp_path: Path, groups: int) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_policy("acs:oss:*:*:corp-data/" + "*a" * groups + "*b")))
    arn = "acs:oss:*:1234567890123456:" + TEXT_60  # explain takes a resource as an ARN
    start = time.perf_counter()
    denied = run_cli(
        "explain", str(path), "--action", "oss:GetObject", "--resource", arn, "--format", "json"
    )
    allowed = run_cli("explain", str(path), "--action", "oss:GetObject", "--resource", arn + "b")
    assert time.perf_counter() - start < 5
    assert json.loads(denied.output)["decision"] == "implicit_deny"
    assert allowed.output.startswith("allow")


def test_explain_with_hostile_action_and_condition_patterns() -> None:
    """Action patterns (case ignored) and StringLike values go through the same matcher."""
    doc = _policy("*", action="oss:" + "*e" * 12 + "*z")
    doc["Statement"][0]["Condition"] = {"StringLike": {"oss:Prefix": ["*a" * 12 + "*b"]}}  # type: ignore[index]
    ev = Evaluator([parse_policy(doc)])
    start = time.perf_counter()
    assert not ev.allows(Request("oss:" + "E" * 60, "acs:oss:*:*:b", {"oss:Prefix": "a" * 60}))
    assert not ev.allows(
        Request("oss:" + "E" * 60 + "z", "acs:oss:*:*:b", {"oss:Prefix": "a" * 60})
    )
    assert ev.allows(
        Request("oss:" + "E" * 60 + "Z", "acs:oss:*:*:b", {"oss:Prefix": "a" * 60 + "b"})
    )
    assert time.perf_counter() - start < 5


def _diff_steps(groups: int) -> tuple[int, bool]:
    """Budget steps a diff of one hostile pattern against a plain grant spends."""
    spent: list[glob_mod.Budget] = []
    real = glob_mod.Budget

    class Recording(real):  # type: ignore[misc,valid-type]
        def __init__(self, limit: int) -> None:
            super().__init__(limit)
            spent.append(self)

    import permgen.semantics.diff as diff_mod

    diff_mod.Budget = Recording  # type: ignore[misc]
    try:
        result = diff_policies(
            [parse_policy(_policy("acs:oss:*:*:corp-data/x"))],
            [parse_policy(_policy("acs:oss:*:*:corp-data/" + "*a" * groups + "*b"))],
        )
    finally:
        diff_mod.Budget = real  # type: ignore[misc]
    assert result.exact
    return sum(b.used for b in spent), bool(result.new_access)


def test_diff_of_hostile_patterns_grows_polynomially() -> None:
    """22 -> 30 groups took 0.4 -> 64 s; now the work grows linearly with the groups."""
    start = time.perf_counter()
    small, new_small = _diff_steps(22)
    large, new_large = _diff_steps(30)
    assert new_small and new_large
    assert large <= small * 30 / 22 * 1.5
    assert large < DIFF_STEP_LIMIT / 100
    assert time.perf_counter() - start < 5


def test_diff_cli_with_thirty_groups(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_policy("acs:oss:*:*:corp-data/x")))
    new.write_text(json.dumps(_policy("acs:oss:*:*:corp-data/" + "*a" * 30 + "*b")))
    start = time.perf_counter()
    result = run_cli("diff", str(old), str(new), "--format", "json")
    assert time.perf_counter() - start < 5
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["exact"] and not report["equivalent"]
    (item,) = report["new_access"]
    assert match(item["resources"][0], item["witness"]["resource"], arn=True)


def _overlapping(groups: int, per_group: int) -> dict[str, object]:
    """Many overlapping multi-star patterns per bucket: their product automaton is huge."""
    import random

    rng = random.Random(7)
    resources = [
        f"acs:oss:*:*:bucket{g}/" + "*".join(rng.choice("abcd") for _ in range(6)) + "*"
        for g in range(groups)
        for _ in range(per_group)
    ]
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": resources}],
    }


def test_a_diff_past_its_budget_is_refused_with_exit_2(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_policy("acs:oss:*:*:corp-data/x")))
    new.write_text(json.dumps(_overlapping(1, 30)))
    start = time.perf_counter()
    with pytest.raises(DiffTooLarge, match="pattern search"):
        diff_policies(
            [parse_policy(json.loads(old.read_text()))], [parse_policy(_overlapping(1, 30))]
        )
    result = run_cli("diff", str(old), str(new))
    assert time.perf_counter() - start < 30
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "diff refused" in lines[0] and "docs/semantics.md" in lines[0]


def test_many_condition_keys_on_one_statement_are_folded() -> None:
    """24 keys (2**24 combinations of their classes) on one statement: combined key by key,
    only the combinations that change which statements apply are kept, so the diff is
    answered exactly and at once (tests/test_diff_regions.py: refusal past the budget)."""
    doc = _policy("acs:oss:*:*:b/*")
    doc["Statement"][0]["Condition"] = {"StringEquals": {f"acs:K{i}": ["v"] for i in range(24)}}  # type: ignore[index]
    start = time.perf_counter()
    result = diff_policies([parse_policy(_policy("acs:oss:*:*:b/x"))], [parse_policy(doc)])
    assert time.perf_counter() - start < 5
    assert result.exact and result.stats["context_classes"] <= 4
    (item,) = result.new_access
    assert item.witness.context == {f"acs:K{i}": "v" for i in range(24)}


def test_lint_of_hostile_patterns(tmp_path: Path) -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject"],
                "Resource": ["acs:oss:*:*:" + "a" * 60 + "/r/*"],
            },
            {
                "Effect": "Allow",
                "Action": ["oss:ListObjects"],
                "Resource": ["acs:oss:*:*:" + HOSTILE],
            },
            {
                "Effect": "Allow",
                "Action": ["oss:" + "*e" * 12 + "*t"],
                "Resource": ["acs:oss:*:*:" + "a" * 60 + "/" + HOSTILE],
            },
        ],
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    start = time.perf_counter()
    result = run_cli("lint", str(path), "--format", "json")
    assert time.perf_counter() - start < 5
    assert result.exit_code in (0, 3)
    assert json.loads(result.output)["summary"]["inputs"] == 1


REVIEW_SPEC = """\
version: 1
defaults:
  account: "1234567890123456"
templates: tpl
roles:
  reader:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["exports/"]}]
"""


def test_review_of_a_template_with_a_hostile_pattern(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "keep.txt").write_text("")
    (tmp_path / "roles.yaml").write_text(REVIEW_SPEC)
    git("add", ".")
    git("commit", "-q", "-m", "base")
    hostile = json.dumps(_policy("acs:oss:*:*:corp-data/" + "*a" * 30 + "*b"))
    (tmp_path / "tpl" / "hostile.json.j2").write_text(hostile)
    (tmp_path / "roles.yaml").write_text(
        REVIEW_SPEC + "  odd:\n    template: hostile\n    grants: [{bucket: corp-data}]\n"
    )
    git("add", "tpl/hostile.json.j2")  # review reads only the templates git tracks
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "permgen",
            "review",
            "roles.yaml",
            "--base",
            "main",
            "--format",
            "json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert time.perf_counter() - start < 30
    assert proc.returncode in (0, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "odd" in proc.stdout


_STAR_PATTERNS = st.lists(
    st.text(alphabet="ab*", min_size=1, max_size=8).map(lambda p: "acs:oss:*:*:bk/" + p),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(_STAR_PATTERNS, _STAR_PATTERNS, st.sampled_from([300, 3_000, 30_000]))
def test_a_budget_refuses_or_answers_exactly(old: list[str], new: list[str], limit: int) -> None:
    """Whatever the patterns, a diff under a budget either gives the same answer as without
    one (the limit never makes it inexact) or refuses with DiffTooLarge."""
    import permgen.semantics.diff as diff_mod

    def policies(resources: list[str]) -> list[Policy]:
        return [parse_policy(_policy_list(resources))]

    full = diff_policies(policies(old), policies(new))
    saved = diff_mod.DIFF_STEP_LIMIT
    diff_mod.DIFF_STEP_LIMIT = limit
    try:
        small = diff_policies(policies(old), policies(new))
    except DiffTooLarge as exc:
        assert "diff refused" in str(exc)
        event("refused")
        return
    finally:
        diff_mod.DIFF_STEP_LIMIT = saved
    event("answered")
    assert small.exact and full.exact
    assert small.to_json() == full.to_json()


def _policy_list(resources: list[str]) -> dict[str, object]:
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": resources}],
    }
