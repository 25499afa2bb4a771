"""Each diff entry describes exactly its part of the delta.

The entries of ``new_access`` together cover exactly the (action, resource) pairs that some
request NEW allows and OLD denies has, and ``removed_access`` likewise; checked against a
brute-force delta over a universe built from the policies' own names."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.policy import catalog
from permgen.policy.model import Condition, Policy, Statement, parse_policy
from permgen.policy.wildcard import match as wildcard_match
from permgen.semantics import Evaluator, MissingKey, Request, diff_policies
from permgen.semantics.conditions import RequestContext
from permgen.semantics.diff import AccessItem
from permgen.semantics.evaluate import CompiledStatement
from permgen.semantics.regions import intersection
from tests.conftest import run_cli

A = "acs:oss:*:1234567890123456:"


def _p(*statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "1", "Statement": list(statements)})


def _in_region(item: AccessItem, resource: str) -> bool:
    return any(wildcard_match(r, resource, arn=True) for r in item.resources) and not any(
        wildcard_match(e, resource, arn=True) for e in item.except_resources
    )


# ------------------------------------------------------------------ the examples


def test_a_widened_statement_reports_only_what_is_new() -> None:
    old = _p({"Effect": "Allow", "Action": "oss:GetObject", "Resource": A + "lake-a/in/*"})
    new = _p(
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:DeleteObject"],
            "Resource": [A + "lake-a/in/*", A + "lake-z/*"],
        }
    )
    result = diff_policies([old], [new])
    entries = {(i.actions, i.resources, i.except_resources) for i in result.new_access}
    assert entries == {
        (("oss:DeleteObject",), (A + "lake-a/in/*", A + "lake-z/*"), ()),
        (("oss:GetObject",), (A + "lake-z/*",), ()),
    }
    assert result.removed_access == ()


def test_not_resource_removal_is_everything_outside_the_new_resource() -> None:
    old = _p({"Effect": "Allow", "Action": "oss:GetObject", "NotResource": A + "mybucket/secret/*"})
    new = _p({"Effect": "Allow", "Action": "oss:GetObject", "Resource": A + "mybucket/*"})
    result = diff_policies([old], [new])
    (removed,) = result.removed_access
    assert (removed.resources, removed.except_resources) == (("*",), (A + "mybucket/*",))
    assert not removed.witness.resource.split(":", 4)[4].startswith("mybucket/")
    (added,) = result.new_access
    assert (added.resources, added.except_resources) == ((A + "mybucket/secret/*",), ())


def test_widening_a_prefix_excepts_the_old_prefix_in_every_format(tmp_path: Path) -> None:
    old = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": A + "a/b/*"}],
    }
    new = json.loads(json.dumps(old))
    new["Statement"][0]["Resource"] = A + "a/*"
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    paths = [str(tmp_path / "old.json"), str(tmp_path / "new.json")]
    doc = json.loads(run_cli("diff", *paths, "--format", "json").output)
    (item,) = doc["new_access"]
    assert item["resources"] == [A + "a/*"]
    assert item["except_resources"] == [A + "a/b/*"]
    assert not item["witness"]["resource"].split(":", 4)[4].startswith("a/b/")
    region = f"{A}a/* except {A}a/b/*"
    assert f"oss:GetObject on {region}" in run_cli("diff", *paths).output
    md = run_cli("diff", *paths, "--format", "markdown").output
    assert f"| `{A}a/*` except `{A}a/b/*` |" in md


def test_a_prefix_scoped_listing_shows_its_prefix() -> None:
    new = _p(
        {
            "Effect": "Allow",
            "Action": "oss:ListObjects",
            "Resource": A + "b",
            "Condition": {"StringLike": {"oss:Prefix": "in/*"}},
        }
    )
    from permgen.semantics.render import diff_markdown, diff_text

    result = diff_policies([_p()], [new])
    (item,) = result.new_access
    assert item.witness.context["oss:Prefix"].startswith("in/")
    assert f"(oss:Prefix={item.witness.context['oss:Prefix']})" in diff_text(result)
    assert f"with oss:Prefix={item.witness.context['oss:Prefix']}" in diff_markdown(result)


def test_intersections_are_written_as_globs() -> None:
    assert intersection((A + "b/*", "acs:oss:*:*:?/y")) == (A + "b/y",)
    assert intersection(("*a*", "*b*")) == ("*a*b*", "*b*a*")
    assert intersection((A + "b/*", A + "c/*")) == ()
    assert intersection((A + "b/*", "*")) == (A + "b/*",)
    # a wildcard in the head stays within its segment
    assert intersection(("acs:oss:*:*:b/*", "acs:*:cn-*:*:*/x")) == (
        "acs:oss:cn-*:*:b/*/x",
        "acs:oss:cn-*:*:b/x",
    )


# ------------------------------------------------------------------ brute force

ACTION_PATTERNS = [
    "oss:GetObject",
    "oss:PutObject",
    "oss:DeleteObject",
    "oss:ListObjects",
    "oss:Get*",
    "oss:*Object",
    "*",
    "oss:?etObject",
]
RESOURCE_PATTERNS = [
    "acs:oss:*:*:b/*",
    "acs:oss:*:*:b/a/*",
    "acs:oss:*:*:b",
    "acs:oss:*:*:c/*",
    "*",
    "acs:oss:*:*:?/y",
    "acs:oss:*:*:*/a/*",
    "acs:oss:*:*:b/*x",
    "acs:oss:cn-*:*:b/*",
]
CONDITIONS = [
    Condition("StringLike", "oss:Prefix", ("a/*",)),
    Condition("StringNotEquals", "oss:Prefix", ("y",)),
    Condition("IpAddress", "acs:SourceIp", ("10.0.0.0/8",)),
    Condition("NotIpAddress", "acs:SourceIp", ("10.1.0.0/16",)),
    Condition("Bool", "acs:SecureTransport", ("true",)),
]
#: per key, a value in every class the conditions above tell apart (None: absent)
KEY_VALUES: dict[str, list[str | None]] = {
    "oss:Prefix": [None, "a/b", "y", "zz"],
    "acs:SourceIp": [None, "10.2.3.4", "10.1.2.3", "192.0.2.1"],
    "acs:SecureTransport": [None, "true", "false"],
}

_statement = st.builds(
    lambda effect, acts, ress, conds, na, nr: Statement(
        effect, tuple(acts), tuple(ress), tuple(conds), na, nr
    ),
    st.sampled_from(["Allow", "Allow", "Deny"]),
    st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(CONDITIONS), max_size=2, unique_by=lambda c: (c.operator, c.key)),
    st.sampled_from([False, False, False, True]),
    st.sampled_from([False, False, False, True]),
)
_policy = st.lists(_statement, min_size=1, max_size=4).map(lambda ss: Policy(tuple(ss)))

_FILLS = ["", "x", "a/y"]


def _instances(pattern: str) -> set[str]:
    """Resources built from a pattern: each wildcard filled a few ways, and variations."""
    if pattern == "*":
        return {"acs:oss:cn-hangzhou:1:q/x"}
    head, rest = pattern.rsplit(":", 1)
    heads = {head.replace("*", "cn-hangzhou"), head.replace("cn-*", "us").replace("*", "1")}
    rests = set()
    for fill in _FILLS:
        r = rest.replace("?", fill[:1] or "b").replace("*", fill)
        rests |= {r, r + "x", "c" + r[1:]}
    return {f"{h}:{r}" for h in heads for r in rests if r}


def _universe(old: Policy, new: Policy) -> tuple[list[str], list[str], list[dict[str, str]]]:
    patterns = {r for p in (old, new) for s in p.statements for r in s.resources}
    resources = sorted({r for p in sorted(patterns) for r in _instances(p)})
    actions = [
        "oss:GetObject",
        "oss:PutObject",
        "oss:DeleteObject",
        "oss:ListObjects",
        "oss:SetObject",
        "oss:GetBucketAcl",
        "oss:GetObjectFuture",
        "ram:CreateUser",
    ]
    keys = sorted({c.key for p in (old, new) for s in p.statements for c in s.conditions})
    contexts = [
        {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        for values in itertools.product(*(KEY_VALUES[k] for k in keys))
    ]
    return actions, resources, contexts


def _known(action: str) -> bool:
    return catalog.lookup(action) is not None


def _reach(old: Policy, new: Policy) -> list[tuple[CompiledStatement, frozenset[str]]]:
    """Each statement of both policies without its conditions (so it matches a request
    exactly when its action and resource do), and the condition keys it reads."""
    return [
        (
            CompiledStatement(replace(s, conditions=()), "", i),
            frozenset(c.key for c in s.conditions),
        )
        for p in (old, new)
        for i, s in enumerate(p.statements)
    ]


def _brute_delta(
    o: Evaluator,
    n: Evaluator,
    reach: list[tuple[CompiledStatement, frozenset[str]]],
    actions: list[str],
    resources: list[str],
    contexts: list[dict[str, str]],
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Per (action, resource), in how many contexts NEW allows and OLD denies (gained) and
    the reverse (lost). A decision depends on a context only through the keys of the
    conditions of statements whose action and resource match, so of contexts that agree on
    those keys one is decided and counted for all of them (a pair no statement applies to:
    none is decided, both policies deny it in every context)."""
    gained: dict[tuple[str, str], int] = {}
    lost: dict[tuple[str, str], int] = {}
    nothing = RequestContext({})
    groups: dict[frozenset[str], list[tuple[dict[str, str], int]]] = {}
    for action, resource in itertools.product(actions, resources):
        applies = [
            keys
            for c, keys in reach
            if c.matches(action, resource, nothing, MissingKey.NEGATED_TRUE)
        ]
        if not applies:
            continue
        read = frozenset().union(*applies)
        if read not in groups:  # one context per combination of values of the keys read
            same: dict[tuple[str | None, ...], list[Any]] = {}
            for ctx in contexts:
                group = same.setdefault(tuple(ctx.get(k) for k in sorted(read)), [ctx, 0])
                group[1] += 1
            groups[read] = [(ctx, count) for ctx, count in same.values()]
        for ctx, count in groups[read]:
            req = Request(action, resource, ctx)
            was, now = o.allows(req), n.allows(req)
            if now and not was:
                gained[(action, resource)] = gained.get((action, resource), 0) + count
            elif was and not now:
                lost[(action, resource)] = lost.get((action, resource), 0) + count
    return gained, lost


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy, _policy)
def test_the_brute_force_delta_decides_every_request_it_counts(old: Policy, new: Policy) -> None:
    """:func:`_brute_delta` decides one context per group that the decision cannot tell
    apart; deciding every request of the universe gives the same counts."""
    actions, resources, contexts = _universe(old, new)
    o, n = Evaluator([old]), Evaluator([new])
    gained: dict[tuple[str, str], int] = {}
    lost: dict[tuple[str, str], int] = {}
    for action, resource in itertools.product(actions, resources):
        for ctx in contexts:
            req = Request(action, resource, ctx)
            was, now = o.allows(req), n.allows(req)
            if now and not was:
                gained[(action, resource)] = gained.get((action, resource), 0) + 1
            elif was and not now:
                lost[(action, resource)] = lost.get((action, resource), 0) + 1
    assert _brute_delta(o, n, _reach(old, new), actions, resources, contexts) == (gained, lost)


def _check(items: tuple[AccessItem, ...], delta: dict[tuple[str, str], int], n_ctx: int) -> None:
    for item in items:
        names = {a.lower() for a in item.actions}
        for (action, resource), count in delta.items():
            if (
                action.lower() in names
                and _in_region(item, resource)
                and item.conditions == ("any",)
            ):
                assert count == n_ctx, (item.to_json(), action, resource, "not in every context")
    # every pair of the delta is covered by an entry
    for (action, resource), _count in delta.items():
        covered = [
            i
            for i in items
            if _in_region(i, resource)
            and (
                action.lower() in {a.lower() for a in i.actions}
                or (i.future and not _known(action))
            )
        ]
        assert covered, ("not covered", action, resource, [i.to_json() for i in items])


def _claims(
    items: tuple[AccessItem, ...], actions: list[str], resources: list[str]
) -> set[tuple[str, str]]:
    """The (known action, resource) pairs of the universe the entries claim."""
    out = set()
    for item in items:
        names = {a.lower() for a in item.actions}
        for action in actions:
            if action.lower() in names:
                out |= {(action, r) for r in resources if _in_region(item, r)}
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy, _policy)
def test_entries_cover_exactly_the_delta(old: Policy, new: Policy) -> None:
    result = diff_policies([old], [new])
    assert result.exact
    actions, resources, contexts = _universe(old, new)
    o, n = Evaluator([old]), Evaluator([new])
    gained, lost = _brute_delta(o, n, _reach(old, new), actions, resources, contexts)
    for items, delta in ((result.new_access, gained), (result.removed_access, lost)):
        _check(items, delta, len(contexts))
        # no entry claims a pair outside the delta
        for pair in _claims(items, actions, resources):
            assert pair in delta, ("claimed outside the delta", pair, [i.to_json() for i in items])
        for item in items:
            assert _in_region(item, item.witness.resource), item.to_json()
            assert item.witness.action.lower() in {a.lower() for a in item.actions} or item.future
    for item in result.new_access:
        assert n.allows(item.witness) and not o.allows(item.witness)
    for item in result.removed_access:
        assert o.allows(item.witness) and not n.allows(item.witness)


# ------------------------------------------------------------------ cost: many condition keys


def _tied(side: int, statements: int) -> dict[str, Any]:
    """Every statement ties 9 numeric keys with overlapping thresholds."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject"],
                "Resource": [A + "data/*"],
                "Condition": {
                    "NumericLessThan": {
                        f"test:n{k}": [str((s * (k + 3) + side * 7) % 23 + 1)] for k in range(9)
                    }
                },
            }
            for s in range(statements)
        ],
    }


def _spread(side: int) -> Policy:
    """Nine keys, three on each statement, no two statements on the same three."""
    keys = [
        ("IpAddress", "acs:SourceIp", f"10.{side}.0.0/16"),
        ("Bool", "acs:SecureTransport", "true"),
        ("DateLessThan", "acs:CurrentTime", f"2026-0{1 + side}-01T00:00:00Z"),
        ("StringLike", "oss:Prefix", f"in{side}/*"),
        ("StringEquals", "oss:Delimiter", f"d{side}"),
        ("StringEquals", "acs:SourceVpc", f"vpc-{side}"),
        ("NumericLessThanEquals", "oss:MaxKeys", str(100 + side)),
        ("StringNotEquals", "acs:AccessId", f"LTAI{side}"),
        ("StringEquals", "oss:x-oss-object-acl", f"acl{side}"),
    ]
    statements = []
    for s in range(6):
        cond: dict[str, dict[str, str]] = {}
        for op, key, value in keys[(s * 3) % 9 : (s * 3) % 9 + 3]:
            cond.setdefault(op, {})[key] = value
        statements.append(
            {
                "Effect": "Deny" if s == 5 else "Allow",
                "Action": ["oss:GetObject", "oss:PutObject"][: 1 + s % 2],
                "Resource": A + f"data/t{s % 3}/*",
                "Condition": cond,
            }
        )
    return _p(*statements)


def test_nine_condition_keys_are_answered_exactly_and_agree_with_the_evaluator() -> None:
    import random

    old, new = _spread(0), _spread(1)
    result = diff_policies([old], [new])
    assert result.exact and not result.equivalent
    # far fewer combinations than the product of the keys' classes (over 200,000)
    assert result.stats["context_classes"] < 2_000
    o, n = Evaluator([old]), Evaluator([new])
    rng = random.Random(7)
    values = {
        "acs:SourceIp": ["10.0.1.1", "10.1.1.1", "192.0.2.1"],
        "acs:SecureTransport": ["true", "false"],
        "acs:CurrentTime": ["2026-01-15T00:00:00Z", "2026-03-01T00:00:00Z"],
        "oss:Prefix": ["in0/a", "in1/a", "x"],
        "oss:Delimiter": ["d0", "d1"],
        "acs:SourceVpc": ["vpc-0", "vpc-1"],
        "oss:MaxKeys": ["50", "100", "101", "200"],
        "acs:AccessId": ["LTAI0", "LTAI1", "LTAIx"],
        "oss:x-oss-object-acl": ["acl0", "acl1"],
    }
    differing = 0
    for _ in range(400):
        ctx = {k: rng.choice(v) for k, v in values.items() if rng.random() < 0.8}
        req = Request(
            rng.choice(["oss:GetObject", "oss:PutObject"]),
            A + f"data/t{rng.randrange(3)}/k",
            ctx,
        )
        differs = o.allows(req) != n.allows(req)
        differing += differs
        assert result.classify(req) is differs, req
        if differs:  # an entry on the right side covers its action and resource
            items = result.new_access if n.allows(req) else result.removed_access
            assert any(req.action in i.actions and _in_region(i, req.resource) for i in items), req
    assert differing  # the sample reaches the delta


def test_a_diff_past_its_budget_exits_2_with_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    import permgen.semantics.diff as diff

    (tmp_path / "old.json").write_text(json.dumps(_tied(0, 12)))
    (tmp_path / "new.json").write_text(json.dumps(_tied(1, 12)))
    paths = [str(tmp_path / "old.json"), str(tmp_path / "new.json")]
    monkeypatch.setattr(diff, "DIFF_STEP_LIMIT", 200_000)
    refused = run_cli("diff", *paths)
    assert refused.exit_code == 2
    assert "condition combinations: more than 200,000 steps" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
