"""Compiling specs: golden outputs, template semantics, placeholders, limits, atomic output."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.errors import PlaceholderError, PolicySizeError, SpecError
from permgen.policy.model import Policy
from permgen.policy.wildcard import match as wildcard_match
from permgen.spec.compile import compile_file, compile_spec, session_policy
from permgen.spec.load import parse_spec
from tests.conftest import EXAMPLES, ROOT, run_cli


def _spec(text: str, **kw: object) -> object:
    return parse_spec(textwrap.dedent(text), source="t.yaml", **kw)  # type: ignore[arg-type]


def _compile(text: str, role: str = "r", **kw: object) -> Policy:
    spec = parse_spec(textwrap.dedent(text), source="t.yaml")
    return compile_spec(spec, **kw).roles[role].policy  # type: ignore[arg-type]


def _allowed(policy: Policy) -> set[str]:
    return {a for s in policy.statements if s.effect == "Allow" for a in s.actions}


def _statements_with(policy: Policy, action: str, effect: str = "Allow") -> list[object]:
    return [s for s in policy.statements if s.effect == effect and action in s.actions]


# ------------------------------------------------------------------ golden


def test_examples_compile_to_the_golden_files(tmp_path: Path) -> None:
    result = run_cli("compile", str(EXAMPLES / "platform.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    golden = sorted(p.name for p in (EXAMPLES / "compiled").glob("*.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == golden
    for name in golden:
        assert (tmp_path / name).read_text() == (EXAMPLES / "compiled" / name).read_text(), name


def test_examples_compile_to_the_golden_terraform(tmp_path: Path) -> None:
    result = run_cli(
        "compile", str(EXAMPLES / "platform.yaml"), "--out", str(tmp_path), "--format", "terraform"
    )
    assert result.exit_code == 0, result.output
    for path in (EXAMPLES / "compiled-terraform").glob("*.tf"):
        assert (tmp_path / path.name).read_text() == path.read_text(), path.name


def test_the_checked_in_outputs_are_current() -> None:
    result = run_cli(
        "compile", str(EXAMPLES / "platform.yaml"), "--out", str(EXAMPLES / "compiled"), "--check"
    )
    assert result.exit_code == 0, result.output


def test_output_is_deterministic() -> None:
    a = compile_file(EXAMPLES / "platform.yaml")
    b = compile_file(EXAMPLES / "platform.yaml")
    assert [r.policy.dumps() for r in a.roles.values()] == [
        r.policy.dumps() for r in b.roles.values()
    ]


def test_golden_reader_reads_and_lists_only_its_prefixes() -> None:
    doc = json.loads((EXAMPLES / "compiled" / "analytics-reader.json").read_text())
    listing = [s for s in doc["Statement"] if s["Action"] == ["oss:ListObjects"]]
    assert listing == [
        {
            "Effect": "Allow",
            "Action": ["oss:ListObjects"],
            "Resource": ["acs:oss:*:1234567890123456:corp-data"],
            "Condition": {
                "Bool": {"acs:SecureTransport": ["true"]},
                "StringEquals": {"acs:SourceVpc": ["vpc-bp1corpdata01"]},
                "StringLike": {"oss:Prefix": ["exports/analytics/*", "exports/shared/*"]},
            },
        }
    ]


# ------------------------------------------------------------------ template semantics

READER = """\
version: 1
roles:
  r:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["a/b/"]}]
    options: {OPTIONS}
"""


def test_reader_lists_only_under_its_prefix() -> None:
    policy = _compile(READER.replace("{OPTIONS}", "{}"))
    assert _allowed(policy) == {"oss:GetObject", "oss:ListObjects"}
    (get,) = _statements_with(policy, "oss:GetObject")
    assert get.resources == ("acs:oss:*:*:corp-data/a/b/*",)  # type: ignore[attr-defined]
    (lst,) = _statements_with(policy, "oss:ListObjects")
    assert lst.resources == ("acs:oss:*:*:corp-data",)  # type: ignore[attr-defined]
    assert [(c.operator, c.key, c.values) for c in lst.conditions] == [
        ("StringLike", "oss:Prefix", ("a/b/*",))
    ]  # type: ignore[attr-defined]


def test_reader_of_the_whole_bucket_lists_without_a_condition() -> None:
    policy = _compile(READER.replace("{OPTIONS}", "{}").replace('"a/b/"', '""'))
    (lst,) = _statements_with(policy, "oss:ListObjects")
    assert lst.conditions == ()  # type: ignore[attr-defined]
    (get,) = _statements_with(policy, "oss:GetObject")
    assert get.resources == ("acs:oss:*:*:corp-data/*",)  # type: ignore[attr-defined]


def test_reader_versions_adds_version_actions_with_the_same_prefix_condition() -> None:
    policy = _compile(READER.replace("{OPTIONS}", "{versions: true}"))
    assert _allowed(policy) == {
        "oss:GetObject",
        "oss:GetObjectVersion",
        "oss:ListObjects",
        "oss:ListObjectVersions",
    }
    (lst,) = _statements_with(policy, "oss:ListObjectVersions")
    assert "oss:ListObjects" in lst.actions  # type: ignore[attr-defined]
    assert lst.conditions[0].values == ("a/b/*",)  # type: ignore[attr-defined]


def test_reader_browse_adds_console_navigation_of_ancestors_only() -> None:
    policy = _compile(READER.replace("{OPTIONS}", "{browse: true}"))
    assert {"oss:ListBuckets", "oss:GetBucketInfo"} <= _allowed(policy)
    nav = [
        s
        for s in _statements_with(policy, "oss:ListObjects")
        if any(c.key == "oss:Delimiter" for c in s.conditions)
    ]  # type: ignore[attr-defined]
    assert len(nav) == 1
    conds = {(c.operator, c.key): c.values for c in nav[0].conditions}  # type: ignore[attr-defined]
    assert conds == {
        ("StringEquals", "oss:Prefix"): ("", "a/"),
        ("StringEquals", "oss:Delimiter"): ("/",),
    }


WRITER = """\
version: 1
roles:
  r:
    template: writer
    grants: [{bucket: corp-data, prefixes: ["in/"]}]
    options: {OPTIONS}
"""


def test_writer_defaults_read_but_never_delete() -> None:
    policy = _compile(WRITER.replace("{OPTIONS}", "{}"))
    assert _allowed(policy) == {
        "oss:PutObject",
        "oss:AbortMultipartUpload",
        "oss:ListParts",
        "oss:GetObject",
        "oss:ListObjects",
    }


def test_writer_delete_is_opt_in_and_read_opt_out() -> None:
    policy = _compile(WRITER.replace("{OPTIONS}", "{delete: true, read: false}"))
    assert _allowed(policy) == {
        "oss:PutObject",
        "oss:AbortMultipartUpload",
        "oss:ListParts",
        "oss:DeleteObject",
    }


def test_uploader_is_write_only() -> None:
    policy = _compile(
        """\
        version: 1
        roles:
          r:
            template: temporary-uploader
            grants: [{bucket: upl, prefixes: ["in/"]}]
        """
    )
    assert _allowed(policy) == {"oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=st.sampled_from(["reader", "writer", "temporary-uploader"]),
    flags=st.fixed_dictionaries(
        {}, optional={k: st.booleans() for k in ("versions", "browse", "read", "delete")}
    ),
    prefix=st.sampled_from(["", "a/", "a/b/c/", "logs/2024-"]),
)
def test_builtins_never_grant_recovery_destroying_or_exposing_actions(
    template: str, flags: dict[str, bool], prefix: str
) -> None:
    allowed = {
        "reader": {"versions", "browse"},
        "writer": {"versions", "browse", "read", "delete"},
        "temporary-uploader": set(),
    }
    options = {k: v for k, v in flags.items() if k in allowed[template]}
    text = f"version: 1\nroles:\n  r:\n    template: {template}\n    grants: [{{bucket: abc, prefixes: [{json.dumps(prefix)}]}}]\n    options: {json.dumps(options)}\n"
    policy = _compile(text)
    forbidden = {
        "oss:PutObjectAcl",
        "oss:DeleteObjectVersion",
        "oss:PutBucketVersioning",
        "oss:PutBucketLifecycle",
        "oss:DeleteBucketLifecycle",
        "oss:PutBucketPolicy",
        "oss:DeleteBucketPolicy",
        "oss:ListMultipartUploads",
    }
    assert not (_allowed(policy) & forbidden)
    assert "*" not in _allowed(policy)
    # every template denies public object uploads on its own object ARNs
    (deny,) = _statements_with(policy, "oss:PutObject", "Deny")
    assert deny.conditions[0].values == ("public-read", "public-read-write")  # type: ignore[attr-defined]
    assert deny.resources == (f"acs:oss:*:*:abc/{prefix}*",)  # type: ignore[attr-defined]
    if (
        prefix
        and template != "temporary-uploader"
        and (template == "reader" or options.get("read", True))
    ):
        (lst,) = [
            s
            for s in _statements_with(policy, "oss:ListObjects")
            if not any(c.key == "oss:Delimiter" for c in s.conditions)
        ]  # type: ignore[attr-defined]
        assert any(c.key == "oss:Prefix" for c in lst.conditions)  # type: ignore[attr-defined]


def test_conditions_go_on_every_allow_and_never_on_the_deny() -> None:
    policy = _compile(
        """\
        version: 1
        defaults:
          conditions: {source_ip: ["203.0.113.0/24", "198.51.100.7"], source_vpc: ["vpc-abc123"], secure_transport: true}
        roles:
          r:
            template: writer
            grants: [{bucket: abc, prefixes: ["x/"]}]
        """
    )
    for s in policy.statements:
        keys = {(c.operator, c.key): c.values for c in s.conditions}
        if s.effect == "Allow":
            assert keys[("IpAddress", "acs:SourceIp")] == ("198.51.100.7", "203.0.113.0/24")
            assert keys[("StringEquals", "acs:SourceVpc")] == ("vpc-abc123",)
            assert keys[("Bool", "acs:SecureTransport")] == ("true",)
        else:
            assert ("IpAddress", "acs:SourceIp") not in keys


def test_account_goes_into_every_arn() -> None:
    policy = _compile(
        READER.replace("{OPTIONS}", "{}").replace(
            "roles:", 'defaults: {account: "1234567890123456"}\nroles:'
        )
    )
    for s in policy.statements:
        for r in s.resources:
            assert r.startswith("acs:oss:*:1234567890123456:")


def test_statements_for_two_buckets_are_merged_where_meaning_is_kept() -> None:
    policy = _compile(
        """\
        version: 1
        roles:
          r:
            template: reader
            grants: [{bucket: aaa, prefixes: ["x/"]}, {bucket: bbb, prefixes: ["y/"]}]
        """
    )
    (get,) = _statements_with(policy, "oss:GetObject")
    assert get.resources == ("acs:oss:*:*:aaa/x/*", "acs:oss:*:*:bbb/y/*")  # type: ignore[attr-defined]
    assert (
        len(_statements_with(policy, "oss:ListObjects")) == 2
    )  # different prefix conditions stay apart


# ------------------------------------------------------------------ placeholders

UPLOADER = """\
version: 1
roles:
  up:
    template: temporary-uploader
    grants: [{bucket: uploads, prefixes: ["incoming/{user}/", "shared/{team}/{user}/"]}]
    sts: {role_arn: "acs:ram::1234567890123456:role/up", duration: 900}
"""


def test_without_values_a_role_compiles_to_its_ceiling() -> None:
    compiled = compile_spec(parse_spec(UPLOADER, source="s")).roles["up"]
    assert compiled.mode == "ceiling"
    (allow,) = [s for s in compiled.policy.statements if s.effect == "Allow"]
    assert allow.resources == (
        "acs:oss:*:*:uploads/incoming/*/*",
        "acs:oss:*:*:uploads/shared/*/*/*",
    )


def test_with_values_a_role_compiles_to_its_session_policy() -> None:
    compiled = compile_spec(
        parse_spec(UPLOADER, source="s"), values={"user": "alice", "team": "red"}
    ).roles["up"]
    assert compiled.mode == "session"
    assert compiled.values == {"user": "alice", "team": "red"}
    (allow,) = [s for s in compiled.policy.statements if s.effect == "Allow"]
    assert allow.resources == (
        "acs:oss:*:*:uploads/incoming/alice/*",
        "acs:oss:*:*:uploads/shared/red/alice/*",
    )


def test_a_missing_value_is_an_error_not_a_silent_ceiling() -> None:
    with pytest.raises(PlaceholderError, match=r"no value for placeholder \{team\}"):
        compile_spec(parse_spec(UPLOADER, source="s"), values={"user": "alice"})


def test_an_unused_value_is_an_error() -> None:
    with pytest.raises(PlaceholderError, match=r"--var usr"):
        compile_spec(parse_spec(UPLOADER, source="s"), values={"usr": "alice"})


@pytest.mark.parametrize("bad", ["*", "a/b", "..", "", "${x}", "x" * 65, "a?"])
def test_values_that_could_widen_exit_2(bad: str) -> None:
    spec_path = EXAMPLES / "platform.yaml"
    result = run_cli("compile", str(spec_path), "--role", "mobile-uploader", "--var", f"user={bad}")
    assert result.exit_code == 2
    assert (
        "can never widen" in result.output
        or "empty" in result.output
        or "at most 64" in result.output
    )


_values = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z").filter(lambda v: ".." not in v)


@settings(max_examples=60, deadline=None)
@given(user=_values, team=_values)
def test_every_session_policy_is_contained_in_its_ceiling(user: str, team: str) -> None:
    spec = parse_spec(UPLOADER, source="s")
    ceiling = compile_spec(spec).roles["up"].policy
    session = session_policy(spec, "up", {"user": user, "team": team}).policy
    for s in session.statements:
        if s.effect != "Allow":
            continue
        covering = [
            c
            for c in ceiling.statements
            if c.effect == "Allow"
            and set(s.actions) <= set(c.actions)
            and c.conditions == s.conditions
        ]
        assert covering, s
        for resource in s.resources:
            assert any(wildcard_match(p, resource) for c in covering for p in c.resources), resource


def test_session_policy_refuses_a_role_without_sts() -> None:
    spec = parse_spec(READER.replace("{OPTIONS}", "{}"), source="s")
    with pytest.raises(SpecError, match="no sts: block"):
        session_policy(spec, "r", {})


# ------------------------------------------------------------------ limits and atomic output


def _many_prefixes(n: int, template: str = "reader", sts: bool = False) -> str:
    prefixes = json.dumps([f"some/rather/long/prefix/number-{i:04d}/" for i in range(n)])
    extra = '\n    sts: {role_arn: "acs:ram::1234567890123456:role/x"}' if sts else ""
    return f"version: 1\nroles:\n  small:\n    template: reader\n    grants: [{{bucket: abc}}]\n  big:\n    template: {template}\n    grants: [{{bucket: abc, prefixes: {prefixes}}}]{extra}\n"


def test_an_oversize_policy_names_the_role_and_how_far_over() -> None:
    with pytest.raises(PolicySizeError) as info:
        compile_spec(parse_spec(_many_prefixes(120), source="s"))
    err = info.value
    assert err.role == "big"
    assert err.limit == 6144
    assert f"{err.size - 6144} over" in str(err)
    assert "split" in str(err)


def test_a_session_policy_must_fit_2048() -> None:
    text = _many_prefixes(20, "temporary-uploader", sts=True).replace("/number-", "/{u}-")
    spec = parse_spec(text, source="s")
    compile_spec(spec, roles=["big"])  # the ceiling fits 6,144
    with pytest.raises(PolicySizeError) as info:
        session_policy(spec, "big", {"u": "alice"})
    assert info.value.limit == 2048


def test_nothing_is_written_when_any_role_fails(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(_many_prefixes(120))
    out = tmp_path / "out"
    out.mkdir()
    (out / "small.json").write_text("old\n")
    result = run_cli("compile", str(spec), "--out", str(out))
    assert result.exit_code == 2
    assert "role big" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["small.json"]
    assert (out / "small.json").read_text() == "old\n"


def test_bad_spec_exits_2_with_location_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "version: 1\nroles:\n  r:\n    template: reader\n    grants: [{bucket: UPPER}]\n"
    )
    result = run_cli("compile", str(spec), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"{spec}:5:" in result.output
    assert "roles.r.grants[0].bucket" in result.output
    assert not (tmp_path / "out").exists()


def test_check_reports_stale_missing_and_extra_files(tmp_path: Path) -> None:
    spec = EXAMPLES / "platform.yaml"
    assert run_cli("compile", str(spec), "--out", str(tmp_path)).exit_code == 0
    (tmp_path / "analytics-reader.json").write_text("{}\n")
    (tmp_path / "ingest-writer.json").unlink()
    (tmp_path / "old-role.json").write_text("{}\n")
    result = run_cli("compile", str(spec), "--out", str(tmp_path), "--check")
    assert result.exit_code == 4
    assert f"stale:   {tmp_path / 'analytics-reader.json'}" in result.output
    assert f"missing: {tmp_path / 'ingest-writer.json'}" in result.output
    assert f"extra:   {tmp_path / 'old-role.json'}" in result.output
    assert (tmp_path / "analytics-reader.json").read_text() == "{}\n"  # --check writes nothing


# ------------------------------------------------------------------ CLI shapes


def test_one_role_prints_the_policy_and_several_print_an_object() -> None:
    spec = str(EXAMPLES / "platform.yaml")
    one = run_cli("compile", spec, "--role", "ingest-writer")
    assert one.exit_code == 0
    assert json.loads(one.output)["Version"] == "1"
    many = run_cli("compile", spec, "--role", "ingest-writer", "--role", "analytics-reader")
    assert sorted(json.loads(many.output)) == ["analytics-reader", "ingest-writer"]
    everything = run_cli("compile", spec)
    doc = json.loads(everything.output)
    assert len(doc) == 6
    for name, policy in doc.items():
        assert policy == json.loads((EXAMPLES / "compiled" / f"{name}.json").read_text())


def test_unknown_role_suggests() -> None:
    result = run_cli("compile", str(EXAMPLES / "platform.yaml"), "--role", "ingest-writr")
    assert result.exit_code == 2
    assert "did you mean 'ingest-writer'?" in result.output


def test_check_needs_out() -> None:
    result = run_cli("compile", str(EXAMPLES / "platform.yaml"), "--check")
    assert result.exit_code == 2
    assert "--check needs --out" in result.output


def test_malformed_var_is_a_usage_error() -> None:
    result = run_cli("compile", str(EXAMPLES / "platform.yaml"), "--var", "novalue")
    assert result.exit_code == 2
    assert "NAME=VALUE" in result.output


def test_terraform_escapes_interpolation(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        'version: 1\nroles:\n  r:\n    template: reader\n    description: "costs ${var.x} and %{if}"\n    grants: [{bucket: abc, prefixes: ["a$b/"]}]\n'
    )
    result = run_cli("compile", str(spec), "--format", "terraform")
    assert result.exit_code == 0, result.output
    assert "$${var.x}" in result.output and "%%{if}" in result.output
    assert "a$b/*" in result.output
    assert 'resource "alicloud_ram_policy" "r"' in result.output
    assert 'rotate_strategy = "DeleteOldestNonDefaultVersionWhenLimitExceeded"' in result.output


def test_the_template_cache_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from permgen.spec import templates as render

    monkeypatch.setenv("PERMGEN_CACHE_DIR", "off")
    assert render._bytecode_cache() is None
    monkeypatch.setenv("PERMGEN_CACHE_DIR", str(tmp_path / "c"))
    cache = render._bytecode_cache()
    assert cache is not None
    assert (tmp_path / "c" / "jinja").is_dir()


_odd_prefix = st.text(alphabet="ab/,]}\" \\'é", min_size=1, max_size=12).filter(
    lambda p: not p.startswith("/") and ".." not in p.split("/") and "}" not in p
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=_odd_prefix, template=st.sampled_from(["reader", "writer", "temporary-uploader"]))
def test_prefix_text_reaches_the_policy_unchanged(prefix: str, template: str) -> None:
    """Commas, brackets, quotes and backslashes in a prefix are data, never structure."""
    doc = {
        "version": 1,
        "defaults": {"account": "1234567890123456"},
        "roles": {"r": {"template": template, "grants": [{"bucket": "bkt", "prefixes": [prefix]}]}},
    }
    if template == "temporary-uploader":
        doc["roles"]["r"]["sts"] = {"role_arn": "acs:ram::1234567890123456:role/up"}
    policy = compile_spec(parse_spec(json.dumps(doc), source="s")).roles["r"].policy
    resources = {r for s in policy.statements for r in s.resources}
    assert f"acs:oss:*:1234567890123456:bkt/{prefix}*" in resources


def test_with_the_template_cache_off_compile_writes_nothing(tmp_path: Path) -> None:
    """docs/performance.md: PERMGEN_CACHE_DIR=off writes nothing; by default the cache goes
    under $XDG_CACHE_HOME (which shows the test would see a write)."""
    import subprocess
    import sys

    home, xdg = tmp_path / "home", tmp_path / "xdg"
    home.mkdir()
    xdg.mkdir()
    base = {k: v for k, v in os.environ.items() if k != "PERMGEN_CACHE_DIR"}
    env = {**base, "HOME": str(home), "XDG_CACHE_HOME": str(xdg), "PYTHONPATH": str(ROOT)}

    def compile_in(extra: dict[str, str]) -> None:
        run = subprocess.run(
            [sys.executable, "-m", "permgen", "compile", "examples/platform.yaml"],
            cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0 and '"Statement"' in run.stdout, run.stderr

    compile_in({"PERMGEN_CACHE_DIR": "off"})
    assert sorted(tmp_path.rglob("*")) == [home, xdg]
    compile_in({})
    assert list((xdg / "permgen" / "jinja").iterdir())
    assert list(home.rglob("*")) == []


def test_user_templates_build_the_builtin_policy_with_or_without_trailing_commas(
    tmp_path: Path,
) -> None:
    """docs/templates.md: the _lib.j2 macros emit statements with trailing commas (parsed
    leniently), or add them to a statements() list that is emitted once, as the built-in
    templates do; allow()/deny() keep their trailing comma. All give the built-in reader."""
    (tmp_path / "t").mkdir()
    templates = {
        "commas": '{% import "_lib.j2" as oss %}\n{"Version": "1", "Statement": [\n'
        "{{ oss.read(grants, options, service_arn) }}\n"
        "{{ oss.deny_public_objects(all_object_arns) }}\n]}\n",
        "listed": '{% import "_lib.j2" as oss %}{% set s = statements() %}'
        "{{ oss.read(grants, options, service_arn, into=s) }}"
        "{{ oss.deny_public_objects(all_object_arns, into=s) }}"
        '{{ {"Version": "1", "Statement": s} }}',
        "by-hand": '{"Version": "1", "Statement": [{% for g in grants %}'
        '{{ allow(["oss:GetObject"], g.object_arns) }}'
        '{{ allow(["oss:ListObjects"], [g.bucket_arn], {"StringLike": {"oss:Prefix": g.list_patterns}}) }}'
        "{% endfor %}"
        '{{ deny(["oss:PutObject"], all_object_arns, {"StringEquals": {"oss:x-oss-object-acl": '
        '["public-read", "public-read-write"]}}) }}]}',
        "put": '{% set s = statements() %}{% for g in grants %}{{ put(s, "Allow", ["oss:GetObject"], '
        'g.object_arns) }}{{ s.add("Allow", ["oss:ListObjects"], [g.bucket_arn], {"StringLike": '
        '{"oss:Prefix": g.list_patterns}}) }}{% endfor %}{{ put(s, "Deny", ["oss:PutObject"], '
        'all_object_arns, {"StringEquals": {"oss:x-oss-object-acl": ["public-read", '
        '"public-read-write"]}}) }}{{ {"Version": "1", "Statement": s} }}',
    }
    for name, text in templates.items():
        (tmp_path / "t" / f"{name}.json.j2").write_text(text)
    grants = "[{bucket: bkt, prefixes: [a/, c/d/]}, {bucket: ebk, prefixes: [x/]}]"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        'version: 1\ntemplates: t\ndefaults: {account: "1234567890123456"}\nroles:\n'
        + "".join(
            f"  {name}: {{template: {name}, grants: {grants}, options: {{versions: false, "
            "browse: false}}\n"
            for name in ["reader", *templates]
        )
    )
    compiled = compile_file(spec).roles
    expected = compiled["reader"].policy.statements
    assert len(expected) == 4  # GetObject merged over both buckets, two ListObjects, one Deny
    for name in templates:
        assert compiled[name].policy.statements == expected, name
    # statements() is a list the sandbox still keeps immutable from templates
    (tmp_path / "t" / "mutate.json.j2").write_text(
        '{% set s = statements() %}{{ s.append({"Effect": "Allow"}) }}'
    )
    spec.write_text(
        'version: 1\ntemplates: t\ndefaults: {account: "1234567890123456"}\nroles:\n'
        f"  m: {{template: mutate, grants: {grants}}}\n"
    )
    with pytest.raises(SpecError, match="sandbox"):
        compile_file(spec)
